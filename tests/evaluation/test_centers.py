"""Tests of per-center results and the AUC heterogeneity test.

Known answers: ``data/centers_reference.json``, written by ``data/make_center_reference.R`` with
pROC 1.18.0 (per-center AUC and DeLong variance) and metafor 3.8-1 (``rma(method = "FE")``:
Cochran's Q, its p, I^2, pooled AUC and SE; ``rma(method = "DL")``: tau^2).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sonorad.evaluation.valprob import val_prob
from sonorad.evaluation.centers import auc_heterogeneity, performance_by_center

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "centers_reference.json").read_text())
SETS = ["dcurves_three_blocks", "asah_by_wfns", "heterogeneous"]


def _cohort(name: str):
    d = pd.read_csv(DATA / "dcurves_df_binary.csv")
    a = pd.read_csv(DATA / "asah.csv")
    if name == "dcurves_three_blocks":
        return d.cancer.to_numpy(), d.cancerpredmarker.to_numpy(), np.repeat(["A", "B", "C"], 250)
    if name == "asah_by_wfns":
        return (a.poor_outcome.to_numpy(), a.s100b.to_numpy(),
                np.where(a.wfns <= 2, "wfns1-2", "wfns3-5"))
    y = np.r_[d.cancer[:250], a.poor_outcome, d.cancer[500:750]]
    s = np.r_[d.cancerpredmarker[:250], a.s100b, np.round(d.cancerpredmarker[500:750] * 10) / 10]
    c = np.repeat(["dcurves_1", "asah_s100b", "dcurves_3_rounded"], [250, len(a), 250])
    return y, s, c


@pytest.mark.parametrize("name", SETS)
def test_heterogeneity_matches_metafor(name):
    ref = REF[name]
    r = auc_heterogeneity(ref["auc"], ref["variance"], centers=ref["centers"])
    assert r.q == pytest.approx(ref["Q"], rel=1e-10)
    assert r.df == ref["df"]
    assert r.p_value == pytest.approx(ref["p"], rel=1e-10)
    assert r.i2 == pytest.approx(ref["I2"], abs=1e-12)
    assert r.tau2 == pytest.approx(ref["tau2_dl"], abs=1e-12)
    assert r.pooled_auc == pytest.approx(ref["pooled_auc"], rel=1e-12)
    assert r.pooled_se == pytest.approx(ref["pooled_se"], rel=1e-10)


def test_heterogeneity_by_hand():
    # w = 1/v = (1000, 500, 250); pooled = (800 + 350 + 225) / 1750 = 0.785714...
    r = auc_heterogeneity([0.80, 0.70, 0.90], [0.001, 0.002, 0.004])
    pooled = (0.8 * 1000 + 0.7 * 500 + 0.9 * 250) / 1750
    q = 1000 * (0.8 - pooled) ** 2 + 500 * (0.7 - pooled) ** 2 + 250 * (0.9 - pooled) ** 2
    assert r.pooled_auc == pytest.approx(pooled) and r.q == pytest.approx(q)
    assert r.i2 == pytest.approx((q - 2) / q)
    assert r.tau2 == pytest.approx((q - 2) / (1750 - (1000 ** 2 + 500 ** 2 + 250 ** 2) / 1750))
    # equal AUCs: Q = 0, I^2 = 0, p = 1
    r = auc_heterogeneity([0.7, 0.7], [0.001, 0.003])
    assert (r.q, r.i2, r.p_value) == (0.0, 0.0, 1.0)
    assert auc_heterogeneity([0.99, 0.98], [1e-3, 1e-3]).high == 1.0   # CI clipped to [0, 1]


@pytest.mark.parametrize("name", SETS)
def test_performance_by_center_reproduces_proc_per_center(name):
    y, s, c = _cohort(name)
    p = s / s.max() if s.max() > 1 else s          # aSAH s100b is not a probability; rescale
    r = performance_by_center(y, p, c)
    ref = REF[name]
    t = r.table.set_index("center")
    assert list(t.index) == ref["centers"] + ["pooled"]
    assert t.loc[ref["centers"], "auc"].to_numpy() == pytest.approx(ref["auc"], rel=1e-12)
    assert (t.loc[ref["centers"], "auc_se"].to_numpy() ** 2) == pytest.approx(ref["variance"], rel=1e-10)
    assert r.heterogeneity.q == pytest.approx(ref["Q"], rel=1e-10)
    # the pooled row is the whole cohort; a center row is that center alone
    whole, first = val_prob(y, p), val_prob(y[c == ref["centers"][0]], p[c == ref["centers"][0]])
    assert t.loc["pooled", "slope"] == pytest.approx(whole.slope)
    assert t.loc["pooled", "n"] == len(y)
    assert t.loc[ref["centers"][0], "eavg"] == pytest.approx(first.eavg)
    assert t.loc[ref["centers"][0], "citl"] == pytest.approx(first.calibration_in_the_large)


def test_a_center_with_one_class_is_reported_and_left_out_of_the_test():
    rng = np.random.default_rng(0)
    y = np.r_[rng.integers(0, 2, 80), np.zeros(15, int), rng.integers(0, 2, 60)]
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, len(y)), 0.01, 0.99)
    c = np.repeat(["a", "b", "c"], [80, 15, 60])
    r = performance_by_center(y, p, c, threshold=0.5)
    t = r.table.set_index("center")
    assert "one outcome class" in t.loc["b", "not_computable"] and np.isnan(t.loc["b", "auc"])
    assert t.loc["b", "brier"] == pytest.approx(np.mean(p[80:95] ** 2))
    assert r.heterogeneity.centers == ("a", "c") and "b" in r.heterogeneity.excluded
    assert {"sensitivity", "specificity_low", "ppv_high"} <= set(t.columns)
    assert np.isfinite(t.loc["pooled", "sensitivity"])
    assert set(r.statistics) == {"a", "c", "pooled"}


def test_heterogeneity_needs_two_usable_centers():
    r = auc_heterogeneity([0.8, 1.0], [0.001, 0.0], centers=["a", "b"])
    assert not r.computable and "variance" in r.excluded["b"] and "at least 2" in r.reason
    assert not r.to_frame()["computable"].iloc[0]


@pytest.mark.parametrize("center,match", [
    (["a"] * 3, "one center per case"),
    (["a", None, "b", "b"], "missing"),
    (["pooled", "a", "a", "b"], "pooled"),
])
def test_bad_center_input(center, match):
    with pytest.raises(ValueError, match=match):
        performance_by_center([0, 1, 0, 1], [0.2, 0.7, 0.4, 0.6], center)


@pytest.mark.slow
def test_reference_regenerates_identically_with_r(tmp_path):
    # optional: runs only where R with pROC and metafor is installed (CI has no R)
    import shutil
    import subprocess

    if shutil.which("Rscript") is None:
        pytest.skip("R is not installed")
    if subprocess.run(["Rscript", "-e", "library(pROC); library(metafor)"], capture_output=True,
                      timeout=60).returncode != 0:
        pytest.skip("R packages pROC and metafor are not installed")
    subprocess.run(["Rscript", str(DATA / "make_center_reference.R"), str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    fresh = json.loads((tmp_path / "centers_reference.json").read_text())
    for name in SETS:
        assert fresh[name]["Q"] == pytest.approx(REF[name]["Q"], rel=1e-12)
        assert fresh[name]["variance"] == pytest.approx(REF[name]["variance"], rel=1e-12)
