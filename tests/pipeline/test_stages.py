"""Stages of a run: which feature columns reach the models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sonorad.designs.base import backbone_of
from sonorad.pipeline import stages
from sonorad.runner import run_config
from sonorad.study import StudyConfig


def _features(ids):
    rng = np.random.default_rng(0)
    deep = {b: pd.DataFrame(rng.normal(size=(len(ids), 3)), index=ids, columns=[f"{b}_{i}" for i in range(3)])
            for b in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")}
    radiomics = pd.DataFrame(rng.normal(size=(len(ids), 2)), index=ids,
                             columns=["original_shape2D_Elongation", "original_firstorder_Mean"])
    return stages.Features(radiomics=radiomics, deep=deep, failures=pd.DataFrame(columns=["case_id"]))


def test_the_dl_backbones_and_only_they_reach_the_models_in_their_order():
    ids = pd.Index(["a", "b", "c", "d"], name="case_id")
    features = _features(ids)
    study = StudyConfig.from_dict({
        "name": "s", "label": {"positive": 1},
        "variables": {"age": {"type": "numeric", "role": "clinical"}},
        "features": {"deep": ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"],
                     "dl_backbone": ["efficientnet_lite2", "efficientnet_lite0"]}})
    config = run_config(study)
    columns = stages.feature_columns(features, study, config)
    assert columns.backbones == ("efficientnet_lite2", "efficientnet_lite0")
    assert columns.deep == tuple(f"efficientnet_lite2_{i}" for i in range(3)) + tuple(
        f"efficientnet_lite0_{i}" for i in range(3))
    assert tuple(c for c in columns.deep if backbone_of(c) == "efficientnet_lite0") == tuple(
        f"efficientnet_lite0_{i}" for i in range(3))
    table = pd.DataFrame({"age": [50, 60, 70, 80], "center": ["C1", "C1", "C2", "C2"]}, index=ids)
    X = stages.model_inputs(table, features, columns, ids, config)
    assert not any(c.startswith("efficientnet_lite1") for c in X.columns)
    assert [c for c in X.columns if c.startswith("efficientnet")] == list(columns.deep)
    np.testing.assert_array_equal(X["efficientnet_lite2_1"], features.deep["efficientnet_lite2"]["efficientnet_lite2_1"])
    assert list(X.columns[-2:]) == ["age", "center"]


def _reference_run(informative: bool):
    """A design result whose chosen model is a logistic regression on the declared variables and one score."""
    from types import SimpleNamespace

    from sonorad.designs import DesignResult, FeatureColumns
    from sonorad.designs._common import FeatureBlocks, _fit_zoo
    from sonorad.designs.base import ColumnModel
    from sonorad.designs.reference import reference_blocks, with_reference

    rng = np.random.default_rng(0)
    n = 240
    ids = pd.Index([f"c{i}" for i in range(n)], name="case_id")
    y = pd.Series(rng.integers(0, 2, n), index=ids)
    X = pd.DataFrame({"age": 50 + 8 * rng.normal(size=n) + 3 * y, "edge": rng.choice(["smooth", "irregular"], n),
                      "score": (2.5 * y if informative else 0) + rng.normal(size=n), "center": "A"}, index=ids)
    columns = FeatureColumns(clinical=("age",), us=("edge",))
    engine = SimpleNamespace(clinical_variables={"age": "numeric"}, us_variables={"edge": "binary"},
                             categories={"edge": ["smooth", "irregular"]}, cv=3, n_iter=None, class_weight=None,
                             resample=None, random_state=0, n_jobs=None)
    train, external = ids[:160], ids[160:]
    blocks = [*reference_blocks(engine, columns), ("scores", "passthrough", ["score"])]
    pipes, auc, _, _ = _fit_zoo([("encode", FeatureBlocks(blocks))], X.loc[train, ["age", "edge", "score"]],
                                y.loc[train].to_numpy(), None, {}, models=["logistic_regression"], cv=3, n_iter=None,
                                class_weight=None, resample=None, random_state=0, memory=None)
    chosen = ColumnModel.fitted(pipes["logistic_regression"], ["age", "edge", "score"])
    result = DesignResult(design="d", models={"logistic_regression": chosen}, families={},
                          chosen={"combined": "logistic_regression"}, primary="logistic_regression",
                          highlight=("logistic_regression",), cv_auc=auc, selected_features={}, funnel=pd.DataFrame())
    result = with_reference(result, engine, X.loc[train], y.loc[train], None, columns)
    probabilities = {"training": result.predict_proba(X.loc[train]), "external": result.predict_proba(X.loc[external])}
    return result, probabilities, y, X.loc[train]


def test_the_chosen_model_is_compared_with_the_clinical_reference_on_the_primary_cohort():
    result, probabilities, y, X_train = _reference_run(informative=True)
    comparison = stages.reference_comparison(result, probabilities, y, X_train, level=0.95)
    assert comparison.cohort == "external" and comparison.reference == "clinical_reference"
    assert comparison.better and comparison.summary.startswith("The chosen model (logistic_regression) discriminates")
    lr = comparison.likelihood_ratio
    assert lr is not None and lr.df == 1 and lr.added == ("score",) and lr.p_value < 1e-6
    assert {"AUC difference (DeLong)", "NRI (continuous)", "IDI", "LR chi-squared (1 df)"} == set(
        comparison.to_frame()["statistic"])


def test_a_chosen_model_no_better_than_the_reference_is_said_so():
    result, probabilities, y, X_train = _reference_run(informative=False)
    comparison = stages.reference_comparison(result, probabilities, y, X_train, level=0.95)
    assert not comparison.better
    assert "is not better than the clinical reference (clinical_reference) on the external cohort (AUC" in \
        comparison.summary


def test_unseen_categories_of_validation_cohorts_are_coded_as_predict_codes_them():
    from sonorad.pipeline.stages import apply_unseen_levels
    from sonorad.variables import VariableSpec

    train = pd.DataFrame({"echo": ["hypo", "iso", "hypo"], "x": [1.0, 2.0, 3.0]}, index=["a0", "a1", "a2"])
    external = pd.DataFrame({"echo": ["hypo", "anechoic"], "x": [1.0, 2.0]}, index=["b0", "b1"])
    other = {"echo": VariableSpec("echo", "categorical", unseen="other")}
    out, notes = apply_unseen_levels({"training": train, "external": external}, other)
    assert out["training"] is train
    assert out["external"].loc["b0", "echo"] == "hypo" and pd.isna(out["external"].loc["b1", "echo"])
    assert len(notes) == 1 and notes[0].startswith("external cohort: ") and "anechoic" in notes[0]
    strict = {"echo": VariableSpec("echo", "categorical")}                 # unseen: error is validate's to refuse
    same, none = apply_unseen_levels({"training": train, "external": external}, strict)
    assert same["external"] is external and none == []
