"""Feature filters: reproducibility (ICC), univariate association with the label and redundancy
(correlation), each fitted on the training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sonorad.selection.base import _PandasParamsState, _Selector

__all__ = ["ICCFilter", "UnivariateFilter", "CorrelationFilter", "benjamini_hochberg"]


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
