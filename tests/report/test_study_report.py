"""Figures of the study report that encode a choice (where the best lambda is)."""

import numpy as np
import pandas as pd

from sonorad.report.study_report import _plot_lasso


def test_lasso_figure_marks_the_lambda_of_minimum_cv_deviance():
    log_lambda = np.linspace(-4, 2, 7)
    deviance = np.array([1.30, 1.10, 0.95, 0.90, 1.00, 1.20, 1.33])  # minimum at index 3
    path = pd.DataFrame({"lambda": np.exp(log_lambda), "log_lambda": log_lambda, "cv_mean": deviance,
                         "cv_se": 0.02, "n_nonzero": [6, 5, 4, 3, 2, 1, 0], "f1": np.linspace(1, 0, 7)})
    fig = _plot_lasso(path, "Rad-score")
    cv_axis = fig.axes[0]
    marked = [line.get_xdata()[0] for line in cv_axis.get_lines() if line.get_linestyle() == "--"]
    assert marked == [log_lambda[3]]
    assert "deviance" in cv_axis.get_ylabel()


def test_output_file_list_leaves_out_input_images_and_summarises_figures(tmp_path):
    from sonorad.report.study_report import _output_files

    for rel in ("cohort/images/c1.png", "cohort/cases.csv", "tables/metrics.csv", "figures/roc_external.png",
                "figures/roc_external.svg", "figures/gradcam/c1.png", "features/.cache/ab/x.json",
                "models/bootstrap_0123/resample_00000.json", "report.html", "tables/x.part"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    listing = _output_files(tmp_path)
    assert listing == sorted(["figures/ (2 files)", "figures/gradcam/ (1 files)", "models/bootstrap_0123/ (1 files)",
                              "report.html", "tables/metrics.csv"])


def test_models_are_ordered_by_the_pre_declared_choice_not_validation_auc():
    from types import SimpleNamespace

    from sonorad.report.paper import model_order

    run = SimpleNamespace(chosen_model="lr", design=SimpleNamespace(
        cv_auc=pd.Series({"lr": 0.70, "rf": 0.80, "svm": 0.75})))
    assert model_order(run, ["rad_score", "svm", "rf", "lr"]) == ["lr", "rf", "svm", "rad_score"]


def test_gradcam_gallery_has_a_colour_bar_and_says_p_positive(tmp_path):
    from types import SimpleNamespace

    from sonorad.report.study_report import _gradcam

    cam = SimpleNamespace(case_id="c1", label=1, probability=0.8123, crop=np.zeros((8, 8)),
                          heatmap=np.linspace(0, 1, 64).reshape(8, 8), mask=np.ones((8, 8), bool))
    seen = {}

    class Figs:
        def add(self, section, fig, stem, caption):
            seen["fig"], seen["caption"] = fig, caption

    class Report:
        def add_section(self, *a, **k):
            pass

    run = SimpleNamespace(explanations=SimpleNamespace(gradcam=[cam], gradcam_source="dl_score", notes=()),
                          primary="external")
    _gradcam(Report(), Figs(), run)
    titles = [ax.get_title() for ax in seen["fig"].axes]
    assert any("P(positive) = 0.81" in t for t in titles)
    assert any(ax.get_label() == "<colorbar>" for ax in seen["fig"].axes)
    assert "P(positive)" in seen["caption"]


def _run_with_descriptions():
    from types import SimpleNamespace

    variables = {"age": SimpleNamespace(description="Age at diagnosis (years)"),
                 "edge": SimpleNamespace(description=None)}
    return SimpleNamespace(study=SimpleNamespace(variables=variables))


def test_nomogram_and_shap_label_predictors_by_their_study_file_description():
    from types import SimpleNamespace

    from sklearn.linear_model import LogisticRegression

    from sonorad.evaluation.explain import ShapResult
    from sonorad.evaluation.nomogram import build_nomogram
    from sonorad.report.study_report import _nomogram, _shap

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.normal(50, 10, 80), "edge": rng.integers(0, 2, 80), "rad_score": rng.normal(size=80)})
    y = (X["age"] / 10 + X["rad_score"] + rng.normal(size=80) > 5).astype(int)
    run = _run_with_descriptions()
    run.explanations = SimpleNamespace(nomogram=build_nomogram(LogisticRegression().fit(X, y), X),
                                       nomogram_model="logistic_regression", notes=())
    shown = {}

    class Figs:
        def add(self, section, fig, stem, caption):
            shown[stem] = fig

    class Report:
        def add_section(self, *a, **k):
            pass

        def add_text(self, *a, **k):
            pass

        def add_table(self, section, table, *a, **k):
            shown["table"] = table

    _nomogram(Report(), Figs(), run)
    texts = [t.get_text() for t in shown["nomogram"].axes[0].texts]
    assert "Age at diagnosis (years) [age]" in texts and "edge" in texts and "rad_score" in texts

    values = rng.normal(size=(5, 3))
    run.explanations.shap = ShapResult(values=values, base_values=np.zeros(5), data=values,
                                       feature_names=["age", "edge", "rad_score"], case_ids=list("abcde"),
                                       explainer="linear", output="log-odds", model_name="lr")
    run.chosen_model, run.primary = "lr", "external"
    run.probabilities = {"external": pd.DataFrame({"lr": np.linspace(0.1, 0.9, 5)}, index=list("abcde"))}
    _shap(Report(), Figs(), run)
    assert "Age at diagnosis (years) [age]" in list(shown["table"].index)
    labels = [t.get_text() for t in shown["shap_bar"].axes[0].get_yticklabels()]
    assert "Age at diagnosis (years) [age]" in labels
