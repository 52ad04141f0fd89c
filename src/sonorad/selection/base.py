"""What every selection step shares: binary labels, the patient-grouped folds, the support mask and
persistence of pandas parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["make_grouped_cv"]


def _binary_labels(y, where: str) -> np.ndarray:
    """Return ``y`` as a 0/1 int array, or raise naming the step and what to fix."""
    y = np.asarray(y).ravel()
    classes = np.unique(y[~pd.isna(y)]) if y.dtype == object else np.unique(y)
    if len(classes) != 2 or pd.isna(y).any():
        raise ValueError(
            f"{where}: the label must be binary (two classes, no missing values); got classes "
            f"{list(classes)[:5]}. Fix: encode the label as 0/1 and drop cases without a label."
        )
    return (y == classes[1]).astype(int)


def make_grouped_cv(n_splits: int, y, groups=None, *, random_state=0):
    """Return the folds of a stratified, patient-grouped k-fold split.

    Parameters
    ----------
    n_splits : int
        Number of folds; lowered to the size of the smallest class when that is smaller.
    y : array-like of shape (n_samples,)
        Binary labels.
    groups : array-like of shape (n_samples,) or None
        Patient ids; every image of a patient lands in the same fold. ``None`` treats each row as
        its own patient.
    random_state : int
        Seed of the fold shuffling.

    Returns
    -------
    list of (train_index, test_index)
    """
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(y).ravel()
    _, counts = np.unique(y, return_counts=True)
    n_splits = int(min(n_splits, counts.min()))
    if n_splits < 2:
        raise ValueError(
            "Cross-validation needs at least 2 cases of each class in the training cohort; "
            f"class counts are {counts.tolist()}. Fix: add cases of the rare class."
        )
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    if len(groups) != len(y):
        raise ValueError(
            f"groups has {len(groups)} entries but y has {len(y)}. "
            "Fix: pass one patient id per row."
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros(len(y)), y, groups))


def _pandas_to_state(value):
    """A pandas Series / DataFrame parameter as plain lists and arrays (anything else unchanged).

    Model files are written with skops, which loads only trusted types and has no pandas
    support; an ICC table given as a parameter is stored in this plain form and rebuilt on load.
    """
    if isinstance(value, pd.Series):
        return {"__pandas__": "Series", "index": value.index.tolist(), "values": value.tolist(),
                "name": None if value.name is None else str(value.name)}
    if isinstance(value, pd.DataFrame):
        return {"__pandas__": "DataFrame", "index": value.index.tolist(),
                "columns": [str(c) for c in value.columns],
                "data": [value[c].tolist() for c in value.columns]}
    return value


def _pandas_from_state(value):
    """Inverse of :func:`_pandas_to_state`."""
    if isinstance(value, dict) and value.get("__pandas__") == "Series":
        return pd.Series(value["values"], index=value["index"], name=value["name"])
    if isinstance(value, dict) and value.get("__pandas__") == "DataFrame":
        return pd.DataFrame(dict(zip(value["columns"], value["data"])), index=value["index"],
                            columns=value["columns"])
    return value


class _PandasParamsState:
    """Mixin: store pandas parameters (``_pandas_params``) in plain form when persisted."""

    _pandas_params: tuple[str, ...] = ()

    def __getstate__(self):
        state = super().__getstate__()
        return {k: (_pandas_to_state(v) if k in self._pandas_params else v) for k, v in state.items()}

    def __setstate__(self, state):
        state = {k: (_pandas_from_state(v) if k in self._pandas_params else v) for k, v in state.items()}
        super().__setstate__(state)


class _Selector(SelectorMixin, BaseEstimator):
    """Shared plumbing: input validation and the boolean support mask ``support_``."""

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_

    def _validate(self, X, y=None, *, reset=True):
        if y is None:
            return validate_data(self, X, dtype=np.float64, reset=reset), None
        X = validate_data(self, X, dtype=np.float64, reset=reset)
        y = _binary_labels(y, type(self).__name__)
        if len(y) != X.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: X has {X.shape[0]} rows but y has {len(y)}. "
                "Fix: align features and labels on case_id."
            )
        return X, y

    def _names(self, n):
        names = getattr(self, "feature_names_in_", None)
        return np.asarray(names, dtype=object) if names is not None else np.array(
            [f"x{i}" for i in range(n)], dtype=object
        )
