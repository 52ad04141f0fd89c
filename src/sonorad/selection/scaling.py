"""Standardisation of features with the training rows' mean and SD."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["ZScore"]


class ZScore(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardise every column with the mean and SD of the training rows.

    Unlike a plain ``StandardScaler`` it never divides by zero: a column constant in training
    gets SD 1 (so it maps to 0), and the SD is the sample SD (``ddof=1``) as in R's ``scale``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
    """

    def __init__(self, ddof: int = 1):
        self.ddof = ddof

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite=True)
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0, ddof=self.ddof) if X.shape[0] > self.ddof else np.ones(X.shape[1])
        self.scale_ = np.where(sd > 0, sd, 1.0)
        return self

    def transform(self, X):
        check_is_fitted(self, "mean_")
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=True)
        return (X - self.mean_) / self.scale_
