"""Tests of sonorad.report.paper: model order and the paper tables of a run."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from sonorad.report.paper import bootstrap_paper, metrics_paper, model_order, write_paper_tables


def test_models_are_ordered_by_the_pre_declared_choice_not_validation_auc():
    run = SimpleNamespace(chosen_model="lr", design=SimpleNamespace(
        cv_auc=pd.Series({"lr": 0.70, "rf": 0.80, "svm": 0.75})))
    assert model_order(run, ["rad_score", "svm", "rf", "lr"]) == ["lr", "rf", "svm", "rad_score"]


def _run():
    rows = []
    for cohort in ("training", "external"):
        for model, auc in (("rf", 0.9), ("lr", 0.8)):
            row = {"cohort": cohort, "model": model, "n": 50, "positives": 20, "auc": auc, "auc_low": auc - 0.1,
                   "auc_high": auc + 0.05, "threshold": 0.5}
            for stat in ("sensitivity", "specificity", "ppv", "npv", "accuracy"):
                row.update({stat: 0.7, f"{stat}_low": 0.6, f"{stat}_high": 0.8})
            rows.append(row)
    return SimpleNamespace(chosen_model="lr", design=SimpleNamespace(cv_auc=pd.Series({"lr": 0.7, "rf": 0.75})),
                           evaluation=SimpleNamespace(metrics=pd.DataFrame(rows),
                                                      calibration=pd.DataFrame()),
                           centers=None, bootstrap=None)


def test_metrics_paper_lists_validation_before_apparent_training_and_the_chosen_model_first():
    table = metrics_paper(_run())
    assert table[["Cohort", "Model"]].values.tolist() == [
        ["External validation", "lr"], ["External validation", "rf"],
        ["Training (apparent)", "lr"], ["Training (apparent)", "rf"]]
    assert table.loc[0, "AUC (95% CI)"] == "0.800 (0.700-0.850)"
    assert bootstrap_paper(_run()).empty


def test_write_paper_tables_writes_csv_and_markdown_of_the_non_empty_tables(tmp_path, monkeypatch):
    import sonorad.report.paper as paper

    monkeypatch.setattr(paper, "centers_paper", lambda run: pd.DataFrame())
    monkeypatch.setattr(paper, "heterogeneity_paper", lambda run: pd.DataFrame())
    written = write_paper_tables(_run(), tmp_path / "paper")
    assert sorted(p.name for p in written) == ["clear_checklist.csv", "metrics.csv", "metrics.md"]
    assert pd.read_csv(written[0]).shape[0] == 4 and np.all([p.exists() for p in written])
    clear = pd.read_csv(tmp_path / "paper" / "clear_checklist.csv")
    assert list(clear["item"]) == list(range(1, 59)) and set(clear["filled_by"]) == {"run", "authors"}


def _centers(n_external_centers):
    rows = []
    for model in ("lr", "rf"):
        centers = [f"site{i}" for i in range(n_external_centers)] + ["pooled"]
        for center in centers:
            rows.append({"cohort": "external", "model": model, "center": center, "n": 40, "n_events": 15,
                         "auc": 0.8, "auc_low": 0.7, "auc_high": 0.9})
    return pd.DataFrame(rows)


def test_one_external_center_is_not_repeated_as_pooled():
    from sonorad.report.paper import center_rows, centers_paper
    from sonorad.report.sections.performance import plot_center_forest

    one = _run()
    one.centers = SimpleNamespace(table=_centers(1))
    table = centers_paper(one)
    assert list(table["Center"]) == ["site0", "site0"]
    fig = plot_center_forest(one, ["lr", "rf"])
    assert len(fig.axes[0].get_yticklabels()) == 2
    assert list(center_rows(_centers(2))["center"]) == ["site0", "site1", "pooled"] * 2
