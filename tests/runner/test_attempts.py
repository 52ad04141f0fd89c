"""sonorad.runner.attempts: each attempt's command line and stage times, kept across resumed runs."""

from __future__ import annotations

import json

from sonorad.runner.attempts import ATTEMPTS_FILE, Attempt, command_line, read_attempts


def test_command_line_reproduces_the_options_and_quotes_paths(tmp_path):
    command, options = command_line("my study.yaml", tmp_path / "out", jobs=2, report=False)
    assert command == f"sonorad run 'my study.yaml' --out {tmp_path / 'out'} --jobs 2 --no-report"
    assert options == "--jobs 2 --no-report"
    assert command_line("s.yaml", "out")[1] == "none"


def test_an_attempt_keeps_the_earlier_ones_and_its_own_times_after_every_stage(tmp_path):
    first = Attempt(tmp_path, "sonorad run s.yaml --out out")
    first.update({"validate": 1.0}, [])
    second = Attempt(tmp_path, "sonorad run s.yaml --out out --jobs 2")
    assert [a["command"] for a in second.earlier] == ["sonorad run s.yaml --out out"]
    second.update({"validate": 0.5, "features": 3.0}, ["validate"], finished=True)
    stored = read_attempts(tmp_path)
    assert [a["timings"] for a in stored] == [{"validate": 1.0}, {"validate": 0.5, "features": 3.0}]
    assert stored[1]["reused"] == ["validate"] and stored[1]["finished"] is True


def test_an_unreadable_record_means_no_earlier_attempt(tmp_path):
    (tmp_path / ATTEMPTS_FILE).write_text("{not json")
    assert read_attempts(tmp_path) == []
    (tmp_path / ATTEMPTS_FILE).write_text(json.dumps({"a": 1}))
    assert read_attempts(tmp_path) == []
