"""Per-center results: every metric for each external center and pooled, and AUC heterogeneity.

TRIPOD+AI items 12d/23b ask how performance varies across centers. :func:`performance_by_center`
computes, for each center separately and for all centers pooled, the AUC with its DeLong CI,
the full ``val.prob`` set (:func:`~sonorad.evaluation.valprob.val_prob`) and, given a
training cut-off, sensitivity/specificity/PPV/NPV/accuracy with Wilson CIs.
:func:`auc_heterogeneity` tests whether the centers' AUCs are equal.

The heterogeneity test: centers are independent samples, so their AUCs are independent with
DeLong variances ``v_i``. With inverse-variance weights ``w_i = 1 / v_i`` and the fixed-effect
pooled AUC ``A = sum w_i A_i / sum w_i``, Cochran's ``Q = sum w_i (A_i - A)^2`` is chi-square with
``k - 1`` degrees of freedom under equal AUCs; ``I^2 = max(0, (Q - df) / Q)`` (Higgins &
Thompson 2002) and the DerSimonian-Laird ``tau^2`` describe the size of the spread. These are
the numbers of ``metafor::rma(yi = auc, vi = var, method = "FE")`` (and ``"DL"`` for ``tau^2``),
which ``tests/evaluation/test_centers.py`` checks on reference data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ._results import ResultMixin
from ._validate import check_labels, check_level, check_scores

__all__ = ["AucHeterogeneity", "CenterPerformance", "auc_heterogeneity", "performance_by_center"]


@dataclass(frozen=True, repr=False)
class AucHeterogeneity(ResultMixin):
    """Chi-square test of equal AUCs across independent centers (Cochran's Q) with I^2.

    Attributes
    ----------
    q : float
        Cochran's Q.
    df : int
        Centers used minus 1.
    p_value : float
        Upper-tail chi-square probability of Q.
    i2 : float
        I^2 as a fraction in [0, 1].
    tau2 : float
        DerSimonian-Laird between-center variance of the AUC.
    pooled_auc, pooled_se, low, high : float
        Inverse-variance fixed-effect pooled AUC, its SE and CI (clipped to [0, 1] as pROC's).
    centers : tuple of str
        Centers that entered the test.
    excluded : dict
        Center -> why it was left out (one class, AUC variance 0).
    level : float
    computable : bool
        False when fewer than 2 centers are usable; ``reason`` says why.
    reason : str
    method : str
    """

    q: float
    df: int
    p_value: float
    i2: float
    tau2: float
    pooled_auc: float
    pooled_se: float
    low: float
    high: float
    centers: tuple
    excluded: dict = field(default_factory=dict)
    level: float = 0.95
    computable: bool = True
    reason: str = ""
    method: str = ("Cochran's Q test of equal AUCs across independent centers (DeLong variances, "
                   "inverse-variance weights); I^2 (Higgins & Thompson); tau^2 DerSimonian-Laird")
    title = "AUC heterogeneity across centers"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "statistic": "AUC heterogeneity (Cochran's Q)", "q": self.q, "df": self.df,
            "p_value": self.p_value, "i2": self.i2, "tau2": self.tau2, "pooled_auc": self.pooled_auc,
            "pooled_low": self.low, "pooled_high": self.high, "centers": len(self.centers),
            "excluded": "; ".join(f"{k}: {v}" for k, v in self.excluded.items()),
            "computable": self.computable, "reason": self.reason, "method": self.method,
        }]).set_index("statistic")

    def __repr__(self) -> str:
        if not self.computable:
            return f"AucHeterogeneity(not computable: {self.reason})"
        return (f"AucHeterogeneity(Q={self.q:.4f}, df={self.df}, p={self.p_value:.4g}, "
                f"I2={self.i2:.1%}, centers={len(self.centers)})")


def auc_heterogeneity(auc, variance, *, centers=None, level: float = 0.95) -> AucHeterogeneity:
    """Cochran's Q test of equal AUCs across independent centers, with I^2 and tau^2.

    Parameters
    ----------
    auc : array-like, shape (k,)
        AUC of each center.
    variance : array-like, shape (k,)
        Its DeLong variance (:func:`~sonorad.evaluation.roc.delong_variance`).
    centers : sequence of str, optional
        Center names (default "1".."k").
    level : float
        Confidence level of the pooled AUC.

    Centers with a non-finite AUC or a variance that is not positive (an AUC of exactly 0 or 1
    has DeLong variance 0 and would get infinite weight) are left out and listed in
    ``excluded``. Fewer than 2 usable centers give a result with ``computable=False``.

    Examples
    --------
    >>> r = auc_heterogeneity([0.80, 0.70], [0.001, 0.001], centers=["a", "b"])
    >>> round(r.q, 4), r.df, round(r.i2, 4)
    (5.0, 1, 0.8)
    """
    level = check_level(level)
    a = np.asarray(auc, dtype=float)
    v = np.asarray(variance, dtype=float)
    if a.ndim != 1 or a.shape != v.shape:
        raise ValueError(f"auc and variance must be 1-D of equal length; got shapes {a.shape} and {v.shape}.")
    names = [str(c) for c in (centers if centers is not None else range(1, len(a) + 1))]
    if len(names) != len(a):
        raise ValueError(f"centers has {len(names)} names for {len(a)} AUCs.")
    excluded = {}
    for name, ai, vi in zip(names, a, v):
        if not np.isfinite(ai):
            excluded[name] = "AUC not computable"
        elif not (np.isfinite(vi) and vi > 0):
            excluded[name] = (f"DeLong variance {vi:g} (AUC {ai:.3f}); an inverse-variance weight "
                              "needs variance > 0")
    use = np.array([n not in excluded for n in names])
    used = tuple(n for n, u in zip(names, use) if u)
    if use.sum() < 2:
        nan = float("nan")
        why = f"{int(use.sum())} center(s) with a usable AUC; the test needs at least 2"
        return AucHeterogeneity(nan, 0, nan, nan, nan, nan, nan, nan, nan, used, excluded, level,
                                False, why)
    a, w = a[use], 1.0 / v[use]
    pooled = float(np.sum(w * a) / np.sum(w))
    se = float(np.sqrt(1.0 / np.sum(w)))
    q = float(np.sum(w * (a - pooled) ** 2))
    df = len(a) - 1
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    tau2 = max(0.0, (q - df) / (np.sum(w) - np.sum(w ** 2) / np.sum(w)))
    z = stats.norm.ppf(1 - (1 - level) / 2)
    return AucHeterogeneity(q, df, float(stats.chi2.sf(q, df)), float(i2), float(tau2), pooled, se,
                            max(0.0, pooled - z * se), min(1.0, pooled + z * se), used, excluded, level)


@dataclass(frozen=True, repr=False)
class CenterPerformance(ResultMixin):
    """Every metric per center and pooled, with the AUC heterogeneity test.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per center, then the pooled row; columns described in
        :func:`performance_by_center`.
    heterogeneity : AucHeterogeneity
    statistics : dict
        Center -> :class:`~sonorad.evaluation.valprob.ValProbResult` (for plots), where
        computable.
    name : str
        Model label.
    """

    table: pd.DataFrame
    heterogeneity: AucHeterogeneity
    statistics: dict
    name: str = "model"
    title = "Performance by center"

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()


_THRESHOLD_METRICS = ("sensitivity", "specificity", "ppv", "npv", "accuracy")


def _center_row(y: np.ndarray, p: np.ndarray, *, threshold, level: float, g: int, name: str, cluster=None):
    """One table row and the ValProbResult (None when both classes are not present)."""
    from .valprob import val_prob
    from .roc import roc_auc_ci
    from .thresholds import threshold_metrics

    row = {"n": len(y), "n_events": int(y.sum()), "brier": float(np.mean((p - y) ** 2))}
    if y.min() == y.max():
        row["not_computable"] = (f"only one outcome class (all {int(y[0])}): AUC, calibration "
                                 "and threshold metrics need both")
        return row, None, np.nan
    auc = roc_auc_ci(y, p, level=level, cluster=cluster)
    row.update(auc=auc.auc, auc_low=auc.low, auc_high=auc.high, auc_se=auc.se)
    vp = val_prob(y, p, g=g, level=level, name=name)
    row.update({k: v for k, v in vp.to_row().items() if k not in row})
    if threshold is not None:
        m = threshold_metrics(y, p, threshold, level=level).metrics
        for metric in _THRESHOLD_METRICS:
            row.update({metric: m.loc[metric, "estimate"], f"{metric}_low": m.loc[metric, "low"],
                        f"{metric}_high": m.loc[metric, "high"]})
    return row, vp, auc.se ** 2


def performance_by_center(y_true, proba, center, *, threshold=None, level: float = 0.95,
                          g: int = 10, name: str = "model", pooled: str = "pooled",
                          cluster=None) -> CenterPerformance:
    """AUC, the val.prob set and threshold metrics for each center and for all centers pooled.

    Parameters
    ----------
    y_true : array-like of 0/1
    proba : array-like in [0, 1]
        Predicted probabilities of one model.
    center : array-like
        Center (site, scanner) of every case; rows of one center form one independent sample.
    threshold : float or YoudenThreshold, optional
        Cut-off fitted on the training cohort; when given, sensitivity, specificity, PPV, NPV and
        accuracy (Wilson CIs) are added.
    level : float
        Confidence level.
    g : int
        Hosmer-Lemeshow groups.
    name : str
        Model label.
    pooled : str
        Label of the row with every center together.
    cluster : array-like, optional
        Patient id of every case. Where a patient has several cases, the AUC interval (and the
        variance that weights the heterogeneity test) is Obuchowski's clustered one; with one
        case per patient it is DeLong's, unchanged.

    Returns
    -------
    CenterPerformance
        ``table`` columns: center, n, n_events, brier, auc, auc_low, auc_high, auc_se (DeLong, or
        Obuchowski's with ``cluster``),
        the keys of :meth:`ValProbResult.to_row` (citl, intercept, slope with CIs, emax, e90, eavg,
        spiegelhalter_z/p, dxy, r2, hl_chi2/df/p/groups/grouping, ...), the threshold metrics
        with ``_low``/``_high`` when ``threshold`` is given, and ``not_computable`` (what could
        not be computed and why; "" when everything was). A center with one outcome class keeps
        its n and Brier score and is left out of the heterogeneity test.
    """
    y = check_labels(y_true)
    p = check_scores(proba, len(y), name="proba", probability=True)
    level = check_level(level)
    c = np.asarray(center, dtype=object)
    if c.shape != y.shape:
        raise ValueError(f"center has {c.size} values but y_true has {len(y)}; pass one center per case.")
    if pd.isna(c).any():
        raise ValueError(f"center has {int(pd.isna(c).sum())} missing value(s); every case needs its center.")
    c = c.astype(str)
    if cluster is not None:
        cluster = np.asarray(cluster, dtype=object)
        if cluster.shape != y.shape:
            raise ValueError(f"cluster has {cluster.size} values but y_true has {len(y)}; "
                             "pass one patient id per case.")
    if pooled in set(c):
        raise ValueError(f"a center is named {pooled!r}, the label of the pooled row; pass another pooled=.")
    rows, statistics, aucs, variances = [], {}, [], []
    centers = list(dict.fromkeys(c))
    for k in centers + [pooled]:
        m = np.ones(len(y), bool) if k == pooled else c == k
        row, vp, var = _center_row(y[m], p[m], threshold=threshold, level=level, g=g, name=name,
                                   cluster=None if cluster is None else cluster[m])
        rows.append({"center": k, **row})
        if vp is not None:
            statistics[k] = vp
        if k != pooled:
            aucs.append(row.get("auc", np.nan))
            variances.append(var)
    table = pd.DataFrame(rows)
    table["not_computable"] = table["not_computable"].fillna("") if "not_computable" in table else ""
    het = auc_heterogeneity(aucs, variances, centers=centers, level=level)
    return CenterPerformance(table, het, statistics, name)
