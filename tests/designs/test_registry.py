"""sonorad.designs: the design registry, old design names and build_design."""

from __future__ import annotations

import pytest

from sonorad.errors import ConfigError
from sonorad.designs import FeatureColumns, available_designs, build_design
from sonorad.designs.feature_families import FeatureFamiliesEngine
from sonorad.designs.score_fusion import ScoreFusionEngine
from sonorad.study.schema import check_models_section


def test_discovery_finds_every_design_module():
    assert {"score_fusion", "feature_families", "radiomics_nomogram"} <= set(available_designs())


@pytest.mark.parametrize(("old", "new"), [("study1", "score_fusion"), ("study2", "feature_families")])
def test_old_design_names_stay_accepted(old, new):
    from sonorad.designs import accepted_design_names, get_design

    assert old in accepted_design_names() and old not in available_designs()
    assert get_design(old) is get_design(new) and get_design(old).name == new
    assert not check_models_section({"design": old})
    assert type(build_design({"design": old, "cv": 3})) is get_design(new)


def test_build_design_builds_the_named_engine_and_refuses_unknown_keys_and_designs():
    columns = FeatureColumns()
    fam = build_design({"design": "feature_families", "models": ["svm"], "cv": 3}).build_engine(columns)
    assert isinstance(fam, FeatureFamiliesEngine) and fam.cv == 3
    assert isinstance(build_design({"models": None}).build_engine(columns), ScoreFusionEngine)
    with pytest.raises(ConfigError, match="unknown key"):
        build_design({"design": "score_fusion", "n_trees": 5})
    with pytest.raises(ConfigError, match="allowed designs: .*score_fusion"):
        build_design({"design": "study3"})


def test_build_design_from_study_variables_and_seed():
    import doctest

    import sonorad.designs
    from sonorad.study import StudyConfig

    cfg = StudyConfig.from_dict({
        "name": "t", "seed": 7, "label": {"positive": 1},
        "variables": {"age": {"type": "numeric", "role": "clinical"},
                      "tumour_edge": {"type": "binary", "levels": ["smooth", "irregular"], "role": "ultrasound"}}})
    columns = FeatureColumns(clinical=("age",), us=("tumour_edge",))
    fam = build_design({"models": ["svm"]}, variables=cfg.variables, seed=cfg.seed).build_engine(columns)
    assert fam.random_state == 7 and fam.models == ["svm"]
    assert fam.clinical_variables == {"age": "numeric"}
    assert fam.us_variables == {"tumour_edge": "binary"}
    assert fam.categories == {"tumour_edge": ["smooth", "irregular"]}
    assert build_design({"random_state": 1}, seed=7).build_engine(columns).random_state == 1
    assert doctest.testmod(sonorad.designs).failed == 0
