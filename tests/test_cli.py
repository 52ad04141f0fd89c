"""sonorad.cli: help, version, exit codes, and the validate and synth commands.

The commands of one area are tested with that area (``tests/bundle/test_cli.py``: predict;
``tests/deep/test_cli.py``: deep features; ``tests/runner``: run and report).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import sonorad
from sonorad.cli import build_parser, main

from tests.cohort.builders import make_cohort, rows_of

COMMANDS = ("extract", "validate", "schema", "synth", "icc", "demo", "run", "report", "recalibrate", "predict",
            "segment", "serve")


@pytest.fixture
def small_study(tmp_path):
    """A study file over a cohort table of 12 patients in centers A, B (training) and C (external)."""
    make_cohort(tmp_path, rows_of())
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "cohort": "cases.csv", "label": {"positive": 1},
                                    "split": {"by": "center", "train": ["A", "B"], "external": ["C"]}}))
    return path


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"sonorad {sonorad.__version__}\n"


def test_help_lists_every_command_and_imports_nothing_heavy():
    text = build_parser().format_help()
    for command in COMMANDS:
        assert re.search(rf"^    {command}\b", text, re.MULTILINE), command
    heavy = ("torch", "shap", "radiomics", "SimpleITK", "sklearn", "skops")
    code = ("import sys; from sonorad.cli import build_parser; build_parser().format_help(); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_usage_errors_exit_2_before_any_work(capsys):
    for argv in ([], ["validate"], ["synth", "--out", "x", "--scenario", "study3"], ["frobnicate"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, argv
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_a_sonorad_error_exits_2_with_the_command_and_the_message(tmp_path, capsys):
    assert main(["extract", str(tmp_path / "cases.csv"), "--out", str(tmp_path / "out"), "--no-radiomics"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sonorad extract: error: --no-radiomics leaves nothing to extract: add --deep BACKBONE")
    assert not (tmp_path / "out").exists()


def test_an_interrupt_exits_130_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import sonorad.synthetic

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sonorad.synthetic, "make_cohort", interrupted)
    assert main(["synth", "--out", str(tmp_path)]) == 130
    assert "sonorad synth: interrupted; finished work is cached, rerun to resume" in capsys.readouterr().err


def test_cli_validate_prints_the_summary_or_every_problem(tmp_path, capsys):
    csv = make_cohort(tmp_path, rows_of())
    study_file = tmp_path / "study.yaml"
    study_file.write_text("name: t\nsplit: {by: center, train: [A, B], external: [C]}\n")
    assert main(["validate", str(csv), "--study", str(study_file)]) == 0
    out = capsys.readouterr().out
    assert "24 cases, 12 patients, 3 centers" in out and "external" in out
    study_file.write_text("name: t\nsplit: {by: center, train: [A], external: [C, D]}\n")
    assert main(["validate", str(csv), "--study", str(study_file)]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "'D'" in err and "center 'B'" in err
    study_file.write_text("name: t\nsplit: {by: centre}\n")
    assert main(["validate", str(csv), "--study", str(study_file)]) == 2
    assert "split.by: unknown value 'centre'; allowed: center, patient" in capsys.readouterr().err


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "ps"
    rc = main(["synth", "--out", str(out), "--scenario", "primary_secondary", "--seed", "1",
               "--signal", "0.5", "--n-patients", "8"])
    assert rc == 0 and "cases.csv" in capsys.readouterr().out
    c = pd.read_csv(out / "cases.csv")
    assert len(c) == 8 and set(c["center"]) == {"C1", "C2", "C3", "C4"}
    # --design is kept as an alias of --scenario.
    alias = tmp_path / "alias"
    rc = main(["synth", "--out", str(alias), "--design", "primary_secondary", "--seed", "1",
               "--signal", "0.5", "--n-patients", "8"])
    assert rc == 0 and _files(alias) == _files(out)
    rc = main(["synth", "--out", str(tmp_path / "bad"), "--n-patients", "3"])
    assert rc == 2 and "n_patients" in capsys.readouterr().err


def test_demo_cli_help_mentions_synthetic_cohort(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    assert "synthetic" in capsys.readouterr().out


def test_validate_reports_misspelled_study_keys_before_reading_the_table(small_study, capsys):
    study = yaml.safe_load(Path(small_study).read_text())
    study["models"] = {"design": "study1", "models": ["logistic_regresion"], "rad_score": {"alpah": 0.1}}
    study["evaluation"] = {"gradcams": 3}
    small_study.write_text(yaml.safe_dump(study))
    cases = Path(small_study).parent / "cases.csv"
    code = main(["validate", str(cases), "--study", str(small_study)])
    err = capsys.readouterr().err
    assert code == 2
    for key in ("models.models", "logistic_regresion", "models.rad_score.alpah", "evaluation.gradcams"):
        assert key in err, key


def test_run_says_where_the_report_is_only_when_one_was_written(tmp_path, capsys, monkeypatch):
    import sonorad.runner

    calls = []

    def fake_run_study(study, out, **kwargs):
        calls.append(kwargs)
        return type("Result", (), {"out": Path(out)})()

    monkeypatch.setattr(sonorad.runner, "run_study", fake_run_study)
    assert main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    printed = capsys.readouterr().out
    assert calls[-1]["report"] is False
    assert "report.html" not in printed and "no report" in printed and str(tmp_path / "out" / "tables") in printed
    assert main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")]) == 0
    assert f"report {tmp_path / 'out' / 'report.html'}" in capsys.readouterr().out
