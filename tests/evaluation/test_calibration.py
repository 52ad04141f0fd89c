"""Tests of calibration statistics.

Hosmer-Lemeshow known answer: the R package ``performance`` documents
``performance_hosmer(glm(vs ~ wt + mpg, data = mtcars, family = "binomial"))`` as
``Chi-squared: 5.137, df: 8, p-value: 0.743`` (easystats.github.io/performance/reference/
performance_hosmer.html; its grouping, in ``R/performance_hosmer.R`` of easystats/performance,
is the same as ``ResourceSelection::hoslem.test``). The statistic is also checked against an
independent ``pandas.qcut`` grouping and a constructed case whose statistic is exactly 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sonorad.evaluation.calibration import (brier_score, calibration, calibration_intercept_slope,
                                            hosmer_lemeshow, val_prob)


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
        hosmer_lemeshow([0, 1, 0, 1], p)


# --- issue 13 defects 2-4: the logistic recalibration ----------------------------------------------

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


def test_calibration_in_the_large_and_joint_intercept_are_both_reported_by_name():
    # predictions shifted by +1 logit and twice too extreme: the two intercepts differ
    y, p = _fitted_logistic()
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


def test_tiny_probabilities_are_used_as_they_are_not_clipped():
    y, p = _fitted_logistic()
    q = p.copy()
    q[:5] = [1e-14, 3e-15, 1e-13, 2e-16, 5e-14]   # confident predictions far below 1e-12
    lq = np.log(q) - np.log1p(-q)
    (a, b), _ = _newton_logistic(y, lq)
    t = calibration_intercept_slope(y, q)
    assert t.loc["slope", "estimate"] == pytest.approx(b, abs=1e-8)
    assert t.loc["intercept", "estimate"] == pytest.approx(a, abs=1e-8)


# --- the val.prob set against R (rms 6.5.0; tests/evaluation/data/make_rms_reference.R) ------------

DATA = Path(__file__).parent / "data"
RMS = json.loads((DATA / "valprob_reference.json").read_text())["datasets"]


def _num(value) -> float:
    """JSON number, or the strings "NA"/"NaN"/"Inf"/"-Inf" R's jsonlite writes for non-finite ones."""
    return float("nan") if value == "NA" else float(value)


@pytest.fixture(scope="module")
def valprob_data() -> pd.DataFrame:
    return pd.read_csv(DATA / "valprob_datasets.csv")


def _dataset(valprob_data, name):
    d = valprob_data[valprob_data.dataset == name]
    return d.y.to_numpy(), d.p.to_numpy()


def test_reference_data_sets_cover_ties_0_1_and_small_n(valprob_data):
    sizes = valprob_data.groupby("dataset").size()
    assert len(sizes) >= 5 and sizes.min() <= 25
    with_0_1 = [n for n, d in valprob_data.groupby("dataset") if ((d.p == 0) | (d.p == 1)).any()]
    tied = [n for n, d in valprob_data.groupby("dataset") if d.p.nunique() < len(d) / 2]
    assert len(with_0_1) >= 2 and len(tied) >= 3


@pytest.mark.parametrize("name", sorted(RMS))
def test_val_prob_matches_rms(valprob_data, name):
    y, p = _dataset(valprob_data, name)
    ref, vp = RMS[name], RMS[name]["val_prob"]
    r = val_prob(y, p)
    for ours, theirs in [(r.brier, "Brier"), (r.emax, "Emax"), (r.e90, "E90"), (r.eavg, "Eavg"),
                         (r.spiegelhalter_z, "S:z"), (r.spiegelhalter_p, "S:p"), (r.r2, "R2")]:
        assert ours == pytest.approx(_num(vp[theirs]), abs=1e-6), theirs
    assert r.dxy == pytest.approx(ref["somers2"]["Dxy"], abs=1e-6)
    assert r.c_index == pytest.approx(ref["somers2"]["C"], abs=1e-6)
    # intercepts and slope: the converged glm() fits, estimates and SEs
    g, t = ref["glm"], r.recalibration
    for row, key in [("calibration-in-the-large", "citl"), ("intercept", "intercept"), ("slope", "slope")]:
        assert t.loc[row, "estimate"] == pytest.approx(g[key], abs=1e-6), row
        assert t.loc[row, "se"] == pytest.approx(g[f"{key}_se"], abs=1e-6), row
    assert r.n_excluded == g["n_excluded"] and (t["n_used"] == g["n_used"]).all()
    # val.prob's own Intercept/Slope stop at lrm.fit's tolerance: close to, not equal to, glm's
    assert r.intercept == pytest.approx(vp["Intercept"], abs=5e-4)
    assert r.slope == pytest.approx(vp["Slope"], abs=5e-4)
    hl = ref["hosmer_lemeshow"]
    assert r.hosmer_lemeshow.statistic == pytest.approx(_num(hl["chisq"]), abs=1e-6)
    assert r.hosmer_lemeshow.p_value == pytest.approx(_num(hl["p"]), abs=1e-6)
    assert r.hosmer_lemeshow.n_groups == hl["groups"] and r.hosmer_lemeshow.df == hl["df"]


