"""End to end: both ready study files, CI-sized, through ``run_study``; bad cases; resume; the report."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from sonorad.errors import CohortError
from sonorad.runner import run_study
from sonorad.study import load_study
from sonorad.synthetic import make_cohort

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def original_only_params(folder: Path) -> Path:
    """sonorad's shipped parameter file with the original image only (~100 features), as a file."""
    from sonorad.features.radiomics import original_only

    path = folder / "params_original.yaml"
    path.write_text(yaml.safe_dump(original_only()))
    return path


def ci_sized(study_file: str, cohort_csv: Path, folder: Path, *, models: dict, evaluation: dict):
    study = load_study(REPO / "studies" / study_file)
    features = {**study.features, "params": str(original_only_params(folder)), "jobs": 1}
    return replace(study, cohort=cohort_csv, features=features, models={**study.models, **models},
                   evaluation={**study.evaluation, **evaluation})


def add_bad_cases(cases_csv: Path) -> None:
    """A training case whose image is missing and one whose mask has the wrong size."""
    table = pd.read_csv(cases_csv, dtype=str)
    good = table.iloc[0].copy()
    missing = good.copy()
    missing["case_id"], missing["patient_id"], missing["image"] = "bad-missing", "bad-p1", "images/nope.png"
    wrong = good.copy()
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(cases_csv.parent / "masks" / "tiny.png")
    wrong["case_id"], wrong["patient_id"], wrong["mask"] = "bad-size", "bad-p2", "masks/tiny.png"
    pd.concat([table, pd.DataFrame([missing, wrong])]).to_csv(cases_csv, index=False)


@pytest.fixture(scope="module")
def study1_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study1")
    cases = make_cohort(folder / "cohort", scenario="clnm", seed=3, n_patients=56)
    add_bad_cases(cases)
    study = ci_sized("clnm_salivary.yaml", cases, folder,
                     models={"models": ["logistic_regression", "random_forest"], "cv": 3, "n_iter": 2},
                     evaluation={"cv_folds": 3, "gradcam": 2, "shap_cases": 15, "bootstrap": 2})
    run = run_study(study, folder / "out", progress=False, echo=False)
    return study, run


def test_outputs_exist(study1_run):
    _, run = study1_run
    out = run.out
    for name in ("report.html", "run.log", "study.yaml", "features/radiomics.parquet",
                 "features/deep_efficientnet_lite0.parquet", "features/failures.csv", "models/design.joblib",
                 "models/design.json", "result.joblib", "tables/metrics.csv", "tables/predictions.csv", "tables/calibration.csv",
                 "tables/delong_matrix_external.csv", "tables/decision_curve_external.csv",
                 "tables/selection_funnel.csv", "tables/univariable_logistic.csv", "tables/nomogram_points.csv",
                 "tables/shap_importance.csv", "tables/baseline_characteristics.csv", "tables/gradcam_cases.csv",
                 "tables/reference_comparison.csv", "figures/roc_external.png", "figures/roc_external.svg",
                 "figures/nomogram.png", "figures/gradcam_gallery.png", "figures/shap_beeswarm.png"):
        assert (out / name).exists(), name
    meta = yaml.safe_load((out / "models" / "design.json").read_text())
    assert meta["seed"] == 0 and meta["training_cohort_sha256"] and meta["package_versions"]["scikit-learn"]


def test_per_center_tables_cover_every_external_center_and_pooled(study1_run):
    from sklearn.metrics import roc_auc_score

    _, run = study1_run
    by_center = pd.read_csv(run.out / "tables" / "metrics_by_center.csv", keep_default_na=False, na_values=[""])
    ext = run.ids("external")
    centers = read_centers(run).loc[ext]
    chosen = by_center[(by_center["cohort"] == "external") & (by_center["model"] == run.chosen_model)]
    assert set(chosen["center"]) == set(centers) | {"pooled"}
    p = run.probabilities["external"][run.chosen_model]
    for center in set(centers):
        ids = centers.index[centers == center]
        row = chosen.set_index("center").loc[center]
        assert row["n"] == len(ids)
        if 0 < run.y.loc[ids].sum() < len(ids):
            assert row["auc"] == pytest.approx(roc_auc_score(run.y.loc[ids], p.loc[ids]), abs=1e-12)
    pooled = chosen.set_index("center").loc["pooled"]
    metrics = run.evaluation.metrics.set_index(["cohort", "model"]).loc[("external", run.chosen_model)]
    assert pooled["auc"] == pytest.approx(metrics["auc"], abs=1e-12) and pooled["n"] == len(ext)
    het = pd.read_csv(run.out / "tables" / "center_heterogeneity.csv")
    assert {"q", "df", "p_value", "i2", "pooled_auc"} <= set(het.columns)
    assert len(het) == by_center.groupby(["cohort", "model"]).ngroups
    paper = (run.out / "tables" / "paper" / "centers.md").read_text()
    assert "| pooled |" in paper


