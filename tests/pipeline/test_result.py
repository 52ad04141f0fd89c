"""sonorad.pipeline.result: a finished run's result is saved without its models and read back as it was."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from sonorad.errors import SonoradError
from sonorad.pipeline.result import RESULT_FILE, RESULT_FORMAT, StudyResult


def test_save_and_load_round_trip_without_the_fitted_models(study_result, tmp_path):
    path = study_result.save()
    assert path == tmp_path / RESULT_FILE and path.is_file()
    assert study_result.design.models == {"lr": "a fitted model"}  # saving leaves the run's result alone
    moved = tmp_path / "moved"
    moved.mkdir()
    path.rename(moved / RESULT_FILE)
    loaded = StudyResult.load(moved)
    assert loaded.out == moved and loaded.format == RESULT_FORMAT
    assert loaded.design.models == {} and loaded.design.primary == "lr" == loaded.chosen_model
    assert loaded.primary == "external"
    pd.testing.assert_frame_equal(loaded.evaluation.metrics, study_result.evaluation.metrics)
    for cohort, frame in study_result.probabilities.items():
        pd.testing.assert_frame_equal(loaded.probabilities[cohort], frame)
    pd.testing.assert_series_equal(loaded.y, study_result.y)
    assert list(loaded.ids("external")) == list(study_result.ids("external")) and len(loaded.ids("train")) == 24
    assert loaded.notes == ("a note",) and loaded.timings == {"fit": 1.5}


def test_a_folder_without_a_result_names_the_command_to_run(tmp_path):
    with pytest.raises(SonoradError, match="not a finished sonorad run.*sonorad run STUDY.yaml"):
        StudyResult.load(tmp_path)


def test_a_result_of_another_format_or_type_is_refused(study_result, tmp_path):
    import joblib

    replace(study_result, format=RESULT_FORMAT - 1).save()
    with pytest.raises(SonoradError, match="written by another sonorad version"):
        StudyResult.load(tmp_path)
    joblib.dump({"probabilities": study_result.probabilities}, tmp_path / RESULT_FILE)
    with pytest.raises(SonoradError, match="written by another sonorad version"):
        StudyResult.load(tmp_path)
    (tmp_path / RESULT_FILE).write_bytes(b"not a joblib file")
    with pytest.raises(SonoradError, match="could not be read"):
        StudyResult.load(tmp_path)


def test_patients_and_acquisition_round_trip_and_older_results_still_load(study_result, tmp_path):
    import joblib

    patients = pd.Series([f"p{i // 2}" for i in range(len(study_result.y))], index=study_result.y.index)
    acquisition = pd.DataFrame({"center": ["A"], "format": ["PNG"], "spacing_mm": ["0.1"]})
    replace(study_result, patients=patients, acquisition=acquisition).save()
    loaded = StudyResult.load(tmp_path)
    pd.testing.assert_series_equal(loaded.patients, patients)
    pd.testing.assert_frame_equal(loaded.acquisition, acquisition)
    # a result saved before these fields existed: its pickled state lacks them
    older = replace(study_result, design=replace(study_result.design, models={}))
    del older.__dict__["patients"], older.__dict__["acquisition"]
    joblib.dump(older, tmp_path / RESULT_FILE)
    loaded = StudyResult.load(tmp_path)
    assert loaded.patients is None and loaded.acquisition is None


def test_the_reference_comparison_is_kept_and_a_result_saved_without_it_still_loads(study_result_with_reference,
                                                                                    tmp_path):
    import joblib

    study_result_with_reference.save()
    loaded = StudyResult.load(tmp_path)
    assert loaded.reference.summary == study_result_with_reference.reference.summary
    # a result saved before the comparison was kept has no such attribute: it loads with none
    old = replace(study_result_with_reference, design=replace(study_result_with_reference.design, models={}))
    del old.__dict__["reference"]
    joblib.dump(old, tmp_path / RESULT_FILE)
    assert StudyResult.load(tmp_path).reference is None
