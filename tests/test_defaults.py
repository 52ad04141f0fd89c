"""sonorad.defaults: the study-file defaults shared by the design registry, the schema and the runner."""

from __future__ import annotations

from sonorad.defaults import DEFAULT_DESIGN, RUNNER_MODEL_KEYS
from sonorad.designs import available_designs, build_design, get_design


def test_default_design_is_named_once():
    import sonorad.designs
    from sonorad.designs.score_fusion import ScoreFusionDesign

    assert sonorad.designs.DEFAULT_DESIGN == DEFAULT_DESIGN
    assert get_design(DEFAULT_DESIGN) is ScoreFusionDesign
    assert type(build_design({})) is ScoreFusionDesign


def test_the_runner_keys_of_the_models_section_are_no_design_key():
    from sonorad.study.schema import check_models_section

    for name in available_designs():
        assert not {k.name for k in get_design(name).keys()} & set(RUNNER_MODEL_KEYS), name
    section = {"design": DEFAULT_DESIGN, "cnn": {"backbones": ["efficientnet_lite0"]}, "bundle_exclude": ["knn"]}
    design = build_design(section)  # the design accepts them without reading them
    assert not set(design.section) & set(RUNNER_MODEL_KEYS)
    assert not check_models_section(section)