def read_centers(run):
    from sonorad.cohort import read_cases

    return read_cases(run.study.cohort)["center"].astype(str)


def test_bootstrap_validation_refits_the_design_and_is_stored(study1_run):
    _, run = study1_run
    boot = run.bootstrap
    assert boot is not None and boot.model == run.chosen_model and boot.validation.n_resamples == 2
    t = pd.read_csv(run.out / "tables" / "bootstrap_validation.csv", index_col=0)
    assert list(t.index) == ["AUC", "Intercept", "Slope", "Brier"]
    apparent = run.evaluation.metrics.set_index(["cohort", "model"]).loc[("training", run.chosen_model), "auc"]
    assert t.loc["AUC", "apparent"] == pytest.approx(apparent, abs=1e-12)
    assert np.allclose(t["corrected"], t["apparent"] - t["optimism"], equal_nan=True)
    folders = list((run.out / "models").glob("bootstrap_*"))
    assert len(folders) == 1 and len(list(folders[0].glob("resample_*.json"))) == 2
    log = (run.out / "run.log").read_text()
    assert "bootstrap: 2/2 (100%)" in log and "\r" not in log
    html = (run.out / "report.html").read_text()
    assert "Optimism-corrected internal validation" in html and "Bias-corrected calibration" in html


def test_paper_tables_and_report_conventions(study1_run):
    from sonorad.report.paper import model_order

    _, run = study1_run
    paper = pd.read_csv(run.out / "tables" / "paper" / "metrics.csv", dtype=str)
    ext = paper[paper["Cohort"] == "External validation"]
    assert list(ext["Model"]) == model_order(run, list(ext["Model"]))
    assert ext["Model"].iloc[0] == run.chosen_model
    assert ext["AUC (95% CI)"].str.fullmatch(r"\d\.\d{3} \(\d\.\d{3}-\d\.\d{3}\)").all()
    assert (run.out / "tables" / "paper" / "metrics.md").read_text().startswith("| Cohort | Model |")
    delong = (run.out / "report.html").read_text().split('id="delong"')[1].split("</section>")[0]
    assert "e-0" not in delong       # p-values as <0.001 / 3 decimals, never 1.2e-05


def test_bad_cases_are_excluded_and_named(study1_run):
    _, run = study1_run
    failures = pd.read_csv(run.out / "features" / "failures.csv")
    assert set(failures["case_id"]) == {"bad-missing", "bad-size"}
    assert failures.set_index("case_id").loc["bad-missing", "stage"] == "validate"
    assert "bad-size" not in run.y.index and len(run.y) == 56
    assert "bad-missing" in (run.out / "report.html").read_text()


def test_metrics_cover_every_cohort_and_model(study1_run):
    _, run = study1_run
    m = pd.read_csv(run.out / "tables" / "metrics.csv")
    assert set(m["cohort"]) == {"training", "training_cv", "external"}
    assert set(m["model"]) == {"logistic_regression", "random_forest", "rad_score", "dl_score", "clinical_reference"}
    # a predictive value is undefined (reported as NaN) where the cut-off predicts one class only, as the
    # clinical reference does here: its variables carry no signal in this 38-case training cohort
    one_class = (m["tp"] + m["fp"] == 0) | (m["tn"] + m["fn"] == 0)
    for col in ("auc", "auc_low", "auc_high", "accuracy", "sensitivity", "specificity", "ppv", "npv",
                "precision", "recall", "f1"):
        undefined = one_class if col in ("ppv", "npv", "precision") else False
        assert (m[col].notna() | undefined).all(), col
    assert ((m["auc_low"] <= m["auc"]) & (m["auc"] <= m["auc_high"])).all()


def test_predictions_recompute_the_metrics(study1_run):
    from sklearn.metrics import roc_auc_score

    _, run = study1_run
    p = pd.read_csv(run.out / "tables" / "predictions.csv")
    assert list(p.columns) == ["case_id", "patient_id", "center", "cohort", "model", "label", "probability"]
    assert p["patient_id"].notna().all() and p["center"].notna().all()
    m = pd.read_csv(run.out / "tables" / "metrics.csv").set_index(["cohort", "model"])
    for (cohort, model), g in p.groupby(["cohort", "model"]):
        assert roc_auc_score(g["label"], g["probability"]) == pytest.approx(m.loc[(cohort, model), "auc"], abs=1e-12)


def test_training_cv_predictions_differ_from_apparent(study1_run):
    _, run = study1_run
    cv, apparent = run.probabilities["training_cv"], run.probabilities["training"]
    assert cv.index.equals(apparent.index)
    assert not np.allclose(cv["logistic_regression"], apparent["logistic_regression"])


