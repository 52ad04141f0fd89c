"""Tests of sonorad.report.sections.performance: figures of bootstrap calibration and AUC per center."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from sonorad.report.sections.performance import plot_bootstrap_calibration, plot_center_forest


def test_bootstrap_calibration_draws_ideal_apparent_and_corrected():
    grid = np.linspace(0.05, 0.95, 10)
    v = SimpleNamespace(calibration=pd.DataFrame({"predicted": grid, "apparent": grid ** 0.9,
                                                  "corrected": grid ** 1.1}))
    fig = plot_bootstrap_calibration(v, "lr")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["Ideal", "Apparent", "Bias-corrected"]
    assert "lr" in fig.axes[0].get_title()


def test_center_forest_has_one_row_per_center_and_the_pooled_estimate():
    table = pd.DataFrame({"model": ["lr"] * 3, "cohort": ["external"] * 3, "center": ["C3", "C4", "pooled"],
                          "n": [30, 40, 70], "auc": [0.7, 0.8, 0.76], "auc_low": [0.6, 0.7, 0.7],
                          "auc_high": [0.8, 0.9, 0.82]})
    fig = plot_center_forest(SimpleNamespace(centers=SimpleNamespace(table=table)), ["lr"])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 3 and any("pooled" in label for label in labels)


def test_calibration_panels_keep_statistics_off_the_curves_and_lowess_within_the_predictions():
    from sonorad.evaluation import calibration
    from sonorad.report.sections.performance import plot_calibration_panels

    rng = np.random.default_rng(2)
    p = np.r_[rng.uniform(0.1, 0.6, 118), [0.98, 0.999]]
    y = pd.Series((rng.uniform(size=120) < p).astype(int), index=[f"c{i}" for i in range(120)])
    run = SimpleNamespace(probabilities={"external": pd.DataFrame({"lr": p}, index=y.index)}, y=y)
    fig = plot_calibration_panels(run, "external", {("external", "lr"): calibration(y, p, name="lr")})
    ax = fig.axes[0]
    assert not ax.texts  # statistics are in the panel title, not over the curves
    assert "slope" in ax.get_title(loc="left") and ax._left_title.get_fontsize() >= 8
    curve = max(ax.get_lines(), key=lambda line: len(line.get_xdata()))
    assert max(curve.get_xdata()) < 0.9


def test_roc_legend_uses_the_patient_clustered_interval():
    from sonorad.evaluation import roc_curve
    from sonorad.evaluation.formatting import format_ci
    from sonorad.report.sections.performance import plot_roc_bands

    rng = np.random.default_rng(5)
    n_patients = 30
    y_patient = np.tile([0, 1], n_patients // 2)
    y = np.repeat(y_patient, 3)  # three images per patient, very alike
    p = np.clip(np.repeat(0.5 + 0.25 * (y_patient - 0.5) + rng.normal(0, 0.2, n_patients), 3)
                + rng.normal(0, 0.01, len(y)), 0.001, 0.999)
    ids = [f"c{i}" for i in range(len(y))]
    patients = pd.Series(np.repeat([f"p{i}" for i in range(n_patients)], 3), index=ids)
    run = SimpleNamespace(probabilities={"external": pd.DataFrame({"lr": p}, index=ids)},
                          y=pd.Series(y, index=ids), roc_bands=None, patients=patients,
                          evaluation=SimpleNamespace(metrics=pd.DataFrame(columns=["cohort", "model"])),
                          config=SimpleNamespace(level=0.95))
    legend = [t.get_text() for t in plot_roc_bands(run, "external", ["lr"]).axes[0].get_legend().get_texts()]
    a = roc_curve(y, p, cluster=patients.to_numpy()).auc
    naive = roc_curve(y, p).auc
    assert format_ci(a.auc, a.low, a.high) != format_ci(naive.auc, naive.low, naive.high)
    assert legend[0] == f"lr: AUC {format_ci(a.auc, a.low, a.high)}"
    # a run saved before patients were kept draws the unclustered interval
    old = SimpleNamespace(**{**vars(run), "patients": None})
    legend = [t.get_text() for t in plot_roc_bands(old, "external", ["lr"]).axes[0].get_legend().get_texts()]
    assert legend[0] == f"lr: AUC {format_ci(naive.auc, naive.low, naive.high)}"


def test_a_center_missing_a_predictor_gets_its_own_table_beside_the_chosen_model():
    from sonorad.report.sections.performance import add_missing_predictors

    class Report:
        def __init__(self):
            self.texts, self.tables = [], []

        def add_text(self, section, text):
            self.texts.append(text)

        def add_table(self, section, table, caption, float_format=None):
            self.tables.append((table, caption))

    missing = pd.DataFrame([
        {"cohort": "external", "center": "B", "variable": "birads", "model": "lr", "role": "chosen",
         "reads_variable": True, "n": 10, "auc": 0.4, "auc_low": 0.2, "auc_high": 0.6},
        {"cohort": "external", "center": "B", "variable": "birads", "model": "rad_score",
         "role": "does not need it", "reads_variable": False, "n": 10, "auc": 0.8, "auc_low": 0.6, "auc_high": 0.95}])
    report = Report()
    add_missing_predictors(report, SimpleNamespace(missing_predictors=missing))
    assert "birads is missing for every case of external center B" in report.texts[0]
    assert "reads it" in report.texts[0] and "1 model(s) do not need it" in report.texts[0]
    table = report.tables[0][0]
    assert list(table["Model"]) == ["lr", "rad_score"] and list(table["AUC (95% CI)"])[1] == "0.800 (0.600-0.950)"
    empty = Report()
    add_missing_predictors(empty, SimpleNamespace(missing_predictors=None))
    assert not empty.texts and not empty.tables
