"""Tests of sonorad.report.sections.overview: figures that encode a choice (where the best lambda is)."""

import numpy as np
import pandas as pd

from sonorad.report.sections.overview import plot_lasso


def test_lasso_figure_marks_the_lambda_of_minimum_cv_deviance():
    log_lambda = np.linspace(-4, 2, 7)
    deviance = np.array([1.30, 1.10, 0.95, 0.90, 1.00, 1.20, 1.33])  # minimum at index 3
    path = pd.DataFrame({"lambda": np.exp(log_lambda), "log_lambda": log_lambda, "cv_mean": deviance,
                         "cv_se": 0.02, "n_nonzero": [6, 5, 4, 3, 2, 1, 0], "f1": np.linspace(1, 0, 7)})
    fig = plot_lasso(path, "Rad-score")
    cv_axis = fig.axes[0]
    marked = [line.get_xdata()[0] for line in cv_axis.get_lines() if line.get_linestyle() == "--"]
    assert marked == [log_lambda[3]]
    assert "deviance" in cv_axis.get_ylabel()
