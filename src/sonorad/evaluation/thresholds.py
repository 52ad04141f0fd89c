"""Cut-offs chosen on the training cohort and threshold metrics with confidence intervals.

A cut-off is learned once, on training predictions, by :class:`YoudenThreshold` (an estimator in
the scikit-learn sense: ``fit`` learns ``threshold_``) and then applied unchanged to the
validation and test cohorts with :func:`threshold_metrics`. Choosing the cut-off again on the test
cohort would leak test labels into the reported sensitivity and specificity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator

from ._results import ResultMixin
from ._validate import check_choice, check_labels, check_level, check_scores

__all__ = ["YoudenThreshold", "ThresholdMetrics", "threshold_metrics", "wilson_ci"]


def wilson_ci(successes, total, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Examples
    --------
    >>> [round(v, 4) for v in wilson_ci(8, 10)]
    [0.4902, 0.9433]
    """
    level = check_level(level)
    k, n = float(successes), float(total)
    if n <= 0:
        return (float("nan"), float("nan"))
    if not 0 <= k <= n:
        raise ValueError(f"successes must be between 0 and total={total}; got {successes}.")
    z = stats.norm.ppf(1 - (1 - level) / 2)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


class YoudenThreshold(BaseEstimator):
    """Cut-off on a score learned from training predictions.

    Parameters
    ----------
    method : {"youden", "sensitivity", "specificity", "fixed"}
        ``"youden"`` maximises sensitivity + specificity - 1 over the observed scores;
        ``"sensitivity"``/``"specificity"`` take the highest/lowest cut-off that reaches
        ``target`` on the training cohort; ``"fixed"`` uses ``target`` itself as the cut-off.
    target : float, optional
        Target sensitivity or specificity in (0, 1], or the fixed cut-off.

    Attributes
    ----------
    threshold_ : float
        The cut-off; a case is positive when ``score >= threshold_``. Following pROC, candidate
        cut-offs are midpoints between consecutive distinct training scores.
    sensitivity_, specificity_ : float
        Training-cohort values at ``threshold_``.

    Examples
    --------
    >>> t = YoudenThreshold().fit([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> t.threshold_
    0.575
    """

    def __init__(self, method: str = "youden", target: float | None = None):
        self.method = method
        self.target = target

    def fit(self, y_true, score):
        """Learn ``threshold_`` from training labels and scores."""
        check_choice(self.method, ("youden", "sensitivity", "specificity", "fixed"), "method")
        y = check_labels(y_true)
        s = check_scores(score, len(y))
        if self.method != "youden" and self.target is None:
            raise ValueError(f"method={self.method!r} needs target= (a sensitivity, specificity "
                             "or cut-off value).")
        if self.method == "fixed":
            thr = float(self.target)
        else:
            cands = self._candidates(s)
            sens = np.array([(s[y == 1] >= c).mean() for c in cands])
            spec = np.array([(s[y == 0] < c).mean() for c in cands])
            if self.method == "youden":
                thr = float(cands[int(np.argmax(sens + spec - 1))])
            elif self.method == "sensitivity":
                self._check_target()
                ok = np.flatnonzero(sens >= self.target)
                thr = float(cands[ok.max()])
            else:
                self._check_target()
                ok = np.flatnonzero(spec >= self.target)
                thr = float(cands[ok.min()])
        self.threshold_ = thr
        self.sensitivity_ = float((s[y == 1] >= thr).mean())
        self.specificity_ = float((s[y == 0] < thr).mean())
        return self

    def _check_target(self):
        if not 0 < float(self.target) <= 1:
            raise ValueError(f"target must be a proportion in (0, 1]; got {self.target}.")

    @staticmethod
    def _candidates(s: np.ndarray) -> np.ndarray:
        u = np.unique(s)
        mids = (u[:-1] + u[1:]) / 2
        return np.concatenate([[u[0] - 1.0], mids, [u[-1] + 1.0]])

    def predict(self, score) -> np.ndarray:
        """0/1 calls with the learned cut-off (``score >= threshold_``)."""
        if not hasattr(self, "threshold_"):
            raise ValueError("YoudenThreshold is not fitted; call fit(y_train, score_train) first.")
        return (check_scores(score) >= self.threshold_).astype(int)


