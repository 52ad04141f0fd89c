"""End to end: the demo on a small synthetic cohort (the full-size run is benchmarks/README.md's)."""

import pandas as pd
import pytest

from sonorad.demo import run_demo


@pytest.mark.slow
def test_demo_runs_end_to_end_and_writes_predictions_and_metrics(tmp_path):
    metrics = run_demo(tmp_path, seed=1, jobs=1, progress=False, n_patients=48,
                       models=["logistic_regression", "random_forest"], cv_folds=2, report=False)
    for name in ("cohort/cases.csv", "study.yaml", "features/radiomics.parquet",
                 "features/deep_efficientnet_lite0.parquet", "features/failures.csv",
                 "tables/metrics.csv", "tables/predictions.csv"):
        assert (tmp_path / name).exists(), name
    assert set(metrics["model"]) == {"logistic_regression", "random_forest", "rad_score", "dl_score",
                                     "clinical_reference"}
    assert set(metrics["cohort"]) == {"training", "training_cv", "external"}
    ext = metrics[metrics["cohort"] == "external"]
    assert ((ext["auc_low"] <= ext["auc"]) & (ext["auc"] <= ext["auc_high"])).all()

    predictions = pd.read_csv(tmp_path / "tables" / "predictions.csv")
    assert list(predictions.columns) == ["case_id", "patient_id", "center", "cohort", "model", "label", "probability"]
    assert predictions["probability"].between(0, 1).all()
    # anyone can recompute a statistic from the per-case predictions
    from sklearn.metrics import roc_auc_score

    cases = pd.read_csv(tmp_path / "cohort" / "cases.csv", dtype={"case_id": str}).set_index("case_id")
    lr = predictions[(predictions["cohort"] == "external") & (predictions["model"] == "logistic_regression")]
    auc = roc_auc_score(cases.loc[lr["case_id"], "label"], lr["probability"])
    assert auc == pytest.approx(float(ext.set_index("model").loc["logistic_regression", "auc"]), abs=1e-12)


def test_demo_study_matches_the_ready_study_file():
    """The demo runs studies/clnm_salivary.yaml's design; the two must not drift apart."""
    from pathlib import Path

    import yaml

    from sonorad.demo import demo_study

    ready = yaml.safe_load((Path(__file__).resolve().parents[1] / "studies" / "clnm_salivary.yaml").read_text())
    demo = demo_study("cohort/cases.csv", seed=0)
    for key in ("seed", "label", "variables", "split", "features", "models", "evaluation"):
        assert demo[key] == ready[key], key
