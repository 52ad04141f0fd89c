"""sonorad.study.loading: the YAML file, read safely, then validated."""

from __future__ import annotations

import pytest
import yaml

from sonorad.errors import ConfigError
from sonorad.study import load_study
from sonorad.study.loading import study_loader


def test_yes_no_levels_stay_text_and_true_false_are_booleans(tmp_path):
    # YAML 1.1 would read [no, yes] as [False, True]; the study file keeps them as the words.
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nvariables:\n  halo: {type: binary, levels: [no, yes]}\nlabel: {positive: yes}\n")
    cfg = load_study(path)
    assert cfg.variables["halo"].levels == ("no", "yes")
    assert cfg.label.positive == "yes"
    path.write_text("name: s\nvariables:\n  halo: {type: binary, levels: [false, true]}\n")
    assert load_study(path).variables["halo"].levels == ("0", "1")


def test_file_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match="study file not found"):
        load_study(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\nvariables:\n  age: {type: numeric\n")
    with pytest.raises(ConfigError, match=r"(?s)not valid YAML.*bad.yaml\", line 3"):
        load_study(bad)
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: a\nseed: 1\nname: b\n")
    with pytest.raises(ConfigError, match="duplicate key 'name' .first at line 1"):
        load_study(dup)


def test_the_loader_builds_no_python_object(tmp_path):
    assert issubclass(study_loader(), yaml.SafeLoader)
    path = tmp_path / "s.yaml"
    path.write_text("name: !!python/object/apply:os.system [echo hacked]\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_study(path)
