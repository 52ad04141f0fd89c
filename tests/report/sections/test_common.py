"""Tests of sonorad.report.sections.common: the model comparison cells, predictor labels and figure saving."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from sonorad.report.sections.common import FigureSaver, metrics_display, p_columns, predictor_label


def _metrics():
    rows = []
    for model, auc in (("rf", 0.81), ("lr", 0.74)):
        row = {"cohort": "external", "model": model, "auc": auc, "auc_low": auc - 0.1, "auc_high": auc + 0.1,
               "threshold": 0.4321, "train_cv_auc": np.nan if model == "rf" else 0.7}
        for stat in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"):
            row.update({stat: 0.5, f"{stat}_low": 0.4, f"{stat}_high": 0.6})
        rows.append(row)
    return pd.DataFrame(rows)


def test_metrics_display_keeps_the_declared_order_and_formats_cis():
    table = metrics_display(_metrics(), "external", order=["lr"])
    assert list(table.index) == ["lr", "rf"]
    assert table.loc["lr", "AUC (95% CI)"] == "0.740 (0.640-0.840)"
    assert table.loc["rf", "Cut-off"] == "0.432" and table.loc["rf", "Tuning-CV AUC"] == ""
    assert metrics_display(_metrics().drop(columns="auc"), "external").empty


def test_each_cv_auc_is_named_for_what_it_is():
    from sonorad.report.paper import COHORT_LABELS
    from sonorad.report.sections.common import COHORT_TITLES

    # the training_cv cohort refits the whole pipeline; the tuning-CV AUC is the hyperparameter search's
    assert COHORT_TITLES["training_cv"] == "training cohort (whole-pipeline training-CV)"
    assert COHORT_LABELS["training_cv"] == "Training (whole-pipeline training-CV)"
    assert "Tuning-CV AUC" in metrics_display(_metrics(), "external").columns


def test_p_columns_use_the_one_p_value_format():
    shown = p_columns(pd.DataFrame({"p": [0.0001, 0.25], "x": [1, 2]}), ["p", "missing"])
    assert shown["p"].tolist() == ["<0.001", "0.250"] and shown["x"].tolist() == [1, 2]


def test_predictor_label_adds_the_study_file_description():
    run = SimpleNamespace(study=SimpleNamespace(variables={
        "age": SimpleNamespace(description="Age (years)"), "edge": SimpleNamespace(description=None)}))
    assert predictor_label(run, "age") == "Age (years) [age]"
    assert predictor_label(run, "age_missing") == "Age (years) [age_missing]"
    assert predictor_label(run, "edge") == "edge" and predictor_label(run, "rad_score") == "rad_score"


def test_figure_saver_writes_embeds_and_closes(tmp_path):
    from sonorad.evaluation.plots import pyplot

    plt = pyplot()
    added = []
    report = SimpleNamespace(add_figure=lambda section, fig, caption: added.append((section, caption)))
    fig = plt.figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    FigureSaver(report, tmp_path).add("roc", fig, "roc_test", "A caption")
    assert (tmp_path / "roc_test.png").exists() and (tmp_path / "roc_test.svg").exists()
    assert added == [("roc", "A caption")]
    assert fig.number not in plt.get_fignums()