def test_report_has_every_section(study1_run):
    from sonorad.report.study_report import SECTION_TITLES

    _, run = study1_run
    html = (run.out / "report.html").read_text()
    for sid in SECTION_TITLES:
        assert f'id="{sid}"' in html, sid
    assert "Not available" not in html
    assert "Rad-score =" in html and "DL-score =" in html


def test_report_figures_load_in_a_browser(study1_run):
    spec = importlib.util.spec_from_file_location("browser", REPO / "tests" / "report" / "browser.py")
    browser = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(browser)
    _, run = study1_run
    seen = browser.render(run.out / "report.html")
    assert seen["failed_requests"] == []
    assert len(seen["images"]) >= 12
    assert all(i["complete"] and i["width"] > 0 for i in seen["images"])


def test_rerun_resumes_and_gives_identical_numbers(study1_run):
    study, run = study1_run
    study2 = replace(study, evaluation={**study.evaluation, "gradcam": 0, "shap": False})
    again = run_study(study2, run.out, progress=False, echo=False, report=False)
    log = (run.out / "run.log").read_text().split("=== sonorad run started")[-1]
    assert "fit: reusing" in log and "training cross-validation: reusing" in log
    # every case that extracted before comes from the cache; only the case that failed (bad-size) is retried
    import re

    counts = re.findall(r"radiomics: (\d+) of (\d+) from the cache, (\d+) computed", log)
    assert counts == [("56", "57", "1")], counts
    for cohort, frame in run.probabilities.items():
        pd.testing.assert_frame_equal(frame, again.probabilities[cohort])
    assert "(2 already in" in log          # the resamples are read back from models/bootstrap_*/, not refitted
    pd.testing.assert_frame_equal(run.bootstrap.validation.table, again.bootstrap.validation.table)


def test_same_seed_in_a_new_folder_gives_the_same_predictions(study1_run, tmp_path):
    study, run = study1_run
    cache = run.out / "features" / ".cache"
    fresh = run_study(replace(study, features={**study.features, "cache": str(cache)}), tmp_path,
                      progress=False, echo=False, report=False)
    for cohort in ("training", "external", "training_cv"):
        pd.testing.assert_frame_equal(run.probabilities[cohort], fresh.probabilities[cohort])


def test_dl_score_network_reproduces_the_dl_score(study1_run):
    import torch

    from sonorad.cohort import read_cases
    from sonorad.deep.inputs import collect_crops, normalize, resize_gray
    from sonorad.pipeline.explanations import dl_score_network

    study, run = study1_run
    net, backbone, name = dl_score_network(run.design, run.config.dl_backbones)
    assert (backbone, name) == ("efficientnet_lite0", "dl_score")
    ids = run.ids("external")[:4]
    crops = collect_crops(read_cases(study.cohort).loc[ids], margin=run.config.margin)
    x = normalize(resize_gray(crops, net.input_size), net.spec.mean, net.spec.std)
    with torch.no_grad():
        logits = net(x).double().numpy()
    deep = pd.read_parquet(run.out / "features" / "deep_efficientnet_lite0.parquet")
    expected = run.design.models["dl_score"].decision_function(deep.loc[ids])
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_report_rerenders_from_the_saved_result_without_refitting(study1_run, monkeypatch):
    from sonorad.cli import main
    from sonorad.pipeline.result import StudyResult

    _, run = study1_run
    run.save()              # the fixture's own result (a rerun test may have saved one without SHAP since)
    saved = StudyResult.load(run.out)
    assert saved.design.models == {} and saved.design.primary == run.design.primary
    pd.testing.assert_frame_equal(saved.evaluation.metrics, run.evaluation.metrics)
    import sonorad.pipeline.stages as stages

    def refit(*args, **kwargs):
        raise AssertionError("sonorad report must not fit")

    monkeypatch.setattr(stages, "fit", refit)
    (run.out / "report.html").unlink(missing_ok=True)
    assert main(["report", str(run.out)]) == 0
    html = (run.out / "report.html").read_text()
    assert 'id="shap"' in html and "Rad-score =" in html


def test_report_of_a_folder_without_a_run_is_a_clear_error(tmp_path, capsys):
    from sonorad.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert "not a finished sonorad run" in capsys.readouterr().err


def test_table_level_problems_stop_the_run_with_every_problem(tmp_path):
    cases = make_cohort(tmp_path / "cohort", scenario="clnm", seed=4, n_patients=16)
    table = pd.read_csv(cases, dtype=str)
    table.loc[0, "center"] = "C9"          # a center the split does not know
    table.loc[1, "label"] = ""             # a missing label
    table.to_csv(cases, index=False)
    study = ci_sized("clnm_salivary.yaml", cases, tmp_path, models={}, evaluation={})
    with pytest.raises(CohortError) as info:
        run_study(study, tmp_path / "out", progress=False, echo=False)
    text = str(info.value)
    assert "C9" in text and table.loc[1, "case_id"] in text


