"""Tests of sonorad.evaluation.calibration: the Brier score and the calibration curve result."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.evaluation.calibration import brier_score, calibration


def test_brier_and_calibration_result(fitted_logistic):
    assert brier_score([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3]) == pytest.approx(
        (0.01 + 0.04 + 0.16 + 0.09) / 4)
    y, p = fitted_logistic
    c = calibration(y, p, n_bins=5, name="LR")
    assert c.bins["n"].sum() == len(y) and len(c.bins) == 5
    assert np.all(np.diff(c.smoothed["predicted"]) >= 0)
    f = c.to_frame()
    assert {"Brier", "Calibration-in-the-large", "Intercept", "Slope",
            "Hosmer-Lemeshow chi2"} <= set(f.index)
    assert "Calibration" in str(c)


@pytest.mark.parametrize("p,match", [
    ([0.1, 1.2, 0.3, 0.4], r"\[0, 1\]"),
    ([0.1, np.nan, 0.3, 0.4], "NaN"),
    ([0.1, 0.2, 0.3], "length mismatch"),
])
def test_bad_input(p, match):
    with pytest.raises(ValueError, match=match):
        calibration([0, 1, 0, 1], p)
    with pytest.raises(ValueError, match=match):
        brier_score([0, 1, 0, 1], p)
