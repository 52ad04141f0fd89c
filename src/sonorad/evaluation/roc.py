"""ROC analysis: AUC with DeLong or stratified-bootstrap CIs, and DeLong tests between AUCs.

With several units (images, lesions) per cluster (patient), ``cluster=`` switches the variance to
Obuchowski's (1997) clustered estimator, which reduces to DeLong's with one unit per cluster; see
:func:`clustered_auc_covariance` for the formulas.

The AUC is the Mann-Whitney probability P(score of a positive > score of a negative) with ties
counted 1/2, i.e. pROC's empirical AUC with ``direction = "<"`` (higher score = more likely
positive). Variances and covariances use DeLong's structural components computed with the
midrank algorithm of Sun & Xu (2014), which is what pROC does, so the numbers match pROC's
``var()``, ``ci.auc()`` and ``roc.test()`` (see ``tests/evaluation/test_roc.py``).

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Biometrics 44:837-845.
Sun X, Xu W (2014). Fast implementation of DeLong's algorithm. IEEE Signal Proc Lett 21:1389-1393.
Robin X et al. (2011). pROC. BMC Bioinformatics 12:77.
Obuchowski NA (1997). Nonparametric analysis of clustered ROC curve data. Biometrics 53:567-578.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._results import ResultMixin
from ._validate import check_choice, check_labels, check_level, check_scores

__all__ = [
    "AucResult", "DeLongTestResult", "RocCurve",
    "auc_score", "delong_variance", "clustered_auc_covariance", "clustered_auc_variance", "roc_auc_ci",
    "delong_test", "roc_curve",
]


@dataclass(frozen=True, repr=False)
class AucResult(ResultMixin):
    """AUC with its confidence interval.

    Attributes
    ----------
    auc, low, high : float
        Estimate and CI bounds.
    level : float
        Confidence level of the interval.
    method : str
        ``"delong"``, ``"bootstrap"`` or ``"obuchowski"`` (clustered: several units per patient).
    se : float
        Standard error (DeLong or Obuchowski) or bootstrap standard deviation.
    n_pos, n_neg : int
        Number of positive and negative units (cases, images).
    n_boot : int or None
        Bootstrap replicates, when ``method="bootstrap"``.
    n_clusters : int or None
        Number of clusters (patients), when ``method="obuchowski"``.
    """

    auc: float
    low: float
    high: float
    level: float
    method: str
    se: float
    n_pos: int
    n_neg: int
    n_boot: int | None = None
    n_clusters: int | None = None
    title = "AUC"

    def to_frame(self) -> pd.DataFrame:
        row = {"statistic": "AUC", "estimate": self.auc, "low": self.low, "high": self.high,
               "level": self.level, "se": self.se, "method": self.method,
               "n_pos": self.n_pos, "n_neg": self.n_neg}
        if self.n_clusters is not None:
            row["n_clusters"] = self.n_clusters
        return pd.DataFrame([row]).set_index("statistic")

    @property
    def estimate(self) -> float:
        """The AUC (alias shared with the other result classes)."""
        return self.auc

    def __repr__(self) -> str:
        return (f"AucResult(auc={self.auc:.4f}, {self.level:.0%} CI {self.low:.4f}-{self.high:.4f}, "
                f"method={self.method!r})")


@dataclass(frozen=True, repr=False)
class DeLongTestResult(ResultMixin):
    """DeLong test of the difference between two AUCs.

    Attributes
    ----------
    auc_a, auc_b : float
        The two AUCs.
    difference : float
        ``auc_a - auc_b``.
    low, high : float
        CI of the difference (normal approximation with the DeLong variance).
    z : float
        Test statistic (pROC prints it as ``Z`` when paired and ``D`` when unpaired).
    p_value : float
        p-value for ``alternative``: standard normal when paired, Student t with ``df``
        (Welch-Satterthwaite) degrees of freedom when unpaired, as pROC.
    paired : bool
        True for two scores on the same cases (correlated ROC curves).
    alternative : str
        ``"two-sided"``, ``"greater"`` (auc_a > auc_b) or ``"less"``.
    level : float
        Confidence level of the CI of the difference.
    method : str
        Human-readable method name.
    df : float or None
        Degrees of freedom of the unpaired test; None when paired.
    """

    auc_a: float
    auc_b: float
    difference: float
    low: float
    high: float
    z: float
    p_value: float
    paired: bool
    alternative: str
    level: float
    method: str
    df: float | None = None
    title = "DeLong test"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "statistic": "AUC difference (a - b)", "auc_a": self.auc_a, "auc_b": self.auc_b,
            "estimate": self.difference, "low": self.low, "high": self.high, "z": self.z,
            "p_value": self.p_value, "df": self.df, "paired": self.paired,
            "alternative": self.alternative, "method": self.method,
        }]).set_index("statistic")

    @property
    def estimate(self) -> float:
        """The AUC difference ``auc_a - auc_b``."""
        return self.difference

    def __repr__(self) -> str:
        return (f"DeLongTestResult(auc_a={self.auc_a:.4f}, auc_b={self.auc_b:.4f}, "
                f"z={self.z:.4f}, p={self.p_value:.4g}, paired={self.paired})")


@dataclass(frozen=True, repr=False)
class RocCurve(ResultMixin):
    """Empirical ROC curve points (for plotting), with its AUC result.

    Attributes
    ----------
    fpr, tpr, thresholds : numpy.ndarray
        False/true positive rates at each threshold (case positive when ``score >= threshold``);
        the first point is (0, 0) at ``threshold = +inf``.
    auc : AucResult
        AUC and CI of the same scores.
    name : str
        Label for legends.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: AucResult
    name: str = "model"
    title = "ROC curve"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"threshold": self.thresholds, "fpr": self.fpr, "tpr": self.tpr,
                             "specificity": 1 - self.fpr, "sensitivity": self.tpr})