def test_study2_file_with_a_fine_tuned_cnn(tmp_path):
    cases = make_cohort(tmp_path / "cohort", scenario="primary_secondary", seed=2, n_patients=44)
    study = ci_sized("primary_secondary_salivary.yaml", cases, tmp_path,
                     models={"families": ["us", "radiomics_dl", "combined"], "models": ["logistic_regression", "mlp"],
                             "cv": 3, "n_iter": 2, "cnn": {"backbones": ["efficientnet_lite0"], "epochs": 1,
                                                          "patience": 1}},
                     evaluation={"cv_folds": 2, "gradcam": 2, "shap_cases": 10})
    run = run_study(study, tmp_path / "out", progress=False, echo=False)
    m = pd.read_csv(run.out / "tables" / "metrics.csv")
    ext = set(m.loc[m["cohort"] == "external", "model"])
    assert {"us/logistic_regression", "radiomics_dl/mlp", "combined/logistic_regression",
            "cnn_efficientnet_lite0"} <= ext
    assert (run.out / "models" / "cnn_efficientnet_lite0.joblib").exists()
    assert (run.out / "figures" / "gradcam_gallery.png").exists()
    html = (run.out / "report.html").read_text()
    assert "fine-tuned cnn_efficientnet_lite0" in html and 'id="shap"' in html


def test_radiomics_nomogram_study_file(tmp_path):
    cases = make_cohort(tmp_path / "cohort", scenario="clnm", seed=6, n_patients=48)
    study = ci_sized("radiomics_nomogram.yaml", cases, tmp_path, models={"cv": 3},
                     evaluation={"cv_folds": 2, "shap_cases": 10})
    run = run_study(study, tmp_path / "out", progress=False, echo=False)
    assert set(run.design.models) == {"rad_score", "logistic_regression", "clinical_reference"}
    assert run.design.primary == "logistic_regression"
    points = pd.read_csv(run.out / "tables" / "nomogram_points.csv")
    assert "Rad-score" in set(points.iloc[:, 0].astype(str)) or "rad_score" in set(points.iloc[:, 0].astype(str))
    assert (run.out / "figures" / "nomogram.png").exists()


def test_bundle_scores_new_cases_as_the_run_did(study1_run, tmp_path):
    """sonorad predict on the external cases without labels reproduces the run's probabilities."""
    from sonorad.cli import main

    study, run = study1_run
    cases = pd.read_csv(study.cohort, dtype=str)
    external = cases[cases["case_id"].isin(run.ids("external"))].drop(columns=["label"])
    csv = Path(study.cohort).parent / "external_without_labels.csv"
    external.to_csv(csv, index=False)
    assert main(["predict", str(run.out / "model"), str(csv), "--out", str(tmp_path / "pred")]) == 0
    got = pd.read_csv(tmp_path / "pred" / "predictions.csv", dtype={"case_id": str})
    got = got.pivot(index="case_id", columns="model", values="probability")
    expected = run.probabilities["external"]
    assert set(expected.columns) <= set(got.columns)
    np.testing.assert_allclose(got.loc[expected.index, expected.columns].to_numpy(), expected.to_numpy(),
                               rtol=0, atol=1e-9)


def test_bundle_holds_no_training_case_id(study1_run):
    _, run = study1_run
    import zipfile

    parts = []
    for path in (run.out / "model").rglob("*"):
        if path.suffix == ".skops":  # skops files are zip archives: read every member
            with zipfile.ZipFile(path) as archive:
                parts += [archive.read(name) for name in archive.namelist()]
        elif path.is_file():
            parts.append(path.read_bytes())
    blobs = b"".join(parts)
    for case_id in run.ids("train"):
        assert case_id.encode() not in blobs, case_id
    card = (run.out / "model" / "card.md").read_text()
    assert run.design.primary in card and "Research use only" in card


def test_the_bundle_gets_each_models_counts_at_its_cutoff_on_the_cohort_the_study_is_judged_on(study_result):
    from sonorad.runner.run import _cutoff_counts

    evaluation = study_result.evaluation
    counts = _cutoff_counts(evaluation)
    assert counts["cohort"] == evaluation.primary_cohort == "external"
    m = evaluation.metrics
    row = m[(m["cohort"] == "external") & (m["model"] == "lr")].iloc[0]
    assert counts["models"]["lr"] == {k: int(row[k]) for k in ("tp", "fp", "tn", "fn")}
    assert sum(counts["models"]["lr"].values()) == int(row["n"])
