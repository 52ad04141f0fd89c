"""Tests of sonorad.selection.filters: univariate, FDR, correlation and ICC filters against known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sonorad.selection import CorrelationFilter, ICCFilter, UnivariateFilter, benjamini_hochberg


def test_univariate_pvalues_match_scipy_and_recover_planted(planted):
    X, y, informative = planted()
    f = UnivariateFilter(alpha=0.01).fit(X, y)
    expected = stats.mannwhitneyu(X.iloc[y == 1, 0], X.iloc[y == 0, 0], alternative="two-sided").pvalue
    assert f.pvalues_[0] == pytest.approx(expected, rel=1e-12)
    kept = set(f.get_feature_names_out())
    assert set(informative) <= kept
    assert len(kept) <= len(informative) + 3
    t = UnivariateFilter(test="ttest", alpha=0.01).fit(X, y)
    expected_t = stats.ttest_ind(X.iloc[y == 1, 1], X.iloc[y == 0, 1], equal_var=False).pvalue
    assert t.pvalues_[1] == pytest.approx(expected_t, rel=1e-12)


def test_univariate_keeps_min_features_when_nothing_passes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 5))
    y = np.repeat([0, 1], 20)
    f = UnivariateFilter(alpha=1e-12, min_features=2).fit(X, y)
    assert f.get_support().sum() == 2
    assert set(np.flatnonzero(f.get_support())) == set(np.argsort(f.pvalues_)[:2])


def test_benjamini_hochberg_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)


def test_correlation_filter_keeps_member_more_related_to_label():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    strong = y + rng.normal(scale=0.5, size=100)
    weak_copy = strong + rng.normal(scale=0.15, size=100)  # |r| with strong > 0.9, less related to y
    noise = rng.normal(size=100)
    X = pd.DataFrame({"wavelet-LH_glcm_SumEntropy": weak_copy, "original_firstorder_Mean": strong,
                      "original_shape2D_Elongation": noise})
    f = CorrelationFilter(threshold=0.9).fit(X, y)
    assert list(f.get_feature_names_out()) == ["original_firstorder_Mean", "original_shape2D_Elongation"]
    assert list(CorrelationFilter(threshold=0.999).fit(X, y).get_feature_names_out()) == list(X.columns)
    assert CorrelationFilter(method="pearson", threshold=0.9).fit(X, y).get_support().sum() == 2


def test_icc_filter_series_frame_array_and_missing():
    X = pd.DataFrame(np.ones((4, 3)), columns=["a", "b", "c"])
    icc = pd.Series({"a": 0.9, "b": 0.5})
    assert list(ICCFilter(icc).fit(X).get_feature_names_out()) == ["a"]
    assert list(ICCFilter(icc, missing="keep").fit(X).get_feature_names_out()) == ["a", "c"]
    table = pd.DataFrame({"feature": ["a", "b", "c"], "icc": [0.74, 0.75, 0.99]})
    assert list(ICCFilter(table).fit(X).get_feature_names_out()) == ["b", "c"]
    assert ICCFilter([0.1, 0.8, 0.9]).fit(X.to_numpy()).get_support().tolist() == [False, True, True]
    with pytest.raises(ValueError, match="no ICC for 1 feature"):
        ICCFilter(icc, missing="error").fit(X)
    # the layout of sonorad.features.icc.icc_table: indexed by feature, icc / ci_low / ci_high / n
    icc_table = pd.DataFrame({"icc": [0.9, 0.8, 0.95], "ci_low": [0.8, 0.6, 0.9], "ci_high": [0.95, 0.9, 0.99],
                              "n": [30, 30, 30]}, index=pd.Index(["a", "b", "c"], name="feature"))
    assert list(ICCFilter(icc_table).fit(X).get_feature_names_out()) == ["a", "b", "c"]
    assert list(ICCFilter(icc_table, column="ci_low").fit(X).get_feature_names_out()) == ["a", "c"]
