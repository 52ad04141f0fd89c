"""Leak-free feature selection steps, each a scikit-learn transformer.

Every step learns from the training rows it is fitted on and nothing else, so a
``Pipeline([ZScore(), UnivariateFilter(), CorrelationFilter(), LassoSelector(), model])``
cross-validated with patient-grouped folds re-runs the whole selection inside every fold.
All steps accept numpy arrays or pandas DataFrames, implement ``get_feature_names_out`` and
support ``set_output(transform="pandas")`` so feature names flow through a Pipeline.

Steps
-----
ZScore
    Standardise each column with the training mean and SD (constant columns get SD 1).
ICCFilter
    Keep features whose reproducibility ICC (from :mod:`sonorad.features.icc`) reaches a threshold.
UnivariateFilter
    Keep features whose Mann-Whitney U (or Welch t) test against the label has p below a
    threshold, optionally after Benjamini-Hochberg FDR correction.
CorrelationFilter
    Among features correlated above a threshold (Spearman or Pearson), keep the one more
    related to the label.
LassoSelector
    L1-penalised logistic regression (or LASSO on the 0/1 label) with lambda chosen by k-fold
    CV at the minimum CV deviance or by the 1-SE rule; the coefficient path is kept for plotting.
MRMRSelector
    Minimum-redundancy maximum-relevance ranking (F-statistic relevance over mean absolute
    correlation redundancy), keeping a fixed number of features.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "ZScore",
    "ICCFilter",
    "UnivariateFilter",
    "CorrelationFilter",
    "LassoSelector",
    "MRMRSelector",
    "make_grouped_cv",
    "benjamini_hochberg",
]


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


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (FDR), same order as the input.

    Parameters
    ----------
    p_values : array-like of shape (n,)

    Returns
    -------
    ndarray of shape (n,)
        Adjusted p-values, monotone in the raw p-values and capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    n = p.size
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


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


class ICCFilter(_PandasParamsState, _Selector):
    """Keep features whose reproducibility ICC is at least ``threshold``.

    Parameters
    ----------
    icc : pandas.Series, mapping, DataFrame or array-like
        ICC per feature. A Series / mapping is indexed by feature name; a DataFrame (such as
        :func:`sonorad.features.icc.icc_table`'s) is read from its ``column`` column with feature
        names in a ``feature`` column or the index; an array is aligned with the columns of ``X``.
    threshold : float, default=0.75
        Minimum ICC, the field's "good reliability" cut-off for ICC(3,1).
    missing : {"drop", "keep", "error"}, default="drop"
        What to do with a feature that has no ICC value (``"keep"`` suits fused tables where
        deep features have no ICC).
    column : str, default="icc"
        Column of an ICC DataFrame to threshold (``"ci_low"`` for the stricter lower 95% bound).

    Attributes
    ----------
    icc_ : ndarray of shape (n_features_in_,)
        ICC aligned with the input columns (NaN when missing).
    support_ : ndarray of bool
    """

    _pandas_params = ("icc",)

    def __init__(self, icc=None, threshold: float = 0.75, missing: str = "drop", column: str = "icc"):
        self.icc = icc
        self.threshold = threshold
        self.missing = missing
        self.column = column

    def _icc_series(self):
        icc = self.icc
        if icc is None:
            raise ValueError("ICCFilter: icc is None. Fix: pass the ICC table from sonorad.features.icc.")
        if isinstance(icc, pd.DataFrame):
            col = self.column if self.column in icc.columns else None
            if col is None:
                raise ValueError(
                    f"ICCFilter: the ICC table has no {self.column!r} column (columns: {list(icc.columns)[:8]}). "
                    "Fix: pass sonorad.features.icc.icc_table's output, or a Series of ICC by feature."
                )
            index = icc["feature"] if "feature" in icc.columns else icc.index
            return pd.Series(icc[col].to_numpy(dtype=float), index=index.astype(str))
        if isinstance(icc, pd.Series):
            return icc.astype(float)
        if isinstance(icc, dict):
            return pd.Series(icc, dtype=float)
        return None

    def fit(self, X, y=None):
        if self.missing not in ("drop", "keep", "error"):
            raise ValueError(f"ICCFilter: missing={self.missing!r}; choose 'drop', 'keep' or 'error'.")
        X, _ = self._validate(X)
        series = self._icc_series()
        if series is None:
            values = np.asarray(self.icc, dtype=float).ravel()
            if values.size != X.shape[1]:
                raise ValueError(
                    f"ICCFilter: {values.size} ICC values for {X.shape[1]} columns. "
                    "Fix: pass the ICC as a Series indexed by feature name."
                )
        else:
            if not hasattr(self, "feature_names_in_"):
                raise ValueError(
                    "ICCFilter: an ICC table by feature name needs X as a DataFrame with feature "
                    "columns. Fix: pass a DataFrame, or the ICC as an array aligned with X's columns."
                )
            values = series.reindex(self.feature_names_in_).to_numpy(dtype=float)
        absent = np.isnan(values)
        if absent.any() and self.missing == "error":
            names = self._names(X.shape[1])[absent]
            raise ValueError(
                f"ICCFilter: no ICC for {absent.sum()} feature(s), e.g. {list(names[:5])}. "
                "Fix: recompute the ICC table on the same parameter file, or use missing='drop'."
            )
        self.icc_ = values
        keep_missing = self.missing == "keep"
        self.support_ = np.where(absent, keep_missing, values >= self.threshold)
        return self


class UnivariateFilter(_Selector):
    """Keep features that differ between the two classes (Mann-Whitney U or Welch t-test).

    Parameters
    ----------
    test : {"mannwhitney", "ttest"}, default="mannwhitney"
        Two-sided Mann-Whitney U test or Welch's unequal-variance t-test.
    alpha : float, default=0.05
        Keep features with p (or FDR-adjusted p) below ``alpha``.
    fdr : bool, default=False
        Adjust p-values with Benjamini-Hochberg before thresholding.
    min_features : int, default=1
        When fewer features pass, keep this many with the smallest p-values, so that a
        pipeline never runs out of features inside a cross-validation fold.
    max_features : int or None, default=None
        Keep at most this many (smallest p first).

    Attributes
    ----------
    pvalues_ : ndarray of shape (n_features_in_,)
        Raw two-sided p-values.
    pvalues_adjusted_ : ndarray
        BH-adjusted p-values (equal to ``pvalues_`` when ``fdr=False``).
    support_ : ndarray of bool
    """

    def __init__(self, test: str = "mannwhitney", alpha: float = 0.05, fdr: bool = False,
                 min_features: int = 1, max_features: int | None = None):
        self.test = test
        self.alpha = alpha
        self.fdr = fdr
        self.min_features = min_features
        self.max_features = max_features

    def fit(self, X, y):
        from scipy import stats

        if self.test not in ("mannwhitney", "ttest"):
            raise ValueError(f"UnivariateFilter: test={self.test!r}; choose 'mannwhitney' or 'ttest'.")
        X, y = self._validate(X, y)
        a, b = X[y == 1], X[y == 0]
        with np.errstate(all="ignore"):
            if self.test == "mannwhitney":
                p = stats.mannwhitneyu(a, b, alternative="two-sided", axis=0).pvalue
            else:
                p = stats.ttest_ind(a, b, equal_var=False, axis=0).pvalue
        p = np.where(np.isfinite(p), p, 1.0)  # constant columns carry no evidence
        self.pvalues_ = p
        self.pvalues_adjusted_ = benjamini_hochberg(p) if self.fdr else p
        order = np.argsort(self.pvalues_adjusted_, kind="stable")
        keep = self.pvalues_adjusted_ < self.alpha
        n_keep = max(int(keep.sum()), min(self.min_features, X.shape[1]))
        if self.max_features is not None:
            n_keep = min(n_keep, self.max_features)
        support = np.zeros(X.shape[1], dtype=bool)
        support[order[:n_keep]] = True
        self.support_ = support
        return self


def _rank_columns(X):
    from scipy.stats import rankdata

    return rankdata(X, axis=0)


def _abs_corr_with(X, v):
    Xc = X - X.mean(axis=0)
    vc = v - v.mean()
    denom = np.sqrt((Xc**2).sum(axis=0) * (vc**2).sum())
    with np.errstate(all="ignore"):
        r = (Xc * vc[:, None]).sum(axis=0) / denom
    return np.abs(np.nan_to_num(r))


class CorrelationFilter(_Selector):
    """Drop redundant features: of each pair with ``|r| > threshold``, keep the one more related to y.

    Features are visited from most to least related to the label (``|r|`` with y, same
    correlation type); a feature is kept when its ``|r|`` with every feature already kept is at
    most ``threshold``. Hence of any highly correlated pair the member more related to the label
    survives, which is the rule radiomics papers describe.

    Parameters
    ----------
    method : {"spearman", "pearson"}, default="spearman"
    threshold : float, default=0.9

    Attributes
    ----------
    relevance_ : ndarray of shape (n_features_in_,)
        ``|r|`` of each feature with the label.
    support_ : ndarray of bool
    """

    def __init__(self, method: str = "spearman", threshold: float = 0.9):
        self.method = method
        self.threshold = threshold

    def fit(self, X, y):
        if self.method not in ("spearman", "pearson"):
            raise ValueError(f"CorrelationFilter: method={self.method!r}; choose 'spearman' or 'pearson'.")
        X, y = self._validate(X, y)
        Z = _rank_columns(X) if self.method == "spearman" else X
        yv = _rank_columns(y[:, None].astype(float))[:, 0] if self.method == "spearman" else y.astype(float)
        self.relevance_ = _abs_corr_with(Z, yv)
        Zc = Z - Z.mean(axis=0)
        norms = np.sqrt((Zc**2).sum(axis=0))
        norms[norms == 0] = np.inf  # constant columns correlate with nothing
        Zn = Zc / norms
        kept: list[int] = []
        for j in np.argsort(-self.relevance_, kind="stable"):
            if kept and np.max(np.abs(Zn[:, kept].T @ Zn[:, j])) > self.threshold:
                continue
            kept.append(int(j))
        support = np.zeros(X.shape[1], dtype=bool)
        support[kept] = True
        self.support_ = support
        return self


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
