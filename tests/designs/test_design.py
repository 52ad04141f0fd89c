"""sonorad.designs.design: a design's declared keys, its section check and its fit."""

from __future__ import annotations

from sonorad.designs import available_designs, get_design
from sonorad.designs.design import SHARED_KEYS, Design


def test_each_design_declares_its_keys():
    for name in available_designs():
        design = get_design(name)
        assert issubclass(design, Design)
        assert [k.name for k in design.keys()] == design.parameters()


def test_shared_keys_mean_the_same_in_every_design_that_has_them():
    shared = {k.name: k for k in SHARED_KEYS}
    for name in available_designs():
        for key in get_design(name).keys():
            if key.name in shared:
                assert key is shared[key.name], f"{name} redeclares {key.name}"


def test_section_problems_name_the_key_and_ignore_the_runner_keys():
    design = get_design("score_fusion")
    assert design.section_problems({"design": "score_fusion", "cnn": {"epochs": 1}, "bundle_exclude": ["knn"]}) == []
    problems = design.section_problems({"cv": 1, "n_trees": 5})
    assert {p.column for p in problems} == {"models.cv", "models.n_trees"}
