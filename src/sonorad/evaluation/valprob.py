"""The full ``rms::val.prob`` set of one model on one cohort: discrimination, calibration and overall
indexes (Dxy, C, R2, D, U, Q, Brier, calibration-in-the-large, intercept, slope, Emax, E90, Eavg,
Spiegelhalter z) plus Hosmer-Lemeshow.

The lowess calibration curve is R's ``lowess(p, y, iter = 0)`` as val.prob draws it, so Emax / E90 /
Eavg match ``rms``. ``tests/evaluation/data/make_rms_reference.R`` computes the reference values the
tests check to 1e-6.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from ._results import ResultMixin
from ._validate import check_labels, check_level, check_scores
from .goodness_of_fit import HosmerLemeshowResult, hosmer_lemeshow
from .recalibration import _logit, calibration_intercept_slope

__all__ = ["VAL_PROB_STATISTICS", "ValProbResult", "val_prob"]


def _clowess_anchors(xs: np.ndarray, delta: float) -> np.ndarray:
    """Indices of the sorted ``xs`` at which R's ``clowess`` fits the local regression.

    R skips points within ``delta`` of the last fitted one and interpolates them; the next fit is
    at the last point within ``delta`` (ties copy the fitted value). statsmodels uses the same
    rule except near the end of the data, where it fits one extra point, so the anchors are
    chosen here and statsmodels fits only at them.
    """
    n = len(xs)
    anchors, last, i = [], -1, 0
    while True:
        anchors.append(i)
        last = i
        cut = xs[last] + delta
        j = last + 1
        while j < n and xs[j] <= cut:
            if xs[j] == xs[last]:
                last = j
            j += 1
        i = max(last + 1, j - 1)
        if last >= n - 1:
            return np.asarray(anchors)


def r_lowess(y: np.ndarray, p: np.ndarray, frac: float = 2 / 3) -> np.ndarray:
    """R's ``lowess(p, y, iter = 0)`` (``delta = 0.01 * diff(range(p))``) evaluated at every ``p``.

    The local regressions are statsmodels' (which equal R's to about 1e-10 at the same points);
    the points R fits exactly are :func:`_clowess_anchors`, the rest are interpolated linearly
    between them, as R does. ``y`` must be float.
    """
    from statsmodels.nonparametric.smoothers_lowess import lowess

    xs = np.sort(p)
    anchors = xs[_clowess_anchors(xs, 0.01 * float(xs[-1] - xs[0]))]
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = lowess(y, p, frac=frac, it=0, delta=0.0, xvals=anchors)
    # every point weighted in the window has the same x (heavy ties): statsmodels divides by a
    # zero spread, R's lowest() falls back to the weighted mean of y, i.e. the mean at that x
    for k in np.flatnonzero(~np.isfinite(fit)):
        fit[k] = y[p == anchors[k]].mean()
    return np.interp(p, anchors, fit)


def _smooth_errors(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """|p - lowess calibration curve at p| for every case (val.prob's Emax/E90/Eavg errors)."""
    if np.ptp(p) == 0:
        return np.abs(p - y.mean())
    return np.abs(p - r_lowess(y.astype(float), p))


def _spiegelhalter(y: np.ndarray, p: np.ndarray) -> tuple[float, float, str]:
    den = float(np.sum((1 - 2 * p) ** 2 * p * (1 - p)))
    if den <= 0:
        return np.nan, np.nan, "every prediction is 0, 0.5 or 1; the variance of the statistic is 0"
    zs = float(np.sum((y - p) * (1 - 2 * p)) / np.sqrt(den))
    return zs, float(2 * stats.norm.sf(abs(zs))), ""


def _nagelkerke_r2(y: np.ndarray, lp: np.ndarray) -> tuple[float, str]:
    """Nagelkerke R2 of the predictions as given (intercept 0, slope 1), as ``val.prob``/``lrm``."""
    n = len(y)
    if n < 3 or y.min() == y.max():
        return np.nan, "needs both outcomes among the cases with 0 < p < 1"
    k = y.mean()
    null_dev = -2 * n * (k * np.log(k) + (1 - k) * np.log(1 - k))
    dev = -2 * float(np.sum(y * special.log_expit(lp) + (1 - y) * special.log_expit(-lp)))
    lr = null_dev - dev
    return float((1 - np.exp(-lr / n)) / (1 - np.exp(-null_dev / n))), ""


def _d_u_q(y: np.ndarray, lp: np.ndarray, intercept: float, slope: float, certain_and_wrong: bool = False) -> dict:
    """val.prob's discrimination (D), unreliability (U) and quality (Q) indexes (Harrell 2015, 10.9).

    On the cases with 0 < p < 1 (``lp`` their logits), as rms 6.5 computes them: D = (D chi2 - 1) / n,
    with D chi2 the null deviance minus the deviance of the predictions as given (intercept 0,
    slope 1); U = (U chi2 - 2) / n, with U chi2 the deviance of the predictions as given minus that
    of the recalibration fit ``logit P = a + b lp`` (2 df: a = 0, b = 1); Q = D - U. The
    recalibration fit is the converged one (``intercept``, ``slope``), not lrm.fit's stop at its
    tolerance. ``certain_and_wrong``: some case had p = 0 and the event, or p = 1 and no event; its
    deviance is infinite, so U chi2 = U = inf and Q = -inf, as val.prob reports them.
    """
    n = len(y)
    k = y.mean()
    null_dev = -2 * n * (k * np.log(k) + (1 - k) * np.log(1 - k))

    def deviance(eta):
        return -2 * float(np.sum(y * special.log_expit(eta) + (1 - y) * special.log_expit(-eta)))

    as_given = deviance(lp)
    lr = null_dev - as_given
    u_chi2 = np.inf if certain_and_wrong else as_given - deviance(intercept + slope * lp)
    d, u = (lr - 1) / n, (u_chi2 - 2) / n
    return {"d": d, "d_chi2": lr, "u": u, "u_chi2": u_chi2, "u_p": float(stats.chi2.sf(u_chi2, 2)), "q": d - u}


#: Names of the statistics in :meth:`ValProbResult.to_frame`, in val.prob's words.
VAL_PROB_STATISTICS = ("Dxy", "C (ROC)", "R2", "D", "U", "Q", "Brier", "Calibration-in-the-large", "Intercept",
                       "Slope", "Emax", "E90", "Eavg", "Spiegelhalter z", "Hosmer-Lemeshow chi2")


_DESCRIPTIONS = {
    "Dxy": "Somers' Dxy = 2 (C - 0.5), all cases, exact (Hmisc::somers2)",
    "C (ROC)": "C index = AUC, ties 1/2, all cases",
    "R2": "Nagelkerke R2 of the predictions as given (intercept 0, slope 1), cases with 0 < p < 1",
    "Brier": "mean (p - y)^2, all cases",
    "Emax": "max |p - lowess calibration curve|, all cases (val.prob, rms >= 6)",
    "E90": "90th percentile of |p - lowess calibration curve|, all cases",
    "Eavg": "mean |p - lowess calibration curve| (ICI), all cases",
    "Spiegelhalter z": "Spiegelhalter's z test of calibration, all cases; two-sided normal p",
    "D": "discrimination index (D chi2 - 1) / n, D chi2 = null deviance - deviance of the predictions, "
         "cases with 0 < p < 1",
    "U": "unreliability index (U chi2 - 2) / n; U chi2 tests intercept 0 and slope 1 (2 df), cases with 0 < p < 1",
    "Q": "quality index D - U, cases with 0 < p < 1",
}


@dataclass(frozen=True, repr=False)
class ValProbResult(ResultMixin):
    """The statistics ``rms::val.prob`` reports for one model on one cohort, plus Hosmer-Lemeshow.

    Attributes
    ----------
    n, n_events : int
        Cases and events.
    n_excluded : int
        Cases with a probability of exactly 0 or 1, left out of the logistic fits and R2.
    dxy, c_index, r2, brier, emax, e90, eavg, spiegelhalter_z, spiegelhalter_p : float
        NaN where not computable (``reasons`` says why).
    d, d_chi2, u, u_chi2, u_p, q : float
        val.prob's D (with its LR chi-square), U (with its chi-square and 2-df p) and Q indexes.
    recalibration : pandas.DataFrame
        :func:`calibration_intercept_slope` (calibration-in-the-large, intercept, slope with CIs).
    hosmer_lemeshow : HosmerLemeshowResult
    level : float
    name : str
    reasons : dict
        Statistic name -> why it could not be computed.
    """

    n: int
    n_events: int
    n_excluded: int
    dxy: float
    c_index: float
    r2: float
    brier: float
    emax: float
    e90: float
    eavg: float
    spiegelhalter_z: float
    spiegelhalter_p: float
    recalibration: pd.DataFrame
    hosmer_lemeshow: HosmerLemeshowResult
    level: float = 0.95
    name: str = "model"
    reasons: dict = field(default_factory=dict)
    d: float = np.nan
    d_chi2: float = np.nan
    u: float = np.nan
    u_chi2: float = np.nan
    u_p: float = np.nan
    q: float = np.nan
    title = "Validation statistics (rms::val.prob)"

    def _recal(self, name: str, col: str = "estimate") -> float:
        return float(self.recalibration.loc[name, col])

    @property
    def calibration_in_the_large(self) -> float:
        return self._recal("calibration-in-the-large")

    @property
    def intercept(self) -> float:
        """val.prob's "Intercept" (joint fit with the slope)."""
        return self._recal("intercept")

    @property
    def slope(self) -> float:
        return self._recal("slope")

    def to_frame(self) -> pd.DataFrame:
        """One row per statistic: estimate, low, high, p_value, df, n_used, method, computable, reason."""
        n_fit = self.n - self.n_excluded
        values = {"Dxy": (self.dxy, self.n), "C (ROC)": (self.c_index, self.n), "R2": (self.r2, n_fit),
                  "Brier": (self.brier, self.n), "Emax": (self.emax, self.n), "E90": (self.e90, self.n),
                  "Eavg": (self.eavg, self.n)}
        rows = []
        for stat in VAL_PROB_STATISTICS:
            row = {"statistic": stat, "low": np.nan, "high": np.nan, "p_value": np.nan, "df": np.nan}
            if stat in values:
                est, used = values[stat]
                row.update(estimate=est, n_used=used, method=_DESCRIPTIONS[stat])
            elif stat in ("D", "U", "Q"):
                est = {"D": self.d, "U": self.u, "Q": self.q}[stat]
                chi2 = {"D": self.d_chi2, "U": self.u_chi2}.get(stat, np.nan)
                method = _DESCRIPTIONS[stat] + ("" if np.isnan(chi2) else f"; chi2 = {chi2:.4g}")
                row.update(estimate=est, p_value=self.u_p if stat == "U" else np.nan,
                           df=2 if stat == "U" else np.nan, n_used=n_fit, method=method)
            elif stat == "Spiegelhalter z":
                row.update(estimate=self.spiegelhalter_z, p_value=self.spiegelhalter_p, n_used=self.n,
                           method=_DESCRIPTIONS[stat])
            elif stat == "Hosmer-Lemeshow chi2":
                hl = self.hosmer_lemeshow
                row.update(estimate=hl.statistic, p_value=hl.p_value, df=hl.df, n_used=self.n,
                           method=hl.method)
            else:
                r = self.recalibration.loc[stat.lower()]
                row.update(estimate=r.estimate, low=r.low, high=r.high, p_value=r.p_value,
                           n_used=r.n_used, method=r.method)
            row["reason"] = self.reasons.get(stat, "")
            row["computable"] = stat not in self.reasons
            rows.append(row)
        cols = ["statistic", "estimate", "low", "high", "p_value", "df", "n_used", "method",
                "computable", "reason"]
        return pd.DataFrame(rows)[cols].set_index("statistic")

    def to_row(self) -> dict:
        """The statistics as one flat record (one row of a cohort x model table).

        Keys: n, n_events, n_excluded_0_1, dxy, c_index, r2, d, d_chi2, u, u_chi2, u_p, q, brier,
        citl (+ _low, _high, _p),
        intercept (+ _low, _high, _p), slope (+ _low, _high, _p), emax, e90, eavg,
        spiegelhalter_z, spiegelhalter_p, hl_chi2, hl_df, hl_p, hl_groups, hl_grouping,
        not_computable ("statistic: reason; ..." or "").
        """
        row = {"n": self.n, "n_events": self.n_events, "n_excluded_0_1": self.n_excluded,
               "dxy": self.dxy, "c_index": self.c_index, "r2": self.r2, "d": self.d, "d_chi2": self.d_chi2,
               "u": self.u, "u_chi2": self.u_chi2, "u_p": self.u_p, "q": self.q, "brier": self.brier}
        for key, name in (("citl", "calibration-in-the-large"), ("intercept", "intercept"),
                          ("slope", "slope")):
            r = self.recalibration.loc[name]
            row.update({key: float(r.estimate), f"{key}_low": float(r.low), f"{key}_high": float(r.high),
                        f"{key}_p": float(r.p_value)})
        hl = self.hosmer_lemeshow
        row.update(emax=self.emax, e90=self.e90, eavg=self.eavg, spiegelhalter_z=self.spiegelhalter_z,
                   spiegelhalter_p=self.spiegelhalter_p, hl_chi2=hl.statistic, hl_df=hl.df,
                   hl_p=hl.p_value, hl_groups=hl.n_groups, hl_grouping=hl.method)
        frame = self.to_frame()
        row["not_computable"] = "; ".join(f"{s}: {r}" for s, r in frame["reason"].items() if r)
        return row

    def __repr__(self) -> str:
        return (f"ValProbResult({self.name!r}, n={self.n}, Brier={self.brier:.4f}, "
                f"intercept={self.intercept:.4f}, slope={self.slope:.4f}, Eavg={self.eavg:.4f})")


def val_prob(y_true, proba, *, g: int = 10, level: float = 0.95, name: str = "model") -> ValProbResult:
    """Every statistic of ``rms::val.prob`` for one set of predictions, plus Hosmer-Lemeshow.

    Which cases enter which statistic follows ``val.prob`` (rms 6.5): cases with ``p`` exactly 0
    or 1 are left out of the logistic fits and R2 only; Brier, Emax/E90/Eavg, Spiegelhalter and
    Hosmer-Lemeshow use every case. Two deliberate differences, both documented in the tests:
    ``Dxy``/``C`` are the exact rank statistics on all cases (``val.prob`` takes them from
    ``lrm.fit``, which bins probabilities into 1/5000-wide cells and drops p in {0, 1}), and the
    intercept/slope are the converged maximum-likelihood values (R's ``glm``), not ``lrm.fit``'s
    stop at its default tolerance (so are D, U and Q, which use that fit).

    Parameters
    ----------
    y_true : array-like of 0/1
    proba : array-like in [0, 1]
    g : int
        Hosmer-Lemeshow groups.
    level : float
        Confidence level of the intercept/slope CIs.
    name : str
        Model label.

    Returns
    -------
    ValProbResult
        Statistics that cannot be computed are NaN with the reason in ``reasons`` (and in the
        ``reason`` column of ``to_frame()``); nothing raises for them.

    Examples
    --------
    >>> r = val_prob([0, 0, 1, 1, 0, 1, 1, 0], [0.1, 0.3, 0.6, 0.8, 0.4, 0.7, 0.5, 0.2], g=4)
    >>> round(r.brier, 4), round(r.dxy, 4)
    (0.105, 1.0)
    >>> r.reasons["Slope"][:18]
    'perfect separation'
    """
    y = check_labels(y_true)
    p = check_scores(proba, len(y), name="proba", probability=True)
    level = check_level(level)
    with warnings.catch_warnings():
        # the separation warning belongs to calibration(); here the reason is in the result
        warnings.simplefilter("ignore", UserWarning)
        recal = calibration_intercept_slope(y, p, level=level)
    return _val_prob(y, p, recal, g=g, level=level, name=name)


def _val_prob(y, p, recal: pd.DataFrame, *, g: int, level: float, name: str) -> ValProbResult:
    from .roc import auc_score

    keep = (p > 0) & (p < 1)
    reasons = {}
    c = auc_score(y, p)
    r2, why = _nagelkerke_r2(y[keep], _logit(p[keep]))
    if why:
        reasons["R2"] = why
    err = _smooth_errors(y, p)
    zs, zp, why = _spiegelhalter(y, p)
    if why:
        reasons["Spiegelhalter z"] = why
    for stat in ("Calibration-in-the-large", "Intercept", "Slope"):
        if not recal.loc[stat.lower(), "computable"]:
            reasons[stat] = recal.loc[stat.lower(), "reason"]
    hl = hosmer_lemeshow(y, p, g=g)
    if not hl.computable:
        reasons["Hosmer-Lemeshow chi2"] = hl.reason
    duq = {}
    if recal.loc["slope", "computable"] and recal.loc["intercept", "computable"]:
        wrong = bool(np.any((p == 0) & (y == 1)) or np.any((p == 1) & (y == 0)))
        duq = _d_u_q(y[keep], _logit(p[keep]), float(recal.loc["intercept", "estimate"]),
                     float(recal.loc["slope", "estimate"]), certain_and_wrong=wrong)
    else:
        for stat in ("D", "U", "Q"):
            reasons[stat] = "needs the recalibration fit: " + recal.loc["slope", "reason"]
    return ValProbResult(
        n=len(y), n_events=int(y.sum()), n_excluded=int((~keep).sum()), dxy=2 * c - 1, c_index=c,
        r2=r2, brier=float(np.mean((p - y) ** 2)), emax=float(err.max()),
        e90=float(np.quantile(err, 0.9)), eavg=float(err.mean()), spiegelhalter_z=zs,
        spiegelhalter_p=zp, recalibration=recal, hosmer_lemeshow=hl, level=level, name=name,
        reasons=reasons, **duq)
