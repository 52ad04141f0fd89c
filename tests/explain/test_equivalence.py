"""The run and a bundle explain a model with the same functions: same background, same contributions."""

from __future__ import annotations

import re
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sonorad.bundle.explanations import contribution_rows, shap_contributions
from sonorad.designs.base import ColumnModel
from sonorad.explain.shap import display_table, explain_model, top_contributions
from sonorad.pipeline.explanations import shap_explanation

SEED = 7


@pytest.fixture(scope="module")
def cohort():
    rng = np.random.default_rng(0)
    n = 80
    X = pd.DataFrame({"age": rng.normal(55, 12, n), "rad_score": rng.normal(0, 1, n), "dl_score": rng.normal(0, 1, n),
                      "tumor_edge": rng.integers(0, 2, n).astype(float), "noise": rng.normal(0, 1, n)},
                     index=pd.Index([f"case{i:03d}" for i in range(n)], name="case_id"))
    lp = 0.05 * (X.age - 55) + 1.2 * X.rad_score + 0.8 * X.dl_score + 0.7 * X.tumor_edge
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int), index=X.index)
    return X, y


def _design_model(clf, X, y):
    """A design's model: a column wrapper over selection -> (zoo model: scaler -> classifier)."""
    zoo = Pipeline([("scale", StandardScaler()), ("clf", clf)])
    pipe = Pipeline([("select", SelectKBest(f_classif, k=4)), ("model", zoo)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    return ColumnModel.fitted(pipe, list(X.columns))


def _both_paths(model, X, background_rows, cases):
    """(run's ShapResult, bundle's ShapResult and display) with the same background."""
    run = shap_explanation(SimpleNamespace(models={"m": model}), "m", X.loc[cases], background_rows,
                           n_cases=len(cases), seed=SEED)
    centroids = display_table(model, background_rows)  # what a bundle would have saved, here the same rows
    bundle = SimpleNamespace(explain={"m": {"features": list(centroids.columns), "centroids": centroids.to_numpy().tolist()}},
                             model=lambda name: model, study={"seed": SEED})
    shap, display = shap_contributions(bundle, "m", X.loc[cases])
    return run, shap, display


@pytest.mark.parametrize("clf", [MLPClassifier((8,), max_iter=400, random_state=0), LogisticRegression()],
                         ids=["mlp", "logistic"])
def test_same_background_gives_the_same_contributions(cohort, clf):
    X, y = cohort
    model = _design_model(clf, X, y)
    cases = list(X.index[:3])
    run, shap, display = _both_paths(model, X, X.iloc[:16], cases)
    np.testing.assert_array_equal(run.values, shap.values)
    np.testing.assert_array_equal(run.base_values, shap.base_values)
    assert run.feature_names == shap.feature_names and run.explainer == shap.explainer
    theirs = top_contributions(run, 10)
    ours = [{k: row[k] for k in theirs[0]} for row in contribution_rows("m", shap, display)]
    assert ours == theirs  # the bundle's rows add the predictor's description and displayed value


def test_the_run_explains_as_before_for_a_permutation_model(cohort):
    """For a permutation-explained classifier the values equal those of explaining the whole fitted
    pipeline (scaling commutes with masking), so the run's numbers are unchanged."""
    X, y = cohort
    model = _design_model(MLPClassifier((8,), max_iter=400, random_state=0), X, y)
    cases = list(X.index[:4])
    run = shap_explanation(SimpleNamespace(models={"m": model}), "m", X.loc[cases], X, n_cases=10, seed=SEED)
    whole = explain_model(model.estimator_, X.loc[cases], background=X, random_state=SEED)
    np.testing.assert_array_equal(run.values, whole.values)
    np.testing.assert_array_equal(run.data, whole.data)


@pytest.mark.parametrize("clf", [MLPClassifier((8,), max_iter=400, random_state=0), LogisticRegression()],
                         ids=["mlp", "logistic"])
def test_no_label_is_positional(cohort, clf):
    X, y = cohort
    model = _design_model(clf, X, y)
    run, shap, display = _both_paths(model, X, X.iloc[:16], list(X.index[:2]))
    labels = [*run.feature_names, *shap.feature_names, *display.columns,
              *(row["feature"] for row in contribution_rows("m", shap, display))]
    assert labels and not [name for name in labels if re.fullmatch(r"x\d+", str(name))]
    assert set(labels) <= set(X.columns)
