"""An uncertainty interval for one patient's probability: the chosen model's final stage refitted on
bootstrap resamples of the training cases.

At bundle-writing time :func:`fit_resamples` splits the chosen model into the steps that build its
predictors (selection, scores, encoding, scaling: :func:`sonorad.explain.shap.explain_parts`) and
its final classifier, and refits a copy of the classifier, with the same hyper-parameters, on
``B`` bootstrap resamples of the training cases (drawn within each outcome class, from the study's
seed). The steps before it stay as fitted. A design's second stage is refitted on the input it was
fitted on: the out-of-fold training scores (``DesignResult.training_scores``) in place of the
scores' in-sample values. The refitted classifiers are saved in the bundle (``uncertainty.skops``,
checked and loaded like its models); they hold no training rows (a classifier that keeps its
training vectors, such as k-NN or an SVM, gets no interval).

At scoring time :func:`case_interval` gives the 2.5th and 97.5th percentiles of the patient's
probabilities under the ``B`` classifiers: how much the probability moves when the final stage is
fitted on another sample of the same size from the training population. It leaves out the
uncertainty of the steps held fixed (the Rad-score / DL-score signatures and the feature
selection), so it is a lower bound on the model's full uncertainty; the method text says so.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_RESAMPLES", "UNCERTAINTY_FILE", "fit_resamples", "case_interval", "method_text"]

#: Bootstrap refits saved in a bundle unless asked otherwise.
DEFAULT_RESAMPLES = 50
#: The bundle file holding them.
UNCERTAINTY_FILE = "uncertainty.skops"
#: Largest size the refits may add to a bundle (bytes); beyond it no interval is saved.
MAX_BYTES = 40_000_000
#: Seconds the refits may take: fewer resamples (at least :data:`MIN_RESAMPLES`) when one refit is
#: slow, none when even those would take twice as long.
BUDGET_S = 15.0
MIN_RESAMPLES = 20
_LEVEL = 0.95


def _final_stage(model, X: pd.DataFrame, scores: pd.DataFrame | None):
    """``(steps before the classifier, classifier, its input table)``; a design's stage-2 input
    takes the out-of-fold ``scores`` where it has their columns."""
    from sonorad.explain.shap import explain_parts

    display, scale, final, Xf = explain_parts(model, X)
    if scores is not None and Xf is not X:
        common = [c for c in scores.columns if c in Xf.columns]
        if common:
            Xf = Xf.copy()
            Xf[common] = scores.reindex(Xf.index)[common].to_numpy(dtype=float)
    return [*display, *scale], final, Xf


def _predictors(steps: list, X: pd.DataFrame) -> np.ndarray:
    from sonorad.explain.shap import apply_steps

    return apply_steps(steps, X).to_numpy(dtype=float)


def method_text(resamples: int, classifier: str) -> str:
    """The interval's method in plain words."""
    return (f"{round(100 * _LEVEL)}% percentile interval of this patient's probability over {resamples} refits "
            f"of the model's final stage ({classifier}) on bootstrap resamples of the training cases (drawn "
            "within each outcome class); the steps before it (feature selection, Rad-score / DL-score, "
            "scaling) are held as fitted, so the interval shows the final stage's sampling uncertainty only")


def fit_resamples(model, X: pd.DataFrame, y, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                  scores: pd.DataFrame | None = None,
                  budget_s: float | None = BUDGET_S) -> tuple[dict | None, str | None]:
    """Refit ``model``'s final classifier on ``resamples`` stratified bootstrap resamples of the
    training cases.

    Parameters
    ----------
    model : fitted estimator
        The chosen model (a Pipeline or a design's model wrapper).
    X : DataFrame
        The training cohort's model input table.
    y : array-like of 0/1
        The training labels, in ``X``'s order.
    resamples : int
        ``B``, at least 10.
    seed : int
        Seed of the resampling (the study's seed).
    scores : DataFrame, optional
        Out-of-fold training scores a design's second stage was fitted on (index: case ids).
    budget_s : float or None
        Time bound: when the first refit shows that ``resamples`` would take longer, fewer are
        fitted (at least :data:`MIN_RESAMPLES`; the payload says how many), and none when those
        would take more than twice the budget. ``None``: no bound. The resamples themselves depend
        only on ``seed`` (the first ``k`` are the same for any ``resamples >= k``).

    Returns
    -------
    payload : dict or None
        ``{"estimators": [B fitted classifiers], "resamples", "seed", "classifier", "seconds"}``.
    note : str or None
        Why there is no payload (``"not available: ..."``).
    """
    from sklearn.base import clone

    if int(resamples) < MIN_RESAMPLES:
        raise ValueError(f"resamples must be at least {MIN_RESAMPLES}, got {resamples}")
    y = np.asarray(y, dtype=float)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("the training labels must all be 0 or 1 (a label is missing or another value), "
                         "one per row of the training input")
    y = y.astype(int)
    if len(y) != len(X):
        raise ValueError(f"y has {len(y)} labels for {len(X)} training rows")
    steps, final, Xf = _final_stage(model, X, scores)
    name = type(final).__name__
    Z = _predictors(steps, Xf)
    rng = np.random.default_rng(seed)
    classes = [np.flatnonzero(y == k) for k in (0, 1)]
    if any(len(c) < 2 for c in classes):
        return None, "not available: the training cases need at least two of each outcome to resample"
    start = time.perf_counter()
    estimators, wanted = [], int(resamples)
    while len(estimators) < wanted:
        idx = np.concatenate([rng.choice(c, size=len(c), replace=True) for c in classes])
        estimators.append(clone(final).fit(Z[idx], y[idx]))
        if len(estimators) == 1 and budget_s is not None:
            one = time.perf_counter() - start
            if one * MIN_RESAMPLES > 2 * budget_s:
                return None, (f"not available: one refit of the final stage ({name}) took {one:.1f} s, so "
                              f"{MIN_RESAMPLES} would take over {2 * budget_s:.0f} s")
            wanted = min(wanted, max(MIN_RESAMPLES, int(budget_s // max(one, 1e-9))))
    return {"estimators": estimators, "resamples": len(estimators), "seed": int(seed), "classifier": name,
            "seconds": time.perf_counter() - start}, None


def case_interval(model, estimators: list, X: pd.DataFrame, *, classifier: str) -> dict:
    """The percentile interval of the first row of ``X`` (model input) under the refitted
    classifiers: ``{"low", "high", "level", "resamples", "method"}``.

    A model recalibrated at a site (:class:`sonorad.bundle.recalibrate.RecalibratedModel`) maps
    each refit's probability through its recalibration, as it maps its own.
    """
    recalibration = None
    if hasattr(model, "transform_proba") and hasattr(model, "base"):
        recalibration, model = model, model.base
    steps, _, Xf = _final_stage(model, X, None)
    z = _predictors(steps, Xf)[:1]
    p = np.array([float(np.asarray(est.predict_proba(z))[0, 1]) for est in estimators])
    method = method_text(len(estimators), classifier)
    if recalibration is not None:
        p = np.asarray(recalibration.transform_proba(p), dtype=float)
        method += "; each refit's probability is mapped through the site recalibration"
    tail = 100 * (1 - _LEVEL) / 2
    low, high = np.percentile(p, [tail, 100 - tail])
    return {"low": float(low), "high": float(high), "level": _LEVEL, "resamples": len(estimators), "method": method}
