"""sonorad.study.config: a study mapping -> a validated, typed StudyConfig."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sonorad.errors import ConfigError
from sonorad.study import CenterSplit, LabelSpec, PatientSplit, StudyConfig, load_study
from sonorad.variables import canonical_value

REPO = Path(__file__).resolve().parents[2]


def _problem_keys(exc: ConfigError) -> list[str]:
    return [p.column for p in exc.problems]


def test_minimal_study_has_documented_defaults():
    cfg = StudyConfig.from_dict({"name": "s"})
    assert cfg.seed == 0
    assert cfg.label == LabelSpec(column="label", positive="1")
    assert cfg.variables == {} and cfg.split is None and cfg.features == {} and cfg.models == {}
    assert cfg.cohort is None and cfg.split_seed == 0


def test_full_study_is_parsed_into_typed_frozen_objects(tmp_path):
    (tmp_path / "study.yaml").write_text(
        """
name: clnm
description: CLNM in salivary gland carcinoma
cohort: data/cases.csv
seed: 7
label: {column: clnm, positive: metastatic}
variables:
  age: {type: numeric, role: clinical}
  sex: {type: binary, levels: [F, M], role: clinical}
  edge: {type: categorical, levels: [smooth, irregular], role: ultrasound}
  birads: {type: ordinal, order: [2, 3, 4a, 4b, 5], role: ultrasound}
  smoker: binary
