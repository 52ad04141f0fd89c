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
