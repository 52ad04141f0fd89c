"""Read what fitted selection steps did: features left after each step (the selection funnel)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

__all__ = ["selection_funnel", "score_funnel"]

_STEP_NAMES = {"combat": "ComBat harmonization", "zscore": "z-score", "icc": "ICC filter",
               "univariate": "univariate filter", "correlation": "redundancy filter", "lasso": "LASSO"}


def _describe(name: str, step) -> str:
    label = _STEP_NAMES.get(name, name)
    if name == "icc":
        return f"{label} (ICC >= {step.threshold})"
    if name == "univariate":
        test = {"mannwhitney": "Mann-Whitney U", "ttest": "t-test"}.get(step.test, step.test)
        return f"{label} ({test} p < {step.alpha}{', FDR' if step.fdr else ''})"
    if name == "correlation":
        return f"{label} ({step.method} |r| < {step.threshold})"
    if name == "lasso":
        return f"{label} ({getattr(step, 'rule', 'min')} rule, {getattr(step, 'cv', 10)}-fold CV)"
    return label


def selection_funnel(steps, n_input: int, signature: str) -> pd.DataFrame:
    """Features left after each fitted step: ``signature, step, n_features``.

    ``steps`` is a list of ``(name, fitted estimator)``; a step with ``get_support`` reduces the
    count, the others (z-score, ComBat) keep it.
    """
    rows = [{"signature": signature, "step": "extracted", "n_features": int(n_input)}]
    n = n_input
    for name, step in steps:
        if hasattr(step, "get_support"):
            n = int(np.sum(step.get_support()))
        rows.append({"signature": signature, "step": _describe(name, step), "n_features": n})
    return pd.DataFrame(rows)


def score_funnel(pipeline: Pipeline, signature: str) -> pd.DataFrame:
    """The funnel of a fitted score Pipeline (``[combat] -> RadScore``)."""
    score = pipeline[-1]
    steps = [(n, s) for n, s in pipeline.steps[:-1]] + list(score.selection_.steps) + [("lasso", score.lasso_)]
    return selection_funnel(steps, score.n_features_in_, signature)
