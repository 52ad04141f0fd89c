"""`sonorad segment train` -> `sonorad segment predict` -> masks that sonorad's cohort reading accepts."""

import pandas as pd

from sonorad.cli import main


def test_train_then_predict_gives_masks_sonorad_reads(tiny_cohort, tmp_path, capsys):
    model = tmp_path / "segmenter"
    assert main(["segment", "train", str(tiny_cohort), "--out", str(model), "--size", "32", "--epochs", "1",
                 "--threads", "1", "--quiet"]) == 0
    assert (model / "segmenter.pt").exists() and (model / "segmenter.json").exists()
    out = tmp_path / "auto"
    code = main(["segment", "predict", str(model), str(tiny_cohort), "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert "Dice vs the existing masks" in printed
    per_case = pd.read_csv(out / "segmentation.csv")
    assert len(per_case) == 10 and set(per_case["box_source"]) == {"mask"}
    if code == 0:
        new = pd.read_csv(out / "cases.csv")
        assert {"mask", "mask_manual", "box"} <= set(new.columns)
        from sonorad.cohort import load_cohort

        cohort = load_cohort(out / "cases.csv")  # the proposed masks pass sonorad's own checks
        assert len(cohort.table) == len(new)
        assert main(["validate", str(out / "cases.csv")]) == 0
    else:  # no usable mask: every case is then listed with its reason
        assert len(pd.read_csv(out / "failures.csv")) == 10


def test_train_from_a_segmenter_adapts_it(tiny_segmenter, tiny_cohort, tmp_path, capsys):
    import json

    from sonorad.segment.io import save_segmenter

    start = save_segmenter(tiny_segmenter, tmp_path / "start")
    adapted = tmp_path / "adapted"
    assert main(["segment", "train", str(tiny_cohort), "--out", str(adapted), "--from", str(start), "--size", "64",
                 "--epochs", "1", "--lr", "0.0005", "--threads", "1", "--quiet"]) == 0
    meta = json.loads((adapted / "segmenter.json").read_text())
    assert meta["image_size"] == 32 and meta["training"]["lr"] == 0.0005
    assert meta["initial"]["weights_sha256"] == json.loads((start / "segmenter.json").read_text())["weights_sha256"]


def test_train_from_a_foreign_file_is_refused_before_reading_cases(tiny_cohort, tmp_path, capsys):
    fake = tmp_path / "start"
    fake.mkdir()
    (fake / "segmenter.pt").write_bytes(b"\x80\x04K\x01.")
    assert main(["segment", "train", str(tiny_cohort), "--out", str(tmp_path / "m"), "--from", str(fake),
                 "--quiet"]) == 2
    assert "not a sonorad segmenter" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_train_names_bad_cases(tiny_cohort, tmp_path, capsys):
    table = pd.read_csv(tiny_cohort)
    table.loc[2, "mask"] = "masks/missing.png"
    bad = tiny_cohort.parent / "bad_cases.csv"
    table.to_csv(bad, index=False)
    assert main(["segment", "train", str(bad), "--out", str(tmp_path / "m"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "case c2" in err and "missing.png" in err


def test_predict_refuses_a_foreign_model_file(tiny_cohort, tmp_path, capsys):
    fake = tmp_path / "model"
    fake.mkdir()
    (fake / "segmenter.pt").write_bytes(b"\x80\x04K\x01.")
    assert main(["segment", "predict", str(fake), str(tiny_cohort), "--out", str(tmp_path / "o")]) == 2
    assert "not a sonorad segmenter" in capsys.readouterr().err


def test_predict_into_a_relative_folder_writes_paths_the_table_resolves(tiny_segmenter, tiny_cohort, tmp_path,
                                                                        monkeypatch):
    from sonorad.cohort import read_cases
    from sonorad.segment.predict import segment_cases

    monkeypatch.chdir(tmp_path)
    result = segment_cases(tiny_segmenter, tiny_cohort, "auto")
    table = read_cases(tmp_path / "auto" / "cases.csv")
    assert len(table) == len(result.cases) > 0
    assert all(__import__("pathlib").Path(p).is_file() for p in table["mask"])


def test_segment_is_listed_and_its_help_imports_nothing_heavy():
    import re
    import subprocess
    import sys

    from sonorad.cli import build_parser

    assert re.search(r"^    segment\b", build_parser().format_help(), re.MULTILINE)
    code = ("import sys; from sonorad.cli import main\ntry: main(['segment', 'predict', '--help'])\n"
            "except SystemExit: pass\nprint(sorted(m for m in ('torch', 'cv2', 'skimage', 'sklearn') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("[]")
