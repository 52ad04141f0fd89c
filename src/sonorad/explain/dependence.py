"""Does a fitted model read a predictor? The one rule, for the run's report and for a bundle.

A predictor missing for a whole site is imputed with one training value for every case there, so
only the models that do not read it can be judged at that site. Whether a model reads predictor
``name`` is decided by its output, whatever the model's internals (a LASSO may have dropped the
predictor, a tree may never split on it): the same rows are scored with ``name`` set to a low and to
a high training value, and the model reads ``name`` when any probability changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["contrast_values", "models_reading", "reads"]

#: Rows of the input table scored at each contrast value (enough to reach most branches of a tree).
CONTRAST_ROWS = 20


def contrast_values(values: pd.Series) -> tuple | None:
    """Two training values of a predictor far apart: the 5th and 95th percentiles of a numeric one
    (its range when they coincide), the first and last level seen of another; ``None`` when the
    training cohort holds fewer than two distinct values.

    Examples
    --------
    >>> contrast_values(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0]))
    (1.2, 4.8)
    >>> contrast_values(pd.Series(["a", "b", "a"])), contrast_values(pd.Series([1.0, None]))
    (('a', 'b'), None)
    """
    present = values.dropna()
    if present.nunique() < 2:
        return None
    if pd.api.types.is_numeric_dtype(present):
        low, high = np.percentile(present.astype(float), [5, 95])
        if low == high:
            low, high = float(present.min()), float(present.max())
        return float(low), float(high)
    levels = sorted(present.astype(str).unique())
    return levels[0], levels[-1]


def reads(model, X: pd.DataFrame, name: str, contrast: tuple) -> bool:
    """True when the model's probabilities of the first rows of ``X`` change as ``name`` goes from
    ``contrast[0]`` to ``contrast[1]``; a model that cannot score the contrast counts as reading it."""
    rows = X.iloc[:CONTRAST_ROWS]
    low, high = rows.copy(), rows.copy()
    low[name], high[name] = contrast[0], contrast[1]
    try:
        a = np.asarray(model.predict_proba(low))[:, 1]
        b = np.asarray(model.predict_proba(high))[:, 1]
    except Exception:  # noqa: BLE001 - unknown: the model is not offered as independent of the predictor
        return True
    return bool(np.any(np.abs(a - b) > 1e-9))


def models_reading(models: dict, X: pd.DataFrame, name: str, contrast: tuple | None) -> list[str]:
    """The names of ``models`` (name -> fitted model with ``predict_proba`` over ``X``) that read ``name``.

    Without a contrast (a predictor with one training value) or a column, no model is named.
    """
    if contrast is None or not len(X) or name not in X.columns:
        return []
    return [m for m, model in models.items() if reads(model, X, name, contrast)]
