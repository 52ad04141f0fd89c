"""What ``sonorad run`` says: lowered folds, the closing line, the results table (small runs, fit stubbed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from sonorad.pipeline import stages
from sonorad.runner import RunFailed, run_study
from sonorad.runner.config import RunConfig
from sonorad.synthetic import make_cohort


class _Stop(RuntimeError):
    pass


def _stop(*args, **kwargs):
    raise _Stop("stopped after the checks before fitting")


@pytest.fixture
def tiny_study(tmp_path) -> Path:
    """12 synthetic patients, original-image radiomics only (a few seconds of extraction)."""
    from sonorad.features.radiomics import original_only

    make_cohort(tmp_path / "cohort", scenario="clnm", seed=5, n_patients=12)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(original_only()))
    study = {"name": "tiny", "cohort": "cohort/cases.csv", "label": {"positive": 1},
             "features": {"deep": [], "params": "params.yaml"}, "models": {"cv": 50},
             "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_lowered_tuning_folds_are_logged_once_before_the_fit(tiny_study, tmp_path, monkeypatch):
    monkeypatch.setattr(stages, "fit", _stop)
    with pytest.raises(RunFailed, match="stopped after the checks"):
        run_study(tiny_study, tmp_path / "out", progress=False, echo=False)
    log = (tmp_path / "out" / "run.log").read_text()
    # the training cohort (centers C1, C2) holds 2 positive cases
    assert log.count("models.cv = 50 was lowered to 2 folds") == 1
    assert log.index("models.cv = 50 was lowered") < log.index("-- fit")


def test_the_methods_text_states_the_folds_used(study_result):
    from sonorad.report.html import Report
    from sonorad.report.sections.overview import add_methods

    cfg = RunConfig(models={"design": "score_fusion", "cv": 50}, tuning_folds=11)
    report = Report("t")
    add_methods(report, replace(study_result, config=cfg, feature_summary={}, flow={}))
    html = report.to_html()
    assert "11-fold cross-validation" in html and "50-fold" not in html


def test_each_attempt_records_its_command_line_and_stage_times(tiny_study, tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(stages, "fit", _stop)
    for _ in range(2):  # two attempts into one folder, both stopped at the fit
        with pytest.raises(RunFailed):
            run_study(tiny_study, tmp_path / "out", jobs=2, report=False, progress=False, echo=False)
    attempts = json.loads((tmp_path / "out" / "attempts.json").read_text())
    assert len(attempts) == 2
    first, second = attempts
    assert first["command"] == f"sonorad run {tiny_study} --out {tmp_path / 'out'} --jobs 2 --no-report"
    assert set(first["timings"]) >= {"validate", "features"} and first["finished"] is False
    assert "features" in second["reused"] or second["timings"]["features"] <= first["timings"]["features"] + 5
    assert "options: --jobs 2 --no-report" in (tmp_path / "out" / "run.log").read_text()


def test_the_run_config_carries_the_command_and_earlier_attempts():
    cfg = RunConfig(command="sonorad run s.yaml --out o --jobs 2",
                    attempts=({"started": "t", "command": "c", "timings": {"fit": 3.0}, "reused": [],
                               "finished": False},))
    assert cfg.command.endswith("--jobs 2") and cfg.attempts[0]["timings"] == {"fit": 3.0}
