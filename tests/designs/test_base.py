"""sonorad.designs.base: every design returns the same result shape; its models score the model input table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.designs import DesignResult, available_designs, build_design, model_input_table
from sonorad.designs.score_fusion import ScoreFusionEngine
from sonorad.designs.feature_families import FeatureFamiliesEngine

from .builders import design_cohort


@pytest.fixture(scope="module")
def cohort():
    return design_cohort()


@pytest.mark.parametrize("design", ["score_fusion", "feature_families"])
def test_exported_models_reproduce_the_engine_exactly(cohort, design):
    tables, y, patients, centers, X, columns = cohort
    section = {"design": design, "models": ["logistic_regression", "random_forest"], "cv": 3}
    if design == "feature_families":
        section["families"] = ["us", "radiomics", "combined"]
    result = build_design(section, seed=0).fit(X, y, patients, columns=columns)
    assert isinstance(result, DesignResult)
    engine_cls = ScoreFusionEngine if design == "score_fusion" else FeatureFamiliesEngine
    engine = build_design(section, seed=0).build_engine(columns)
    assert isinstance(engine, engine_cls)
    engine.fit(columns.tables(X), y, groups=patients, centers=centers)
    expected = engine.predict_proba(columns.tables(X), centers=centers)
    if isinstance(expected.columns, pd.MultiIndex):
        expected.columns = [f"{a}/{b}" for a, b in expected.columns]
    got = result.predict_proba(X)
    # every engine model, and the clinical reference on the declared variables beside them
    assert result.reference == "clinical_reference" and result.reference not in result.chosen.values()
    assert sorted(got.columns) == sorted([*expected.columns, result.reference])
    assert result.choices and all(c.chosen in result.chosen.values() for c in result.choices.values())
    np.testing.assert_allclose(got[expected.columns].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)
    # same shape whatever the design
    assert result.primary in result.models and set(result.chosen.values()) <= set(result.models)
    assert all(set(keys) <= set(result.models) for keys in result.families.values())
    assert set(result.cv_auc.index) <= set(result.models) and len(result.funnel)
    # the models read only their own columns: extra columns and another column order change nothing
    shuffled = X[X.columns[::-1]].assign(extra=1.0)
    np.testing.assert_allclose(result.predict_proba(shuffled).to_numpy(), got.to_numpy(), atol=0)


def test_model_input_table_names_missing_cases_and_duplicate_columns():
    idx = pd.Index(["a", "b"])
    rad = pd.DataFrame({"f": [1.0, 2.0]}, index=idx)
    with pytest.raises(ValueError, match="'c'"):
        model_input_table(["a", "c"], radiomics=rad)
    with pytest.raises(ValueError, match="two tables"):
        model_input_table(idx, radiomics=rad, variables=pd.DataFrame({"f": [0, 1]}, index=idx))
    X = model_input_table(idx, radiomics=rad, centers=pd.Series(["C1", "C2"], index=idx))
    assert list(X.columns) == ["f", "center"] and X.index.name == "case_id"
