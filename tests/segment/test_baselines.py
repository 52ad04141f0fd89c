import numpy as np
import pytest

from sonorad.segment.baselines import box_mask, ellipse_mask, grabcut_mask
from sonorad.segment.metrics import dice_score


def test_box_mask_is_the_box():
    m = box_mask((20, 30), (5, 2, 15, 12))
    assert m.sum() == 100 and m[2:12, 5:15].all()


def test_ellipse_inscribed_in_a_box_on_a_known_grid():
    # 100 x 60 box: the lattice count approaches pi * a * b = pi * 50 * 30.
    m = ellipse_mask((80, 120), (10, 10, 110, 70))
    assert m.sum() == pytest.approx(np.pi * 50 * 30, rel=0.01)
    assert not m[:10].any() and not m[70:].any() and not m[:, :10].any() and not m[:, 110:].any()
    assert m[39, 10] and m[40, 109] and m[10, 59] and m[69, 60]  # touches the four sides at their midpoints
    assert not m[10, 10] and not m[69, 109]  # not the corners
    assert np.array_equal(m[10:70, 10:110], m[10:70, 10:110][::-1, ::-1])  # symmetric about the centre
    assert ellipse_mask((4, 4), (0, 0, 4, 4)).sum() == 12


def test_grabcut_finds_a_contrasting_lesion():
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:100, :120]
    truth = ((rows - 50) / 20) ** 2 + ((cols - 60) / 30) ** 2 < 1
    image = np.where(truth, 40.0, 150.0) + rng.normal(0, 10, truth.shape)
    assert dice_score(grabcut_mask(image, (28, 28, 92, 72)), truth) > 0.9


def test_random_walker_finds_a_contrasting_lesion_and_stays_in_the_crop():
    from sonorad.segment.baselines import random_walker_mask

    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[:100, :120]
    truth = ((rows - 50) / 20) ** 2 + ((cols - 60) / 30) ** 2 < 1
    image = np.where(truth, 40.0, 150.0) + rng.normal(0, 10, truth.shape)
    mask = random_walker_mask(image, (26, 26, 94, 74))
    assert dice_score(mask, truth) > 0.9
    assert not mask[:, :5].any() and not mask[:5].any()