@pytest.mark.parametrize("name", sorted(RMS))
def test_lowess_errors_match_r(valprob_data, name):
    from sonorad.evaluation.calibration import _smooth_errors

    y, p = _dataset(valprob_data, name)
    assert _smooth_errors(y, p) == pytest.approx(np.array(RMS[name]["lowess_errors"]), abs=1e-8)


@pytest.mark.parametrize("name", sorted(RMS))
def test_val_prob_dxy_difference_is_lrm_binning(valprob_data, name):
    # val.prob takes Dxy from lrm.fit, which drops p in {0, 1} and counts concordance over
    # probabilities binned into 1/5000-wide cells; reproducing that binning gives its value exactly
    from scipy import special

    from sonorad.evaluation.roc import auc_score

    y, p = _dataset(valprob_data, name)
    keep = (p > 0) & (p < 1)
    lp = np.clip(np.log(p[keep] / (1 - p[keep])), -30, 30)
    cell = np.floor(5000 * special.expit(lp) + 1)
    assert 2 * auc_score(y[keep], cell) - 1 == pytest.approx(RMS[name]["val_prob"]["Dxy"], abs=1e-12)


@pytest.mark.slow
def test_reference_fixtures_regenerate_identically_with_r(tmp_path):
    # optional: runs only where R with rms is installed (CI has no R)
    import shutil
    import subprocess

    if shutil.which("Rscript") is None:
        pytest.skip("R is not installed")
    ok = subprocess.run(["Rscript", "-e", "library(rms)"], capture_output=True, timeout=60)
    if ok.returncode != 0:
        pytest.skip("R package rms is not installed")
    subprocess.run(["Rscript", str(DATA / "make_rms_reference.R"), str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    assert (tmp_path / "valprob_datasets.csv").read_text() == (DATA / "valprob_datasets.csv").read_text()
    fresh = json.loads((tmp_path / "valprob_reference.json").read_text())["datasets"]
    for name, ref in RMS.items():
        for key in ("Slope", "Intercept", "Brier", "Eavg", "R2"):
            assert _num(fresh[name]["val_prob"][key]) == pytest.approx(_num(ref["val_prob"][key]), abs=1e-12)


# --- not computable is a result, not an error (issue 16 item 1) ---------------------------------

def test_hosmer_lemeshow_with_one_risk_group_is_not_computable_and_does_not_raise():
    y = np.array([0, 1] * 20)
    p = np.where(np.arange(40) < 38, 0.3, 0.6)        # two distinct risks -> fewer than 3 groups
    r = hosmer_lemeshow(y, p)
    assert not r.computable and np.isnan(r.statistic) and r.df is None
    assert "risk group" in r.reason and "2 distinct" in r.reason
    assert not r.to_frame()["computable"].iloc[0]


def test_val_prob_reports_what_cannot_be_computed_and_goes_on():
    # a model that keeps one binary variable: two distinct probabilities
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1] * 5)
    p = np.repeat([0.25, 0.75], 20)
    r = val_prob(y, p)
    f = r.to_frame()
    assert not f.loc["Hosmer-Lemeshow chi2", "computable"]
    assert f.loc["Slope", "computable"] and np.isfinite(r.slope)
    assert np.isfinite(r.brier) and np.isfinite(r.eavg)
    assert "Hosmer-Lemeshow chi2" in r.to_row()["not_computable"]


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


def test_equal_probabilities_and_only_0_1_probabilities():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 0])
    r = val_prob(y, np.full(8, 0.3))
    assert {"Intercept", "Slope"} <= set(r.reasons)
    assert r.calibration_in_the_large == pytest.approx(np.log(3 / 5) - np.log(0.3 / 0.7), abs=1e-8)
    assert r.eavg == pytest.approx(abs(0.3 - 3 / 8))
    r = val_prob(y, np.array([0, 1, 1, 0, 0, 1, 0, 0], float))
    assert r.n_excluded == 8
    assert {"Calibration-in-the-large", "Intercept", "Slope", "R2", "Spiegelhalter z"} <= set(r.reasons)
    assert r.brier == pytest.approx(2 / 8)
    # R: lowess(p, y, iter = 0) is 0.2 at p = 0 and 2/3 at p = 1 (the means at the two x values)
    assert r.eavg == pytest.approx((5 * 0.2 + 3 * (1 - 2 / 3)) / 8, abs=1e-12)


@pytest.mark.parametrize("name", sorted(RMS))
def test_val_prob_discrimination_unreliability_quality_match_rms(valprob_data, name):
    y, p = _dataset(valprob_data, name)
    vp = RMS[name]["val_prob"]
    r = val_prob(y, p)
    for ours, theirs in [(r.d, "D"), (r.d_chi2, "D:Chi-sq"), (r.u, "U"), (r.u_chi2, "U:Chi-sq"), (r.u_p, "U:p"),
                         (r.q, "Q")]:
        assert ours == pytest.approx(_num(vp[theirs]), abs=1e-6), theirs
    frame = r.to_frame()
    assert frame.loc["U", "df"] == 2 and frame.loc["U", "p_value"] == pytest.approx(r.u_p)
    assert frame.loc["Q", "estimate"] == pytest.approx(r.d - r.u)
