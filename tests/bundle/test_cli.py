"""`sonorad predict BUNDLE cases.csv --out DIR`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sonorad.cli import main


def _write_cases(small_bundle, path, *, labels: bool, break_ids=()):
    cases = small_bundle.table.loc[small_bundle.external_ids].copy()
    if not labels:
        cases = cases.drop(columns=["label"])
    for cid in break_ids:
        cases.loc[cid, "image"] = str(path.parent / "no_such_image.png")
    cases.to_csv(path, index=False)
    return cases


def test_predict_writes_tables_and_lists_failures(small_bundle, tmp_path, capsys):
    bad = small_bundle.external_ids[0]
    cases = _write_cases(small_bundle, tmp_path / "new.csv", labels=False, break_ids=[bad])
    out = tmp_path / "out"
    code = main(["predict", str(small_bundle.path), str(tmp_path / "new.csv"), "--out", str(out),
                 "--cache", str(small_bundle.cache), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"{len(cases) - 1} of {len(cases)} case(s) scored" in printed
    predictions = pd.read_csv(out / "predictions.csv")
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures["case_id"]) == [bad] and failures["stage"].iloc[0] == "image"
    assert set(predictions["case_id"]) == set(cases.index) - {bad}
    for name, model in small_bundle.models.items():
        got = predictions[predictions["model"] == name].set_index("case_id")["probability"]
        expected = pd.Series(model.predict_proba(small_bundle.external_input)[:, 1], index=small_bundle.external_ids)
        np.testing.assert_allclose(got, expected.loc[got.index], rtol=0, atol=1e-12)
    assert (out / "contributions.csv").is_file() and (out / "warnings.csv").is_file()
    assert not (out / "metrics.csv").exists()


def test_predict_with_labels_writes_metrics(small_bundle, tmp_path):
    _write_cases(small_bundle, tmp_path / "labelled.csv", labels=True)
    out = tmp_path / "out"
    assert main(["predict", str(small_bundle.path), str(tmp_path / "labelled.csv"), "--out", str(out),
                 "--cache", str(small_bundle.cache), "--quiet"]) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["model"]) == set(small_bundle.models) and metrics["auc"].notna().all()


def test_exit_2_when_nothing_can_be_scored(small_bundle, tmp_path, capsys):
    _write_cases(small_bundle, tmp_path / "bad.csv", labels=False, break_ids=small_bundle.external_ids)
    out = tmp_path / "out"
    assert main(["predict", str(small_bundle.path), str(tmp_path / "bad.csv"), "--out", str(out), "--quiet"]) == 2
    assert "no case could be scored" in capsys.readouterr().err
    assert len(pd.read_csv(out / "failures.csv")) == len(small_bundle.external_ids)


def test_a_bad_bundle_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "cases.csv").write_text("case_id,image,mask\n")
    assert main(["predict", str(tmp_path), str(tmp_path / "cases.csv"), "--out", str(tmp_path / "out")]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_predict_and_recalibrate_take_a_key_file(small_bundle, tmp_path, capsys, monkeypatch):
    from sonorad.bundle.signing import KEY_ENV

    monkeypatch.setenv(KEY_ENV, "")                                  # restored after the test: --key-file sets it
    _write_cases(small_bundle, tmp_path / "new.csv", labels=False)
    key = tmp_path / "bundle.key"
    key.write_bytes(b"s" * 32)
    assert main(["predict", str(small_bundle.path), str(tmp_path / "new.csv"), "--out", str(tmp_path / "out"),
                 "--key-file", str(key), "--quiet"]) == 2              # the bundle is not signed with it
    assert "not signed, and a key was given" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    from sonorad.cli import build_parser

    for command in (["recalibrate", "b", "c", "--method", "intercept", "--out", "o"], ["serve", "b"],
                    ["run", "s.yaml", "--out", "o"]):
        assert build_parser().parse_args([*command, "--key-file", str(key)]).key_file == str(key)


def test_predict_proposes_the_masks_of_box_only_cases_with_the_bundles_segmenter(small_bundle, tmp_path, capsys,
                                                                                   monkeypatch):
    """As in the study run: a box and no mask gets the segmenter's mask; a flagged proposal excludes its case."""
    from PIL import Image

    from sonorad.bundle import write_bundle
    from sonorad.imaging.boxes import box_from_mask, format_box
    from sonorad.segment import predict as segment_predict
    from tests.pipeline.test_automatic_rois import train_saved_segmenter

    chosen = small_bundle.chosen
    bundle = write_bundle(tmp_path / "model", models={chosen: small_bundle.models[chosen]}, chosen=chosen,
                          cutoffs=small_bundle.cutoffs, features={"radiomics_params": small_bundle.params, "deep": None},
                          variables=small_bundle.variables, training_input=small_bundle.training_input,
                          training_rois=None, card={}, study={}, segmenter=train_saved_segmenter(tmp_path / "seg"))
    cases = _write_cases(small_bundle, tmp_path / "new.csv", labels=False)
    single = [c for c in cases.index if ";" not in str(cases.loc[c, "mask"])]
    accepted, flagged = single[0], single[1]
    manual = {c: np.asarray(Image.open(cases.loc[c, "mask"])) > 0 for c in (accepted, flagged)}
    cases["box"] = ""
    for c in (accepted, flagged):
        cases.loc[c, "box"], cases.loc[c, "mask"] = format_box(box_from_mask(manual[c])), ""
    cases.to_csv(tmp_path / "new.csv", index=False)

    def propose(segmenter, image, box, *, case_id=None):  # the manual mask itself, so the answer is known
        flags = ["low_confidence"] if case_id == flagged else []
        return segment_predict.Proposal(manual[case_id], 0.95, flags)

    monkeypatch.setattr(segment_predict, "propose_mask", propose)
    out = tmp_path / "out"
    assert main(["predict", str(bundle), str(tmp_path / "new.csv"), "--out", str(out),
                 "--cache", str(small_bundle.cache), "--quiet"]) == 0
    assert "2 mask(s) proposed from boxes by the bundle's segmenter, 1 flagged and excluded" in capsys.readouterr().out
    predictions = pd.read_csv(out / "predictions.csv").set_index("case_id")["probability"]
    expected = small_bundle.models[chosen].predict_proba(small_bundle.external_input.loc[[accepted]])[:, 1]
    np.testing.assert_allclose(predictions.loc[accepted], expected[0], rtol=0, atol=1e-12)
    assert flagged not in predictions.index and set(predictions.index) == set(cases.index) - {flagged}
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures["case_id"]) == [flagged] and failures["stage"].iloc[0] == "automatic ROI"
    rois = pd.read_csv(out / "automatic_rois.csv").set_index("case_id")
    assert rois.loc[accepted, "roi_source"] == "automatic" and rois.loc[accepted, "status"] == "ok"
    assert rois.loc[flagged, "status"] == "excluded" and (rois["roi_source"] == "manual").sum() == len(cases) - 2
