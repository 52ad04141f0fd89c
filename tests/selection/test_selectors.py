"""Tests of sonorad.selection.selectors: LASSO and mRMR on planted features, and the whole selection
inside cross-validation (chance AUC on scrambled labels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from sonorad.selection import CorrelationFilter, LassoSelector, MRMRSelector, UnivariateFilter, ZScore


def test_lasso_recovers_planted_features_and_keeps_path(planted):
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


def test_lasso_same_seed_same_selection_and_groups_used(planted):
    X, y, _ = planted(n=120, p=20, seed=3)
    groups = np.arange(120) // 3
    a = LassoSelector(n_lambdas=10, cv=5, random_state=7).fit(X, y, groups=groups)
    b = LassoSelector(n_lambdas=10, cv=5, random_state=7).fit(X, y, groups=groups)
    np.testing.assert_array_equal(a.coef_path_, b.coef_path_)
    np.testing.assert_array_equal(a.cv_mean_, b.cv_mean_)


def test_mrmr_prefers_informative_and_avoids_duplicates(planted):
    X, y, informative = planted(n=200, p=30, informative=2, sep=2.0)
    X["dup"] = X[informative[0]] + 1e-6
    sel = MRMRSelector(n_features=2).fit(X, y)
    assert set(sel.get_feature_names_out()) == set(informative)


def test_pipeline_pandas_output_and_numpy_input(planted):
    X, y, informative = planted(n=150, p=30, informative=3, sep=2.0)
    pipe = Pipeline([("z", ZScore()), ("u", UnivariateFilter(alpha=0.001)),
                     ("c", CorrelationFilter()), ("l", LassoSelector(n_lambdas=10, cv=5))])
    pipe.set_output(transform="pandas").fit(X, y)
    out = pipe.transform(X)
    assert isinstance(out, pd.DataFrame) and set(informative) <= set(out.columns)
    np_out = Pipeline(pipe.steps).set_output(transform="default").fit(X.to_numpy(), y).transform(X.to_numpy())
    assert np_out.shape[1] == out.shape[1]


def _cv_auc(X, y, seed):
    pipe = Pipeline([("z", ZScore()), ("u", UnivariateFilter(alpha=0.05)), ("c", CorrelationFilter()),
                     ("l", LassoSelector(n_lambdas=10, cv=5, random_state=seed)),
                     ("m", LogisticRegression(max_iter=1000))])
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return cross_val_score(pipe, X, y, cv=folds, scoring="roc_auc").mean()


def test_selection_inside_cv_gives_chance_auc_on_scrambled_labels(planted):
    """Acceptance: labels permuted -> mean CV AUC 0.5 +/- 0.07; with signal the same pipeline beats it."""
    X, y, _ = planted(n=120, p=100, informative=4, sep=1.0, seed=11)
    rng = np.random.default_rng(0)
    # One CV AUC on 120 cases has an SD near 0.07, so average over 10 permutations.
    scrambled = [_cv_auc(X, rng.permutation(y), seed) for seed in range(10)]
    assert abs(np.mean(scrambled) - 0.5) <= 0.07
    real = _cv_auc(X, y, 0)
    assert real > 0.75 and real > max(scrambled) + 0.1
