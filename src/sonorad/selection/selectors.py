"""Multivariable selectors: the cross-validated LASSO (with its coefficient path) and mRMR."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from sonorad.selection.base import _Selector, make_grouped_cv
from sonorad.selection.scaling import ZScore

__all__ = ["LassoSelector", "MRMRSelector"]


class LassoSelector(_Selector):
    """LASSO feature selection with lambda chosen by (patient-grouped) k-fold cross-validation.

    ``method="logistic"`` fits L1-penalised logistic regression (liblinear) over a grid of
    lambda = 1/C and scores each lambda by the mean held-out binomial deviance (or AUC);
    ``method="linear"`` fits the LASSO on the 0/1 label (``sklearn.linear_model.Lasso``) and
    scores by mean squared error, as many radiomics papers do with ``glmnet``/``LassoCV``.
    ``rule="min"`` takes the lambda with the best mean CV score, ``rule="1se"`` the largest
    lambda whose mean score is within one standard error of the best. The model is then refitted
    on all rows at that lambda; features with a non-zero coefficient are selected.

    Inputs should be on a common scale: put :class:`ZScore` before this step, or set
    ``standardize=True`` to z-score internally while passing the selected columns through
    unchanged (useful when the next step wants the predictors in their own units).

    Parameters
    ----------
    method : {"logistic", "linear"}, default="logistic"
    rule : {"min", "1se"}, default="min"
    n_lambdas : int, default=30
        Size of the log-spaced lambda grid.
    lambdas : array-like or None
        Explicit lambda grid (overrides ``n_lambdas``). For "logistic" lambda = 1/C.
    cv : int, default=10
        Folds (stratified, grouped by ``groups`` when given to :meth:`fit`).
    scoring : {"deviance", "auc"}, default="deviance"
        CV criterion for ``method="logistic"`` (``"linear"`` always uses MSE).
    min_features : int, default=1
        If the chosen lambda keeps fewer features, the smallest lambda on the path (from the
        chosen one downwards) that keeps at least this many is used instead.
    standardize : bool, default=False
        Fit on internally z-scored columns (training mean and SD); ``coef_`` is then per SD.
    max_iter : int, default=1000
    random_state : int, default=0
        Seed of the fold shuffling and of the solvers.

    Attributes
    ----------
    lambdas_ : ndarray of shape (n_lambdas,)
        Decreasing lambda grid (strongest penalty first).
    cv_mean_, cv_se_ : ndarray of shape (n_lambdas,)
        Mean and standard error over folds of the CV loss (deviance, 1 - AUC, or MSE: lower is better).
    lambda_min_, lambda_1se_, lambda_ : float
        Best lambda, 1-SE lambda, and the lambda used.
    coef_path_ : ndarray of shape (n_lambdas, n_features_in_)
        Coefficients refitted on all rows at every lambda (for the coefficient-path plot).
    coef_ : ndarray of shape (n_features_in_,)
        Coefficients at ``lambda_``; ``intercept_`` : float.
    support_ : ndarray of bool
    """

    def __init__(self, method: str = "logistic", rule: str = "min", n_lambdas: int = 30,
                 lambdas=None, cv: int = 10, scoring: str = "deviance", min_features: int = 1,
                 standardize: bool = False, max_iter: int = 1000, random_state: int = 0):
        self.method = method
        self.rule = rule
        self.n_lambdas = n_lambdas
        self.lambdas = lambdas
        self.cv = cv
        self.scoring = scoring
        self.min_features = min_features
        self.standardize = standardize
        self.max_iter = max_iter
        self.random_state = random_state

    # -- grid and single fits -------------------------------------------------------------
    def _grid(self, X, y):
        if self.lambdas is not None:
            return np.sort(np.asarray(self.lambdas, dtype=float))[::-1]
        n = X.shape[0]
        if self.method == "logistic":
            # Above lambda_max = max|X^T (y - ybar)| every coefficient is zero (liblinear's
            # unscaled loss: lambda = 1/C on the summed log-loss).
            lam_max = np.max(np.abs(X.T @ (y - y.mean()))) or 1.0
        else:
            lam_max = (np.max(np.abs(X.T @ (y - y.mean()))) / n) or 1.0
        return np.logspace(np.log10(lam_max), np.log10(lam_max * 1e-3), self.n_lambdas)

    def _fit_one(self, X, y, lam):
        if self.method == "logistic":
            from sklearn.linear_model import LogisticRegression

            # liblinear penalises the intercept as a feature of value intercept_scaling; a large
            # scaling makes that penalty negligible, as in glmnet where the intercept is free.
            model = LogisticRegression(l1_ratio=1.0, C=1.0 / lam, solver="liblinear",
                                       max_iter=self.max_iter, random_state=self.random_state,
                                       tol=1e-5, intercept_scaling=100.0)
            model.fit(X, y)
            return model.coef_.ravel().copy(), float(model.intercept_[0])
        from sklearn.linear_model import Lasso

        model = Lasso(alpha=lam, max_iter=self.max_iter * 10, random_state=self.random_state)
        model.fit(X, y)
        return model.coef_.ravel().copy(), float(model.intercept_)

    def _path(self, X, y, lambdas):
        return [self._fit_one(X, y, lam) for lam in lambdas]

    def _loss(self, coef, intercept, X, y):
        eta = X @ coef + intercept
        if self.method == "linear":
            return float(np.mean((y - eta) ** 2))
        if self.scoring == "auc":
            from sklearn.metrics import roc_auc_score

            return 1.0 - roc_auc_score(y, eta) if len(np.unique(y)) == 2 else np.nan
        # binomial deviance per case: -2 mean log-likelihood, computed stably
        return float(np.mean(2 * (np.logaddexp(0, eta) - y * eta)))

    # -- fit ------------------------------------------------------------------------------
    def fit(self, X, y, groups=None):
        """Fit the CV path and select features.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Binary label.
        groups : array-like of shape (n_samples,) or None
            Patient ids for grouped folds.
        """
        if self.method not in ("logistic", "linear"):
            raise ValueError(f"LassoSelector: method={self.method!r}; choose 'logistic' or 'linear'.")
        if self.rule not in ("min", "1se"):
            raise ValueError(f"LassoSelector: rule={self.rule!r}; choose 'min' or '1se'.")
        if self.scoring not in ("deviance", "auc"):
            raise ValueError(f"LassoSelector: scoring={self.scoring!r}; choose 'deviance' or 'auc'.")
        X, y = self._validate(X, y)
        if self.standardize:
            X = ZScore().fit_transform(X)
        yf = y.astype(float)
        lambdas = self._grid(X, yf)
        folds = make_grouped_cv(self.cv, y, groups, random_state=self.random_state)
        # the CV folds' paths and the full-data path are independent fits: they run on the workers
        # of the enclosing joblib configuration (one process when there is none)
        from joblib import Parallel, delayed

        paths = Parallel()(delayed(self._path)(X[rows], yf[rows], lambdas)
                           for rows in [*(tr for tr, _ in folds), slice(None)])  # slice: no copy of X
        losses = np.full((len(folds), len(lambdas)), np.nan)
        for f, (_, te) in enumerate(folds):
            for k, (coef, b0) in enumerate(paths[f]):
                losses[f, k] = self._loss(coef, b0, X[te], yf[te])
        mean = np.nanmean(losses, axis=0)
        se = np.nanstd(losses, axis=0, ddof=1) / np.sqrt(np.sum(~np.isnan(losses), axis=0))
        best = int(np.nanargmin(mean))
        within = np.flatnonzero(mean <= mean[best] + se[best])
        one_se = int(within.min())  # lambdas decrease: smallest index = largest lambda
        self.lambdas_ = lambdas
        self.cv_loss_ = losses
        self.cv_mean_ = mean
        self.cv_se_ = se
        self.lambda_min_ = float(lambdas[best])
        self.lambda_1se_ = float(lambdas[one_se])
        path = paths[-1]
        self.coef_path_ = np.vstack([c for c, _ in path])
        intercepts = np.array([b for _, b in path])
        chosen = best if self.rule == "min" else one_se
        need = min(self.min_features, X.shape[1])
        while np.count_nonzero(self.coef_path_[chosen]) < need and chosen < len(lambdas) - 1:
            chosen += 1
        self.lambda_index_ = chosen
        self.lambda_ = float(lambdas[chosen])
        self.coef_ = self.coef_path_[chosen]
        self.intercept_ = float(intercepts[chosen])
        self.support_ = self.coef_ != 0
        if not self.support_.any():
            self.support_[int(np.argmax(np.abs(self.coef_path_[-1])))] = True
        return self

    def path_frame(self) -> pd.DataFrame:
        """The CV curve and coefficient path, one row per lambda, for plotting.

        Returns
        -------
        DataFrame
            Columns ``lambda``, ``log_lambda``, ``cv_mean``, ``cv_se``, ``n_nonzero``, then one
            column per feature with its coefficient.
        """
        check_is_fitted(self, "coef_path_")
        names = self._names(self.n_features_in_)
        frame = pd.DataFrame(self.coef_path_, columns=names)
        frame.insert(0, "n_nonzero", np.count_nonzero(self.coef_path_, axis=1))
        frame.insert(0, "cv_se", self.cv_se_)
        frame.insert(0, "cv_mean", self.cv_mean_)
        frame.insert(0, "log_lambda", np.log(self.lambdas_))
        frame.insert(0, "lambda", self.lambdas_)
        return frame


class MRMRSelector(_Selector):
    """Minimum-redundancy maximum-relevance selection of ``n_features`` features.

    Greedy: the first feature has the largest ANOVA F with the label; each next one maximises
    F / (mean |Pearson r| with the features already chosen), the "FCQ" variant of mRMR.

    Parameters
    ----------
    n_features : int, default=10

    Attributes
    ----------
    ranking_ : ndarray of int
        Column indices in the order chosen.
    support_ : ndarray of bool
    """

    def __init__(self, n_features: int = 10):
        self.n_features = n_features

    def fit(self, X, y):
        from sklearn.feature_selection import f_classif

        if not isinstance(self.n_features, numbers.Integral) or self.n_features < 1:
            raise ValueError(f"MRMRSelector: n_features={self.n_features!r}; give a positive integer.")
        X, y = self._validate(X, y)
        with np.errstate(all="ignore"):
            relevance = np.nan_to_num(f_classif(X, y)[0])
        Xc = X - X.mean(axis=0)
        norms = np.sqrt((Xc**2).sum(axis=0))
        norms[norms == 0] = np.inf
        Xn = Xc / norms
        k = min(self.n_features, X.shape[1])
        chosen = [int(np.argmax(relevance))]
        redundancy_sum = np.abs(Xn.T @ Xn[:, chosen[0]])
        while len(chosen) < k:
            score = relevance / np.maximum(redundancy_sum / len(chosen), 1e-12)
            score[chosen] = -np.inf
            j = int(np.argmax(score))
            chosen.append(j)
            redundancy_sum += np.abs(Xn.T @ Xn[:, j])
        self.ranking_ = np.array(chosen)
        support = np.zeros(X.shape[1], dtype=bool)
        support[chosen] = True
        self.support_ = support
        return self
