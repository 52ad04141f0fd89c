"""Likelihood-ratio test between two nested logistic regression models.

Both models are refitted by maximum likelihood (no penalty) on the same cases, the smaller one on a
subset of the larger one's predictors; ``LR = 2 (logL_full - logL_reduced)`` is referred to a
chi-squared distribution with as many degrees of freedom as the full model has extra parameters
(as ``statsmodels``' ``compare_lr_test`` and R's ``anova(reduced, full, test = "Chisq")``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._results import ResultMixin
from ._validate import check_labels

__all__ = ["LikelihoodRatioResult", "likelihood_ratio_test"]


@dataclass(frozen=True, repr=False)
class LikelihoodRatioResult(ResultMixin):
    """Likelihood-ratio test of a logistic model against a model nested in it.

    Attributes
    ----------
    statistic : float
        ``2 (logL_full - logL_reduced)``.
    df : int
        Extra parameters of the full model.
    p_value : float
        Upper tail of chi-squared with ``df`` degrees of freedom.
    loglik_reduced, loglik_full : float
        Maximised log-likelihoods.
    n : int
        Cases.
    added : tuple of str
        Predictors of the full model that the reduced one lacks.
    method : str
    """

    statistic: float
    df: int
    p_value: float
    loglik_reduced: float
    loglik_full: float
    n: int
    added: tuple
    method: str = "likelihood-ratio test of nested logistic regression models (maximum likelihood refits)"
    title = "Likelihood-ratio test"

    @property
    def estimate(self) -> float:
        return self.statistic

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"statistic": "LR chi-squared", "estimate": self.statistic, "df": self.df,
                              "p_value": self.p_value, "loglik_reduced": self.loglik_reduced,
                              "loglik_full": self.loglik_full, "n": self.n, "added": ", ".join(self.added),
                              "method": self.method}]).set_index("statistic")

    def __repr__(self) -> str:
        return f"LikelihoodRatioResult(LR={self.statistic:.4f}, df={self.df}, p={self.p_value:.4g})"


def _loglik(X: pd.DataFrame, y: np.ndarray) -> tuple[float, int]:
    import statsmodels.api as sm

    exog = sm.add_constant(X.to_numpy(dtype=float), has_constant="add") if X.shape[1] else np.ones((len(y), 1))
    fit = sm.Logit(y, exog).fit(disp=0, method="newton", maxiter=200)
    if not fit.mle_retvals.get("converged", True):
        raise ValueError("the maximum-likelihood fit did not converge (complete separation?)")
    return float(fit.llf), exog.shape[1]


def likelihood_ratio_test(y_true, reduced, full) -> LikelihoodRatioResult:
    """Likelihood-ratio test of the logistic model on ``full`` against the one on ``reduced``.

    Parameters
    ----------
    y_true : array-like of 0/1
    reduced, full : DataFrame
        Predictors (one row per case, same rows); every column of ``reduced`` must be a column of
        ``full`` (the models are nested). An intercept is added to both.

    Returns
    -------
    LikelihoodRatioResult

    Raises
    ------
    ValueError
        Models that are not nested (naming the predictors the full model lacks), rows that differ,
        no extra parameter, or a fit that does not converge.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(200, 2)), columns=["age", "score"])
    >>> y = (X["score"] + rng.normal(size=200) > 0).astype(int)
    >>> likelihood_ratio_test(y, X[["age"]], X).df
    1
    """
    y = check_labels(y_true)
    reduced, full = pd.DataFrame(reduced), pd.DataFrame(full)
    if len(reduced) != len(y) or len(full) != len(y):
        raise ValueError(f"reduced ({len(reduced)} rows) and full ({len(full)} rows) must have one row per case "
                         f"({len(y)}). Fix: pass both models' predictors of the same cases.")
    missing = [c for c in reduced.columns if c not in full.columns]
    if missing:
        raise ValueError(f"the models are not nested: the full model lacks {missing[:5]}. Fix: compare models "
                         "whose predictors include the reduced model's, or use the DeLong test.")
    added = tuple(c for c in full.columns if c not in reduced.columns)
    if not added:
        raise ValueError("the full model adds no predictor to the reduced one; there is nothing to test")
    ll_reduced, k_reduced = _loglik(reduced, y)
    ll_full, k_full = _loglik(full, y)
    statistic = max(2.0 * (ll_full - ll_reduced), 0.0)
    df = k_full - k_reduced
    return LikelihoodRatioResult(statistic=statistic, df=int(df), p_value=float(stats.chi2.sf(statistic, df)),
                                 loglik_reduced=ll_reduced, loglik_full=ll_full, n=int(len(y)), added=added)
