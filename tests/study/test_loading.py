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


def _alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" YAML value: each level repeats the previous one nine times (9**9 leaves)."""
    lines = ['  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines)


@pytest.mark.parametrize("where", ["description", "models", "seed"])
def test_an_alias_bomb_is_refused_quickly_naming_the_key(tmp_path, where):
    import threading
    import time
    import tracemalloc

    path = tmp_path / "bomb.yaml"
    path.write_text(f"name: s\n{where}:\n{_alias_bomb()}\n")
    outcome: list = []

    def load():
        try:
            load_study(path)
        except ConfigError as exc:
            outcome.append(exc)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            outcome.append(exc)

    tracemalloc.start()
    start = time.monotonic()
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert not thread.is_alive(), "the alias bomb was still being expanded after 5 s"
    assert time.monotonic() - start < 5
    assert peak < 50 * 2**20, f"reading the file used {peak / 2**20:.0f} MiB"
    assert len(outcome) == 1 and isinstance(outcome[0], ConfigError), outcome
    message = str(outcome[0])
    assert where in message and "alias" in message
    assert len(message) < 2000


def test_a_deeply_nested_value_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("name: s\ndescription: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="description.*nest"):
        load_study(path)


def test_show_truncates_long_values():
    from sonorad.keys import show

    shared = ["lol"] * 9
    for _ in range(8):
        shared = [shared] * 9  # shared references: 9**9 leaves if written out
    text = show(shared)
    assert len(text) <= 200
    assert len(show("x" * 10_000)) <= 200
    assert show("age") == "'age'" and show(3) == "3"
