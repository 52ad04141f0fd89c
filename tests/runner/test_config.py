"""The runner's sections of a study file: defaults, every problem at once, paths."""

import pytest

from sonorad.errors import ConfigError
from sonorad.runner import run_config
from sonorad.study import StudyConfig

BASE = {"name": "s", "label": {"positive": 1}}


def study(**sections):
    return StudyConfig.from_dict({**BASE, **sections})


def test_defaults():
    cfg = run_config(study())
    assert cfg.radiomics and cfg.deep == ("efficientnet_lite0",) and cfg.dl_backbones == ("efficientnet_lite0",)
    assert cfg.design == "score_fusion" and cfg.cv_folds == 5 and cfg.level == 0.95 and cfg.cnn is None


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        run_config(study(features={"deep": ["alexnet"], "jobs": 0, "colour": 1},
                         evaluation={"cv_folds": 1, "shap": "yes"},
                         models={"design": "study3", "cnn": {"backbones": ["nope"], "lr2": 1, "augment": "heavy"}}))
    text = str(info.value)
    for fragment in ("features.deep", "alexnet", "features.jobs", "features.colour", "evaluation.cv_folds",
                     "evaluation.shap", "models.design", "models.cnn.backbones", "models.cnn.lr2",
                     "models.cnn.augment: must be true, false or scanner_shift, got 'heavy'"):
        assert fragment in text, fragment


def test_cnn_augment_takes_the_scanner_shift_recipe():
    for value in (True, False, "scanner_shift"):
        assert run_config(study(models={"cnn": {"augment": value}})).cnn["augment"] == value


def test_dl_backbones_default_to_every_extracted_backbone():
    lite = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert run_config(study(features={"deep": lite})).dl_backbones == tuple(lite)
    assert run_config(study(features={"deep": lite, "dl_backbone": "efficientnet_lite1"})).dl_backbones == (
        "efficientnet_lite1",)
    assert run_config(study(features={"deep": lite, "dl_backbone": []})).dl_backbones == ()
    with pytest.raises(ConfigError) as info:
        run_config(study(features={"deep": lite[:1], "dl_backbone": ["efficientnet_lite0", "resnet18",
                                                                      "efficientnet_lite0"]}))
    text = str(info.value)
    assert "'resnet18' is not one of features.deep" in text and "lists a backbone twice" in text


def test_nothing_to_extract_is_an_error():
    with pytest.raises(ConfigError, match="nothing to extract"):
        run_config(study(features={"radiomics": False, "deep": []}))


def test_paths_are_relative_to_the_study_file(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("imageType: {Original: {}}\n")
    cfg = run_config(StudyConfig.from_dict({**BASE, "features": {"params": "p.yaml", "cache": "c"}},
                                           source=tmp_path / "study.yaml"))
    assert cfg.params == params and cfg.cache == tmp_path / "c"


def test_missing_params_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        run_config(StudyConfig.from_dict({**BASE, "features": {"params": "missing.yaml"}},
                                         source=tmp_path / "study.yaml"))


def test_jobs_override_and_icc_shorthand():
    cfg = run_config(study(features={"icc": True}), jobs=3)
    assert cfg.jobs == 3 and cfg.icc == {"n_cases": 30, "threshold": 0.75}


def test_models_section_passes_through_without_runner_keys():
    cfg = run_config(study(models={"design": "feature_families", "families": ["us"], "cnn": {"epochs": 2}}))
    assert cfg.models == {"design": "feature_families", "families": ["us"]}
    assert cfg.cnn["backbones"] == ("efficientnet_lite0",) and cfg.cnn["epochs"] == 2


def test_ready_study_files_are_valid():
    from pathlib import Path

    from sonorad.study import load_study

    for name in ("clnm_salivary.yaml", "primary_secondary_salivary.yaml"):
        s = load_study(Path(__file__).resolve().parents[2] / "studies" / name)
        cfg = run_config(s)
        assert cfg.design in ("score_fusion", "feature_families")


def test_bootstrap_and_per_center_options():
    cfg = run_config(study())
    assert cfg.bootstrap == 0 and cfg.per_center is True
    cfg = run_config(study(evaluation={"bootstrap": 200, "per_center": False}))
    assert cfg.bootstrap == 200 and cfg.per_center is False
    with pytest.raises(ConfigError) as info:
        run_config(study(evaluation={"bootstrap": -1, "per_center": "yes"}))
    assert "evaluation.bootstrap" in str(info.value) and "evaluation.per_center" in str(info.value)


def test_old_design_names_are_accepted_and_give_the_current_name():
    assert run_config(study(models={"design": "study1"})).design == "score_fusion"
    cfg = run_config(study(models={"design": "study2", "families": ["us"]}))
    assert cfg.design == "feature_families" and cfg.models == {"design": "study2", "families": ["us"]}


def test_run_config_saved_under_the_old_field_name_loads():
    import pickle

    cfg = run_config(study(models={"design": "feature_families"}))
    state = {**cfg.__dict__, "family": cfg.models}
    del state["models"]
    old = object.__new__(type(cfg))
    old.__setstate__(state)
    assert old == cfg and pickle.loads(pickle.dumps(cfg)) == cfg
