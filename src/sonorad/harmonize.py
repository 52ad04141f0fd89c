"""ComBat harmonisation of feature tables across centers, as a scikit-learn transformer.

The center of each row travels as a column of ``X`` (``center_column``, default ``"center"``),
so the harmoniser can sit first in a Pipeline and be cross-validated like any other step; the
column is dropped from the output. Labels are never used: ComBat is fitted with the center as
the only covariate, so it cannot leak the outcome (and it could not be applied to a cohort whose
labels are unknown otherwise).

Fitting (training centers) uses ``neuroCombat``: per feature, data are standardised with the
pooled training mean and variance, and each center's location ``gamma*`` and scale ``delta*``
are estimated with empirical-Bayes shrinkage across features. A training center is then
adjusted with its own estimates (as ``neuroCombatFromTraining`` does).

Unseen (external) centers, ``unseen=``:

``"estimate"`` (default)
    The new center's location and scale are estimated from its own rows only (its features,
    never its labels), on the training reference scale, with the same empirical-Bayes shrinkage
    across features; the rows are then mapped onto the pooled training reference. This is the
    "ComBat for a new site" approach: label-free, and it never refits the training estimates.
    It needs at least ``min_unseen`` rows from the new center.
``"reference"``
    Rows of an unseen center are passed through unchanged (they are assumed to be already on
    the pooled training reference scale).
``"error"``
    Raise.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["ComBatHarmonizer"]


def _eb_location_scale(s_data: np.ndarray, mean_only: bool, eb: bool):
    """Location/scale of one batch of standardised data (features x samples), EB-shrunk."""
    from neuroCombat.neuroCombat import aprior, bprior, it_sol, postmean

    gamma_hat = s_data.mean(axis=1)
    delta_hat = np.ones_like(gamma_hat) if mean_only else s_data.var(axis=1, ddof=1)
    delta_hat = np.where(delta_hat > 0, delta_hat, 1.0)
    if not eb:
        return gamma_hat, delta_hat
    gamma_bar, t2 = gamma_hat.mean(), gamma_hat.var(ddof=1)
    if mean_only:
        return postmean(gamma_hat, gamma_bar, s_data.shape[1], 1.0, t2), delta_hat
    return it_sol(s_data, gamma_hat, delta_hat, gamma_bar, t2, aprior(delta_hat), bprior(delta_hat))


class ComBatHarmonizer(TransformerMixin, BaseEstimator):
    """ComBat location/scale harmonisation of features across centers.

    Parameters
    ----------
    center_column : str, default="center"
        Column of ``X`` holding each row's center; removed from the output.
    unseen : {"estimate", "reference", "error"}, default="estimate"
        Handling of centers absent from training (see module docstring).
    eb : bool, default=True
        Empirical-Bayes shrinkage of the center parameters.
    parametric : bool, default=True
        Parametric (vs non-parametric) EB priors at fit.
    mean_only : bool, default=False
        Adjust only the location, not the scale.
    min_unseen : int, default=5
        Minimum rows of an unseen center for ``unseen="estimate"``.

    Attributes
    ----------
    centers_ : ndarray
        Training centers (as strings).
    stand_mean_, var_pooled_ : ndarray of shape (n_features,)
        Pooled training reference.
    gamma_, delta_ : ndarray of shape (n_centers, n_features)
        Location and scale of each training center.
    harmonized_ : ndarray of bool
        Features harmonised (constant-in-training features pass through).
    """

    def __init__(self, center_column: str = "center", unseen: str = "estimate", eb: bool = True,
                 parametric: bool = True, mean_only: bool = False, min_unseen: int = 5):
        self.center_column = center_column
        self.unseen = unseen
        self.eb = eb
        self.parametric = parametric
        self.mean_only = mean_only
        self.min_unseen = min_unseen

    def _split(self, X):
        if not isinstance(X, pd.DataFrame) or self.center_column not in X.columns:
            raise ValueError(
                f"ComBatHarmonizer needs a DataFrame with a {self.center_column!r} column giving each "
                "row's center. Fix: add the center column (from cases.csv) to the feature table."
            )
        centers = X[self.center_column]
        if centers.isna().any():
            raise ValueError(
                f"Rows {list(X.index[centers.isna()])[:5]} have no center. Fix: fill the center column."
            )
        features = X.drop(columns=[self.center_column])
        values = features.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            rows = X.index[~np.isfinite(values).all(axis=1)]
            raise ValueError(f"Non-finite feature values in case(s) {list(rows)[:5]}. Fix: impute or drop them.")
        return values, centers.astype(str).to_numpy(), features.columns

    def fit(self, X, y=None):
        """Estimate the training centers' parameters (``y`` is ignored, never used)."""
        from neuroCombat import neuroCombat

        if self.unseen not in ("estimate", "reference", "error"):
            raise ValueError(f"ComBatHarmonizer: unseen={self.unseen!r}; choose 'estimate', 'reference' or 'error'.")
        values, centers, columns = self._split(X)
        levels, counts = np.unique(centers, return_counts=True)
        if len(levels) < 2 or counts.min() < 2:
            raise ValueError(
                f"ComBat needs at least 2 training centers with 2+ rows each; got {dict(zip(levels, counts))}. "
                "Fix: turn harmonisation off or add centers."
            )
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)
        sd = values.std(axis=0)
        self.harmonized_ = sd > 0
        data = values[:, self.harmonized_].T
        covars = pd.DataFrame({"batch": centers})
        with contextlib.redirect_stdout(io.StringIO()):  # neuroCombat prints progress
            out = neuroCombat(dat=data, covars=covars, batch_col="batch", eb=self.eb,
                              parametric=self.parametric, mean_only=self.mean_only)
        est = out["estimates"]
        # neuroCombat recodes batches to 0..k-1 in sorted order, the order of ``levels``.
        self.centers_ = levels
        self.stand_mean_ = np.asarray(est["stand.mean"])[:, 0] + np.asarray(est["mod.mean"]).mean(axis=1)
        self.var_pooled_ = np.asarray(est["var.pooled"]).ravel()
        self.gamma_ = np.asarray(est["gamma.star"], dtype=float)
        self.delta_ = np.asarray(est["delta.star"], dtype=float)
        return self

    def _adjust(self, data, gamma, delta):
        sd = np.sqrt(self.var_pooled_)
        s = (data - self.stand_mean_) / sd
        return (s - gamma) / np.sqrt(delta) * sd + self.stand_mean_

    def transform(self, X) -> pd.DataFrame:
        """Harmonised features (without the center column), indexed like ``X``."""
        check_is_fitted(self, "gamma_")
        values, centers, columns = self._split(X)
        if list(columns) != list(self.feature_names_in_):
            raise ValueError("ComBatHarmonizer: the feature columns differ from those seen in fit. "
                             "Fix: pass the same feature table layout.")
        out = values.copy()
        sub = values[:, self.harmonized_]
        adjusted = sub.copy()
        for center in np.unique(centers):
            rows = centers == center
            if center in self.centers_:
                k = int(np.flatnonzero(self.centers_ == center)[0])
                adjusted[rows] = self._adjust(sub[rows], self.gamma_[k], self.delta_[k])
                continue
            if self.unseen == "error":
                raise ValueError(
                    f"Center {center!r} was not in the training centers {list(self.centers_)}. "
                    "Fix: use unseen='estimate' or 'reference'."
                )
            if self.unseen == "reference":
                continue
            if rows.sum() < self.min_unseen:
                raise ValueError(
                    f"Center {center!r} has {rows.sum()} row(s); estimating its ComBat parameters needs "
                    f"at least {self.min_unseen}. Fix: use unseen='reference' for it, or harmonise off."
                )
            s = ((sub[rows] - self.stand_mean_) / np.sqrt(self.var_pooled_)).T
            gamma, delta = _eb_location_scale(s, self.mean_only, self.eb)
            adjusted[rows] = self._adjust(sub[rows], gamma, delta)
        out[:, self.harmonized_] = adjusted
        return pd.DataFrame(out, index=X.index, columns=columns)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_names_in_")
        return self.feature_names_in_.copy()
