"""A declared variable's rules (sonorad.variables), and that validate, predict and the calculator share them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sonorad.bundle.schema import apply_schema
from sonorad.cohort import validate_cases
from sonorad.errors import CohortError, Problem
from sonorad.serve.form import check_values, form_fields
from sonorad.serve.uploads import UploadError
from sonorad.study import StudyConfig
from sonorad.variables import (
    FLOAT32_MAX,
    OTHER_LEVEL,
    OUTLIER_IQR_FACTOR,
    VariableSpec,
    apply_unseen_policy,
    canonical_value,
    check_column,
    check_value,
    group_problems,
    plausible_range,
)

AGE = VariableSpec("age", "numeric")
SHAPE = VariableSpec("shape", "categorical", levels=("oval", "round"))


# --- one value ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (54, 54.0), (" 54.5 ", 54.5), (np.int64(3), 3.0), (-FLOAT32_MAX, -FLOAT32_MAX),
    (None, None), (float("nan"), None), ("", None), ("NA", None), (pd.NA, None),
])
def test_a_numeric_value_is_a_finite_float_or_missing(value, expected):
    assert check_value(AGE, value) == expected


@pytest.mark.parametrize("value, message", [
    ("fifty", "age = 'fifty' is not a number"),
    ("54,5", "age = '54,5' is not a number (a decimal comma?)"),
    (True, "age = 'True' is not a number"),
    ("1_000", "age = '1_000' is not a number"),
    (float("inf"), "age = inf is not a finite number (infinite, or beyond the float32 limit of 3.4e+38)"),
    ("-inf", "age = -inf is not a finite number (infinite, or beyond the float32 limit of 3.4e+38)"),
    (1e308, "age = 1e+308 is not a finite number (infinite, or beyond the float32 limit of 3.4e+38)"),
    (-3.5e38, "age = -3.5e+38 is not a finite number (infinite, or beyond the float32 limit of 3.4e+38)"),
])
def test_a_refused_number_names_the_variable_the_value_and_the_fix(value, message):
    problem = check_value(AGE, value)
    assert isinstance(problem, Problem) and problem.message == message
    assert problem.column == "age" and problem.severity == "error" and problem.case_id is None
    assert "leave it empty" in problem.fix


def test_the_declared_range_includes_its_ends():
    spec = VariableSpec("age", "numeric", range=(0.0, 120.0), unit="years")
    assert check_value(spec, 0) == 0.0 and check_value(spec, 120) == 120.0
    problem = check_value(spec, 120.5)
    assert problem.message == "age = 120.5 is outside the declared range [0, 120] of variables.age.range"
    assert "widen variables.age.range" in problem.fix
    assert check_value(spec, "x").fix.startswith("write a number in years")


# --- plausible values without a declared range ----------------------------------------------------

TRAINING_AGES = {"quartiles": [43.4, 60.6], "range": [24.0, 84.0]}


def test_the_plausible_range_is_declared_else_ten_iqr_beyond_the_training_quartiles():
    declared = plausible_range(VariableSpec("age", "numeric", range=(18.0, 100.0)), TRAINING_AGES)
    assert (declared.low, declared.high, declared.source) == (18.0, 100.0, "declared")
    derived = plausible_range(AGE, TRAINING_AGES)
    iqr = 60.6 - 43.4
    assert derived.source == "training" and derived.high == pytest.approx(60.6 + OUTLIER_IQR_FACTOR * iqr)
    assert derived.low == 0.0  # 43.4 - 172 < 0, and no training age was negative
    signed = plausible_range(AGE, {"quartiles": [-1.0, 1.0], "range": [-3.0, 3.0]})
    assert (signed.low, signed.high) == (-21.0, 21.0)
    for training in (None, {}, {"range": [24.0, 84.0]}, {"quartiles": [5.0, 5.0]}, {"quartiles": [1.0, "x"]}):
        assert plausible_range(AGE, training) is None  # nothing to derive it from: any finite value goes
    assert plausible_range(SHAPE, TRAINING_AGES) is None


@pytest.mark.parametrize("value", [400, -5, 233])
def test_a_value_far_outside_the_training_values_is_refused_naming_the_range_and_the_fix(value):
    problem = check_value(VariableSpec("age", "numeric", unit="years"), value, training=TRAINING_AGES)
    assert isinstance(problem, Problem) and problem.column == "age" and problem.severity == "error"
    assert problem.message.startswith(f"age = {value:g} is far outside the values of the training cohort")
    assert "accepted: 0 to 232.6 years" in problem.message and "training quartiles 43.4 and 60.6" in problem.message
    assert "check the value" in problem.fix and "declare variables.age.range: [low, high]" in problem.fix


def test_values_within_the_plausible_range_and_bundles_without_quartiles_are_scored():
    assert check_value(AGE, 90, training=TRAINING_AGES) == 90.0  # outside the training range, yet plausible
    assert check_value(AGE, 0, training=TRAINING_AGES) == 0.0
    assert check_value(AGE, 400, training={"range": [24.0, 84.0]}) == 400.0  # an older bundle: as before
    assert check_value(AGE, 400) == 400.0
    assert check_value(VariableSpec("age", "numeric", range=(0.0, 500.0)), 400, training=TRAINING_AGES) == 400.0
    assert check_value(AGE, 1e308, training=TRAINING_AGES).message.startswith("age = 1e+308 is not a finite number")


def test_levels_are_compared_in_canonical_text():
    birads = VariableSpec("birads", "ordinal", order=("2", "3", "4a"))
    assert check_value(birads, 3.0) == "3" and check_value(birads, " 4a ") == "4a"
    assert check_value(VariableSpec("calc", "binary"), True) == "1"
    assert check_value(SHAPE, "oval") == "oval" and check_value(SHAPE, None) is None
    assert check_value(birads, 5).message == ("birads = '5' is not one of the declared order [2, 3, 4a] of this "
                                              "ordinal variable")
    assert "recode the column as 0/1" in check_value(VariableSpec("calc", "binary"), 2).fix


def test_the_unseen_policy_decides_for_categories():
    # declared levels: refused under unseen: error, passed on (for apply_unseen_policy) under other
    assert check_value(SHAPE, "star").message.startswith("shape = 'star' is not one of the declared levels")
    assert check_value(VariableSpec("shape", "categorical", levels=("oval",), unseen="other"), "star") == "star"
    # no declared levels: any value, unless the training levels are given
    echo = VariableSpec("echo", "categorical")
    assert check_value(echo, "anechoic") == "anechoic"
    problem = check_value(echo, "anechoic", known_levels=["hypo", "iso"])
    assert problem.message == ("echo = 'anechoic' was never seen in training (training levels: hypo, iso), so the "
                               "model cannot score it")
    assert "unseen: other" in problem.fix
    assert check_value(VariableSpec("echo", "categorical", unseen="other"), "anechoic", ["hypo"]) == "anechoic"


def test_check_column_matches_check_value_and_groups_by_message():
    values = pd.Series([50, "fifty", np.inf, None, "fifty"], index=["a", "b", "c", "d", "e"], dtype=object)
    checked, refused = check_column(AGE, values)
    assert checked.tolist() == [50.0, None, None, None, None]
    assert [p.message if p else None for p in refused] == [
        None, check_value(AGE, "fifty").message, check_value(AGE, np.inf).message, None,
        check_value(AGE, "fifty").message]
    grouped = group_problems(refused)
    assert [(p.case_id, p.message) for p in grouped] == [
        (None, "age = 'fifty' is not a number (cases b, e)"),
        ("c", check_value(AGE, np.inf).message)]
    summary = group_problems(refused, max_groups=1)
    assert len(summary) == 1 and summary[0].message.startswith("2 different values of age fail the check (3 cases")


def test_unseen_policy_codes_or_refuses():
    values = pd.Series(["hypo", "anechoic", None], index=["c1", "c2", "c3"])
    with pytest.raises(CohortError) as info:
        apply_unseen_policy(values, VariableSpec("echo", "categorical"), ["hypo", "iso"])
    [problem] = info.value.problems
    assert problem.case_id == "c2"
    assert problem.message == check_value(VariableSpec("echo", "categorical"), "anechoic", ["hypo", "iso"]).message
    out, notes = apply_unseen_policy(values, VariableSpec("echo", "categorical", unseen="other"),
                                     ["hypo", OTHER_LEVEL])
    assert out.tolist()[:2] == ["hypo", OTHER_LEVEL] and out.isna().tolist() == [False, False, True]
    assert notes[0].severity == "warning" and notes[0].case_id == "c2"


def test_canonical_value_handles_numpy_and_pandas_missing_markers():
    assert canonical_value(np.float64(2.0)) == "2" and canonical_value(pd.NA) is None
    assert canonical_value(float("inf")) == "inf" and canonical_value(" n/a ") is None


# --- the same rule, the same words, in validate, predict and the calculator ------------------------

REFUSED = {
    "infinite age": ("age", float("inf")),
    "age beyond float32": ("age", 1e308),
    "undeclared level": ("shape", "star"),
    "text in a number": ("age", "fifty"),
}
STUDY = StudyConfig.from_dict({"name": "v", "variables": {
    "age": "numeric", "shape": {"type": "categorical", "levels": ["oval", "round"], "unseen": "error"}}})


def _validate_problem(column, value) -> Problem:
    table = pd.DataFrame({"case_id": ["a", "b", "x"], "patient_id": ["pa", "pb", "px"], "center": "A",
                          "image": "i.png", "mask": "m.png", "label": [0, 1, 0],
                          "age": pd.Series([50, 61, 70], dtype=object), "shape": ["oval", "round", "oval"]})
    table.loc[2, column] = value
    errors = [p for p in validate_cases(table, STUDY, check_files=False) if p.severity == "error"]
    assert len(errors) == 1 and errors[0].case_id == "x" and errors[0].column == column, errors
    return errors[0]


def _schema_failure(column, value) -> dict:
    bundle = SimpleNamespace(
        variables=STUDY.variables, features={"dtypes": {"age": "float64", "shape": "object"}},
        summary={"columns": {"age": {"range": [20.0, 90.0]}, "shape": {"levels_seen": ["oval", "round"]}}},
        schema_data={"variables": [{"name": "age", "imputation": 55.0}, {"name": "shape", "imputation": "oval"}]})
    values = pd.DataFrame({"age": pd.Series([50], dtype=object), "shape": ["oval"]}, index=["x"])
    values.loc["x", column] = value
    _, _, failures = apply_schema(bundle, values)
    assert [(f["case_id"], f["stage"]) for f in failures] == [("x", "variables")]
    return failures[0]


def _form_error(column, value) -> UploadError:
    schema = [{"name": "age", "type": "numeric", "plausible_range": None},
              {"name": "shape", "type": "categorical", "levels": ["oval", "round"], "unseen": "error"}]
    posted = {"age": 50, "shape": "oval", column: value}
    with pytest.raises(UploadError) as info:
        check_values(form_fields(schema), posted)
    assert info.value.field == column and info.value.status == 422
    return info.value


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_value_validate_refuses_is_refused_by_predict_and_the_calculator_in_the_same_words(name):
    column, value = REFUSED[name]
    expected = check_value(STUDY.variables[column], value)
    problem = _validate_problem(column, value)
    failure = _schema_failure(column, value)
    error = _form_error(column, value)
    assert problem.message == failure["error"] == error.message == expected.message
    assert problem.fix == failure["fix"] == error.fix == expected.fix


@pytest.mark.slow
def test_predict_on_a_real_bundle_refuses_with_the_validate_message(small_bundle):
    from sonorad.bundle import load_bundle

    bundle = load_bundle(small_bundle.path)
    cases = small_bundle.table.loc[small_bundle.external_ids[:6]].drop(columns=["label"])
    cases = cases.astype({"age": object, "noise_cat1": object})
    ids = list(cases.index)
    planted = {ids[0]: ("age", float("inf")), ids[1]: ("age", 1e308), ids[2]: ("noise_cat1", "z"),
               ids[3]: ("age", "fifty"), ids[4]: ("age", 400), ids[5]: ("age", -5)}
    for case_id, (column, value) in planted.items():
        cases.loc[case_id, column] = value
    failures = bundle.predict(cases, cache=small_bundle.cache, explain=False).failures.set_index("case_id")
    fields = form_fields(bundle.schema())
    entries = {e["name"]: e for e in bundle.schema()}
    for case_id, (column, value) in planted.items():
        training = {"quartiles": entries[column].get("training_quartiles"),
                    "range": entries[column].get("training_range")}
        expected = check_value(bundle.variables[column], value, training=training)
        assert isinstance(expected, Problem) and expected.message.startswith(f"{column} = ")
        assert failures.at[case_id, "error"] == expected.message
        posted = {f["name"]: cases.at[case_id, f["name"]] for f in fields if f["name"] in cases.columns}
        posted = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in posted.items()}
        posted[column] = value
        with pytest.raises(UploadError) as info:
            check_values(fields, posted)
        assert info.value.message == expected.message
