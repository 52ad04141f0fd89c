"""sonorad.study.schema: every key of the study file declared once; JSON Schema and docs from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sonorad.errors import ConfigError
from sonorad.study import StudyConfig
from sonorad.study.schema import (DEFAULT_DESIGN, DOCS_TABLES, SCHEMA_PATH, STUDY, check_models_section,
                                  check_runner_sections, check_study, docs_table, render_key_tables, study_json_schema)

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate it: sonorad schema --out src/sonorad/study/study.schema.json"


def test_the_shipped_json_schema_is_what_the_declaration_generates():
    shipped = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert shipped == study_json_schema(), REGENERATE


def test_sonorad_schema_prints_and_writes_it(tmp_path, capsys):
    from sonorad.cli import main

    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == study_json_schema()
    assert main(["schema", "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8")) == study_json_schema()


@pytest.mark.parametrize("doc", ["study-file.md", "running-a-study.md"])
def test_the_docs_key_tables_are_current(doc):
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    assert "<!-- keys: " in text
    assert render_key_tables(text) == text, (
        f"docs/{doc} is stale; rewrite it with sonorad.study.schema.render_key_tables")


def test_every_section_has_a_docs_table():
    tables = "".join((REPO / "docs" / doc).read_text(encoding="utf-8") for doc in ("study-file.md",
                                                                                      "running-a-study.md"))
    for name in DOCS_TABLES:
        assert f"<!-- keys: {name} -->" in tables, name
    assert "| `name` | required |" in docs_table("study")


def test_json_schema_names_every_declared_key_and_the_design_variants():
    schema = study_json_schema()
    assert list(schema["properties"]) == [k.name for k in STUDY.keys]
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False
    models, null = schema["properties"]["models"]["anyOf"]  # null: the section left out
    assert null == {"type": "null"}
    design = models["properties"]["design"]
    assert {"score_fusion", "feature_families", "radiomics_nomogram", "study1", "study2"} == set(design["enum"])
    assert design["default"] == DEFAULT_DESIGN
    assert {"families", "rad_score", "dl_score", "cnn"} <= set(models["properties"])
    variable = schema["properties"]["variables"]["anyOf"][0]["additionalProperties"]
    assert variable["anyOf"][0]["enum"] == ["numeric", "binary", "categorical", "ordinal"]


@pytest.mark.parametrize("name", ["clnm_salivary.yaml", "primary_secondary_salivary.yaml",
                                  "radiomics_nomogram.yaml", "example.yaml"])
def test_the_ready_study_files_use_only_keys_the_json_schema_knows(name):
    data = yaml.safe_load((REPO / "studies" / name).read_text(encoding="utf-8"))
    schema = study_json_schema()["properties"]
    checked = 0
    for section, value in data.items():
        assert section in schema
        declared = next((s for s in schema[section].get("anyOf", [schema[section]]) if s.get("type") == "object"),
                        {})
        if isinstance(value, dict) and "properties" in declared:
            assert set(value) <= set(declared["properties"]), (section, set(value))
            checked += 1
    assert checked >= 2


def test_check_study_returns_checked_values_and_every_problem():
    values, problems = check_study({"name": "s", "split": {"by": "patient", "test_fraction": 0.25}})
    assert values["split"] == {"by": "patient", "test_fraction": 0.25} and values["seed"] == 0 and not problems
    values, problems = check_study("just text")
    assert values is None and problems[0].column == "(top level)"


def test_runner_sections_fill_defaults_and_check_the_design_keys():
    values, problems = check_runner_sections({}, {"design": "feature_families", "families": ["us"]}, {})
    assert not problems and values["features"]["deep"] == ("efficientnet_lite0",)
    assert values["evaluation"]["cv_folds"] == 5
    _, problems = check_runner_sections({}, {"design": "score_fusion", "families": ["us"], "cv": 1}, {})
    assert [p.column for p in problems] == ["models.families", "models.cv"]
    assert "for design 'score_fusion'" in problems[0].message


def test_a_variable_may_declare_its_unit():
    cfg = StudyConfig.from_dict({"name": "s", "variables": {"age": {"type": "numeric", "unit": "years"}}})
    assert cfg.variables["age"].unit == "years"
    assert StudyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="variables.edge.unit: is not allowed for a categorical variable"):
        StudyConfig.from_dict({"name": "s", "variables": {"edge": {"type": "categorical", "unit": "mm"}}})


def test_models_section_problems_are_all_found_before_any_work():
    problems = check_models_section({"design": "score_fusion", "models": ["logistic_regresion", "svm"],
                                     "rad_score": {"alpah": 0.1}, "n_tree": 3, "cv": 1})
    where = {p.column for p in problems}
    assert {"models.models", "models.rad_score.alpah", "models.n_tree", "models.cv"} <= where
    assert any("logistic_regresion" in p.message for p in problems)
    assert check_models_section({"design": "study9"})[0].column == "models.design"
    assert check_models_section({"design": "radiomics_nomogram", "models": ["svm"]})[0].column == "models.models"
    assert not check_models_section({"design": "feature_families", "families": ["us"], "selection": {"alpha": 0.1}})
    assert check_models_section({"design": "feature_families", "families": ["radiomic"]})[0].column == "models.families"


@pytest.mark.parametrize("seed", [2**32, 2**70])
def test_a_seed_numpy_cannot_take_is_refused_naming_the_key(seed):
    _, problems = check_study({"name": "s", "seed": seed})
    expected = ("seed", f"must be a non-negative integer <= 4294967295, got {seed}")
    assert [(p.column, p.message) for p in problems] == [expected]
    _, problems = check_study({"name": "s", "split": {"by": "patient", "seed": seed}})
    assert "split.seed" in [p.column for p in problems]
    values, problems = check_study({"name": "s", "seed": 2**32 - 1})
    assert not problems and values["seed"] == 2**32 - 1
    assert study_json_schema()["properties"]["seed"]["anyOf"][0]["maximum"] == 2**32 - 1