split: {by: center, train: [H1, H2], external: [H3, 4], internal_fraction: 0.2}
features: {radiomics: {params: default}, unknown_key_kept: [1, 2]}
models: {zoo: [lr, svm]}
""",
        encoding="utf-8",
    )
    cfg = load_study(tmp_path / "study.yaml")
    assert cfg.name == "clnm" and cfg.seed == 7
    assert cfg.cohort == (tmp_path / "data" / "cases.csv").resolve()
    assert cfg.source == tmp_path / "study.yaml"
    assert cfg.label == LabelSpec(column="clnm", positive="metastatic")
    assert list(cfg.variables) == ["age", "sex", "edge", "birads", "smoker"]
    assert cfg.variables["birads"].order == ("2", "3", "4a", "4b", "5")
    assert cfg.variables["sex"].levels == ("F", "M")
    assert cfg.variables["smoker"].allowed_values == ("0", "1")
    assert cfg.variables["age"].allowed_values is None
    assert cfg.variables_with_role("ultrasound") == ["edge", "birads"]
    assert cfg.split == CenterSplit(train=("H1", "H2"), external=("H3", "4"), internal_fraction=0.2)
    assert cfg.split_seed == 7
    assert cfg.features == {"radiomics": {"params": "default"}, "unknown_key_kept": [1, 2]}
    assert cfg.models == {"zoo": ["lr", "svm"]}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1


def test_patient_split_with_its_own_seed():
    cfg = StudyConfig.from_dict({"name": "s", "seed": 3, "split": {"by": "patient", "test_fraction": 0.3, "seed": 11}})
    assert cfg.split == PatientSplit(test_fraction=0.3, seed=11)
    assert cfg.split_seed == 11


def test_all_problems_are_reported_at_once_with_key_value_and_choices():
    with pytest.raises(ConfigError) as info:
        StudyConfig.from_dict({
            "seed": -1,
            "colour": "red",
            "variables": {
                "birads": {"type": "ordinal", "order": [2, 3, 3]},
                "age": {"type": "numbr"},
                "edge": {"type": "categorical", "role": "radiology", "order": [1, 2]},
                "halo": {"type": "binary", "levels": ["no", "yes", "maybe"]},
                "case_id": "numeric",
            },
            "split": {"by": "center", "train": ["A", "B"], "external": ["B"], "internal_fraction": 1.5},
            "features": ["not", "a", "mapping"],
        })
    keys = _problem_keys(info.value)
    assert keys == [
        "colour", "name", "seed", "variables.birads.order", "variables.age.type", "variables.edge.role",
        "variables.edge.order", "variables.halo.levels", "variables.case_id", "split.internal_fraction",
        "split.external", "features",
    ]
    text = str(info.value)
    assert "12 problem(s)" in text
    # unknown top-level key: the allowed ones are listed
    assert "unknown key 'colour'; allowed keys: name, description, cohort, seed, label, variables" in text
    # bad value and the allowed choices
    assert "unknown type 'numbr'; allowed types: numeric, binary, categorical, ordinal" in text
    assert "unknown role 'radiology'; allowed roles: clinical, ultrasound" in text
    assert "variables.birads.order: lists '3' twice" in text
    assert "center 'B' is in both split.train and split.external" in text
    assert "got 1.5" in text


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"name": "s", "variables": {"b": {"type": "ordinal"}}}, "variables.b.order", "is required"),
        ({"name": "s", "variables": {"b": {"type": "ordinal", "levels": [1, 2], "order": [1, 2]}}},
         "variables.b.levels",
         "use `order: [...]`"),
        ({"name": "s", "variables": {"a": {"type": "numeric", "units": "y"}}}, "variables.a.units",
         "allowed keys: type, levels, order, role, description"),
        ({"name": "s", "variables": {"a": {"type": "numeric", "levels": [1]}}}, "variables.a.levels",
         "not allowed for a numeric variable"),
        ({"name": "s", "label": {"positive": [1]}}, "label.positive", "got [1]"),
        ({"name": "s", "label": {"col": "y"}}, "label.col", "allowed keys: column, positive"),
        ({"name": "s", "seed": True}, "seed", "non-negative integer"),
        ({"name": "s", "split": {"by": "hospital"}}, "split.by", "unknown value 'hospital'; allowed: center, patient"),
        ({"name": "s", "split": {"by": "patient"}}, "split.test_fraction", "is required"),
        ({"name": "s", "split": {"by": "patient", "test_fraction": 0.3, "train": ["A"]}}, "split.train",
         "allowed keys: by, test_fraction, seed"),
        ({"name": "s", "split": {"by": "center", "train": ["A"]}}, "split.external", "is required"),
        ({"name": "s", "variables": {"label": "numeric"}}, "variables.label", "reserved cohort column"),
        ({"name": "s", "label": {"column": "y"}, "variables": {"y": "numeric"}}, "variables.y", "reserved"),
    ],
)
def test_each_rule_names_its_key(data, key, fragment):
    with pytest.raises(ConfigError) as info:
        StudyConfig.from_dict(data)
    assert _problem_keys(info.value) == [key]
    assert fragment in str(info.value)


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match="must be a mapping of keys, got list"):
        StudyConfig.from_dict(["name", "s"])


def test_round_trip_through_to_dict(tmp_path):
    cfg = load_study(REPO / "studies" / "example.yaml")
    again = StudyConfig.from_dict(cfg.to_dict(), source=cfg.source)
    assert dataclasses.replace(again, source=None) == dataclasses.replace(cfg, source=None)


def test_example_study_declares_every_variable_type_and_a_center_split():
    cfg = load_study(REPO / "studies" / "example.yaml")
    assert {v.type for v in cfg.variables.values()} == {"numeric", "binary", "categorical", "ordinal"}
    assert isinstance(cfg.split, CenterSplit)
    assert cfg.cohort is not None and cfg.cohort.is_absolute()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2, "2"), (2.0, "2"), ("2", "2"), (" 2.0 ", "2"), ("4a", "4a"), (0.5, "0.5"), ("0.50", "0.5"),
     (True, "1"), (float("nan"), None), ("", None), (None, None), ("malignant", "malignant"),
     (np.int64(3), "3"), (np.float32(1.0), "1"), (pd.NA, None)],
)
def test_canonical_value(value, expected):
    assert canonical_value(value) == expected


def test_masks_range_and_unseen_round_trip():
    cfg = StudyConfig.from_dict({
        "name": "s",
        "variables": {"age": {"type": "numeric", "range": [18, 100]},
                      "echo": {"type": "categorical", "unseen": "other"}},
        "masks": {"label": 2, "lesions": "per-lesion"},
    })
    assert cfg.variables["age"].range == (18.0, 100.0) and cfg.variables["echo"].unseen == "other"
    assert cfg.masks.label == 2 and cfg.masks.lesions == "per-lesion"
    assert StudyConfig.from_dict(cfg.to_dict()) == cfg
    assert StudyConfig.from_dict({"name": "s"}).masks.label is None


@pytest.mark.parametrize("section, key", [
    ({"variables": {"age": {"type": "numeric", "range": [1]}}}, "variables.age.range"),
    ({"variables": {"age": {"type": "binary", "range": [0, 1]}}}, "variables.age.range"),
    ({"variables": {"age": {"type": "numeric", "range": [0, float("inf")]}}}, "variables.age.range"),
    ({"variables": {"echo": {"type": "ordinal", "order": [1, 2], "unseen": "other"}}}, "variables.echo.unseen"),
    ({"variables": {"echo": {"type": "categorical", "unseen": "drop"}}}, "variables.echo.unseen"),
    ({"masks": {"label": 1.5}}, "masks.label"),
    ({"masks": {"lesions": "biggest"}}, "masks.lesions"),
    ({"masks": {"labels": 1}}, "masks.labels"),
    ({"masks": [1]}, "masks"),
])
def test_masks_range_and_unseen_errors_name_the_key(section, key):
    with pytest.raises(ConfigError) as info:
        StudyConfig.from_dict({"name": "s", **section})
    assert key in [p.column for p in info.value.problems]
