"""Reading new cases for a bundle: the cases table is checked before any work; a CSV may lack labels."""

from __future__ import annotations

import pytest


def test_missing_columns_are_reported_before_any_work(bundle, external):
    from sonorad.errors import CohortError

    with pytest.raises(CohortError, match="'age'"):
        bundle.predict(external.drop(columns=["age"]))


def test_predict_reads_a_csv_without_label(bundle, external, small_bundle, tmp_path):
    csv = tmp_path / "new.csv"
    external.head(3).to_csv(csv, index=False)
    result = bundle.predict(csv, cache=small_bundle.cache, models=[small_bundle.chosen])
    assert result.scored_cases == list(external.index[:3]) and set(result.predictions["model"]) == {small_bundle.chosen}


def test_model_input_keeps_training_columns_and_fails_cases_without_features():
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from sonorad.bundle.inputs import CaseInputs, model_input

    bundle = SimpleNamespace(features={"input_columns": ["f1", "age", "f0"],
                                       "column_kinds": {"f0": "radiomics", "f1": "radiomics", "age": "variable"}})
    radiomics = pd.DataFrame({"f0": [1, 2], "f1": [3, 4], "extra": [0, 0]}, index=["a", "b"])
    values = pd.DataFrame({"age": [50.0, 60.0, 70.0]}, index=["a", "b", "c"])
    inputs = CaseInputs(["a", "b", "c"], values, radiomics, None, pd.DataFrame(), {}, [])
    X, failures = model_input(bundle, inputs, values, ["b", "a"])
    assert list(X.columns) == ["f1", "age", "f0"] and list(X.index) == ["b", "a"] and X.index.name == "case_id"
    assert X["f0"].dtype == np.float64 and failures == []
    bundle.features["input_columns"].append("f9")
    bundle.features["column_kinds"]["f9"] = "radiomics"
    X, failures = model_input(bundle, inputs, values, ["a"])
    assert X.empty and failures[0]["case_id"] == "a" and "f9" in failures[0]["error"]
