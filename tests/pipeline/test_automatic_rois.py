"""Automatic ROIs in a study: validate's checks, the proposals, the flagged cases excluded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sonorad.errors import CohortError
from sonorad.pipeline.automatic_rois import automatic_by_cohort
from tests.segment.conftest import write_cohort


def train_saved_segmenter(folder: Path) -> Path:
    """A segmenter trained for two epochs on a tiny cohort (random encoder, 32-pixel input), saved in ``folder``."""
    import torch

    from sonorad.cohort import read_cases
    from sonorad.segment.data import load_training_cases
    from sonorad.segment.io import save_segmenter
    from sonorad.segment.train import train_segmenter

    csv = write_cohort(folder / "train")
    threads = torch.get_num_threads()
    table = read_cases(csv)
    try:
        seg = train_segmenter(load_training_cases(table), image_size=32, epochs=2, max_minutes=None, batch_size=4,
                              val_fraction=0.3, encoder_weights=None, threads=1, centers=table["center"],
                              progress=False)
    finally:
        torch.set_num_threads(threads)
    return save_segmenter(seg, folder / "segmenter")


@pytest.fixture(scope="module")
def segmenter_dir(tmp_path_factory) -> Path:
    return train_saved_segmenter(tmp_path_factory.mktemp("seg"))


def _box_cohort(folder: Path, *, n_auto: int = 3, extra: dict | None = None) -> Path:
    """The tiny cohort with the last ``n_auto`` cases given a box (their mask's) and no mask."""
    from PIL import Image

    from sonorad.imaging.boxes import box_from_mask, format_box

    csv = write_cohort(folder)
    table = pd.read_csv(csv)
    table["box"] = ""
    for i in table.index[-n_auto:]:
        mask = np.asarray(Image.open(folder / table.at[i, "mask"])) > 0
        table.at[i, "box"] = format_box(box_from_mask(mask))
        table.at[i, "mask"] = ""
    for column, values in (extra or {}).items():
        table[column] = values
    table.to_csv(csv, index=False)
    return csv


def _study(csv: Path, segmenter=None):
    from sonorad.study import StudyConfig

    data = {"name": "t", "cohort": str(csv)}
    if segmenter is not None:
        data["masks"] = {"segmenter": str(segmenter)}
    return StudyConfig.from_dict(data, source=csv.parent / "study.yaml")


def test_the_segmenter_key_is_a_path_relative_to_the_study_file(tmp_path):
    from sonorad.study import StudyConfig

    study = StudyConfig.from_dict({"name": "t", "masks": {"segmenter": "seg"}}, source=tmp_path / "study.yaml")
    assert study.masks.segmenter == tmp_path.resolve() / "seg"
    assert StudyConfig.from_dict(study.to_dict()).masks.segmenter == study.masks.segmenter


def test_a_case_without_mask_or_box_is_named_with_the_fix(tmp_path, segmenter_dir):
    from sonorad.cohort import read_cases, validate_cases

    csv = _box_cohort(tmp_path, n_auto=2)
    table = pd.read_csv(csv)
    table.loc[table.index[-1], "box"] = ""
    table.to_csv(csv, index=False)
    problems = validate_cases(read_cases(csv), study=_study(csv, segmenter_dir), check_files=False)
    (missing,) = [p for p in problems if p.column == "mask"]
    assert missing.case_id == "c9" and "box" in missing.fix and "masks.segmenter" in missing.fix


def test_a_box_without_a_segmenter_asks_for_one(tmp_path):
    from sonorad.cohort import read_cases, validate_cases

    csv = _box_cohort(tmp_path, n_auto=1)
    problems = validate_cases(read_cases(csv), study=_study(csv), check_files=False)
    (missing,) = [p for p in problems if p.column == "mask"]
    assert missing.case_id == "c9" and "segmenter" in missing.fix


def test_validate_refuses_bad_boxes_and_a_foreign_segmenter_before_any_work(tmp_path, segmenter_dir):
    from sonorad.pipeline import stages

    csv = _box_cohort(tmp_path, n_auto=3)
    table = pd.read_csv(csv)
    table.loc[table.index[-1], "box"] = "10,10,500,40"   # the images are 64 x 48
    table.loc[table.index[-2], "box"] = "1,2,3"
    table.to_csv(csv, index=False)
    with pytest.raises(CohortError) as err:
        stages.validate(_study(csv, segmenter_dir))
    by_case = {p.case_id: p for p in err.value.problems}
    assert "not inside the image (64 px wide, 48 px high)" in by_case["c9"].message
    assert "not four numbers" in by_case["c8"].message
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "segmenter.json").write_text("{}")
    with pytest.raises(CohortError) as err:
        stages.validate(_study(csv, foreign))
    assert any(p.column == "masks.segmenter" and "not a sonorad segmenter" in p.message for p in err.value.problems)


