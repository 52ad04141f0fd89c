"""sonorad.runner.outputs: the run folder's tables, feature files and Grad-CAM images."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd

from sonorad.pipeline.explanations import Explanations
from sonorad.runner.outputs import write_features, write_gradcams, write_tables


def _gradcam(case_id):
    crop = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    return SimpleNamespace(case_id=case_id, label=1, probability=0.8, crop=crop, mask=mask,
                           heatmap=np.outer(np.hanning(32), np.hanning(32)))


def test_write_tables_writes_every_table_the_result_has_and_only_those(study_result):
    written = write_tables(study_result)
    folder = study_result.out / "tables"
    assert sorted(written) == sorted(p for p in folder.rglob("*") if p.is_file())
    names = {p.relative_to(folder).as_posix() for p in written}
    assert {"predictions.csv", "metrics.csv", "thresholds.csv", "delong_external.csv", "delong_matrix_external.csv",
            "calibration.csv", "decision_curve_external.csv", "selection_funnel.csv", "lasso_path_rad_score.csv",
            "training_tuning_cv_auc.csv", "excluded_cases.csv", "paper/metrics.csv", "paper/metrics.md"} <= names
    # what the result does not hold is not written: no odds ratios, coefficients, centers, bootstrap, explanations
    for absent in ("reference_comparison.csv",
                   "univariable_logistic.csv", "multivariable_logistic.csv", "score_coefficients.csv",
                   "metrics_by_center.csv", "bootstrap_validation.csv", "shap_importance.csv",
                   "nomogram_points.csv", "baseline_characteristics.csv", "gradcam_cases.csv"):
        assert absent not in names, absent

    predictions = pd.read_csv(folder / "predictions.csv", dtype={"case_id": str})
    assert list(predictions.columns) == ["case_id", "cohort", "model", "label", "probability"]
    assert len(predictions) == 2 * 40
    external = predictions[predictions["cohort"] == "external"].pivot(index="case_id", columns="model",
                                                                      values="probability")
    np.testing.assert_allclose(external.loc[study_result.ids("external"), ["lr", "rad_score"]].to_numpy(),
                               study_result.probabilities["external"][["lr", "rad_score"]].to_numpy(),
                               rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(pd.read_csv(folder / "metrics.csv"), study_result.evaluation.metrics,
                                  check_dtype=False, atol=1e-12)
    assert pd.read_csv(folder / "training_tuning_cv_auc.csv").to_dict("records") == [
        {"model": "lr", "tuning_cv_auc": 0.71}]
    assert list(pd.read_csv(folder / "excluded_cases.csv")["case_id"]) == ["c99"]
    matrix = pd.read_csv(folder / "delong_matrix_external.csv", index_col=0)
    assert list(matrix.index) == list(study_result.evaluation.delong_matrix.index)  # the row names are kept


def test_gradcam_cases_are_listed_and_drawn(study_result, tmp_path):
    cams = (_gradcam("c30"), _gradcam("c31"))
    result = replace(study_result, explanations=Explanations(gradcam=cams, gradcam_source="dl_score"))
    write_tables(result)
    listed = pd.read_csv(result.out / "tables" / "gradcam_cases.csv")
    assert list(listed["image"]) == ["figures/gradcam/c30.png", "figures/gradcam/c31.png"]
    paths = write_gradcams(result.explanations, tmp_path / "figures" / "gradcam")
    assert [p.name for p in paths] == ["c30.png", "c31.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    assert write_gradcams(Explanations(), tmp_path / "none") == [] and not (tmp_path / "none").exists()


def test_write_features_writes_one_parquet_file_per_table(tmp_path):
    ids = pd.Index(["a", "b"], name="case_id")
    tables = {"radiomics": pd.DataFrame({"original_firstorder_Mean": [1.5, 2.5]}, index=ids),
              "deep_efficientnet_lite0": pd.DataFrame({"efficientnet_lite0_0": [0.1, 0.2]}, index=ids)}
    write_features(SimpleNamespace(tables=lambda: tables), tmp_path / "features")
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == ["deep_efficientnet_lite0.parquet",
                                                                         "radiomics.parquet"]
    for name, table in tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "features" / f"{name}.parquet"), table)


def test_predictions_name_each_case_s_patient_and_center(study_result):
    ids = study_result.y.index
    cases = pd.DataFrame({"patient_id": [f"p{i // 2}" for i in range(len(ids))],
                          "center": ["A" if i < 24 else "B" for i in range(len(ids))]}, index=ids)
    write_tables(study_result, cases=cases)
    predictions = pd.read_csv(study_result.out / "tables" / "predictions.csv", dtype=str)
    assert list(predictions.columns) == ["case_id", "patient_id", "center", "cohort", "model", "label", "probability"]
    row = predictions[predictions["case_id"] == "c31"].iloc[0]
    assert (row["patient_id"], row["center"], row["cohort"]) == ("p15", "B", "external")


def test_the_results_table_after_run_lists_the_chosen_model_first(study_result, tmp_path):
    from dataclasses import replace

    from sonorad.runner.run import RunLog, _show_results

    # rad_score is noise: sorting by external AUC would put lr first
    result = replace(study_result, design=replace(study_result.design, primary="rad_score"))
    log = RunLog(tmp_path / "run.log", echo=False)
    _show_results(result, log)
    log.close()
    table = (tmp_path / "run.log").read_text().split("cut-off: training Youden):")[1].strip().splitlines()
    assert [line.split()[0] for line in table[2:4]] == ["rad_score", "lr"]


def test_the_comparison_with_the_reference_model_is_written_when_the_run_has_one(study_result_with_reference):
    write_tables(study_result_with_reference)
    table = pd.read_csv(study_result_with_reference.out / "tables" / "reference_comparison.csv")
    pd.testing.assert_frame_equal(table, study_result_with_reference.reference.to_frame(), check_dtype=False,
                                  atol=1e-12)
    assert list(table["statistic"][:3]) == ["AUC difference (DeLong)", "NRI (continuous)", "IDI"]
    assert set(table["reference"]) == {"rad_score"} and set(table["cohort"]) == {"external"}
