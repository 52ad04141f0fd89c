"""Bounded JSON: size and nesting checked before parsing, every refusal a 4xx naming the field."""

import pytest

from sonorad.serve.form import parse_values
from sonorad.serve.jsonin import MAX_JSON_DEPTH, json_depth, load_json
from sonorad.serve.uploads import UploadError

FIX = "send a JSON object"


@pytest.mark.parametrize("text, depth", [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('["[[[[", "\\"]]]"]', 1), ('"{{{"', 0),
    ("[" * 50 + "]" * 50, 50),
])
def test_depth_ignores_brackets_inside_strings(text, depth):
    assert json_depth(text) == depth


def test_within_the_limits_it_is_json_loads():
    text = '{"age": 54, "calcification": true, "roi": [[1.5, 2], [3, 4]], "s": "a]}"}'
    assert load_json(text, field="variables", fix=FIX) == {"age": 54, "calcification": True,
                                                           "roi": [[1.5, 2], [3, 4]], "s": "a]}"}
    assert load_json(b'{"x": "\xc3\xa9"}', field="variables", fix=FIX) == {"x": "é"}


@pytest.mark.parametrize("text, status, words", [
    ("[" * 100_000 + "]" * 100_000, 422, "nested 100000 levels"),
    ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), 422, "nested"),
    ('{"a": ' * 5000 + "1" + "}" * 5000, 422, "nested"),
    ("[" * 100_000, 422, "nested"),  # unbalanced: still refused before parsing
    ("x" * 3_000_000, 413, "limit"),
    ("{not json}", 422, "not valid JSON"),
    (b"\xff\xfe", 422, "not UTF-8"),
    ("1" * 5000, 422, "not valid JSON"),  # an integer too long for Python's int conversion limit
])
def test_hostile_json_is_a_4xx_naming_the_field(text, status, words):
    with pytest.raises(UploadError) as err:
        load_json(text, field="variables", fix=FIX)
    assert err.value.status == status and err.value.field == "variables" and words in err.value.message
    assert err.value.fix == FIX


def test_variables_nested_deep_are_refused_by_the_form_parser():
    with pytest.raises(UploadError) as err:
        parse_values('{"age": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert err.value.field == "variables" and 400 <= err.value.status < 500
