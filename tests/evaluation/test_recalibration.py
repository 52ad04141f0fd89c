"""Tests of sonorad.evaluation.recalibration: calibration-in-the-large, intercept and slope against
independent Newton-Raphson fits."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.evaluation.recalibration import calibration_intercept_slope
from sonorad.evaluation.valprob import val_prob


def test_in_sample_logistic_model_has_intercept_0_slope_1(fitted_logistic):
    # the maximum-likelihood score equations of a logistic model with an intercept force
    # sum(y - p) = 0 and sum((y - p) * logit(p)) = 0: recalibration gives exactly (0, 1)
    y, p = fitted_logistic
    t = calibration_intercept_slope(y, p)
    assert t.loc["intercept", "estimate"] == pytest.approx(0, abs=1e-8)
    assert t.loc["slope", "estimate"] == pytest.approx(1, abs=1e-8)


def test_known_miscalibration_is_recovered(fitted_logistic):
    y, p = fitted_logistic
    lp = np.log(p / (1 - p))
    overfit = 1 / (1 + np.exp(-2 * lp))        # predictions twice too extreme
    shifted = 1 / (1 + np.exp(-(lp + 1)))      # risks overestimated by 1 logit
    assert calibration_intercept_slope(y, overfit).loc["slope", "estimate"] == pytest.approx(0.5, abs=1e-7)
    assert calibration_intercept_slope(y, shifted).loc["intercept", "estimate"] == pytest.approx(-1, abs=1e-7)


def _newton_logistic(y, lp, *, offset=False):
    """Independent maximum-likelihood fit of ``logit P(y) = a + b lp`` (or ``a + lp``), converged
    to machine precision; returns (coefficients, standard errors)."""
    y = np.asarray(y, float)
    X = np.ones((len(y), 1)) if offset else np.column_stack([np.ones(len(y)), lp])
    off = lp if offset else 0.0
    b = np.zeros(X.shape[1])
    for _ in range(200):
        p = 1 / (1 + np.exp(-(X @ b + off)))
        info = X.T @ (X * (p * (1 - p))[:, None])
        step = np.linalg.solve(info, X.T @ (y - p))
        b = b + step
        if np.max(np.abs(step)) < 1e-14:
            break
    p = 1 / (1 + np.exp(-(X @ b + off)))
    info = X.T @ (X * (p * (1 - p))[:, None])
    return b, np.sqrt(np.diag(np.linalg.inv(info)))


def _knn_like_predictions():
    # probabilities of a 5-nearest-neighbour model: multiples of 0.2, including exactly 0 and 1,
    # with an event at p = 0 and a non-event at p = 1 (the cases that make the fit diverge)
    rng = np.random.default_rng(3)
    p = rng.choice([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], size=120, p=[0.15, 0.15, 0.2, 0.2, 0.15, 0.15])
    y = (rng.random(120) < np.clip(p, 0.1, 0.9)).astype(int)
    y[np.flatnonzero(p == 0)[0]] = 1
    y[np.flatnonzero(p == 1)[0]] = 0
    return y, p


def test_probabilities_of_exactly_0_or_1_are_dropped_from_the_logistic_fits():
    y, p = _knn_like_predictions()
    keep = (p > 0) & (p < 1)
    lp = np.log(p[keep] / (1 - p[keep]))
    (a, b), _ = _newton_logistic(y[keep], lp)
    (citl,), _ = _newton_logistic(y[keep], lp, offset=True)
    t = calibration_intercept_slope(y, p)
    assert t.loc["slope", "estimate"] == pytest.approx(b, abs=1e-8)
    assert t.loc["intercept", "estimate"] == pytest.approx(a, abs=1e-8)
    assert t.loc["calibration-in-the-large", "estimate"] == pytest.approx(citl, abs=1e-8)
    assert (t["n_excluded"] == int((~keep).sum())).all() and (t["n_used"] == int(keep.sum())).all()


def test_calibration_in_the_large_and_joint_intercept_are_both_reported_by_name(fitted_logistic):
    # predictions shifted by +1 logit and twice too extreme: the two intercepts differ
    y, p = fitted_logistic
    lp = np.log(p / (1 - p))
    q = 1 / (1 + np.exp(-(2 * lp + 1)))
    lq = np.log(q / (1 - q))
    (a, b), (se_a, se_b) = _newton_logistic(y, lq)
    (citl,), (se_citl,) = _newton_logistic(y, lq, offset=True)
    t = calibration_intercept_slope(y, q)
    assert list(t.index) == ["calibration-in-the-large", "intercept", "slope"]
    assert t.loc["intercept", "estimate"] == pytest.approx(a, abs=1e-8)
    assert t.loc["calibration-in-the-large", "estimate"] == pytest.approx(citl, abs=1e-8)
    assert abs(a - citl) > 0.1
    assert t.loc["intercept", "se"] == pytest.approx(se_a, abs=1e-6)
    assert t.loc["calibration-in-the-large", "se"] == pytest.approx(se_citl, abs=1e-6)
    assert "slope fixed at 1" in t.loc["calibration-in-the-large", "method"]
    assert "joint" in t.loc["intercept", "method"]


def test_slope_standard_error_is_the_converged_maximum_likelihood_value():
    # a small, strongly separating sample where IRLS stopped at the default deviance tolerance
    # leaves the slope SE 8e-5 away from the maximum-likelihood value
    rng = np.random.default_rng(269)
    n = int(rng.integers(15, 60))
    lp = rng.normal(0, rng.uniform(1, 6), n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(rng.uniform(-1, 1) + rng.uniform(0.2, 3) * lp)))).astype(int)
    p = 1 / (1 + np.exp(-lp))
    (a, b), (se_a, se_b) = _newton_logistic(y, np.log(p / (1 - p)))
    t = calibration_intercept_slope(y, p)
    assert t.loc["slope", "estimate"] == pytest.approx(b, abs=1e-8)
    assert t.loc["slope", "se"] == pytest.approx(se_b, abs=1e-6)
    assert t.loc["intercept", "se"] == pytest.approx(se_a, abs=1e-6)


def test_tiny_probabilities_are_used_as_they_are_not_clipped(fitted_logistic):
    y, p = fitted_logistic
    q = p.copy()
    q[:5] = [1e-14, 3e-15, 1e-13, 2e-16, 5e-14]   # confident predictions far below 1e-12
    lq = np.log(q) - np.log1p(-q)
    (a, b), _ = _newton_logistic(y, lq)
    t = calibration_intercept_slope(y, q)
    assert t.loc["slope", "estimate"] == pytest.approx(b, abs=1e-8)
    assert t.loc["intercept", "estimate"] == pytest.approx(a, abs=1e-8)


def test_perfect_separation_leaves_slope_not_computable_with_a_warning():
    y = np.array([0, 0, 0, 1, 1, 1] * 5)
    p = np.where(y == 1, 0.9, 0.1) + np.linspace(0, 0.05, 30)
    with pytest.warns(UserWarning, match="perfect separation"):
        t = calibration_intercept_slope(y, p)
    assert not t.loc["slope", "computable"] and np.isnan(t.loc["slope", "estimate"])
    assert "separation" in t.loc["intercept", "reason"]
    assert t.loc["calibration-in-the-large", "computable"]   # the offset-only fit still exists
    r = val_prob(y, p)
    assert "Slope" in r.reasons and np.isfinite(r.calibration_in_the_large)
