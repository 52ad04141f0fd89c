"""Calibration of predicted probabilities: curves, Brier score, intercept/slope, Hosmer-Lemeshow.

Conventions follow R's ``rms::val.prob`` (logistic recalibration) and
``ResourceSelection::hoslem.test`` (decile grouping), so results can be compared with papers
that used them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._results import ResultMixin
from ._validate import check_choice, check_labels, check_level, check_scores

__all__ = ["CalibrationResult", "HosmerLemeshowResult", "calibration", "hosmer_lemeshow",
           "brier_score", "calibration_intercept_slope"]

_EPS = 1e-12


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def brier_score(y_true, proba) -> float:
    """Mean squared difference between predicted probability and outcome."""
    y = check_labels(y_true)
    p = check_scores(proba, len(y), name="proba", probability=True)
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True, repr=False)
class HosmerLemeshowResult(ResultMixin):
    """Hosmer-Lemeshow goodness-of-fit test.

    Attributes
    ----------
    statistic : float
        Chi-square statistic summed over both outcome columns of every group.
    df : int
        Degrees of freedom: number of groups formed minus 2.
    p_value : float
        Upper-tail chi-square probability.
    groups : pandas.DataFrame
        Per group: interval, n, observed/expected events and non-events.
    method : str
    """

    statistic: float
    df: int
    p_value: float
    groups: pd.DataFrame
    method: str = "Hosmer-Lemeshow (deciles of risk)"
    title = "Hosmer-Lemeshow test"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"statistic": "Hosmer-Lemeshow chi-square", "estimate": self.statistic,
                              "df": self.df, "p_value": self.p_value, "method": self.method}]
                            ).set_index("statistic")

    def __repr__(self) -> str:
        return f"HosmerLemeshowResult(X2={self.statistic:.4f}, df={self.df}, p={self.p_value:.4g})"


def hosmer_lemeshow(y_true, proba, *, g: int = 10) -> HosmerLemeshowResult:
    """Hosmer-Lemeshow test with groups cut at quantiles of the predicted risk.

    Grouping as ``ResourceSelection::hoslem.test``: cut points are the unique
    ``quantile(proba, (0, 1/g, ..., 1))`` (linear interpolation, R type 7), intervals are closed on
    the right and the first one also on the left. The statistic is
    ``sum((O - E)^2 / E)`` over events and non-events of every group. ``df`` is the number of
    groups actually formed minus 2 (equal to ``g - 2`` unless tied risks merge quantiles, where
    ResourceSelection keeps ``g - 2``).

    Parameters
    ----------
    y_true : array-like of 0/1
    proba : array-like in [0, 1]
    g : int
        Number of risk groups (default 10, deciles).
    """
    y = check_labels(y_true)
    p = check_scores(proba, len(y), name="proba", probability=True)
    if int(g) < 3:
        raise ValueError(f"g must be at least 3 groups; got {g}.")
    cuts = np.unique(np.quantile(p, np.linspace(0, 1, int(g) + 1)))
    if len(cuts) < 2:
        raise ValueError("proba has a single value; the Hosmer-Lemeshow test needs varied risks.")
    group = np.clip(np.searchsorted(cuts, p, side="left"), 1, len(cuts) - 1) - 1
    n_groups = len(cuts) - 1
    rows = []
    for k in range(n_groups):
        m = group == k
        rows.append({
            "interval": f"{'[' if k == 0 else '('}{cuts[k]:.4g}, {cuts[k + 1]:.4g}]",
            "n": int(m.sum()), "observed_events": float(y[m].sum()),
            "expected_events": float(p[m].sum()), "observed_nonevents": float((1 - y[m]).sum()),
            "expected_nonevents": float((1 - p[m]).sum()),
        })
    tab = pd.DataFrame(rows)
    tab = tab[tab["n"] > 0].reset_index(drop=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = ((tab.observed_events - tab.expected_events) ** 2 / tab.expected_events
                 + (tab.observed_nonevents - tab.expected_nonevents) ** 2 / tab.expected_nonevents)
    chi2 = float(np.nansum(terms))
    df = len(tab) - 2
    if df < 1:
        raise ValueError(f"only {len(tab)} risk groups could be formed; the test needs at least 3.")
    return HosmerLemeshowResult(chi2, df, float(stats.chi2.sf(chi2, df)), tab)


def calibration_intercept_slope(y_true, proba, *, level: float = 0.95) -> pd.DataFrame:
    """Calibration-in-the-large (intercept) and calibration slope by logistic recalibration.

    Slope: coefficient of ``logit(proba)`` in ``logit P(y=1) = a + b logit(proba)``.
    Intercept: ``a`` in ``logit P(y=1) = a + offset(logit(proba))`` (slope fixed at 1), as
    ``rms::val.prob``. Perfect calibration gives intercept 0 and slope 1.

    Returns
    -------
    pandas.DataFrame
        Rows ``intercept`` and ``slope``; columns estimate, low, high, se, p_value (Wald, H0:
        intercept = 0 and slope = 1).
    """
    import statsmodels.api as sm

    y = check_labels(y_true)
    p = check_scores(proba, len(y), name="proba", probability=True)
    level = check_level(level)
    lp = _logit(p)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    fit_slope = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    fit_int = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit()
    rows = []
    for name, est, se, null in (
        ("intercept", fit_int.params[0], fit_int.bse[0], 0.0),
        ("slope", fit_slope.params[1], fit_slope.bse[1], 1.0),
    ):
        rows.append({"statistic": name, "estimate": float(est), "low": float(est - z * se),
                     "high": float(est + z * se), "se": float(se),
                     "p_value": float(2 * stats.norm.sf(abs((est - null) / se)))})
    return pd.DataFrame(rows).set_index("statistic")


@dataclass(frozen=True, repr=False)
class CalibrationResult(ResultMixin):
    """Everything needed to judge and draw the calibration of one model.

    Attributes
    ----------
    brier : float
        Brier score.
    intercept_slope : pandas.DataFrame
        From :func:`calibration_intercept_slope`.
    hosmer_lemeshow : HosmerLemeshowResult
    bins : pandas.DataFrame
        Binned curve: mean_predicted, observed (fraction of events), n, low, high (Wilson CI).
    smoothed : pandas.DataFrame
        LOWESS curve: predicted, observed (sorted by predicted).
    level : float
    name : str
        Model label for plots.
    """

    brier: float
    intercept_slope: pd.DataFrame
    hosmer_lemeshow: HosmerLemeshowResult
    bins: pd.DataFrame
    smoothed: pd.DataFrame
    level: float
    name: str = "model"
    title = "Calibration"

    def to_frame(self) -> pd.DataFrame:
        rows = [{"statistic": "brier", "estimate": self.brier}]
        for name, r in self.intercept_slope.iterrows():
            rows.append({"statistic": f"calibration {name}", "estimate": r.estimate, "low": r.low,
                         "high": r.high, "p_value": r.p_value})
        hl = self.hosmer_lemeshow
        rows.append({"statistic": "hosmer-lemeshow chi2", "estimate": hl.statistic,
                     "p_value": hl.p_value, "df": hl.df})
        return pd.DataFrame(rows).set_index("statistic")


def calibration(y_true, proba, *, n_bins: int = 10, strategy: str = "quantile",
                frac: float = 2 / 3, level: float = 0.95, g: int = 10,
                name: str = "model") -> CalibrationResult:
    """Calibration curve (binned and LOWESS-smoothed) and calibration statistics.

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
        LOWESS span (``statsmodels`` ``frac``; 2/3 is R's ``lowess`` default used by ``val.prob``).
    level : float
        Confidence level of the intercept/slope and bin CIs.
    g : int
        Groups of the Hosmer-Lemeshow test.
    name : str
        Label for plots.
    """
    from statsmodels.nonparametric.smoothers_lowess import lowess

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
    sm_curve = lowess(y, p, frac=frac, it=0, return_sorted=True)
    smoothed = pd.DataFrame({"predicted": sm_curve[:, 0], "observed": sm_curve[:, 1]})
    return CalibrationResult(
        brier=float(np.mean((p - y) ** 2)),
        intercept_slope=calibration_intercept_slope(y, p, level=level),
        hosmer_lemeshow=hosmer_lemeshow(y, p, g=g),
        bins=bins, smoothed=smoothed, level=level, name=name,
    )