def test_proposed_masks_replace_the_missing_ones_and_flagged_cases_are_excluded(tmp_path, segmenter_dir,
                                                                                  monkeypatch):
    from PIL import Image

    from sonorad.pipeline import stages

    csv = _box_cohort(tmp_path, n_auto=3)
    Image.fromarray(np.full((48, 64), 128, np.uint8)).save(tmp_path / "images" / "c9.png")  # no lesion at all
    study = _study(csv, segmenter_dir)
    cohort, failures = stages.validate(study)
    _accept_all_but(monkeypatch, {"c9"})
    out = tmp_path / "out"
    cohort2, failures2, rois = stages.automatic_rois(cohort, failures, study, out)
    table = rois.rois.set_index("case_id")
    assert (table.loc[[f"c{i}" for i in range(7)], "roi_source"] == "manual").all()
    assert (table.loc[["c7", "c8", "c9"], "roi_source"] == "automatic").all()
    assert table.loc["c9", "status"] == "excluded" and table.loc["c9", "flags"]
    assert "c9" in set(failures2["case_id"]) and "automatic ROI flagged" in failures2.set_index("case_id").at["c9", "error"]
    for case_id in ("c7", "c8"):
        assert table.loc[case_id, "status"] == "ok" and table.loc[case_id, "confidence"] == 0.95
        path = Path(cohort2.table.at[case_id, "mask"])
        assert path.is_file() and out / "auto_masks" in path.parents and path == Path(table.loc[case_id, "mask"])
    assert set(failures2["case_id"]) == {"c9"}
    assert rois.summary["n_automatic"] == 2 and rois.summary["n_excluded"] == 1 and rois.summary["n_rois"] == 9
    assert rois.summary["segmenter"]["n_cases"] == 10 and "val_dice_median" in rois.summary["segmenter"]
    assert pd.isna(cohort.table.at["c7", "mask"])  # the input cohort is left as it was
    parts = pd.Series(["train"] * 5 + ["external"] * 4, index=[f"c{i}" for i in range(9)])
    assert automatic_by_cohort(rois.rois, parts) == {"train": {"automatic": 0, "rois": 5},
                                                     "external": {"automatic": 2, "rois": 4}}


def test_sonorad_validate_checks_the_segmenter_and_the_boxes(tmp_path, segmenter_dir, capsys):
    import yaml

    from sonorad.cli import main

    csv = _box_cohort(tmp_path, n_auto=2)
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"name": "t", "masks": {"segmenter": str(segmenter_dir)}}))
    assert main(["validate", str(csv), "--study", str(study)]) == 0
    table = pd.read_csv(csv)
    table.loc[table.index[-1], "box"] = "60,10,70,20"  # past the right edge of a 64-pixel-wide image
    table.to_csv(csv, index=False)
    capsys.readouterr()
    assert main(["validate", str(csv), "--study", str(study)]) != 0
    err = capsys.readouterr().err
    assert "c9" in err and "not inside the image (64 px wide, 48 px high)" in err


def _boxed_study_cohort(folder: Path, *, n_patients: int, center: str):
    """A synthetic study cohort in ``folder/cohort`` whose first three cases of ``center`` have a box
    (their mask's) and no mask, and ``folder/params.yaml`` (original-only PyRadiomics). Returns the
    table and the boxed rows."""
    import yaml
    from PIL import Image

    from sonorad.features.radiomics import original_only
    from sonorad.imaging.boxes import box_from_mask, format_box
    from sonorad.synthetic import make_cohort

    csv = make_cohort(folder / "cohort", scenario="clnm", seed=5, n_patients=n_patients)
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    table["box"] = ""
    boxed = table.index[table["center"] == center][:3]
    for i in boxed:
        mask = np.asarray(Image.open(csv.parent / table.at[i, "mask"].split(";")[0])) > 0
        table.at[i, "box"], table.at[i, "mask"] = format_box(box_from_mask(mask)), ""
    table.to_csv(csv, index=False)
    (folder / "params.yaml").write_text(yaml.safe_dump(original_only()))
    return table, boxed


