"""Tests of sonorad.report.sections.explanations: Grad-CAM gallery, nomogram and SHAP sections."""

import numpy as np
import pandas as pd


def test_gradcam_gallery_has_a_colour_bar_and_says_p_positive(tmp_path):
    from types import SimpleNamespace

    from sonorad.report.sections.explanations import add_gradcam

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
    add_gradcam(Report(), Figs(), run)
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

    from sonorad.explain.shap import ShapResult
    from sonorad.explain.nomogram import build_nomogram
    from sonorad.report.sections.explanations import add_nomogram, add_shap

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

    add_nomogram(Report(), Figs(), run)
    texts = [t.get_text() for t in shown["nomogram"].axes[0].texts]
    assert "Age at diagnosis (years) [age]" in texts and "edge" in texts and "rad_score" in texts

    values = rng.normal(size=(5, 3))
    run.explanations.shap = ShapResult(values=values, base_values=np.zeros(5), data=values,
                                       feature_names=["age", "edge", "rad_score"], case_ids=list("abcde"),
                                       explainer="linear", output="log-odds", model_name="lr")
    run.chosen_model, run.primary = "lr", "external"
    run.probabilities = {"external": pd.DataFrame({"lr": np.linspace(0.1, 0.9, 5)}, index=list("abcde"))}
    add_shap(Report(), Figs(), run)
    assert "Age at diagnosis (years) [age]" in list(shown["table"].index)
    labels = [t.get_text() for t in shown["shap_bar"].axes[0].get_yticklabels()]
    assert "Age at diagnosis (years) [age]" in labels


def test_a_missing_grad_cam_is_explained_once_without_a_doubled_prefix():
    from types import SimpleNamespace

    from sonorad.pipeline.explanations import Explanations
    from sonorad.report.sections.explanations import add_gradcam

    class _Report:
        def __init__(self):
            self.text = []

        def add_section(self, *args, **kwargs):
            pass

        def add_text(self, section, text):
            self.text.append(text)

    run = SimpleNamespace(explanations=Explanations(
        notes=("no Grad-CAM: the study has neither a fine-tuned CNN nor a linear DL-score",)))
    report = _Report()
    add_gradcam(report, None, run)
    assert report.text == ["No Grad-CAM: the study has neither a fine-tuned CNN nor a linear DL-score"]
