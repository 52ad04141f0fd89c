"""Selection steps: known answers on synthetic tables with planted informative features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from sonorad.selection import (
    CorrelationFilter,
    ICCFilter,
    LassoSelector,
    MRMRSelector,
    UnivariateFilter,
    ZScore,
    benjamini_hochberg,
    make_grouped_cv,
)


def planted(n=150, p=60, informative=4, seed=0, sep=1.0):
    """Noise columns plus planted ones: column j < informative is shifted by ``sep`` in class 1."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    X = rng.normal(size=(n, p))
    X[:, :informative] += sep * y[:, None]
    names = [f"original_glcm_Feature{i}" for i in range(p)]
    return pd.DataFrame(X, columns=names, index=[f"c{i}" for i in range(n)]), y, names[:informative]


def test_zscore_known_values_and_constant_column():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [5.0, 5.0, 5.0]})
    z = ZScore().set_output(transform="pandas").fit(X)
    out = z.transform(X)
    np.testing.assert_allclose(out["a"], [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(out["b"], 0.0)
    assert list(out.columns) == ["a", "b"]
    np.testing.assert_allclose(z.transform(pd.DataFrame({"a": [4.0], "b": [6.0]})), [[2.0, 1.0]])


def test_univariate_pvalues_match_scipy_and_recover_planted():
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


def test_lasso_recovers_planted_features_and_keeps_path():
    X, y, informative = planted(n=200, p=40, informative=3, sep=1.5)
    Z = ZScore().set_output(transform="pandas").fit_transform(X)
    lasso = LassoSelector(rule="1se", n_lambdas=20, cv=5, random_state=0).fit(Z, y)
    kept = set(lasso.get_feature_names_out())
    assert set(informative) <= kept
    assert len(kept) <= len(informative) + 3
    assert lasso.lambda_1se_ >= lasso.lambda_min_
    frame = lasso.path_frame()
    assert frame.shape == (20, 5 + 40)
    assert np.all(np.diff(frame["lambda"]) < 0)
    assert frame["n_nonzero"].iloc[0] <= frame["n_nonzero"].iloc[-1]
    linear = LassoSelector(method="linear", n_lambdas=15, cv=5).fit(Z, y)
    assert set(informative) <= set(linear.get_feature_names_out())


def test_lasso_same_seed_same_selection_and_groups_used():
    X, y, _ = planted(n=120, p=20, seed=3)
    groups = np.arange(120) // 3
    a = LassoSelector(n_lambdas=10, cv=5, random_state=7).fit(X, y, groups=groups)
    b = LassoSelector(n_lambdas=10, cv=5, random_state=7).fit(X, y, groups=groups)
    np.testing.assert_array_equal(a.coef_path_, b.coef_path_)
    np.testing.assert_array_equal(a.cv_mean_, b.cv_mean_)


def test_grouped_cv_never_splits_a_patient():
    y = np.tile([0, 1], 30)
    groups = np.repeat(np.arange(20), 3)
    for train, test in make_grouped_cv(5, y, groups, random_state=0):
        assert not set(groups[train]) & set(groups[test])


def test_mrmr_prefers_informative_and_avoids_duplicates():
    X, y, informative = planted(n=200, p=30, informative=2, sep=2.0)
    X["dup"] = X[informative[0]] + 1e-6
    sel = MRMRSelector(n_features=2).fit(X, y)
    assert set(sel.get_feature_names_out()) == set(informative)


def test_pipeline_pandas_output_and_numpy_input():
    X, y, informative = planted(n=150, p=30, informative=3, sep=2.0)
    pipe = Pipeline([("z", ZScore()), ("u", UnivariateFilter(alpha=0.001)),
                     ("c", CorrelationFilter()), ("l", LassoSelector(n_lambdas=10, cv=5))])
    pipe.set_output(transform="pandas").fit(X, y)
    out = pipe.transform(X)
    assert isinstance(out, pd.DataFrame) and set(informative) <= set(out.columns)
    np_out = Pipeline(pipe.steps).set_output(transform="default").fit(X.to_numpy(), y).transform(X.to_numpy())
    assert np_out.shape[1] == out.shape[1]


def test_non_binary_label_is_a_clear_error():
    with pytest.raises(ValueError, match="UnivariateFilter: the label must be binary"):
        UnivariateFilter().fit(np.zeros((6, 2)), [0, 1, 2, 0, 1, 2])


def _cv_auc(X, y, seed):
    pipe = Pipeline([("z", ZScore()), ("u", UnivariateFilter(alpha=0.05)), ("c", CorrelationFilter()),
                     ("l", LassoSelector(n_lambdas=10, cv=5, random_state=seed)),
                     ("m", LogisticRegression(max_iter=1000))])
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return cross_val_score(pipe, X, y, cv=folds, scoring="roc_auc").mean()


def test_selection_inside_cv_gives_chance_auc_on_scrambled_labels():
    """Acceptance: labels permuted -> mean CV AUC 0.5 +/- 0.07; with signal the same pipeline beats it."""
    X, y, _ = planted(n=120, p=100, informative=4, sep=1.0, seed=11)
    rng = np.random.default_rng(0)
    # One CV AUC on 120 cases has an SD near 0.07, so average over 10 permutations.
    scrambled = [_cv_auc(X, rng.permutation(y), seed) for seed in range(10)]
    assert abs(np.mean(scrambled) - 0.5) <= 0.07
    real = _cv_auc(X, y, 0)
    assert real > 0.75 and real > max(scrambled) + 0.1