def test_the_run_proposes_the_missing_masks_before_extraction(tmp_path, segmenter_dir, monkeypatch):
    """``sonorad run`` up to the fit (stubbed): the proposals are made, and flagged ones excluded with a reason."""
    import yaml

    from sonorad.runner import RunFailed, run_study

    table, auto = _boxed_study_cohort(tmp_path, n_patients=12, center="C1")
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": "tiny", "cohort": "cohort/cases.csv", "label": {"positive": 1},
        "masks": {"segmenter": str(segmenter_dir)}, "features": {"deep": [], "params": "params.yaml"},
        "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]}}))

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before the fit")

    monkeypatch.setattr(stages_module(), "fit", stop)
    _accept_all_but(monkeypatch, {table.at[auto[0], "case_id"]})
    with pytest.raises(RunFailed, match="stopped before the fit"):
        run_study(study, tmp_path / "out", progress=False, echo=False)
    out = tmp_path / "out"
    log = (out / "run.log").read_text()
    assert "automatic ROIs: 3 proposed by the segmenter" in log
    assert log.index("automatic ROIs:") < log.index("radiomics:")
    rois = pd.read_csv(out / "auto_masks" / "segmentation.csv")
    failures = pd.read_csv(out / "features" / "failures.csv")
    flagged = set(rois.loc[rois["status"] != "ok", "case_id"])
    assert flagged == set(failures.loc[failures["stage"] == "automatic ROI", "case_id"])
    features = pd.read_parquet(next((out / "features").glob("radiomics*.parquet")))
    accepted = set(rois.loc[rois["status"] == "ok", "case_id"])
    assert accepted == set(table.loc[auto[1:], "case_id"]) and accepted <= set(features.index.astype(str))
    assert not flagged & set(features.index.astype(str))


def stages_module():
    from sonorad.pipeline import stages

    return stages


def _accept_all_but(monkeypatch, real: set) -> None:
    """Proposals: the segmenter's own for the cases in ``real``, the box's inscribed ellipse, unflagged, for the rest.

    The two-epoch segmenter flags nearly every proposal, so the accepted path needs a proposal that passes.
    """
    from sonorad.segment import predict
    from sonorad.segment.baselines import ellipse_mask

    original = predict.propose_mask

    def propose(segmenter, image, box, *, case_id=None):
        if case_id in real:
            return original(segmenter, image, box, case_id=case_id)
        return predict.Proposal(ellipse_mask(predict.as_gray(image).shape, box), 0.95, [])

    monkeypatch.setattr(predict, "propose_mask", propose)


@pytest.mark.slow
def test_a_finished_run_carries_its_segmenter_in_the_bundle(tmp_path, segmenter_dir, monkeypatch):
    """The whole run, on a tiny cohort with three boxed cases: the bundle holds the study's segmenter."""
    import json

    import yaml

    from sonorad.bundle import load_bundle
    from sonorad.runner import run_study

    _boxed_study_cohort(tmp_path, n_patients=56, center="C3")
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": "tiny", "cohort": "cohort/cases.csv", "label": {"positive": 1}, "seed": 0,
        "masks": {"segmenter": str(segmenter_dir)}, "features": {"deep": [], "params": "params.yaml"},
        "models": {"models": ["logistic_regression"], "cv": 2, "n_iter": 2},
        "evaluation": {"cv_folds": 2, "gradcam": 0, "bootstrap": 0},
        "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]}}))
    _accept_all_but(monkeypatch, set())
    run_study(study, tmp_path / "out", progress=False, echo=False, report=False)
    bundle = load_bundle(tmp_path / "out" / "model")
    sha = json.loads((segmenter_dir / "segmenter.json").read_text())["weights_sha256"]
    assert bundle.manifest["segmenter"]["weights_sha256"] == sha
    assert bundle.segmenter.meta["weights_sha256"] == sha
