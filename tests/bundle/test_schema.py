"""apply_schema: new cases' declared variables checked and converted, failures and warnings per case."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sonorad.bundle.schema import apply_schema
from sonorad.variables import VariableSpec, check_value

VARIABLES = {
    "age": VariableSpec("age", "numeric", range=(0.0, 120.0)),
    "edge": VariableSpec("edge", "binary", levels=("smooth", "irregular")),
    "birads": VariableSpec("birads", "ordinal", order=("3", "4", "5")),
    "echo": VariableSpec("echo", "categorical"),
    "site": VariableSpec("site", "categorical", levels=("a", "b", "c")),
}


def _bundle(**changed):
    variables = {**VARIABLES, **changed}
    return SimpleNamespace(
        variables=variables,
        features={"dtypes": {"age": "float64", "edge": "object", "birads": "object", "echo": "object",
                             "site": "object"}},
        summary={"columns": {"age": {"range": [30.0, 80.0]}, "edge": {"levels_seen": ["smooth", "irregular"]},
                             "birads": {"levels_seen": ["3", "4", "5"]}, "echo": {"levels_seen": ["hypo", "iso"]},
                             "site": {"levels_seen": ["a", "b"]}}},
        schema_data={"variables": [{"name": n, "imputation": 50.0 if n == "age" else None} for n in variables]})


def _cases(**cells):
    base = {"age": 50, "edge": "smooth", "birads": 4, "echo": "hypo", "site": "a"}
    rows = [dict(base, **{k: v}) for k, v in cells.items()]
    return pd.DataFrame(rows, index=[f"c{i}" for i in range(len(rows))], dtype=object)


def test_good_values_pass_and_numbers_become_floats():
    values = pd.DataFrame({"age": ["54", 61], "edge": ["irregular", "smooth"], "birads": [3, "5"],
                           "echo": ["iso", "hypo"], "site": ["a", "b"], "center": [" C1 ", None]},
                          index=["x", "y"], dtype=object)
    out, warnings, failures = apply_schema(_bundle(), values)
    assert failures == [] and warnings == []
    assert out["age"].tolist() == [54.0, 61.0] and out["age"].dtype == float
    assert out.at["x", "center"] == "C1" and pd.isna(out.at["y", "center"])
    assert out["birads"].tolist() == [3, "5"]  # levels are left as given; the encoder reads them canonically


def test_each_refused_value_fails_its_case_with_the_check_value_message():
    values = _cases(age=np.inf, edge="maybe", birads=6, echo="anechoic", site="z")
    _, _, failures = apply_schema(_bundle(), values)
    assert [f["case_id"] for f in failures] == ["c0", "c1", "c2", "c3", "c4"]
    for failure, (name, value) in zip(failures, [("age", np.inf), ("edge", "maybe"), ("birads", 6),
                                                 ("echo", "anechoic"), ("site", "z")]):
        expected = check_value(VARIABLES[name], value, ["hypo", "iso"] if name == "echo" else None)
        assert failure["stage"] == "variables"
        assert (failure["error"], failure["fix"]) == (expected.message, expected.fix)
    assert "outside the declared range" in apply_schema(_bundle(), _cases(age=130))[2][0]["error"]


def test_warnings_for_missing_values_extrapolation_and_unlearnt_levels():
    _, warnings, failures = apply_schema(_bundle(), _cases(age=None, edge="smooth", site="c"))
    assert failures == []
    text = {(w["case_id"], w["column"]): w["message"] for w in warnings}
    missing = text[("c0", "age")]
    assert missing.startswith("No value was given for age; the model used the typical training value 50 in its place")
    assert missing.endswith("What to do: enter the value if it is known.")
    assert "declared level that no training case had" in text[("c2", "site")]
    assert "What to do: check the value" in text[("c2", "site")]
    _, warnings, _ = apply_schema(_bundle(), _cases(age=95))
    assert warnings[0]["message"] == ("The value given for age, 95, is outside the training range (30 to 80): the "
                                      "model has seen no such patients, so its risk may be unreliable. What to do: "
                                      "check the value; interpret the risk with caution.")
    described = _bundle(age=VariableSpec("age", "numeric", description="Age at surgery", unit="years"))
    _, warnings, _ = apply_schema(described, _cases(age=95))
    assert warnings[0]["message"].startswith("The value given for Age at surgery, 95 years, is outside the training "
                                             "range (30 to 80 years)")


def _undeclared_age_bundle(**age_entry):
    bundle = _bundle(age=VariableSpec("age", "numeric"))
    bundle.schema_data["variables"][0].update(age_entry)
    return bundle


@pytest.mark.parametrize("age", [400, -5, 1e308])
def test_without_a_declared_range_a_value_far_outside_the_training_quartiles_fails_its_case(age):
    bundle = _undeclared_age_bundle(training_quartiles=[43.4, 60.6], training_range=[30.0, 80.0])
    _, warnings, failures = apply_schema(bundle, _cases(age=age))
    [failure] = failures
    assert failure["case_id"] == "c0" and failure["error"].startswith(f"age = {age:g} is ")
    expected = check_value(bundle.variables["age"], age, training={"quartiles": [43.4, 60.6], "range": [30.0, 80.0]})
    assert (failure["error"], failure["fix"]) == (expected.message, expected.fix)
    assert "age" not in {w["column"] for w in warnings}


def test_a_plausible_value_is_scored_and_a_bundle_without_quartiles_behaves_as_before():
    bundle = _undeclared_age_bundle(training_quartiles=[43.4, 60.6], training_range=[30.0, 80.0])
    out, warnings, failures = apply_schema(bundle, _cases(age=95))
    assert failures == [] and out.at["c0", "age"] == 95.0
    assert warnings[0]["column"] == "age" and "95" in warnings[0]["message"]  # outside the training range
    old = _undeclared_age_bundle(training_range=[30.0, 80.0])  # schema.json written without quartiles
    out, warnings, failures = apply_schema(old, _cases(age=400))
    assert failures == [] and out.at["c0", "age"] == 400.0 and warnings[0]["column"] == "age"


def test_the_bundle_schema_stores_the_training_quartiles_and_the_unit_not_rows():
    from sonorad.bundle.summary import training_summary
    from sonorad.bundle.writer import _schema

    ages = pd.Series(np.random.default_rng(0).uniform(20.0, 80.0, 60), name="age")
    table = pd.DataFrame({"age": ages, "edge": ["smooth", "irregular"] * 30})
    variables = {"age": VariableSpec("age", "numeric", unit="years"), "edge": VARIABLES["edge"]}
    summary = training_summary(table, None, variables, {"age": "variable", "edge": "variable"})
    age, edge = _schema(variables, summary, {}, {}, table.columns)
    q1, q3 = age["training_quartiles"]
    assert q1 == pytest.approx(np.percentile(ages, 25), abs=2.0)
    assert q3 == pytest.approx(np.percentile(ages, 75), abs=2.0)
    assert q1 not in set(ages) and q3 not in set(ages)  # pooled: the mean of several cases, no one's value
    assert age["unit"] == "years" and edge["training_quartiles"] is None


def test_unseen_other_codes_a_new_category_with_a_warning():
    bundle = _bundle(echo=VariableSpec("echo", "categorical", unseen="other"),
                     site=VariableSpec("site", "categorical", levels=("a", "b", "other"), unseen="other"))
    out, warnings, failures = apply_schema(bundle, _cases(echo="anechoic", site="z"))
    assert failures == []
    assert pd.isna(out.at["c0", "echo"]) and out.at["c1", "site"] == "other"
    messages = [w["message"] for w in warnings]
    assert messages[0].startswith("echo = 'anechoic' was never seen in training; coded as missing (imputed)")
    assert messages[1].startswith("site = 'z' was never seen in training; coded as 'other'")


# --- on a real bundle ------------------------------------------------------------------------------

def test_unseen_policy_other_codes_a_new_category_and_warns(small_bundle, external, tmp_path):
    import dataclasses

    from sonorad.bundle import load_bundle, write_bundle

    variables = dict(small_bundle.variables)
    variables["noise_cat1"] = dataclasses.replace(variables["noise_cat1"], unseen="other")
    path = write_bundle(tmp_path / "model", models={"lr": small_bundle.models[small_bundle.chosen]}, chosen="lr",
                        cutoffs={}, features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=variables, training_input=small_bundle.training_input, training_rois=None,
                        card={}, study={"seed": 0})
    cases = external.head(2).astype({"noise_cat1": object}).copy()
    cases.iloc[0, cases.columns.get_loc("noise_cat1")] = "z"
    result = load_bundle(path).predict(cases, cache=small_bundle.cache, explain=False)
    assert result.failures.empty and set(result.scored_cases) == set(cases.index)
    w = result.warnings[result.warnings["column"] == "noise_cat1"]
    assert list(w["case_id"]) == [cases.index[0]] and "never seen in training" in w["message"].iloc[0]