@dataclass(frozen=True, repr=False)
class ThresholdMetrics(ResultMixin):
    """Metrics of 0/1 calls at a fixed cut-off, with CIs.

    Attributes
    ----------
    threshold : float
        Cut-off used (``score >= threshold`` is positive).
    tp, fp, tn, fn : int
        Confusion-matrix counts.
    metrics : pandas.DataFrame
        Index: accuracy, sensitivity, specificity, ppv, npv, f1; columns estimate, low, high,
        numerator, denominator.
    level : float
        Confidence level.
    method : str
        ``"wilson"`` or ``"bootstrap"`` (F1 always uses the bootstrap when ``"wilson"`` is
        chosen, since it is not a proportion).
    """

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    metrics: pd.DataFrame
    level: float
    method: str
    title = "Threshold metrics"

    def to_frame(self) -> pd.DataFrame:
        return self.metrics.copy()

    def confusion_matrix(self) -> pd.DataFrame:
        """2 x 2 table, rows = truth, columns = call."""
        return pd.DataFrame([[self.tn, self.fp], [self.fn, self.tp]],
                            index=pd.Index(["negative", "positive"], name="truth"),
                            columns=pd.Index(["called negative", "called positive"], name="call"))

    def __repr__(self) -> str:
        m = self.metrics["estimate"]
        return (f"ThresholdMetrics(threshold={self.threshold:.4g}, sensitivity={m['sensitivity']:.3f}, "
                f"specificity={m['specificity']:.3f}, accuracy={m['accuracy']:.3f})")


def _counts(y, call):
    tp = int(((call == 1) & (y == 1)).sum())
    fp = int(((call == 1) & (y == 0)).sum())
    tn = int(((call == 0) & (y == 0)).sum())
    fn = int(((call == 0) & (y == 1)).sum())
    return tp, fp, tn, fn


def _div(a, b) -> float:
    return a / b if b else float("nan")


def _rates(tp, fp, tn, fn) -> dict:
    """(numerator, denominator) of every metric."""
    return {
        "accuracy": (tp + tn, tp + fp + tn + fn),
        "sensitivity": (tp, tp + fn),
        "specificity": (tn, tn + fp),
        "ppv": (tp, tp + fp),
        "npv": (tn, tn + fn),
        "f1": (2 * tp, 2 * tp + fp + fn),
    }


def _one_class_labels(y_true) -> np.ndarray:
    """``y_true`` as 0/1 ints like :func:`check_labels`, where one class alone is allowed."""
    y = np.asarray(y_true)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array of 0/1 labels; got shape {y.shape}.")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"y_true must contain only 0 and 1; found {sorted(values)}.")
    return y.astype(int)


def threshold_metrics(y_true, score, threshold, *, level: float = 0.95, ci: str = "wilson",
                      n_boot: int = 1000, random_state=0, allow_one_class: bool = False) -> ThresholdMetrics:
    """Accuracy, sensitivity, specificity, PPV, NPV and F1 at a given cut-off, with CIs.

    Parameters
    ----------
    y_true : array-like of 0/1
        Labels.
    score : array-like
        Scores on the same scale as the cut-off.
    threshold : float or YoudenThreshold
        The cut-off, or a fitted :class:`YoudenThreshold` (its ``threshold_`` is used unchanged).
    level : float
        Confidence level.
    ci : {"wilson", "bootstrap"}
        Wilson score intervals for the proportions (F1 then gets a bootstrap interval), or a
        case-resampling percentile bootstrap for all metrics.
    n_boot : int
        Bootstrap replicates.
    random_state : int
        Seed of the bootstrap.
    allow_one_class : bool
        Accept labels of one class only (a small labelled batch): the metrics whose denominator
        is then zero (specificity without negatives, ...) are NaN. By default one class raises.

    Returns
    -------
    ThresholdMetrics
    """
    y = _one_class_labels(y_true) if allow_one_class else check_labels(y_true)
    s = check_scores(score, len(y))
    level = check_level(level)
    check_choice(ci, ("wilson", "bootstrap"), "ci")
    if isinstance(threshold, YoudenThreshold):
        if not hasattr(threshold, "threshold_"):
            raise ValueError("threshold is an unfitted YoudenThreshold; fit it on the training cohort.")
        threshold = threshold.threshold_
    threshold = float(threshold)
    call = (s >= threshold).astype(int)
    tp, fp, tn, fn = _counts(y, call)
    parts = _rates(tp, fp, tn, fn)
    # F1 is not a binomial proportion, so it always gets a bootstrap interval
    rng = np.random.default_rng(random_state)
    n = len(y)
    rows = []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, n, n)
        rows.append({k: _div(a, b) for k, (a, b) in _rates(*_counts(y[idx], call[idx])).items()})
    boot = pd.DataFrame(rows)
    alpha = (1 - level) / 2
    records = []
    for name, (num, den) in parts.items():
        est = _div(num, den)
        if ci == "wilson" and name != "f1":
            low, high = wilson_ci(num, den, level) if den else (float("nan"), float("nan"))
        else:
            col = boot[name].dropna()
            low, high = (col.quantile(alpha), col.quantile(1 - alpha)) if len(col) else (np.nan, np.nan)
        records.append({"metric": name, "estimate": est, "low": float(low), "high": float(high),
                        "numerator": num, "denominator": den})
    table = pd.DataFrame(records).set_index("metric")
    return ThresholdMetrics(threshold, tp, fp, tn, fn, table, level, ci)
