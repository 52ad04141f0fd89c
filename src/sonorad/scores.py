"""Rad-score and DL-score: the LASSO signature of an imaging feature table.

A score is fitted on the training cohort only: z-score -> univariate filter -> correlation
filter -> LASSO (see :mod:`sonorad.selection`). The score of a case is the LASSO linear
predictor on the z-scored selected features::

    Rad-score = b0 + sum_i b_i * (x_i - m_i) / s_i

with ``m_i``, ``s_i`` the training mean and SD of feature ``i``. :meth:`RadScore.formula` prints
it either on that standardised scale (with the means and SDs) or folded onto the raw feature
scale (``b0' = b0 - sum b_i m_i / s_i``, ``b_i' = b_i / s_i``); both give exactly the values of
:meth:`RadScore.transform`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data

from sonorad.selection import CorrelationFilter, ICCFilter, LassoSelector, UnivariateFilter, ZScore
from sonorad.selection.base import _binary_labels, _PandasParamsState

__all__ = ["RadScore", "DLScore"]


class RadScore(_PandasParamsState, ClassifierMixin, TransformerMixin, BaseEstimator):
    """LASSO signature of radiomics features, usable as a Pipeline step or as a classifier.

    ``transform`` returns one column named ``name`` (the score, a log-odds for
    ``method="logistic"``); ``decision_function`` returns the same values as a 1D array and
    ``predict_proba`` their logistic transform (for ``method="linear"`` the score is clipped
    to [0, 1] instead).

    Parameters
    ----------
    name : str, default="rad_score"
        Output column name.
    label : str, default="Rad-score"
        Name used in :meth:`formula`.
    icc : DataFrame, Series or None, default=None
        ICC table (:func:`sonorad.features.icc.icc_table`); when given, features with
        ICC < ``icc_threshold`` are dropped first (:class:`~sonorad.selection.ICCFilter`).
    icc_threshold : float, default=0.75
    icc_missing : {"keep", "drop", "error"}, default="keep"
        Features absent from the ICC table (e.g. deep features) are kept by default.
    test : {"mannwhitney", "ttest"}, default="mannwhitney"
    alpha : float, default=0.05
        Univariate p threshold; ``None`` skips the univariate filter.
    fdr : bool, default=False
    max_univariate : int or None, default=None
        Keep at most this many features after the univariate filter.
    correlation : {"spearman", "pearson"}, default="spearman"
    correlation_threshold : float or None, default=0.9
        ``None`` skips the correlation filter.
    method : {"logistic", "linear"}, default="logistic"
    rule : {"min", "1se"}, default="min"
    n_lambdas : int, default=30
    cv : int, default=10
    random_state : int, default=0

    Attributes
    ----------
    selection_ : Pipeline
        The fitted ZScore -> [ICCFilter] -> UnivariateFilter -> CorrelationFilter steps.
    lasso_ : LassoSelector
        The fitted LASSO (with its CV curve and coefficient path).
    features_ : list of str
        Features with a non-zero coefficient.
    coef_ : ndarray
        Coefficients on the z-scored features, aligned with ``features_``.
    intercept_ : float
    mean_, sd_ : ndarray
        Training mean and SD of ``features_`` (the z-scoring applied before the formula).
    """

    _pandas_params = ("icc",)

    def __init__(self, name: str = "rad_score", label: str = "Rad-score", icc=None, icc_threshold: float = 0.75,
                 icc_missing: str = "keep", test: str = "mannwhitney",
                 alpha: float | None = 0.05, fdr: bool = False, max_univariate: int | None = None,
                 correlation: str = "spearman", correlation_threshold: float | None = 0.9,
                 method: str = "logistic", rule: str = "min", n_lambdas: int = 30, cv: int = 10,
                 random_state: int = 0):
        self.name = name
        self.label = label
        self.icc = icc
        self.icc_threshold = icc_threshold
        self.icc_missing = icc_missing
        self.test = test
        self.alpha = alpha
        self.fdr = fdr
        self.max_univariate = max_univariate
        self.correlation = correlation
        self.correlation_threshold = correlation_threshold
        self.method = method
        self.rule = rule
        self.n_lambdas = n_lambdas
        self.cv = cv
        self.random_state = random_state

    def _selection(self) -> Pipeline:
        steps = [("zscore", ZScore())]
        if self.icc is not None:
            steps.append(("icc", ICCFilter(self.icc, threshold=self.icc_threshold, missing=self.icc_missing)))
        if self.alpha is not None:
            steps.append(("univariate", UnivariateFilter(test=self.test, alpha=self.alpha, fdr=self.fdr,
                                                         max_features=self.max_univariate)))
        if self.correlation_threshold is not None:
            steps.append(("correlation", CorrelationFilter(method=self.correlation,
                                                           threshold=self.correlation_threshold)))
        return Pipeline(steps)

    def fit(self, X, y, groups=None):
        """Select features and fit the LASSO signature on the training rows.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Binary label.
        groups : array-like or None
            Patient ids for the LASSO's grouped CV folds.
        """
        X = validate_data(self, X, dtype=np.float64)
        y = _binary_labels(y, f"{type(self).__name__} ({self.name})")
        self.classes_ = np.array([0, 1])
        names = np.asarray(getattr(self, "feature_names_in_", [f"x{i}" for i in range(X.shape[1])]),
                           dtype=object)
        frame = pd.DataFrame(X, columns=names)
        self.selection_ = self._selection().set_output(transform="pandas").fit(frame, y)
        Z = self.selection_.transform(frame)
        self.lasso_ = LassoSelector(method=self.method, rule=self.rule, n_lambdas=self.n_lambdas,
                                    cv=self.cv, random_state=self.random_state)
        self.lasso_.fit(Z, y, groups=groups)
        keep = self.lasso_.support_
        self.features_ = list(Z.columns[keep])
        self.coef_ = self.lasso_.coef_[keep]
        self.intercept_ = self.lasso_.intercept_
        zscore = self.selection_.named_steps["zscore"]
        index = [list(names).index(f) for f in self.features_]
        self.mean_ = zscore.mean_[index]
        self.sd_ = zscore.scale_[index]
        self.feature_index_ = np.asarray(index, dtype=int)
        return self

    def decision_function(self, X) -> np.ndarray:
        """The score of every row, shape (n_samples,)."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Z = (X[:, self.feature_index_] - self.mean_) / self.sd_
        return Z @ self.coef_ + self.intercept_

    def transform(self, X):
        """One column, ``name``: the score (a DataFrame indexed like X when X is one)."""
        values = self.decision_function(X)
        if isinstance(X, pd.DataFrame):
            return pd.DataFrame({self.name: values}, index=X.index)
        return values[:, None]

    def get_feature_names_out(self, input_features=None):
        return np.array([self.name], dtype=object)

    def predict_proba(self, X) -> np.ndarray:
        """Two columns: P(class 0), P(class 1) from the score."""
        s = self.decision_function(X)
        p = 1.0 / (1.0 + np.exp(-s)) if self.method == "logistic" else np.clip(s, 0.0, 1.0)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def coefficients(self) -> pd.DataFrame:
        """Coefficient table: feature, coef (z-scored), mean, sd, coef_raw; first row the intercept."""
        check_is_fitted(self, "coef_")
        raw = self.coef_ / self.sd_
        rows = [("(intercept)", self.intercept_, np.nan, np.nan,
                 self.intercept_ - float(np.sum(self.coef_ * self.mean_ / self.sd_)))]
        rows += list(zip(self.features_, self.coef_, self.mean_, self.sd_, raw))
        return pd.DataFrame(rows, columns=["feature", "coef", "mean", "sd", "coef_raw"])

    def formula(self, scale: str = "raw", digits: int = 6) -> str:
        """The score as a printable formula.

        Parameters
        ----------
        scale : {"raw", "standardized"}, default="raw"
            ``"raw"``: coefficients apply to the feature values as extracted.
            ``"standardized"``: coefficients apply to ``(x - mean) / sd`` with the training mean
            and SD listed under the formula.
        digits : int
            Significant digits printed.
        """
        table = self.coefficients()
        fmt = f"{{:.{digits}g}}"
        if scale == "raw":
            b0, terms = table["coef_raw"].iloc[0], zip(table["coef_raw"].iloc[1:], table["feature"].iloc[1:])
            text = f"{self.label} = {fmt.format(b0)}"
            for b, f in terms:
                text += f" {'-' if b < 0 else '+'} {fmt.format(abs(b))} × {f}"
            return text
        if scale != "standardized":
            raise ValueError(f"formula: scale={scale!r}; choose 'raw' or 'standardized'.")
        text = f"{self.label} = {fmt.format(self.intercept_)}"
        for b, f in zip(self.coef_, self.features_):
            text += f" {'-' if b < 0 else '+'} {fmt.format(abs(b))} × z({f})"
        text += "\nwhere z(x) = (x - mean) / sd with the training cohort's values:"
        for f, m, s in zip(self.features_, self.mean_, self.sd_):
            text += f"\n  {f}: mean = {fmt.format(m)}, sd = {fmt.format(s)}"
        return text


class DLScore(RadScore):
    """The same LASSO signature built from deep (CNN) features; output column ``dl_score``."""

    def __init__(self, name: str = "dl_score", label: str = "DL-score", icc=None, icc_threshold: float = 0.75,
                 icc_missing: str = "keep", test: str = "mannwhitney",
                 alpha: float | None = 0.05, fdr: bool = False, max_univariate: int | None = None,
                 correlation: str = "spearman", correlation_threshold: float | None = 0.9,
                 method: str = "logistic", rule: str = "min", n_lambdas: int = 30, cv: int = 10,
                 random_state: int = 0):
        super().__init__(name=name, label=label, icc=icc, icc_threshold=icc_threshold,
                         icc_missing=icc_missing, test=test, alpha=alpha, fdr=fdr,
                         max_univariate=max_univariate, correlation=correlation,
                         correlation_threshold=correlation_threshold, method=method, rule=rule,
                         n_lambdas=n_lambdas, cv=cv, random_state=random_state)
