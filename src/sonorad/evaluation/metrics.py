"""The performance of a model on one labelled cohort at one cut-off, as one row.

:func:`performance_metrics` is the one definition of that row: a study run's metrics table
(:func:`sonorad.pipeline.statistics.metrics_table`) and the labelled batch of a model bundle's
predictions (``metrics.csv`` of ``sonorad predict``) both call it, so they have the same columns
(:data:`PERFORMANCE_COLUMNS`), the same confidence-interval methods and the same numbers for the same
input:

- ``n`` and ``positives``: cases and positive cases;
- ``auc`` with its DeLong confidence interval (:func:`sonorad.evaluation.roc_auc_ci`), or
  Obuchowski's clustered one when patient ids are given and a patient has several cases;
- ``threshold``: the cut-off applied unchanged (``probability >= threshold`` is positive);
- accuracy, sensitivity, specificity, PPV, NPV with Wilson intervals and F1 with a case-resampling
  bootstrap interval (:func:`sonorad.evaluation.threshold_metrics`), and the confusion-matrix
  counts ``tp, fp, tn, fn``.

A statistic the cohort cannot give is NaN rather than an error: the AUC of a cohort with one outcome
class, the specificity of a cohort without negatives, every threshold metric when there is no
cut-off.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PERFORMANCE_COLUMNS", "THRESHOLD_STATISTICS", "performance_metrics"]

#: Metrics at the cut-off, in the order their columns appear (each with ``_low`` / ``_high``).
THRESHOLD_STATISTICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")

#: The keys of :func:`performance_metrics`, in order.
PERFORMANCE_COLUMNS = (["n", "positives", "auc", "auc_low", "auc_high", "threshold"]
                       + [f"{s}{end}" for s in THRESHOLD_STATISTICS for end in ("", "_low", "_high")]
                       + ["tp", "fp", "tn", "fn"])


def performance_metrics(y_true, probability, threshold, *, level: float = 0.95, random_state=0,
                        cluster=None) -> dict:
    """Discrimination and threshold metrics of one model on one cohort, as one table row.

    Parameters
    ----------
    y_true : array-like of 0/1, shape (n,)
        Outcome of each case (1 = positive). Cases whose label or probability is NaN are left out.
    probability : array-like of float, shape (n,)
        Predicted probability of the positive class.
    threshold : float, YoudenThreshold or None
        The cut-off, fixed beforehand (e.g. on the training cohort); a fitted
        :class:`sonorad.evaluation.YoudenThreshold` is used through its ``threshold_``. ``None``:
        no threshold metrics (NaN).
    level : float
        Confidence level of every interval.
    random_state : int
        Seed of the F1 bootstrap.
    cluster : array-like, shape (n,), optional
        Patient id of every case. When a patient has several cases (images), the AUC interval uses
        Obuchowski's clustered variance (:func:`sonorad.evaluation.roc_auc_ci` with ``cluster=``);
        with one case per patient it is the DeLong interval, unchanged.

    Returns
    -------
    dict
        The keys of :data:`PERFORMANCE_COLUMNS`, in that order. Counts are ``int``; a statistic the
        cohort cannot give is NaN (the AUC without both classes, a proportion with a zero
        denominator, everything at the cut-off when ``threshold`` is ``None``).

    Examples
    --------
    >>> row = performance_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], 0.5)
    >>> row["positives"], row["auc"], row["sensitivity"], row["tp"]
    (2, 0.75, 0.5, 1)
    """
    from sonorad.evaluation.roc import roc_auc_ci
    from sonorad.evaluation.thresholds import YoudenThreshold, threshold_metrics

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(probability, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"y_true and probability must be 1-D of the same length; got shapes {y.shape} and {p.shape}.")
    keep = ~(np.isnan(y) | np.isnan(p))
    y, p = y[keep].astype(int), p[keep]
    if cluster is not None:
        cluster = np.asarray(cluster, dtype=object)
        if cluster.shape != keep.shape:
            raise ValueError(f"cluster has {cluster.size} values for {keep.size} cases; pass one patient id per case.")
        cluster = cluster[keep]
    row = dict.fromkeys(PERFORMANCE_COLUMNS, np.nan)
    row.update(n=int(len(y)), positives=int(y.sum()))
    if 0 < y.sum() < len(y):
        auc = roc_auc_ci(y, p, method="delong", level=level, cluster=cluster)
        row.update(auc=float(auc.auc), auc_low=float(auc.low), auc_high=float(auc.high))
    if isinstance(threshold, YoudenThreshold):
        threshold = threshold.threshold_
    if threshold is None or not len(y):
        return row
    tm = threshold_metrics(y, p, float(threshold), level=level, random_state=random_state, allow_one_class=True)
    row["threshold"] = tm.threshold
    m = tm.metrics
    for stat in m.index:
        row[stat] = float(m.loc[stat, "estimate"])
        row[f"{stat}_low"] = float(m.loc[stat, "low"])
        row[f"{stat}_high"] = float(m.loc[stat, "high"])
    row.update(tp=tm.tp, fp=tm.fp, tn=tm.tn, fn=tm.fn)
    return row
