import numpy as np
import pytest

from sonorad.segment.metrics import dice_score, hd95


def test_dice_known_answers():
    a = np.zeros((10, 10), bool)
    a[:, :4] = True
    b = np.zeros((10, 10), bool)
    b[:, 2:6] = True
    assert dice_score(a, b) == pytest.approx(2 * 20 / 80)
    assert dice_score(a, a) == 1.0
    assert dice_score(a, ~a) == 0.0
    assert dice_score(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0


def test_hd95_known_answers():
    m = np.zeros((40, 40), bool)
    m[10:30, 10:30] = True
    assert hd95(m, m) == 0.0
    assert hd95(m, np.roll(m, 4, axis=0)) == pytest.approx(4.0)
    assert hd95(m, np.roll(m, 3, axis=1), spacing=(0.5, 0.5)) == pytest.approx(1.5)
    assert np.isnan(hd95(m, np.zeros_like(m)))
    with pytest.raises(ValueError, match="same shape"):
        hd95(m, m[:-1])
