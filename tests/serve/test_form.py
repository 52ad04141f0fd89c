"""The form built from a variable schema, and posted values checked against it."""

import pytest

from sonorad.serve.form import check_values, form_fields, parse_values
from sonorad.serve.uploads import UploadError

SCHEMA = [
    {"name": "age", "type": "numeric", "description": "Age at diagnosis", "unit": "years",
     "range": [21.0, 88.0], "required": True},
    {"name": "calcification", "type": "binary", "levels": ["absent", "present"],
     "description": "Microcalcification on ultrasound", "required": True},
    {"name": "center", "type": "categorical", "levels": ["A", "B"], "description": "Hospital", "required": False},
    {"name": "tirads", "type": "ordinal", "order": ["3", "4", "5"], "description": "TI-RADS category",
     "imputation": None},
    {"name": "size", "type": "numeric", "description": "Lesion size", "imputation": 12.0},
]


def test_each_type_gets_its_input_labelled_by_description():
    fields = {f["name"]: f for f in form_fields(SCHEMA, allow_missing=True)}
    assert fields["age"]["input"] == "number" and fields["age"]["unit"] == "years"
    assert fields["age"]["range"] == [21.0, 88.0] and fields["age"]["label"] == "Age at diagnosis"
    assert fields["calcification"]["input"] == "yesno"
    assert fields["calcification"]["choices"] == ["absent", "present"]
    assert fields["center"]["input"] == "select" and fields["center"]["choices"] == ["A", "B"]
    assert fields["tirads"]["choices"] == ["3", "4", "5"] and fields["tirads"]["required"]
    assert not fields["center"]["required"]
    assert not fields["size"]["required"]  # the model imputes it, and the server allows that
    strict = {f["name"]: f for f in form_fields(SCHEMA)}
    assert strict["size"]["required"] and not strict["center"]["required"]  # the schema's own word stands
    # Without declared levels: binary is 0/1, categorical lists the levels seen in training.
    binary, cat = form_fields([{"name": "b", "type": "binary", "levels": None},
                               {"name": "c", "type": "categorical", "levels": None, "training_levels": ["x", "y"]}])
    assert binary["choices"] == ["0", "1"] and cat["choices"] == ["x", "y"]
    # Without a description the name is the label; a dict range is read too.
    [plain] = form_fields([{"name": "size_mm", "type": "numeric", "training_range": {"min": 2, "max": 40}}])
    assert plain["label"] == "size_mm" and plain["range"] == [2, 40] and plain["required"]


def test_a_broken_schema_is_a_bundle_error():
    with pytest.raises(ValueError, match="type"):
        form_fields([{"name": "x", "type": "text"}])


def test_a_number_may_come_as_text_and_the_unit_is_in_the_advice():
    fields = form_fields(SCHEMA, allow_missing=True)
    assert check_values(fields, {"age": " 54.5 ", "calcification": True, "tirads": "4"})["age"] == 54.5
    with pytest.raises(UploadError) as err:
        check_values(fields, {"age": "54,5", "calcification": True, "tirads": 4})
    assert err.value.message == "age = '54,5' is not a number (a decimal comma?)"
    assert err.value.fix.startswith("write a number in years (decimal point '.')")


def test_good_values_come_back_typed():
    fields = form_fields(SCHEMA, allow_missing=True)
    values = check_values(fields, {"age": 54, "calcification": True, "tirads": 4})
    assert values == {"age": 54.0, "calcification": "present", "center": None, "tirads": "4", "size": None}
    again = check_values(fields, {"age": 54.5, "calcification": 0, "tirads": "5", "center": "B", "size": 3})
    assert again["center"] == "B" and again["calcification"] == "absent" and again["size"] == 3.0
    assert check_values(fields, {"age": 1, "calcification": "present", "tirads": "3"})["calcification"] == "present"


@pytest.mark.parametrize("values, field, words", [
    ({"calcification": True, "tirads": 4}, "age", "required and missing"),
    ({"age": None, "calcification": True, "tirads": 4}, "age", "required and missing"),
    ({"age": float("nan"), "calcification": True, "tirads": 4}, "age", "required and missing"),
    ({"age": "fifty", "calcification": True, "tirads": 4}, "age", "age = 'fifty' is not a number"),
    ({"age": True, "calcification": True, "tirads": 4}, "age", "age = 'True' is not a number"),
    ({"age": float("inf"), "calcification": True, "tirads": 4}, "age", "age = inf is not a finite number"),
    ({"age": 1e308, "calcification": True, "tirads": 4}, "age", "age = 1e+308 is not a finite number"),
    ({"age": 50, "calcification": "maybe", "tirads": 4}, "calcification",
     "calcification = 'maybe' is not one of the declared levels [absent, present] of this binary variable"),
    ({"age": 50, "calcification": 2, "tirads": 4}, "calcification", "calcification = '2' is not one of"),
    ({"age": 50, "calcification": 1, "tirads": 6}, "tirads", "tirads = '6' is not one of the declared order [3, 4, 5]"),
    ({"age": 50, "calcification": 1, "tirads": 4, "center": "C"}, "center", "center = 'C' is not one of"),
    ({"age": 50, "calcification": 1, "tirads": 4, "agee": 3}, "agee", "unknown variable"),
])
def test_each_mistake_names_the_variable(values, field, words):
    with pytest.raises(UploadError) as err:
        check_values(form_fields(SCHEMA, allow_missing=True), values)
    assert err.value.field == field and words in err.value.message and err.value.status == 422


