"""Tests of sonorad.report.sections.overview: figures that encode a choice (where the best lambda is)."""

from dataclasses import replace
from types import SimpleNamespace

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


def _cohort_run(acquisition):
    from types import SimpleNamespace

    flow = {"total": 4, "excluded": {}, "parts": {"train": {"n": 2, "positive": 1}, "external": {"n": 2, "positive": 1}}}
    return SimpleNamespace(flow=flow, study=SimpleNamespace(name="demo"), acquisition=acquisition,
                           explanations=SimpleNamespace(table_one=None),
                           failures=pd.DataFrame(columns=["case_id", "stage", "error", "fix"]))


def _acquisition():
    return pd.DataFrame({"cases": [240, 120], "with_spacing": [0, 120], "spacing_from": ["none", "spacing_mm"],
                         "spacing_mm": ["", "0.07-0.11"], "median_spacing_mm": [np.nan, 0.09],
                         "image_size": ["500-600 x 700", "400 x 500"], "bit_depth": ["8", "8, 16"],
                         "format": ["PNG", "DICOM"], "scanner": ["", "Acme X1"]},
                        index=pd.Index(["BUS-BRA", "BrEaST"], name="center"))


def test_participants_section_shows_the_acquisition_by_center(tmp_path):
    from sonorad.report.html import Report
    from sonorad.report.sections.common import FigureSaver
    from sonorad.report.sections.overview import add_cohort

    report = Report("t")
    add_cohort(report, FigureSaver(report, tmp_path), _cohort_run(_acquisition()))
    page = report.to_html()
    assert "Acquisition by center" in page
    for cell in ("none: features in pixels", "0.07-0.11 (median 0.09)", "spacing_mm column", "500-600 x 700",
                 "8, 16", "DICOM", "Acme X1", "not recorded"):
        assert cell in page, cell
    older = Report("t")  # a result saved before the acquisition table was kept
    add_cohort(older, FigureSaver(older, tmp_path), _cohort_run(None))
    assert "Acquisition by center" not in older.to_html()


def _sections(run, tmp_path):
    from sonorad.report.html import Report
    from sonorad.report.sections.overview import add_methods, add_models, add_summary

    report = Report("t")
    add_summary(report, run)
    add_methods(report, replace(run, feature_summary={}, flow={},
                                config=SimpleNamespace(dl_backbones=(), models={}, cv_folds=5, tuning_folds=5)))
    add_models(report, run)
    return report.to_html()


def test_the_summary_and_the_model_comparison_state_the_comparison_with_the_reference(
        study_result_with_reference, study_result, tmp_path):
    import html

    comparison = study_result_with_reference.reference
    page = html.unescape(_sections(study_result_with_reference, tmp_path))
    summary = page.split('id="summary"')[1].split("</section>")[0]
    assert comparison.summary in summary and "is not better than" in comparison.summary
    models = page.split('id="models"')[1].split("</section>")[0]
    assert "Comparison with the clinical reference: lr against rad_score on the external validation cohort" in models
    for statistic in ("AUC difference (DeLong)", "NRI (continuous)", "IDI", "Likelihood-ratio test"):
        assert statistic in models, statistic
    assert "lr is not a logistic regression" in models  # why the LR test is missing
    methods = page.split('id="methods"')[1].split("</section>")[0]
    assert "compared with the clinical reference model (rad_score" in methods
    # without a reference model, none of it
    plain = html.unescape(_sections(study_result, tmp_path))
    assert "clinical reference" not in plain


def test_the_model_comparison_names_the_tie_and_the_rule(study_result, tmp_path):
    import html

    from sonorad.designs.choice import TIE_RULE, choose_model

    folds = pd.DataFrame({"logistic_regression": [0.70, 0.72, 0.71], "mlp": [0.60, 0.80, 0.74]})
    choice = choose_model(pd.Series({"logistic_regression": 0.71, "mlp": 0.713}), folds)
    assert choice.is_tie and choice.chosen == "logistic_regression"
    run = replace(study_result, design=replace(study_result.design, choices={"lr": choice}))
    page = html.unescape(_sections(run, tmp_path))
    models = page.split('id="models"')[1].split("</section>")[0]
    assert choice.sentence() in models and "Tuning-CV AUC" in models
    methods = page.split('id="methods"')[1].split("</section>")[0]
    assert methods.count(TIE_RULE) == 1
    stated = replace(run, design=replace(run.design, methods=(f"the model is chosen by the {TIE_RULE}",)))
    assert html.unescape(_sections(stated, tmp_path)).count(TIE_RULE) == 1  # a design that states it: once
    assert TIE_RULE not in html.unescape(_sections(study_result, tmp_path))  # no choice made: no rule stated
