"""Tests of sonorad.evaluation.valprob: the rms::val.prob set against R (rms 6.5.0;
tests/evaluation/data/make_rms_reference.R) and what cannot be computed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sonorad.evaluation.valprob import val_prob


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
    from sonorad.evaluation.valprob import _smooth_errors

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