def test_without_allow_missing_an_imputable_variable_is_still_required():
    with pytest.raises(UploadError) as err:
        check_values(form_fields(SCHEMA), {"age": 50, "calcification": 1, "tirads": 4})
    assert err.value.field == "size" and "required and missing" in err.value.message


def test_variables_field_must_be_a_json_object():
    assert parse_values(None) == {} and parse_values("  ") == {}
    assert parse_values('{"age": 3}') == {"age": 3}
    for bad in ("[1, 2]", "{age: 3}"):
        with pytest.raises(UploadError) as err:
            parse_values(bad)
        assert err.value.field == "variables"


def test_declared_plausible_range_and_unseen_policy():
    schema = [{"name": "age", "type": "numeric", "plausible_range": [0, 120]},
              {"name": "site", "type": "categorical", "levels": ["a", "b"], "unseen": "other"},
              {"name": "shape", "type": "categorical", "levels": ["oval", "round"], "unseen": "error"}]
    fields = form_fields(schema)
    assert check_values(fields, {"age": 120, "site": "z", "shape": "oval"}) == {"age": 120.0, "site": "z",
                                                                                 "shape": "oval"}
    with pytest.raises(UploadError) as err:
        check_values(fields, {"age": 540, "site": "a", "shape": "oval"})
    assert err.value.field == "age" and "age = 540 is outside the declared range [0, 120]" in err.value.message
    with pytest.raises(UploadError, match=r"shape = 'star' is not one of the declared levels \[oval, round\]"):
        check_values(fields, {"age": 50, "site": "a", "shape": "star"})


def test_a_category_without_declared_levels_is_checked_against_the_training_levels():
    schema = [{"name": "echo", "type": "categorical", "levels": None, "training_levels": ["hypo", "iso"]}]
    assert check_values(form_fields(schema), {"echo": "iso"}) == {"echo": "iso"}
    with pytest.raises(UploadError) as err:
        check_values(form_fields(schema), {"echo": "anechoic"})
    assert err.value.message.startswith("echo = 'anechoic' was never seen in training (training levels: hypo, iso)")
    lenient = form_fields([dict(schema[0], unseen="other")])
    assert check_values(lenient, {"echo": " anechoic "}) == {"echo": "anechoic"}  # the model codes it


TRAINED_AGE = {"name": "age", "type": "numeric", "description": "Age at diagnosis", "unit": "years",
               "training_range": [24.0, 84.0], "training_quartiles": [43.4, 60.6]}


def test_the_page_gets_the_unit_and_the_accepted_range():
    [field] = form_fields([TRAINED_AGE])
    assert field["unit"] == "years" and field["range"] == [24.0, 84.0]
    assert field["accepted_range"] == [0.0, pytest.approx(232.6)] and field["accepted_range_source"] == "training"
    [declared] = form_fields([dict(TRAINED_AGE, plausible_range=[18, 100])])
    assert declared["accepted_range"] == [18.0, 100.0] and declared["accepted_range_source"] == "declared"
    [old] = form_fields([{k: v for k, v in TRAINED_AGE.items() if k != "training_quartiles"}])
    assert old["accepted_range"] is None and old["accepted_range_source"] is None


@pytest.mark.parametrize("age", [1e308, -5, 400])
def test_an_implausible_number_is_refused_naming_the_field_and_the_fix(age):
    with pytest.raises(UploadError) as err:
        check_values(form_fields([TRAINED_AGE]), {"age": age})
    assert err.value.field == "age" and err.value.status == 422
    assert err.value.message.startswith(f"age = {age:g} is ")
    if age != 1e308:  # beyond float32: refused as not finite, before any range
        assert "accepted: 0 to 232.6 years" in err.value.message
        assert "declare variables.age.range" in err.value.fix


def test_a_plausible_number_is_accepted_and_an_old_schema_is_unchanged():
    assert check_values(form_fields([TRAINED_AGE]), {"age": 90}) == {"age": 90.0}
    old = {k: v for k, v in TRAINED_AGE.items() if k != "training_quartiles"}
    assert check_values(form_fields([old]), {"age": 400}) == {"age": 400.0}


@pytest.fixture(scope="module")
def client(small_bundle):
    from fastapi.testclient import TestClient

    from sonorad.bundle import load_bundle
    from sonorad.serve.app import create_app

    with TestClient(create_app(load_bundle(small_bundle.path)), base_url="http://127.0.0.1") as c:
        yield c


@pytest.mark.parametrize("age", [1e308, -5, 400])
def test_the_calculator_refuses_an_implausible_age_with_a_4xx_naming_it(client, small_bundle, age):
    import json
    from pathlib import Path

    row = small_bundle.table.loc[small_bundle.external_ids[0]]
    values = {"age": age, "tumor_edge": str(row["tumor_edge"]), "calcification": str(row["calcification"]),
              "noise_cat1": str(row["noise_cat1"])}
    files = {"image": ("scan.png", Path(row["image"]).read_bytes()), "mask": ("mask.png", Path(row["mask"]).read_bytes())}
    answer = client.post("/api/predict", files=files, data={"variables": json.dumps(values), "case_id": "x"})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["field"] == "age" and body["error"].startswith(f"age = {age:g} is ") and body["fix"]
