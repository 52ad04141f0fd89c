"""sonorad.keys: one declaration checks a value and collects every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from sonorad.keys import INVALID, Checker, Key, lazy

ANIMAL = Key("animal", "mapping", discriminator="kind", variant_noun="animal", keys=(
    Key("kind", "choice", required=True, choices=("cat", "fish"), noun="kind"),
    Key("legs", "integer", when=("cat",), required_when=("cat",)),
    Key("fins", "integer", minimum=1, when=("fish",)),
    Key("name", "text", default="nameless"),
))


def check(key, value, **options):
    checker = Checker(**options)
    return checker.check(key, value, key.name), [(p.column, p.message) for p in checker.problems]


def test_values_are_converted_and_defaults_filled():
    assert check(ANIMAL, {"kind": "cat", "legs": 4}) == ({"kind": "cat", "legs": 4, "name": "nameless"}, [])


def test_every_problem_is_collected_with_its_key_path():
    value, problems = check(ANIMAL, {"kind": "cat", "fins": 0, "wings": 2, "name": ""})
    assert [p[0] for p in problems] == ["animal.wings", "animal.legs", "animal.name", "animal.fins"]
    assert problems[0][1] == "unknown key 'wings'; allowed keys: kind, legs, fins, name"
    assert problems[1][1] == "is required for a cat animal"
    assert problems[3][1] == "is not allowed for a cat animal; `fins` is for fish animals"


def test_a_strict_discriminator_lists_only_the_keys_of_its_variant():
    split = Key("split", "mapping", discriminator="by", keys=(
        Key("by", "choice", required=True, choices=("center", "patient"), noun="value", plural=""),
        Key("train", "centers", when=("center",)), Key("seed", "integer")))
    assert check(split, {"by": "patient", "train": ["A"]})[1] == [
        ("split.train", "unknown key 'train'; allowed keys: by, seed")]
    assert check(split, {"by": "centre"})[1] == [("split.by", "unknown value 'centre'; allowed: center, patient")]
    assert check(split, {})[1] == [("split.by", "is required; allowed: center, patient")]


@pytest.mark.parametrize(("key", "value", "message"), [
    (Key("n", "integer"), -1, "must be a non-negative integer, got -1"),
    (Key("n", "integer", minimum=2), True, "must be an integer >= 2, got True"),
    (Key("x", "number", low=0, high=1), 2, "must be a number in [0, 1], got 2"),
    (Key("f", "fraction"), 1.5, "must be a fraction strictly between 0 and 1, got 1.5"),
    (Key("b", "boolean"), "yes", "must be true or false, got 'yes'"),
    (Key("a", "choice", choices=(True, False, "auto")), "heavy", "must be true, false or auto, got 'heavy'"),
    (Key("a", "choice", choices=(True, False)), 1, "must be true or false, got 1"),
    (Key("t", "choice", choices=("x", "y"), noun="type"), "z", "unknown type 'z'; allowed types: x, y"),
    (Key("m", "names", choices=("svm", "knn"), noun="model"), ["svn"], "unknown model 'svn'; allowed models: svm, knn"),
    (Key("m", "names", single=False), "svm", "must be a list of names, got 'svm'"),
    (Key("l", "levels"), [1, "1"], "lists '1' twice: [1, '1']"),
    (Key("r", "range"), [3, 1], "must be [low, high], two finite numbers with low < high, got [3, 1]"),
    (Key("t", "text"), [], "must be non-empty text, got list []"),
    (Key("m", "mapping"), [1], "must be a mapping (key: value lines), got list [1]"),
    (Key("i", "toggle", keys=(Key("n", "integer"),)), 3, "must be true, false or a mapping with keys n, got 3"),
])
def test_each_kind_says_what_it_must_be(key, value, message):
    checked, problems = check(key, value)
    assert checked is INVALID and problems == [(key.name, message)]


def test_levels_and_scalars_are_compared_as_canonical_text():
    assert check(Key("l", "levels"), [2, 3.0, "4a"])[0] == ("2", "3", "4a")
    assert check(Key("l", "levels"), "a")[0] == ("a",)
    assert check(Key("p", "scalar"), 1.0)[0] == "1"


def test_null_is_a_value_only_where_declared():
    assert check(Key("d", "names", nullable=True), None) == (None, [])
    assert check(Key("b", "boolean"), None)[1] == [("b", "must be true or false, got None")]
    key = Key("m", "mapping", keys=(Key("seed", "integer", default=0),))
    assert check(key, {"seed": None}, null_is_missing=True) == ({"seed": 0}, [])


def test_paths_are_read_from_the_study_file_folder(tmp_path):
    (tmp_path / "p.yaml").write_text("x: 1\n")
    source = tmp_path / "study.yaml"
    assert check(Key("p", "path", must_exist=True), "p.yaml", source=source) == (tmp_path / "p.yaml", [])
    checked, problems = check(Key("p", "path", must_exist=True), "q.yaml", source=source)
    assert checked is INVALID and "does not exist" in problems[0][1]
    assert check(Key("w", "path", words=("default",)), "default", source=source)[0] == "default"
    assert check(Key("w", "path", words=("default",)), "w.pt", source=source)[0] == str(tmp_path / "w.pt")
    assert check(Key("c", "path", resolve=True), "c.csv", source=source)[0] == Path(tmp_path.resolve(), "c.csv")


def test_lazy_choices_are_imported_when_needed():
    choices = lazy("sonorad.variables:VARIABLE_TYPES")
    assert "ordinal" in choices()
    assert check(Key("t", "choice", choices=choices, noun="type"), "ordinal") == ("ordinal", [])


def test_rules_see_the_checked_values():
    def no_cats_with_fins(values, raw, path, checker):
        if values.get("kind") == "cat" and "fins" in raw:
            checker.add(f"{path}.fins", "a cat has no fins")

    key = Key("animal", "mapping", rules=(no_cats_with_fins,), keys=(
        Key("kind", "choice", choices=("cat",)), Key("fins", "any")))
    assert check(key, {"kind": "cat", "fins": 1})[1] == [("animal.fins", "a cat has no fins")]


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        Key("x", "colour")
