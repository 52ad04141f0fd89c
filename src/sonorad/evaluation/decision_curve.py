"""Decision curve analysis: net benefit of models against treat-all and treat-none.

Net benefit at threshold probability ``pt`` (Vickers & Elkin 2006)::

    NB(pt) = TP/n - FP/n * pt / (1 - pt)

where a case is treated when its predicted risk is ``>= pt`` (the convention of R's ``dcurves``).
Treat-all: ``prevalence - (1 - prevalence) * pt / (1 - pt)``; treat-none: 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._results import ResultMixin
from ._validate import check_labels, check_scores

__all__ = ["DecisionCurveResult", "decision_curve", "net_benefit"]


def net_benefit(y_true, proba, thresholds) -> np.ndarray:
    """Net benefit of treating cases with ``proba >= pt`` for every ``pt`` in ``thresholds``."""
    y = check_labels(y_true)
    p = check_scores(proba, len(y), name="proba", probability=True)
    pt = _check_thresholds(thresholds)
    return _nb(y, p, pt)


def _check_thresholds(thresholds) -> np.ndarray:
    pt = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if pt.ndim != 1 or pt.size == 0 or not np.isfinite(pt).all() or (pt < 0).any() or (pt >= 1).any():
        raise ValueError("thresholds must be a non-empty list of probabilities in [0, 1); "
                         "e.g. numpy.arange(0.01, 1.0, 0.01).")
    return pt


def _rates(y: np.ndarray, p: np.ndarray, pt: np.ndarray):
    """True- and false-positive counts over n when treating ``p >= pt``, for every ``pt``."""
    treat = p[None, :] >= pt[:, None]
    tp = (treat & (y[None, :] == 1)).sum(axis=1) / len(y)
    fp = (treat & (y[None, :] == 0)).sum(axis=1) / len(y)
    return tp, fp


def _nb(y: np.ndarray, p: np.ndarray, pt: np.ndarray) -> np.ndarray:
    tp, fp = _rates(y, p, pt)
    return tp - fp * pt / (1 - pt)


@dataclass(frozen=True, repr=False)
class DecisionCurveResult(ResultMixin):
    """Net benefit curves.

    Attributes
    ----------
    table : pandas.DataFrame
        Long format: model, threshold, net_benefit, tp_rate, fp_rate. ``model`` includes
        ``"Treat all"`` and ``"Treat none"``.
    prevalence : float
    n : int
    """

    table: pd.DataFrame
    prevalence: float
    n: int
    title = "Decision curve"

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def wide(self) -> pd.DataFrame:
        """Net benefit with one column per model, indexed by threshold."""
        return self.table.pivot(index="threshold", columns="model", values="net_benefit")

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(self.table["model"]))

    def __str__(self) -> str:
        return f"{self.title} (n={self.n}, prevalence={self.prevalence:.3f})\n{self.wide().to_string()}"


def decision_curve(y_true, probas, thresholds=None) -> DecisionCurveResult:
    """Net benefit of each model, treat-all and treat-none over a threshold range.

    Parameters
    ----------
    y_true : array-like of 0/1
    probas : dict of str -> array-like, or array-like
        Predicted probabilities per model (one array gives a model named ``"model"``).
    thresholds : array-like, optional
        Threshold probabilities in [0, 1); default ``0.01, 0.02, ..., 0.99``.

    Returns
    -------
    DecisionCurveResult
    """
    y = check_labels(y_true)
    if not isinstance(probas, dict):
        probas = {"model": probas}
    if not probas:
        raise ValueError("probas is empty; pass {model name: predicted probabilities}.")
    pt = _check_thresholds(np.round(np.arange(0.01, 1.0, 0.01), 10) if thresholds is None
                           else thresholds)
    n = len(y)
    prev = float(y.mean())
    frames = []
    for name, pr in probas.items():
        p = check_scores(pr, n, name=f"probas[{name!r}]", probability=True)
        tp, fp = _rates(y, p, pt)
        frames.append(pd.DataFrame({"model": name, "threshold": pt, "tp_rate": tp, "fp_rate": fp,
                                    "net_benefit": tp - fp * pt / (1 - pt)}))
    frames.append(pd.DataFrame({"model": "Treat all", "threshold": pt, "tp_rate": prev,
                                "fp_rate": 1 - prev,
                                "net_benefit": prev - (1 - prev) * pt / (1 - pt)}))
    frames.append(pd.DataFrame({"model": "Treat none", "threshold": pt, "tp_rate": 0.0,
                                "fp_rate": 0.0, "net_benefit": 0.0}))
    table = pd.concat(frames, ignore_index=True)[["model", "threshold", "net_benefit", "tp_rate",
                                                  "fp_rate"]]
    return DecisionCurveResult(table, prev, n)
