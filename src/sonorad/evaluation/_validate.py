"""Input validation shared by every evaluation function.

Every public function of :mod:`sonorad.evaluation` passes its inputs through these helpers, so a
user mistake (one class only, a NaN score, a length mismatch, a probability outside [0, 1]) is
reported the same way everywhere: a ``ValueError`` that names the argument and says what to fix.
"""

from __future__ import annotations

import numpy as np


def check_labels(y_true, *, name: str = "y_true") -> np.ndarray:
    """Return ``y_true`` as a 1-D int array of 0/1 with both classes present.

    Booleans and the integers/floats 0 and 1 are accepted. Anything else (2 classes coded as
    strings, NaN, a single class) raises ``ValueError`` naming ``name``.
    """
    arr = np.asarray(y_true)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per case); got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; pass one 0/1 label per case.")
    if arr.dtype == bool:
        arr = arr.astype(int)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"{name} must be coded 0/1 (1 = positive, e.g. malignant); got values of type "
            f"{arr.dtype}. Map the labels to 0/1 first."
        )
    if np.isnan(arr.astype(float)).any():
        raise ValueError(f"{name} contains NaN; drop the unlabeled cases before evaluation.")
    values = set(np.unique(arr).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"{name} must contain only 0 and 1; found {sorted(values)}.")
    if len(values) < 2:
        only = values.pop()
        raise ValueError(
            f"{name} contains one class only (all {only}); evaluation needs both positive (1) "
            "and negative (0) cases. Check the split or the label column."
        )
    return arr.astype(int)


def check_scores(score, n: int | None = None, *, name: str = "score",
                 probability: bool = False) -> np.ndarray:
    """Return ``score`` as a finite 1-D float array of length ``n``.

    Parameters
    ----------
    score : array-like
        One score per case.
    n : int, optional
        Expected length (the number of labels); a mismatch raises.
    name : str
        Argument name used in error messages.
    probability : bool
        When True the values must lie in [0, 1].
    """
    arr = np.asarray(score, dtype=float) if not isinstance(score, np.ndarray) else score.astype(float)
    if arr.ndim == 2 and arr.shape[1] == 2:
        raise ValueError(
            f"{name} has two columns (looks like predict_proba output); pass the positive-class "
            f"column, e.g. {name}[:, 1]."
        )
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one score per case); got shape {arr.shape}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(
            f"length mismatch: {name} has {arr.shape[0]} values but y_true has {n}; "
            "pass one score per labeled case, in the same order."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN/infinite value(s) (positions {idx}...); "
            "fix or drop those cases before evaluation."
        )
    if probability and ((arr < 0).any() or (arr > 1).any()):
        lo, hi = float(arr.min()), float(arr.max())
        raise ValueError(
            f"{name} must be probabilities in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]. "
            "Pass predict_proba(X)[:, 1], not decision_function or a Rad-score."
        )
    return arr


def check_level(level: float, name: str = "level") -> float:
    """Return a confidence level strictly between 0 and 1."""
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (e.g. 0.95); got {level}.")
    return level


def check_choice(value, choices, name: str):
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {list(choices)}.")
    return value
