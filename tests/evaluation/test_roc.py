"""Known-answer tests of ROC/AUC/DeLong against pROC's own test suite on its aSAH data.

Reference values are copied from pROC (github.com/xrobin/pROC):
- ``tests/testthat/test-var.R``: ``var(r.wfns)``, ``var(r.ndka)``, ``var(r.s100b)``;
- ``tests/testthat/test-ci.auc.R``: ``ci.auc(r.ndka)`` (DeLong);
- ``tests/testthat/test-roc.test.R``: paired ``roc.test`` Z, p and CI, unpaired D and p,
  one-sided p-values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sonorad.evaluation.roc import (auc_score, delong_test, delong_variance, roc_auc_ci,
                                    roc_curve)

# pROC tests/testthat/test-var.R
PROC_VAR = {"wfns": 0.00146991470882363, "ndka": 0.0031908105493913, "s100b": 0.00266868245717244}
# pROC tests/testthat/test-roc.test.R (t1, t2, t3)
PROC_PAIRED = [
    ("wfns", "s100b", 2.20898359144091, 0.0271757822291882, 0.0104061769564846, 0.174214419249478),
    ("wfns", "ndka", 2.79777591868904, 0.00514557970691098, 0.0634011709339876, 0.3600405634833566),
    ("ndka", "s100b", -1.39077002573558, 0.164295175223054, -0.2876917446341914, 0.0488706064228094),
]
PROC_UNPAIRED = [
    ("wfns", "s100b", 1.43490640926908, 0.152825378808796),
    ("wfns", "ndka", 3.10125096778969, 0.00220950791756457),
    ("ndka", "s100b", -1.55995743389685, 0.120192832430845),
]


def test_auc_and_delong_variance_match_proc(asah):
    y = asah.poor_outcome
    for name, var in PROC_VAR.items():
        assert delong_variance(y, asah[name]) == pytest.approx(var, rel=1e-10)
    # pROC tests/testthat/test-ci.auc.R: expected.ci.auc for r.ndka
    r = roc_auc_ci(y, asah.ndka)
    assert (r.low, r.auc, r.high) == pytest.approx(
        (0.501244999271703, 0.611957994579946, 0.722670989888189), rel=1e-10)
    assert r.method == "delong" and r.n_pos == 41 and r.n_neg == 72


@pytest.mark.parametrize("a,b,z,p,low,high", PROC_PAIRED)
def test_paired_delong_matches_proc(asah, a, b, z, p, low, high):
    r = delong_test(asah.poor_outcome, asah[a], asah[b])
    assert r.z == pytest.approx(z, rel=1e-10)
    assert r.p_value == pytest.approx(p, rel=1e-10)
    assert (r.low, r.high) == pytest.approx((low, high), rel=1e-10)
    assert r.paired and r.df is None
    rev = delong_test(asah.poor_outcome, asah[b], asah[a])
    assert rev.z == pytest.approx(-z, rel=1e-10) and rev.p_value == pytest.approx(p, rel=1e-10)


@pytest.mark.parametrize("a,b,d,p", PROC_UNPAIRED)
def test_unpaired_delong_matches_proc(asah, a, b, d, p):
    y = asah.poor_outcome
    r = delong_test(y, asah[a], asah[b], y_true_b=y)
    assert r.z == pytest.approx(d, rel=1e-10)
    assert r.p_value == pytest.approx(p, rel=1e-10)
    assert not r.paired and r.df > 100


def test_one_sided_and_identical_curves_match_proc(asah):
    y = asah.poor_outcome
    assert delong_test(y, asah.wfns, asah.s100b, alternative="greater").p_value == pytest.approx(
        0.0135878911145941, rel=1e-10)
    assert delong_test(y, asah.wfns, asah.s100b, alternative="less").p_value == pytest.approx(
        0.986412108885406, rel=1e-10)
    assert delong_test(y, asah.wfns, asah.s100b, y_true_b=y, alternative="greater").p_value == \
        pytest.approx(0.076412689404398, rel=1e-10)
    same = delong_test(y, asah.wfns, asah.wfns)
    assert same.z == 0 and same.p_value == 1.0


def _brute_force_delong(pos_a, neg_a, pos_b, neg_b):
    """DeLong 1988 structural components by explicit double loops (psi = 1, 1/2, 0)."""
    def psi(x, y):
        return 1.0 if x > y else (0.5 if x == y else 0.0)

    comps = []
    for pos, neg in ((pos_a, neg_a), (pos_b, neg_b)):
        v10 = np.array([np.mean([psi(x, y) for y in neg]) for x in pos])
        v01 = np.array([np.mean([psi(x, y) for x in pos]) for y in neg])
        comps.append((v10, v01))
    s10 = np.cov([comps[0][0], comps[1][0]])
    s01 = np.cov([comps[0][1], comps[1][1]])
    s = s10 / len(pos_a) + s01 / len(neg_a)
    aucs = [comps[0][0].mean(), comps[1][0].mean()]
    return aucs, s


def test_fast_delong_equals_brute_force_with_ties():
    rng = np.random.default_rng(7)
    y = np.r_[np.ones(25, int), np.zeros(35, int)]
    a = np.round(rng.normal(y * 0.8, 1), 1)          # rounding creates many ties
    b = np.round(a * 0.5 + rng.normal(0, 1, y.size), 1)
    aucs, s = _brute_force_delong(a[y == 1], a[y == 0], b[y == 1], b[y == 0])
    assert auc_score(y, a) == pytest.approx(aucs[0], abs=1e-14)
    assert delong_variance(y, a) == pytest.approx(s[0, 0], rel=1e-12)
    z = (aucs[0] - aucs[1]) / math.sqrt(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    assert delong_test(y, a, b).z == pytest.approx(z, rel=1e-12)


def test_auc_with_ties_equals_mann_whitney_u():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([3, 2, 2, 1, 2, 1, 1, 0, 0])
    u = stats.mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert auc_score(y, s) == pytest.approx(u / (4 * 5))
    # by hand: 3 beats 5; 2 beats 4 + ties 1 (x2); 1 beats 2 + ties 2
    assert auc_score(y, s) == pytest.approx((5 + 2 * 4.5 + 3) / 20)


def test_bootstrap_ci_is_seeded_and_brackets_delong(asah):
    y = asah.poor_outcome
    r1 = roc_auc_ci(y, asah.s100b, method="bootstrap", n_boot=300, random_state=3)
    r2 = roc_auc_ci(y, asah.s100b, method="bootstrap", n_boot=300, random_state=3)
    r3 = roc_auc_ci(y, asah.s100b, method="bootstrap", n_boot=300, random_state=4)
    d = roc_auc_ci(y, asah.s100b)
    assert (r1.low, r1.high) == (r2.low, r2.high) and (r1.low, r1.high) != (r3.low, r3.high)
    assert r1.low < r1.auc < r1.high
    # bootstrap SD close to the DeLong SE on 113 cases
    assert r1.se == pytest.approx(d.se, rel=0.2)
    assert r1.to_frame().loc["AUC", "method"] == "bootstrap"


def test_roc_curve_points(asah):
    c = roc_curve(asah.poor_outcome, asah.wfns, name="WFNS")
    assert c.fpr[0] == 0 and c.tpr[-1] == 1
    assert np.trapezoid(c.tpr, c.fpr) == pytest.approx(c.auc.auc, abs=1e-12)
    assert "WFNS" in c.name and "sensitivity" in c.to_frame()


@pytest.mark.parametrize("y,s,match", [
    ([1, 1, 1], [0.2, 0.3, 0.4], "one class only"),
    ([0, 1, 1], [0.2, np.nan, 0.4], "NaN"),
    ([0, 1, 1], [0.2, 0.4], "length mismatch"),
    ([0, 1, 2], [0.2, 0.3, 0.4], "only 0 and 1"),
    (["benign", "malignant"], [0.2, 0.3], "coded 0/1"),
])
def test_bad_input_is_rejected_with_the_argument_named(y, s, match):
    with pytest.raises(ValueError, match=match):
        roc_auc_ci(y, s)


def test_bad_arguments_name_the_argument(asah):
    y = asah.poor_outcome
    with pytest.raises(ValueError, match="method"):
        roc_auc_ci(y, asah.wfns, method="hanley")
    with pytest.raises(ValueError, match="level"):
        roc_auc_ci(y, asah.wfns, level=95)
    with pytest.raises(ValueError, match="score_b"):
        delong_test(y, asah.wfns, asah.wfns[:10])
    with pytest.raises(ValueError, match="predict_proba"):
        roc_auc_ci([0, 1], np.array([[0.2, 0.8], [0.4, 0.6]]))
