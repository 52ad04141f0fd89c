"""A stage that crashes ends the run with a readable message, a non-zero exit and the traceback in run.log."""

from pathlib import Path

import pytest
import yaml

from sonorad.cli import main
from sonorad.runner import RunFailed, run_study
from sonorad.pipeline import stages
from sonorad.synthetic import make_cohort


@pytest.fixture
def small_study(tmp_path):
    make_cohort(tmp_path / "cohort", scenario="clnm", seed=5, n_patients=12)
    study = {"name": "tiny", "cohort": "cohort/cases.csv", "label": {"positive": 1},
             "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def _crash(*args, **kwargs):
    raise RuntimeError("disk full while writing features")


def test_crashing_stage_names_itself_and_keeps_the_traceback(small_study, tmp_path, monkeypatch):
    monkeypatch.setattr(stages, "extract", _crash)
    with pytest.raises(RunFailed) as info:
        run_study(small_study, tmp_path / "out", progress=False, echo=False)
    text = str(info.value)
    assert "stage 'features' failed" in text and "disk full" in text and "run.log" in text
    log = (tmp_path / "out" / "run.log").read_text()
    assert "Traceback" in log and "disk full" in log


def test_cli_exit_code_and_summary(small_study, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(stages, "extract", _crash)
    code = main(["run", str(small_study), "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "sonorad run: error: stage 'features' failed" in err


def test_bad_runner_keys_fail_before_any_work(small_study, tmp_path):
    study = yaml.safe_load(Path(small_study).read_text())
    study["models"] = {"design": "study1", "modles": ["svm"]}
    study["evaluation"] = {"gradcams": 3}
    small_study.write_text(yaml.safe_dump(study))
    code = main(["run", str(small_study), "--out", str(tmp_path / "out2"), "--quiet"])
    assert code == 2
    assert not (tmp_path / "out2" / "features").exists()
