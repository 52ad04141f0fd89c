"""Logistic recalibration: calibration-in-the-large, calibration intercept and calibration slope.

The fits of ``rms::val.prob`` (Cox's logistic recalibration framework): ``logit(P(y=1)) = a + logit(p)``
(calibration-in-the-large) and ``logit(P(y=1)) = a + b logit(p)`` (intercept and slope), so results
can be compared with papers that used them.

Choices that move numbers (each is stated in the result it affects):

* **Probabilities of exactly 0 or 1** have an infinite logit. They are left out of the logistic
  recalibration fits (calibration-in-the-large, intercept, slope) and of R2, as ``val.prob``
  does, and the number left out is reported (``n_excluded``). They stay in every other statistic.
* **No clipping.** The logit is computed exactly (``scipy.special.logit``), so a probability of
  1e-15 enters the fit as -34.5, not as the logit of some clip value.
* **Converged fits.** The recalibration models are fitted by IRLS to a deviance change below
  1e-13, so estimates and standard errors are the maximum-likelihood values (the tests check the
  SEs against an independent Newton-Raphson fit to 1e-6). They equal R's ``glm`` run to
  convergence; ``val.prob`` stops ``lrm.fit`` at its default tolerance, which can leave its
  Intercept and Slope about 1e-5 away from these.
* **Not computable is a result, not an error.** Perfect separation (no finite slope), a single
  distinct probability, a single class among the usable cases: the statistic is reported with
  ``computable=False`` and the reason; the others go on.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special, stats

from ._validate import check_labels, check_level, check_scores

__all__ = ["calibration_intercept_slope"]


#: IRLS stopping rule of the recalibration fits (absolute change of the deviance).
_FIT_TOL = 1e-13


def _logit(p: np.ndarray) -> np.ndarray:
    """Exact logit; -inf / +inf at 0 / 1 (those cases are excluded from the logistic fits)."""
    return special.logit(p)


_RECAL_METHODS = {
    "calibration-in-the-large": "logit P(y=1) = a + offset(logit p), slope fixed at 1; H0: a = 0",
    "intercept": "a in the joint fit logit P(y=1) = a + b logit p (val.prob 'Intercept'); H0: a = 0",
    "slope": "b in the joint fit logit P(y=1) = a + b logit p (val.prob 'Slope'); H0: b = 1",
}


_NULL = {"calibration-in-the-large": 0.0, "intercept": 0.0, "slope": 1.0}


def _glm_binomial(y, exog, offset=None):
    import statsmodels.api as sm

    return sm.GLM(y, exog, family=sm.families.Binomial(), offset=offset).fit(tol=_FIT_TOL, maxiter=200)


def _separated(y: np.ndarray, lp: np.ndarray) -> bool:
    """True when one cut on ``lp`` splits the classes (complete or quasi-complete separation):
    the joint intercept/slope fit then has no finite maximum-likelihood estimate."""
    lo0, hi0, lo1, hi1 = lp[y == 0].min(), lp[y == 0].max(), lp[y == 1].min(), lp[y == 1].max()
    return bool(hi0 <= lo1 or hi1 <= lo0)


def _not_computable_reasons(y: np.ndarray, lp: np.ndarray) -> tuple[str, str]:
    """Why (citl, joint fit) cannot be computed on the usable cases; '' when they can."""
    if len(y) < 3:
        why = f"only {len(y)} case(s) with 0 < p < 1; the logistic recalibration needs at least 3"
        return why, why
    if y.min() == y.max():
        why = f"all {len(y)} cases with 0 < p < 1 have outcome {int(y[0])}; both outcomes are needed"
        return why, why
    if len(np.unique(lp)) < 2:
        return "", "all predicted probabilities are equal; the slope is not identified"
    if _separated(y, lp):
        return "", ("perfect separation: logit(p) splits events from non-events, so the slope "
                    "has no finite maximum-likelihood estimate")
    return "", ""


def calibration_intercept_slope(y_true, proba, *, level: float = 0.95) -> pd.DataFrame:
    """Calibration-in-the-large, calibration intercept and calibration slope.

    Logistic recalibration as ``rms::val.prob``:

    * ``calibration-in-the-large``: ``a`` in ``logit P(y=1) = a + offset(logit p)`` (slope fixed
      at 1); the mean calibration, 0 when the average risk is right.
    * ``intercept``: ``a`` in the joint fit ``logit P(y=1) = a + b logit p``, which is what
      ``val.prob`` prints as "Intercept".
    * ``slope``: ``b`` of the same joint fit ("Slope"); < 1 means predictions too extreme.

    Perfect calibration gives 0, 0 and 1. Cases with ``p`` exactly 0 or 1 are excluded from the
    fits (their logit is infinite), as ``val.prob`` does; ``n_excluded`` counts them. Fits are run
    to convergence, so estimates and SEs are the maximum-likelihood values (see the module notes).

    Returns
    -------
    pandas.DataFrame
        Rows ``calibration-in-the-large``, ``intercept``, ``slope``; columns estimate, low, high,
        se, p_value (Wald; H0 0, 0 and 1), n_used, n_excluded, method, computable, reason. A
        row that cannot be computed (perfect separation, a single class or a single distinct
        probability among the usable cases) has NaN numbers, ``computable=False`` and the reason;
        perfect separation also raises a ``UserWarning`` that says so.
    """
    y = check_labels(y_true)
    p = check_scores(proba, len(y), name="proba", probability=True)
    level = check_level(level)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    keep = (p > 0) & (p < 1)
    yk, lp = y[keep], _logit(p[keep])
    why_citl, why_joint = _not_computable_reasons(yk, lp)
    fits = {}
    if not why_citl:
        f = _glm_binomial(yk, np.ones((len(yk), 1)), offset=lp)
        fits["calibration-in-the-large"] = (f.params[0], f.bse[0])
    if not why_joint:
        f = _glm_binomial(yk, np.column_stack([np.ones(len(yk)), lp]))
        fits["intercept"] = (f.params[0], f.bse[0])
        fits["slope"] = (f.params[1], f.bse[1])
    elif "separation" in why_joint:
        warnings.warn(f"calibration intercept and slope not computable: {why_joint}.", UserWarning,
                      stacklevel=2)
    rows = []
    for name in ("calibration-in-the-large", "intercept", "slope"):
        row = {"statistic": name, "n_used": int(keep.sum()), "n_excluded": int((~keep).sum()),
               "method": _RECAL_METHODS[name]}
        if name in fits:
            est, se = (float(v) for v in fits[name])
            row.update(estimate=est, low=est - z * se, high=est + z * se, se=se,
                       p_value=float(2 * stats.norm.sf(abs((est - _NULL[name]) / se))),
                       computable=True, reason="")
        else:
            row.update(estimate=np.nan, low=np.nan, high=np.nan, se=np.nan, p_value=np.nan,
                       computable=False, reason=why_citl if name == "calibration-in-the-large" else why_joint)
        rows.append(row)
    cols = ["statistic", "estimate", "low", "high", "se", "p_value", "n_used", "n_excluded",
            "method", "computable", "reason"]
    return pd.DataFrame(rows)[cols].set_index("statistic")