def _split(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return score[y == 1], score[y == 0]


def _structural_components(pos: np.ndarray, neg: np.ndarray):
    """AUCs and DeLong placement values for k score sets (rows) via midranks (Sun & Xu 2014).

    ``pos`` has shape (k, m), ``neg`` (k, n). Returns ``auc`` (k,), ``v10`` (k, m), ``v01`` (k, n).
    """
    m, n = pos.shape[1], neg.shape[1]
    tx = stats.rankdata(pos, axis=1)
    ty = stats.rankdata(neg, axis=1)
    tz = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return auc, v10, v01


def _delong_cov(pos: np.ndarray, neg: np.ndarray):
    auc, v10, v01 = _structural_components(pos, neg)
    m, n = pos.shape[1], neg.shape[1]
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(auc), len(auc)))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((len(auc), len(auc)))
    return auc, s10 / m + s01 / n


def auc_score(y_true, score) -> float:
    """Empirical AUC (Mann-Whitney, ties count 1/2); higher score = more likely positive.

    Examples
    --------
    >>> auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y = check_labels(y_true)
    s = check_scores(score, len(y))
    pos, neg = _split(y, s)
    return float(_structural_components(pos[None, :], neg[None, :])[0][0])


def delong_variance(y_true, score) -> float:
    """DeLong variance of the empirical AUC (pROC's ``var(roc)``)."""
    y = check_labels(y_true)
    s = check_scores(score, len(y))
    pos, neg = _split(y, s)
    return float(_delong_cov(pos[None, :], neg[None, :])[1][0, 0])


def check_clusters(cluster, n: int, *, name: str = "cluster") -> np.ndarray | None:
    """Integer cluster codes of ``n`` units, or None when every unit is its own cluster.

    One unit per cluster is the ordinary (DeLong) case: returning None there keeps those results
    bit-for-bit those of the unclustered functions.
    """
    if cluster is None:
        return None
    c = pd.Series(np.asarray(cluster, dtype=object).ravel())
    if len(c) != n:
        raise ValueError(f"length mismatch: {name} has {len(c)} values but y_true has {n}; pass one "
                         "cluster id (e.g. patient_id) per case, in the same order.")
    if c.isna().any():
        raise ValueError(f"{name} has {int(c.isna().sum())} missing value(s); every case needs its "
                         "cluster (patient) id.")
    codes, uniques = pd.factorize(c.astype(str))
    return None if len(uniques) == n else codes


def _clustered_cov(y: np.ndarray, scores: np.ndarray, codes: np.ndarray):
    """Obuchowski's AUCs (k,) and covariance matrix (k, k) of ``scores`` (k, n) with cluster ``codes``."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    auc, v10, v01 = _structural_components(pos, neg)
    m_total, n_total = pos.shape[1], neg.shape[1]
    n_clusters = int(codes.max()) + 1
    cp, cn = codes[y == 1], codes[y == 0]
    m_i = np.bincount(cp, minlength=n_clusters)
    n_i = np.bincount(cn, minlength=n_clusters)
    # per-cluster sums of the structural components, centred: V10(X_i.) - m_i A, V01(Y_i.) - n_i A
    a = np.stack([np.bincount(cp, weights=row, minlength=n_clusters) for row in v10]) - np.outer(auc, m_i)
    b = np.stack([np.bincount(cn, weights=row, minlength=n_clusters) for row in v01]) - np.outer(auc, n_i)
    i10, i01, i_all = int((m_i > 0).sum()), int((n_i > 0).sum()), n_clusters
    k = len(auc)
    s10 = i10 / ((i10 - 1) * m_total) * (a @ a.T) if i10 > 1 else np.zeros((k, k))
    s01 = i01 / ((i01 - 1) * n_total) * (b @ b.T) if i01 > 1 else np.zeros((k, k))
    s11 = i_all / (i_all - 1) * (a @ b.T) if i_all > 1 else np.zeros((k, k))
    cov = s10 / m_total + s01 / n_total + (s11 + s11.T) / (m_total * n_total)
    return auc, cov, n_clusters


def clustered_auc_covariance(y_true, scores, cluster):
    """Obuchowski's (1997) clustered AUC(s) and their covariance matrix.

    Units (images, lesions) are nested in clusters (patients); units of one cluster may be
    correlated, clusters are independent. With ``I`` clusters, cluster ``i`` holding ``m_i``
    positive units ``X_ij`` and ``n_i`` negative units ``Y_ik`` (``M = sum m_i``, ``N = sum n_i``;
    ``I10`` / ``I01`` clusters with at least one positive / negative unit) and
    ``psi(x, y) = 1, 1/2, 0`` for ``x > y, x = y, x < y``:

    - ``A = (1 / MN) sum_ij sum_i'k psi(X_ij, Y_i'k)`` (the ordinary empirical AUC);
    - ``V10(X_ij) = (1 / N) sum_i'k psi(X_ij, Y_i'k)``, ``V01(Y_ik) = (1 / M) sum_i'j psi(X_i'j, Y_ik)``,
      summed per cluster: ``V10(X_i.) = sum_j V10(X_ij)``, ``V01(Y_i.) = sum_k V01(Y_ik)``;
    - ``S10 = I10 / ((I10 - 1) M) sum_i (V10(X_i.) - m_i A)^2``,
      ``S01 = I01 / ((I01 - 1) N) sum_i (V01(Y_i.) - n_i A)^2``,
      ``S11 = I / (I - 1) sum_i (V10(X_i.) - m_i A)(V01(Y_i.) - n_i A)``;
    - ``var(A) = S10 / M + S01 / N + 2 S11 / (MN)``.

    For two scores ``r, s`` on the same units the cross-products give
    ``cov(A_r, A_s) = S10^rs / M + S01^rs / N + (S11^rs + S11^sr) / (MN)`` (Obuchowski's section 3),
    the covariance of the clustered paired comparison. With one unit per cluster ``S11 = 0`` and
    ``S10`` / ``S01`` are the sample variances of the placement values: DeLong's estimator.
    A term whose cluster count is 1 is 0, as DeLong's with a single positive or negative.

    Parameters
    ----------
    y_true : array-like of 0/1, shape (n,)
    scores : array-like, shape (n,) or (k, n)
        One score, or k scores of the same units (rows); higher = more likely positive.
    cluster : array-like, shape (n,)
        Cluster (patient) id of every unit.

    Returns
    -------
    auc : numpy.ndarray, shape (k,)
    cov : numpy.ndarray, shape (k, k)
    n_clusters : int
    """
    y = check_labels(y_true)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    for row in s:
        check_scores(row, len(y), name="scores")
    if cluster is None:
        raise ValueError("cluster is missing; pass one cluster (patient) id per case.")
    check_clusters(cluster, len(y))
    codes = pd.factorize(pd.Series(np.asarray(cluster, dtype=object).ravel()).astype(str))[0]
    return _clustered_cov(y, s, codes)


def clustered_auc_variance(y_true, score, cluster) -> float:
    """Obuchowski's clustered variance of the empirical AUC (see :func:`clustered_auc_covariance`).

    Examples
    --------
    Three patients, each with one benign and one malignant image (AUC 8/9; DeLong's variance,
    which treats the six images as independent, is 2/81):

    >>> v = clustered_auc_variance([0, 1, 0, 1, 1, 0], [0.1, 0.8, 0.5, 0.4, 0.6, 0.2],
    ...                            ["p1", "p1", "p2", "p2", "p3", "p3"])
    >>> round(v * 81, 10)
    4.0
    """
    return float(clustered_auc_covariance(y_true, score, cluster)[1][0, 0])


def _z_crit(level: float) -> float:
    return float(stats.norm.ppf(1 - (1 - level) / 2))


def roc_auc_ci(y_true, score, *, method: str = "delong", level: float = 0.95,
               n_boot: int = 2000, random_state=0, cluster=None) -> AucResult:
    """AUC with a DeLong or stratified-bootstrap confidence interval.

    Parameters
    ----------
    y_true : array-like of 0/1, shape (n,)
        Labels (1 = positive).
    score : array-like, shape (n,)
        Any score where higher means more likely positive (probability, Rad-score, ...).
    method : {"delong", "bootstrap"}
        ``"delong"``: AUC +/- z * sqrt(DeLong variance), clipped to [0, 1] (pROC ``ci.auc``
        default). ``"bootstrap"``: percentile interval over ``n_boot`` stratified resamples
        (positives and negatives resampled separately, as pROC's ``boot.stratified=TRUE``).
    level : float
        Confidence level.
    n_boot : int
        Bootstrap replicates (bootstrap only).
    random_state : int or numpy.random.Generator
        Seed of the bootstrap.
    cluster : array-like, shape (n,), optional
        Cluster (patient) id of every case. When some cluster holds several cases, the DeLong
        interval uses Obuchowski's clustered variance instead (``method="obuchowski"``, see
        :func:`clustered_auc_covariance`); with one case per cluster the result is the DeLong one,
        unchanged. Not available with ``method="bootstrap"``.

    Returns
    -------
    AucResult

    Examples
    --------
    >>> r = roc_auc_ci([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    >>> round(r.auc, 4)
    0.8889
    """
    y = check_labels(y_true)
    s = check_scores(score, len(y))
    level = check_level(level)
    check_choice(method, ("delong", "bootstrap"), "method")
    codes = check_clusters(cluster, len(y))
    pos, neg = _split(y, s)
    if codes is not None:
        if method != "delong":
            raise ValueError("cluster= works with method='delong' (Obuchowski's clustered variance); "
                             "the bootstrap resamples cases, not patients.")
        auc, cov, n_clusters = _clustered_cov(y, s[None, :], codes)
        auc, se = float(auc[0]), float(np.sqrt(max(cov[0, 0], 0.0)))
        half = _z_crit(level) * se
        return AucResult(auc, max(0.0, auc - half), min(1.0, auc + half), level, "obuchowski", se,
                         len(pos), len(neg), n_clusters=n_clusters)
    auc, cov = _delong_cov(pos[None, :], neg[None, :])
    auc = float(auc[0])
    if method == "delong":
        se = float(np.sqrt(cov[0, 0]))
        half = _z_crit(level) * se
        return AucResult(auc, max(0.0, auc - half), min(1.0, auc + half), level, "delong", se,
                         len(pos), len(neg))
    if int(n_boot) < 10:
        raise ValueError(f"n_boot must be at least 10 for a bootstrap CI; got {n_boot}.")
    boots = _stratified_bootstrap_aucs(pos[None, :], neg[None, :], int(n_boot), random_state)[:, 0]
    alpha = (1 - level) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    return AucResult(auc, float(low), float(high), level, "bootstrap", float(boots.std(ddof=1)),
                     len(pos), len(neg), int(n_boot))


def _stratified_bootstrap_aucs(pos, neg, n_boot, random_state) -> np.ndarray:
    """AUCs of (k) paired score sets on ``n_boot`` stratified resamples; shape (n_boot, k)."""
    rng = np.random.default_rng(random_state)
    m, n = pos.shape[1], neg.shape[1]
    out = np.empty((n_boot, pos.shape[0]))
    for b in range(n_boot):
        ip = rng.integers(0, m, m)
        ineg = rng.integers(0, n, n)
        out[b] = _structural_components(pos[:, ip], neg[:, ineg])[0]
    return out


def _p_value(z: float, alternative: str, dist=stats.norm) -> float:
    if alternative == "two-sided":
        return float(2 * dist.sf(abs(z)))
    if alternative == "greater":
        return float(dist.sf(z))
    return float(dist.cdf(z))


def delong_test(y_true, score_a, score_b=None, *, y_true_b=None, level: float = 0.95,
                alternative: str = "two-sided", cluster=None) -> DeLongTestResult:
    """DeLong test of AUC(a) versus AUC(b), paired (same cases) or unpaired (two cohorts).

    Parameters
    ----------
    y_true : array-like of 0/1
        Labels of the cases scored by ``score_a`` (and by ``score_b`` when paired).
    score_a, score_b : array-like
        Scores of model a and model b; higher = more likely positive.
    y_true_b : array-like of 0/1, optional
        Labels of the cohort scored by ``score_b``. When given, the test is unpaired
        (independent cohorts: the covariance term is dropped; pROC's ``paired = FALSE``).
    level : float
        Confidence level of the CI of the AUC difference.
    alternative : {"two-sided", "greater", "less"}
        ``"greater"`` tests AUC(a) > AUC(b).
    cluster : array-like, optional
        Cluster (patient) id of every case (paired test only). When some cluster holds several
        cases, variances and covariance are Obuchowski's clustered ones
        (:func:`clustered_auc_covariance`), the clustered analogue of DeLong's paired test; with
        one case per cluster the test is DeLong's, unchanged.

    Returns
    -------
    DeLongTestResult
        ``z = (auc_a - auc_b) / sqrt(var_a + var_b - 2 cov_ab)`` (cov = 0 when unpaired). The
        paired p-value is normal; the unpaired one is Student t with Welch-Satterthwaite
        degrees of freedom (pROC ``roc.test(paired = FALSE)``).

    Notes
    -----
    Two identical score vectors give ``z = 0`` and ``p = 1`` (as pROC).
    """
    level = check_level(level)
    check_choice(alternative, ("two-sided", "greater", "less"), "alternative")
    if score_b is None:
        raise ValueError("score_b is missing; pass the second model's scores.")
    y = check_labels(y_true)
    a = check_scores(score_a, len(y), name="score_a")
    codes = check_clusters(cluster, len(y))
    if codes is not None and y_true_b is not None:
        raise ValueError("cluster= applies to the paired test (two scores of the same cases); "
                         "drop y_true_b or cluster.")
    if y_true_b is None:
        b = check_scores(score_b, len(y), name="score_b")
        if codes is None:
            aucs, cov = _delong_cov(np.vstack([a[y == 1], b[y == 1]]), np.vstack([a[y == 0], b[y == 0]]))
            method = "DeLong's test for two correlated ROC curves"
        else:
            aucs, cov, _ = _clustered_cov(y, np.vstack([a, b]), codes)
            method = "Obuchowski's test for two correlated ROC curves of clustered data"
        var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
        df = None
        paired = True
    else:
        yb = check_labels(y_true_b, name="y_true_b")
        b = check_scores(score_b, len(yb), name="score_b")
        auc_a, cov_a = _delong_cov(a[y == 1][None, :], a[y == 0][None, :])
        auc_b, cov_b = _delong_cov(b[yb == 1][None, :], b[yb == 0][None, :])
        aucs = np.array([auc_a[0], auc_b[0]])
        var = cov_a[0, 0] + cov_b[0, 0]
        # Welch-Satterthwaite degrees of freedom, as pROC's delong.unpaired.test
        df = var ** 2 / (cov_a[0, 0] ** 2 / (len(a) - 1) + cov_b[0, 0] ** 2 / (len(b) - 1))
        paired = False
        method = "DeLong's test for two ROC curves (unpaired)"
    diff = float(aucs[0] - aucs[1])
    sd = float(np.sqrt(max(var, 0.0)))
    if sd == 0.0:
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    else:
        z = diff / sd
    dist = stats.norm if df is None else stats.t(df)
    p = 1.0 if (sd == 0.0 and diff == 0) else _p_value(z, alternative, dist)
    half = float(dist.ppf(1 - (1 - level) / 2)) * sd
    return DeLongTestResult(float(aucs[0]), float(aucs[1]), diff, diff - half, diff + half,
                            float(z), p, paired, alternative, level, method,
                            None if df is None else float(df))


def roc_curve(y_true, score, *, name: str = "model", level: float = 0.95, cluster=None) -> RocCurve:
    """Empirical ROC curve and DeLong AUC CI of one score, ready for :func:`plots.plot_roc`.

    ``cluster`` (patient id per case) makes the AUC CI Obuchowski's where a patient has several
    cases, as in :func:`roc_auc_ci`.
    """
    from sklearn.metrics import roc_curve as _sk_roc_curve

    y = check_labels(y_true)
    s = check_scores(score, len(y))
    fpr, tpr, thr = _sk_roc_curve(y, s, drop_intermediate=False)
    return RocCurve(fpr, tpr, thr, roc_auc_ci(y, s, level=level, cluster=cluster), name)
