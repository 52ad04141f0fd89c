"""Known-answer tests of ROC/AUC/DeLong against pROC's own test suite on its aSAH data.

Reference values are copied from pROC (github.com/xrobin/pROC):
- ``tests/testthat/test-var.R``: ``var(r.wfns)``, ``var(r.ndka)``, ``var(r.s100b)``;
- ``tests/testthat/test-ci.auc.R``: ``ci.auc(r.ndka)`` (DeLong);
- ``tests/testthat/test-roc.test.R``: paired ``roc.test`` Z, p and CI, unpaired D and p,
  one-sided p-values.

The clustered (Obuchowski 1997) variance is checked three ways: it equals DeLong's with one case
per cluster, it equals an independent transcription of the paper's formulas (structural components
summed per cluster by explicit loops) and a hand-worked example, and under strong within-patient
correlation it is larger than the naive variance and close to the AUC's true sampling spread.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sonorad.evaluation.roc import (auc_score, clustered_auc_covariance, clustered_auc_variance,
                                    delong_test, delong_variance, roc_auc_ci, roc_curve)

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


# -- clustered ROC data (Obuchowski 1997) ---------------------------------------------------------
def _obuchowski_by_hand(y, a, b, cluster):
    """Obuchowski's (co)variances transcribed term by term from the paper (explicit loops)."""
    def psi(x, yv):
        return 1.0 if x > yv else (0.5 if x == yv else 0.0)

    ids = list(dict.fromkeys(cluster))
    pos = [i for i in range(len(y)) if y[i] == 1]
    neg = [i for i in range(len(y)) if y[i] == 0]
    M, N, I = len(pos), len(neg), len(ids)
    m = {c: sum(1 for i in pos if cluster[i] == c) for c in ids}
    n = {c: sum(1 for i in neg if cluster[i] == c) for c in ids}
    I10, I01 = sum(v > 0 for v in m.values()), sum(v > 0 for v in n.values())
    comps = []
    for s in (a, b):
        theta = sum(psi(s[i], s[k]) for i in pos for k in neg) / (M * N)
        x = {c: sum(sum(psi(s[i], s[k]) for k in neg) / N for i in pos if cluster[i] == c) - m[c] * theta
             for c in ids}
        yy = {c: sum(sum(psi(s[i], s[k]) for i in pos) / M for k in neg if cluster[k] == c) - n[c] * theta
              for c in ids}
        comps.append((theta, x, yy))

    def cov(r, t):
        (_, xr, yr), (_, xt, yt) = comps[r], comps[t]
        s10 = I10 / ((I10 - 1) * M) * sum(xr[c] * xt[c] for c in ids)
        s01 = I01 / ((I01 - 1) * N) * sum(yr[c] * yt[c] for c in ids)
        s11_rt = I / (I - 1) * sum(xr[c] * yt[c] for c in ids)
        s11_tr = I / (I - 1) * sum(xt[c] * yr[c] for c in ids)
        return s10 / M + s01 / N + (s11_rt + s11_tr) / (M * N)

    return comps[0][0], comps[1][0], cov(0, 0), cov(1, 1), cov(0, 1)


def test_clustered_variance_of_a_hand_worked_example():
    # three patients, one benign and one malignant image each. By hand: V10 = 1, 2/3, 1 and
    # V01 = 1, 2/3, 1, so A = 8/9; the centred cluster sums are 1/9, -2/9, 1/9 for both, giving
    # S10 = S01 = 3/(2*3) * 6/81 = 1/27, S11 = 3/2 * 6/81 = 1/9 and
    # var = 1/81 + 1/81 + 2/81 = 4/81 (DeLong, images independent: 2/81).
    y = [0, 1, 0, 1, 1, 0]
    s = [0.1, 0.8, 0.5, 0.4, 0.6, 0.2]
    cluster = ["p1", "p1", "p2", "p2", "p3", "p3"]
    assert clustered_auc_variance(y, s, cluster) == pytest.approx(4 / 81, rel=1e-12)
    assert delong_variance(y, s) == pytest.approx(2 / 81, rel=1e-12)
    r = roc_auc_ci(y, s, cluster=cluster)
    assert r.method == "obuchowski" and r.n_clusters == 3 and r.auc == pytest.approx(8 / 9)
    assert r.se == pytest.approx(2 / 9, rel=1e-12)
    assert r.low == pytest.approx(8 / 9 - stats.norm.ppf(0.975) * 2 / 9) and r.high == 1.0


