"""Study report sections that explain the models: nomogram, SHAP and Grad-CAM."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sonorad.evaluation.plots import pyplot
from sonorad.report.sections.common import COHORT_TITLES, SECTION_TITLES, predictor_label

__all__ = ["add_nomogram", "add_shap", "add_gradcam"]


def add_nomogram(report, figs, run) -> None:
    from sonorad.evaluation.plots import plot_nomogram

    report.add_section("nomogram", SECTION_TITLES["nomogram"])
    nomo = run.explanations.nomogram
    if nomo is None:
        report.add_text("nomogram", "No nomogram: " + run.explanations.reason("nomogram", "the design names no logistic model"))
        return
    name = run.explanations.nomogram_model
    labels = {a.name: predictor_label(run, a.name) for a in nomo.axes}
    figs.add("nomogram", plot_nomogram(nomo, title=f"Nomogram ({name})", labels=labels), "nomogram",
             f"Nomogram of {name}: read each predictor's points, add them, and read the probability off the "
             "total-points scale")


def add_shap(report, figs, run) -> None:
    from sonorad.evaluation.plots import plot_shap_bar, plot_shap_beeswarm, plot_shap_waterfall

    report.add_section("shap", SECTION_TITLES["shap"])
    result = run.explanations.shap
    if result is None:
        report.add_text("shap", "No SHAP values: " + run.explanations.reason("shap", "not computed"))
        return
    name = run.chosen_model
    result = replace(result, feature_names=[predictor_label(run, f) for f in result.feature_names])
    report.add_text("shap", f"SHAP values of {name} (the model chosen by tuning-CV AUC) on {len(result.case_ids)} "
                            f"cases of the {COHORT_TITLES[run.primary]}, in its selected-feature space "
                            f"({result.explainer} explainer).")
    figs.add("shap", plot_shap_beeswarm(result), "shap_beeswarm", f"SHAP beeswarm of {name}")
    figs.add("shap", plot_shap_bar(result), "shap_bar", f"Mean |SHAP| of {name}")
    cohort = "training" if run.primary == "training_cv" else run.primary
    p = run.probabilities[cohort][name].reindex(result.case_ids)
    case = p.idxmax()
    figs.add("shap", plot_shap_waterfall(result, case), "shap_waterfall",
             f"SHAP waterfall of case {case}, the highest predicted risk among the explained cases")
    report.add_table("shap", result.importance().head(20), "SHAP importance (mean |SHAP|), top 20",
                     float_format="{:.4f}")


def add_gradcam(report, figs, run) -> None:
    report.add_section("gradcam", SECTION_TITLES["gradcam"])
    cams = run.explanations.gradcam
    if not cams:
        report.add_text("gradcam", "No Grad-CAM: " + run.explanations.reason("gradcam", "not computed"))
        return
    plt = pyplot()
    k = len(cams)
    cols = min(4, k)
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.6, 2.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    heat = None
    for ax, cam in zip(axes.ravel(), cams):
        ax.imshow(cam.crop, cmap="gray")
        heat = ax.imshow(cam.heatmap, cmap="jet", alpha=0.4, vmin=0, vmax=1)
        if cam.mask is not None and cam.mask.any():
            ax.contour(cam.mask.astype(float), levels=[0.5], colors="white", linewidths=0.8)
        label = "positive" if cam.label == 1 else "negative"
        ax.set_title(f"{cam.case_id} (truth: {label})\nP(positive) = {cam.probability:.2f}", fontsize=7)
    fig.tight_layout()
    if heat is not None:
        bar = fig.colorbar(heat, ax=axes.ravel().tolist(), fraction=0.025, pad=0.02)
        bar.set_label("Grad-CAM relevance (0-1, per image)", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    figs.add("gradcam", fig, "gradcam_gallery",
             f"Grad-CAM of {run.explanations.gradcam_source} on {k} cases of the {COHORT_TITLES[run.primary]} "
             "(half positive, half negative; drawn at random with the study seed); title: the true class and the "
             "model's P(positive); contour: the lesion mask; colour: relevance scaled to 0-1 within each image")
