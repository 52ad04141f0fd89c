"""Tests of sonorad.explain.dependence: whether a fitted model reads a predictor."""

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from sonorad.explain.dependence import contrast_values, models_reading, reads


def _data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = (X["a"] + 0.2 * rng.normal(size=n) > 0).astype(int)
    return X, y


def test_a_model_fitted_without_the_predictor_does_not_read_it():
    X, y = _data()
    uses_a = LogisticRegression().fit(X, y)
    only_b = LogisticRegression().fit(X[["b"]], y)

    class OnlyB:  # a pipeline that drops "a" before its model, as a selection step does
        def predict_proba(self, frame):
            return only_b.predict_proba(frame[["b"]])

    contrast = contrast_values(X["a"])
    assert reads(uses_a, X, "a", contrast)
    assert not reads(OnlyB(), X, "a", contrast)
    assert models_reading({"lr": uses_a, "b_only": OnlyB()}, X, "a", contrast) == ["lr"]


def test_a_tree_that_never_splits_on_the_predictor_does_not_read_it():
    X, y = _data()
    tree = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)
    assert tree.tree_.feature[0] == 0  # the stump splits on "a"
    assert reads(tree, X, "a", contrast_values(X["a"]))
    assert not reads(tree, X, "b", contrast_values(X["b"]))


def test_a_model_that_cannot_score_the_contrast_is_not_offered_as_independent():
    class Fails:
        def predict_proba(self, frame):
            raise ValueError("unknown level")

    X, _ = _data()
    assert reads(Fails(), X, "a", (0.0, 1.0))


def test_no_contrast_names_no_model():
    X, y = _data()
    model = LogisticRegression().fit(X, y)
    assert contrast_values(pd.Series([3.0, 3.0, None])) is None
    assert models_reading({"lr": model}, X, "a", None) == []
    assert models_reading({"lr": model}, X, "zzz", (0.0, 1.0)) == []