def test_clustered_equals_the_papers_formulas_with_uneven_clusters_and_ties():
    rng = np.random.default_rng(11)
    sizes = rng.integers(1, 5, 25)                       # 1-4 images per patient
    cluster = np.repeat([f"p{i}" for i in range(25)], sizes)
    effect = np.repeat(rng.normal(size=25), sizes)
    y = (rng.random(len(cluster)) < 0.45).astype(int)   # patients with only one class, and mixed ones
    a = np.round(effect + y + rng.normal(size=len(y)), 1)
    b = np.round(0.5 * effect + 0.6 * y + rng.normal(size=len(y)), 1)
    auc_a, auc_b, var_a, var_b, cov_ab = _obuchowski_by_hand(y, a, b, list(cluster))
    aucs, cov, k = clustered_auc_covariance(y, np.vstack([a, b]), cluster)
    assert k == 25
    np.testing.assert_allclose(aucs, [auc_a, auc_b], rtol=1e-13)
    np.testing.assert_allclose(cov, [[var_a, cov_ab], [cov_ab, var_b]], rtol=1e-10)
    t = delong_test(y, a, b, cluster=cluster)
    z = (auc_a - auc_b) / math.sqrt(var_a + var_b - 2 * cov_ab)
    assert t.z == pytest.approx(z, rel=1e-10)
    assert t.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-10)
    assert "Obuchowski" in t.method
    assert roc_auc_ci(y, a, cluster=cluster).se == pytest.approx(math.sqrt(var_a), rel=1e-10)


def test_one_case_per_cluster_is_delong_exactly(asah):
    y = asah.poor_outcome.to_numpy()
    ids = [f"patient{i}" for i in range(len(y))]
    for name in ("wfns", "ndka", "s100b"):
        # the clustered formulas themselves reduce to DeLong's
        assert clustered_auc_variance(y, asah[name], ids) == pytest.approx(PROC_VAR[name], rel=1e-9)
        assert clustered_auc_variance(y, asah[name], ids) == pytest.approx(delong_variance(y, asah[name]),
                                                                           rel=1e-12)
        # and the public functions return the DeLong result itself
        assert roc_auc_ci(y, asah[name], cluster=ids) == roc_auc_ci(y, asah[name])
    for a, b, z, p, low, high in PROC_PAIRED:
        aucs, cov, _ = clustered_auc_covariance(y, np.vstack([asah[a], asah[b]]), ids)
        assert (aucs[0] - aucs[1]) / math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]) == pytest.approx(z, rel=1e-9)
        assert delong_test(y, asah[a], asah[b], cluster=ids) == delong_test(y, asah[a], asah[b])


def test_clustered_se_follows_the_true_spread_when_images_of_a_patient_are_alike():
    rng = np.random.default_rng(5)
    n_patients, per = 60, 4
    cluster = np.repeat(np.arange(n_patients), per)
    aucs, clustered, naive = [], [], []
    for _ in range(300):
        label = (rng.random(n_patients) < 0.4).astype(int)
        # a patient's images share most of their score: within-patient correlation about 0.9
        patient = rng.normal(size=n_patients) + 0.8 * label
        y = np.repeat(label, per)
        if y.min() == y.max():
            continue
        s = np.repeat(patient, per) + 0.33 * rng.normal(size=len(y))
        aucs.append(auc_score(y, s))
        clustered.append(roc_auc_ci(y, s, cluster=cluster).se)
        naive.append(roc_auc_ci(y, s).se)
    true_sd = np.std(aucs, ddof=1)
    assert np.mean(clustered) == pytest.approx(true_sd, rel=0.15)
    assert np.mean(naive) < 0.7 * true_sd
    assert np.mean(clustered) > 1.4 * np.mean(naive)


def test_clustered_input_errors_name_the_argument():
    y, s = [0, 1, 0, 1], [0.1, 0.8, 0.3, 0.4]
    with pytest.raises(ValueError, match="cluster has 3 values"):
        roc_auc_ci(y, s, cluster=["a", "a", "b"])
    with pytest.raises(ValueError, match="missing"):
        roc_auc_ci(y, s, cluster=["a", None, "b", "b"])
    with pytest.raises(ValueError, match="bootstrap"):
        roc_auc_ci(y, s, method="bootstrap", cluster=["a", "a", "b", "b"])
    with pytest.raises(ValueError, match="paired"):
        delong_test(y, s, s, y_true_b=y, cluster=["a", "a", "b", "b"])


def test_roc_curve_passes_the_clusters_to_its_auc():
    y, s = [0, 1, 0, 1, 1, 0], [0.1, 0.8, 0.5, 0.4, 0.6, 0.2]
    c = roc_curve(y, s, cluster=["p1", "p1", "p2", "p2", "p3", "p3"])
    assert c.auc.method == "obuchowski" and c.auc.se == pytest.approx(2 / 9)
