"""sonorad.study.describe: a declaration as JSON Schema and as docs rows."""

from __future__ import annotations

from sonorad.study.describe import json_schema, key_rows
from sonorad.keys import Key

SPLIT = Key("split", "mapping", "how cases are split", discriminator="by", keys=(
    Key("by", "choice", "center or patient", required=True, choices=("center", "patient")),
    Key("train", "centers", "training centers", when=("center",), required_when=("center",)),
    Key("seed", "integer", "its seed", default=0),
))


def test_json_schema_of_a_mapping():
    schema = json_schema(SPLIT)
    assert schema["description"] == "how cases are split" and schema["required"] == ["by"]
    assert schema["properties"]["by"]["enum"] == ["center", "patient"]
    assert schema["properties"]["seed"] == {"description": "its seed", "type": "integer", "minimum": 0,
                                            "default": 0}
    assert schema["additionalProperties"] is False
    # train only with by: center
    assert schema["allOf"] == [{"if": {"required": ["by"], "properties": {"by": {"not": {"enum": ["center"]}}}},
                                "then": {"not": {"required": ["train"]}}}]


def test_nullable_and_shorthand_keys():
    assert json_schema(Key("d", "names", nullable=True))["anyOf"][-1] == {"type": "null"}
    short = json_schema(Key("v", "mapping", shorthand="t", keys=(Key("t", "choice", choices=("a", "b")),)))
    assert short["anyOf"][0] == {"enum": ["a", "b"]} and short["anyOf"][1]["type"] == "object"


def test_key_rows_for_the_docs():
    rows = key_rows(SPLIT)
    assert rows[0] == ("`by`", "all", "required", "center or patient (`center`, `patient`)")
    assert rows[1] == ("`train`", "`center`", "required for center", "training centers")
    assert rows[2] == ("`seed`", "all", "`0`", "its seed")
