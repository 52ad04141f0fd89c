"""Calibration of predicted probabilities: the calibration curve (binned and LOWESS) with its statistics.

:func:`calibration` gathers what a calibration figure and table need: the binned observed fractions
(Wilson CIs), R's lowess curve, the Brier score, the logistic recalibration fits
(:mod:`.recalibration`), Hosmer-Lemeshow (:mod:`.goodness_of_fit`) and the full ``rms::val.prob``
set (:mod:`.valprob`). Conventions follow R's ``rms::val.prob`` and
``ResourceSelection::hoslem.test``, so results can be compared with papers that used them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._results import ResultMixin
from ._validate import check_choice, check_labels, check_level, check_scores
from .goodness_of_fit import HosmerLemeshowResult
from .recalibration import calibration_intercept_slope
from .valprob import ValProbResult, r_lowess, _val_prob

__all__ = ["CalibrationResult", "brier_score", "calibration"]


def brier_score(y_true, proba) -> float:
    """Mean squared difference between predicted probability and outcome."""
    y = check_labels(y_true)
    p = check_scores(proba, len(y), name="proba", probability=True)
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True, repr=False)
class CalibrationResult(ResultMixin):
    """Everything needed to judge and draw the calibration of one model.

    Attributes
    ----------
    brier : float
        Brier score.
    intercept_slope : pandas.DataFrame
        From :func:`calibration_intercept_slope` (calibration-in-the-large, intercept, slope).
    hosmer_lemeshow : HosmerLemeshowResult
    bins : pandas.DataFrame
        Binned curve: mean_predicted, observed (fraction of events), n, low, high (Wilson CI).
    smoothed : pandas.DataFrame
        LOWESS curve (R's ``lowess(p, y, iter = 0)`` as val.prob draws it): predicted, observed.
    level : float
    name : str
        Model label for plots.
    statistics : ValProbResult
        The full val.prob set.
    """

    brier: float
    intercept_slope: pd.DataFrame
    hosmer_lemeshow: HosmerLemeshowResult
    bins: pd.DataFrame
    smoothed: pd.DataFrame
    level: float
    name: str = "model"
    statistics: ValProbResult | None = None
    title = "Calibration"

    def to_frame(self) -> pd.DataFrame:
        """The val.prob statistics (see :meth:`ValProbResult.to_frame`)."""
        return self.statistics.to_frame()


def calibration(y_true, proba, *, n_bins: int = 10, strategy: str = "quantile",
                frac: float = 2 / 3, level: float = 0.95, g: int = 10,
                name: str = "model") -> CalibrationResult:
    """Calibration curve (binned and LOWESS-smoothed) and the val.prob statistics.

    Parameters
    ----------
    y_true : array-like of 0/1
    proba : array-like in [0, 1]
        Predicted probabilities of the positive class.
    n_bins : int
        Number of bins of the binned curve.
    strategy : {"quantile", "uniform"}
        Equal-count bins or equal-width bins on [0, 1].
    frac : float
        LOWESS span (2/3 is R's ``lowess`` default used by ``val.prob``).
    level : float
        Confidence level of the intercept/slope and bin CIs.
    g : int
        Groups of the Hosmer-Lemeshow test.
    name : str
        Label for plots.
    """
    from .thresholds import wilson_ci

    y = check_labels(y_true)
    p = check_scores(proba, len(y), name="proba", probability=True)
    level = check_level(level)
    check_choice(strategy, ("quantile", "uniform"), "strategy")
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, int(n_bins) + 1)))
    else:
        edges = np.linspace(0, 1, int(n_bins) + 1)
    idx = np.clip(np.searchsorted(edges, p, side="left"), 1, max(len(edges) - 1, 1)) - 1
    rows = []
    for k in np.unique(idx):
        m = idx == k
        lo, hi = wilson_ci(y[m].sum(), m.sum(), level)
        rows.append({"bin": int(k), "mean_predicted": float(p[m].mean()),
                     "observed": float(y[m].mean()), "n": int(m.sum()), "low": lo, "high": hi})
    bins = pd.DataFrame(rows).set_index("bin")
    order = np.argsort(p, kind="stable")
    fitted = r_lowess(y.astype(float), p, frac) if np.ptp(p) > 0 else np.full(len(p), y.mean())
    smoothed = pd.DataFrame({"predicted": p[order], "observed": fitted[order]})
    recal = calibration_intercept_slope(y, p, level=level)   # warns on perfect separation
    statistics = _val_prob(y, p, recal, g=g, level=level, name=name)
    return CalibrationResult(
        brier=statistics.brier, intercept_slope=recal, hosmer_lemeshow=statistics.hosmer_lemeshow,
        bins=bins, smoothed=smoothed, level=level, name=name, statistics=statistics,
    )
