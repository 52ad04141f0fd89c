"""The design contract: every design returns the same result shape; its models score the model input table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.designs import (DesignResult, FeatureColumns, available_designs, build_design, check_models_section,
                             model_input_table)
from sonorad.designs.study1 import Study1Family
from sonorad.designs.study2 import Study2Family

from .test_families import make_study1_cohort


def _inputs(tables, centers):
    variables = pd.concat([tables["clinical"], tables["us"]], axis=1)
    X = model_input_table(tables["radiomics"].index, radiomics=tables["radiomics"], deep=tables["deep"],
                          variables=variables, centers=pd.Series(np.asarray(centers), index=tables["radiomics"].index))
    columns = FeatureColumns(radiomics=tuple(tables["radiomics"].columns), deep=tuple(tables["deep"].columns),
                             clinical=tuple(tables["clinical"].columns), us=tuple(tables["us"].columns))
    return X, columns


@pytest.fixture(scope="module")
def cohort():
    tables, y, patients, centers = make_study1_cohort(n_patients=120, n_radiomics=40, n_deep=30)
    X, columns = _inputs(tables, centers)
    return tables, y, pd.Series(np.asarray(patients), index=y.index), pd.Series(np.asarray(centers), index=y.index), X, columns


def test_discovery_finds_every_design_module():
    assert {"study1", "study2", "radiomics_nomogram"} <= set(available_designs())


@pytest.mark.parametrize("design", ["study1", "study2"])
def test_exported_models_reproduce_the_engine_exactly(cohort, design):
    tables, y, patients, centers, X, columns = cohort
    section = {"design": design, "models": ["logistic_regression", "random_forest"], "cv": 3}
    if design == "study2":
        section["families"] = ["us", "radiomics", "combined"]
    result = build_design(section, seed=0).fit(X, y, patients, columns=columns)
    assert isinstance(result, DesignResult)
    engine_cls = Study1Family if design == "study1" else Study2Family
    engine = build_design(section, seed=0).build_engine(columns)
    assert isinstance(engine, engine_cls)
    engine.fit(columns.tables(X), y, groups=patients, centers=centers)
    expected = engine.predict_proba(columns.tables(X), centers=centers)
    if isinstance(expected.columns, pd.MultiIndex):
        expected.columns = [f"{a}/{b}" for a, b in expected.columns]
    got = result.predict_proba(X)
    assert sorted(got.columns) == sorted(expected.columns)
    np.testing.assert_allclose(got[expected.columns].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)
    # same shape whatever the design
    assert result.primary in result.models and set(result.chosen.values()) <= set(result.models)
    assert all(set(keys) <= set(result.models) for keys in result.families.values())
    assert set(result.cv_auc.index) <= set(result.models) and len(result.funnel)
    # the models read only their own columns: extra columns and another column order change nothing
    shuffled = X[X.columns[::-1]].assign(extra=1.0)
    np.testing.assert_allclose(result.predict_proba(shuffled).to_numpy(), got.to_numpy(), atol=0)


def test_radiomics_nomogram_design_in_one_module(cohort):
    tables, y, patients, centers, X, columns = cohort
    result = build_design({"design": "radiomics_nomogram", "cv": 3}, seed=0).fit(X, y, patients, columns=columns)
    assert set(result.models) == {"rad_score", "logistic_regression"}
    assert result.primary == "logistic_regression" and result.nomogram_model == "logistic_regression"
    assert "Rad-score" in result.formulas and "DL-score" not in result.formulas
    # deep columns are not read: dropping them changes nothing
    no_deep = X.drop(columns=list(columns.deep))
    np.testing.assert_allclose(result.predict_proba(no_deep).to_numpy(), result.predict_proba(X).to_numpy())


def test_models_section_problems_are_all_found_before_any_work():
    problems = check_models_section({"design": "study1", "models": ["logistic_regresion", "svm"],
                                     "rad_score": {"alpah": 0.1}, "n_tree": 3, "cv": 1})
    where = {p.column for p in problems}
    assert {"models.models", "models.rad_score.alpah", "models.n_tree", "models.cv"} <= where
    assert any("logistic_regresion" in p.message for p in problems)
    assert check_models_section({"design": "study9"})[0].column == "models.design"
    assert check_models_section({"design": "radiomics_nomogram", "models": ["svm"]})[0].column == "models.models"
    assert not check_models_section({"design": "study2", "families": ["us"], "selection": {"alpha": 0.1}})
    assert check_models_section({"design": "study2", "families": ["radiomic"]})[0].column == "models.families"


def test_model_input_table_names_missing_cases_and_duplicate_columns():
    idx = pd.Index(["a", "b"])
    rad = pd.DataFrame({"f": [1.0, 2.0]}, index=idx)
    with pytest.raises(ValueError, match="'c'"):
        model_input_table(["a", "c"], radiomics=rad)
    with pytest.raises(ValueError, match="two tables"):
        model_input_table(idx, radiomics=rad, variables=pd.DataFrame({"f": [0, 1]}, index=idx))
    X = model_input_table(idx, radiomics=rad, centers=pd.Series(["C1", "C2"], index=idx))
    assert list(X.columns) == ["f", "center"] and X.index.name == "case_id"
