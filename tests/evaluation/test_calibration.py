"""Tests of calibration statistics.

Hosmer-Lemeshow known answer: the R package ``performance`` documents
``performance_hosmer(glm(vs ~ wt + mpg, data = mtcars, family = "binomial"))`` as
``Chi-squared: 5.137, df: 8, p-value: 0.743`` (easystats.github.io/performance/reference/
performance_hosmer.html; its grouping, in ``R/performance_hosmer.R`` of easystats/performance,
is the same as ``ResourceSelection::hoslem.test``). The statistic is also checked against an
independent ``pandas.qcut`` grouping and a constructed case whose statistic is exactly 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sonorad.evaluation.calibration import (brier_score, calibration, calibration_intercept_slope,
                                            hosmer_lemeshow)


def _fitted_logistic(n=400, seed=0):
    import statsmodels.api as sm

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + x @ [1.0, -0.7])))).astype(int)
    fit = sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit()
    return y, np.asarray(fit.fittedvalues)


def test_in_sample_logistic_model_has_intercept_0_slope_1():
    # the maximum-likelihood score equations of a logistic model with an intercept force
    # sum(y - p) = 0 and sum((y - p) * logit(p)) = 0: recalibration gives exactly (0, 1)
    y, p = _fitted_logistic()
    t = calibration_intercept_slope(y, p)
    assert t.loc["intercept", "estimate"] == pytest.approx(0, abs=1e-8)
    assert t.loc["slope", "estimate"] == pytest.approx(1, abs=1e-8)


def test_known_miscalibration_is_recovered():
    y, p = _fitted_logistic()
    lp = np.log(p / (1 - p))
    overfit = 1 / (1 + np.exp(-2 * lp))        # predictions twice too extreme
    shifted = 1 / (1 + np.exp(-(lp + 1)))      # risks overestimated by 1 logit
    assert calibration_intercept_slope(y, overfit).loc["slope", "estimate"] == pytest.approx(0.5, abs=1e-7)
    assert calibration_intercept_slope(y, shifted).loc["intercept", "estimate"] == pytest.approx(-1, abs=1e-7)


def test_hosmer_lemeshow_matches_published_mtcars_example(mtcars):
    import statsmodels.api as sm

    d = mtcars
    # transcription check: R's glm(vs ~ wt + disp) output as published (coefficients 1.60859,
    # 1.62635, -0.03443; residual deviance 21.40, null deviance 43.86)
    chk = sm.GLM(d.vs, sm.add_constant(d[["wt", "disp"]]), family=sm.families.Binomial()).fit()
    assert chk.params.to_numpy() == pytest.approx([1.60859, 1.62635, -0.03443], abs=5e-5)
    assert (round(chk.deviance, 2), round(chk.null_deviance, 2)) == (21.40, 43.86)
    fit = sm.GLM(d.vs, sm.add_constant(d[["wt", "mpg"]]), family=sm.families.Binomial()).fit(tol=1e-12)
    r = hosmer_lemeshow(d.vs, fit.fittedvalues)
    assert round(r.statistic, 3) == 5.137
    assert r.df == 8
    assert round(r.p_value, 3) == 0.743


def test_hosmer_lemeshow_equals_independent_decile_grouping(df_binary):
    y, p = df_binary.cancer.to_numpy(), df_binary.cancerpredmarker.to_numpy()
    r = hosmer_lemeshow(y, p)
    grp = pd.qcut(p, 10)
    d = pd.DataFrame({"y": y, "p": p, "g": grp}).groupby("g", observed=True)
    o1, e1 = d.y.sum(), d.p.sum()
    o0, e0 = d.y.count() - o1, d.y.count() - e1
    chi2 = float(((o1 - e1) ** 2 / e1 + (o0 - e0) ** 2 / e0).sum())
    assert r.statistic == pytest.approx(chi2, rel=1e-12)
    assert r.df == 8
    assert r.p_value == pytest.approx(stats.chi2.sf(chi2, 8), rel=1e-12)
    assert r.groups["n"].sum() == 750


def test_hosmer_lemeshow_zero_when_every_group_matches_exactly():
    probs = np.repeat(np.arange(10) / 10 + 0.05, 20)
    y = np.concatenate([np.r_[np.ones(round(20 * q)), np.zeros(20 - round(20 * q))]
                        for q in np.arange(10) / 10 + 0.05]).astype(int)
    r = hosmer_lemeshow(y, probs)
    assert r.statistic == pytest.approx(0, abs=1e-12) and r.p_value == pytest.approx(1)
    assert len(r.groups) == 10


def test_brier_and_calibration_result():
    assert brier_score([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3]) == pytest.approx(
        (0.01 + 0.04 + 0.16 + 0.09) / 4)
    y, p = _fitted_logistic()
    c = calibration(y, p, n_bins=5, name="LR")
    assert c.bins["n"].sum() == len(y) and len(c.bins) == 5
    assert np.all(np.diff(c.smoothed["predicted"]) >= 0)
    f = c.to_frame()
    assert {"brier", "calibration slope", "hosmer-lemeshow chi2"} <= set(f.index)
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
        hosmer_lemeshow([0, 1, 0, 1], p)
