"""Leak-free feature selection steps, each a scikit-learn transformer.

Every step learns from the training rows it is fitted on and nothing else, so a
``Pipeline([ZScore(), UnivariateFilter(), CorrelationFilter(), LassoSelector(), model])``
cross-validated with patient-grouped folds re-runs the whole selection inside every fold.
All steps accept numpy arrays or pandas DataFrames, implement ``get_feature_names_out`` and
support ``set_output(transform="pandas")`` so feature names flow through a Pipeline.

The steps live in :mod:`.scaling` (ZScore), :mod:`.filters` (ICC, univariate and correlation
filters) and :mod:`.selectors` (LASSO, mRMR); :mod:`.base` holds their shared plumbing.

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

from sonorad.selection.base import make_grouped_cv
from sonorad.selection.filters import CorrelationFilter, ICCFilter, UnivariateFilter, benjamini_hochberg
from sonorad.selection.scaling import ZScore
from sonorad.selection.selectors import LassoSelector, MRMRSelector

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
