"""Figures and the HTML report of a finished study run (:class:`sonorad.pipeline.result.StudyResult`).

The report only draws: every number, table and explanation comes from the result, so
``sonorad report OUT`` re-renders a finished run without refitting anything. Every figure is
saved under ``figures/`` as PNG and SVG at 300 dpi and embedded in ``report.html``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["write_study_report", "SECTION_TITLES"]

#: Report sections, in order (id -> title).
SECTION_TITLES = {
    "summary": "Summary",
    "methods": "Methods",
    "cohort": "Participants",
    "features": "Feature selection and scores",
    "clinical": "Clinical and ultrasound variables",
    "models": "Model comparison",
    "roc": "ROC curves",
    "delong": "DeLong tests",
    "calibration": "Calibration",
    "dca": "Decision curves",
    "nomogram": "Nomogram",
    "shap": "SHAP explanations",
    "gradcam": "Grad-CAM",
    "checklist": "TRIPOD+AI checklist",
    "files": "Files and reproducibility",
}
_COHORT_TITLES = {"training": "training cohort (apparent)", "training_cv": "training cohort (cross-validated)",
                  "internal": "internal validation cohort", "external": "external validation cohort"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


class _Figures:
    """Saves each figure (PNG + SVG, 300 dpi), embeds it in the report and closes it."""

    def __init__(self, report, folder: Path):
        self.report = report
        self.folder = folder

    def add(self, section: str, fig, stem: str, caption: str) -> None:
        from sonorad.report.figures import save_figure

        save_figure(fig, stem, self.folder)
        self.report.add_figure(section, fig, caption)
        _plt().close(fig)


def _fmt_ci(est, low, high, digits=3) -> str:
    if pd.isna(est):
        return "n/a"
    return f"{est:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _metrics_display(metrics: pd.DataFrame, cohort: str) -> pd.DataFrame:
    m = metrics[metrics["cohort"] == cohort].copy()
    if "auc" not in m.columns:
        return pd.DataFrame()
    m = m.sort_values("auc", ascending=False).set_index("model")
    out = pd.DataFrame(index=m.index)
    out["AUC (95% CI)"] = [_fmt_ci(r.auc, r.auc_low, r.auc_high) for r in m.itertuples()]
    for stat, label in (("accuracy", "Accuracy"), ("sensitivity", "Sensitivity (recall)"),
                        ("specificity", "Specificity"), ("ppv", "PPV (precision)"), ("npv", "NPV"), ("f1", "F1")):
        out[label] = [_fmt_ci(e, lo, hi) for e, lo, hi in zip(m[stat], m[f"{stat}_low"], m[f"{stat}_high"])]
    out["Cut-off"] = m["threshold"].round(3).astype(str)
    if "train_cv_auc" in m.columns:
        out["Tuning CV AUC"] = m["train_cv_auc"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    out.index.name = "model"
    return out


# -- sections -----------------------------------------------------------------------------------
def _summary(report, run) -> None:
    metrics = run.evaluation.metrics
    m = metrics[metrics["cohort"] == run.primary].dropna(subset=["auc"])
    best = m.sort_values("auc", ascending=False).iloc[0]
    chosen = run.chosen_model
    row = m.set_index("model").loc[chosen] if chosen in set(m["model"]) else None
    n = {p: int((run.parts == p).sum()) for p in ("train", "internal", "external")}
    text = (f"{len(run.y)} cases were analysed ({n['train']} training, {n['internal']} internal and "
            f"{n['external']} external validation); {len(set(run.failures['case_id']))} were excluded "
            f"(section Participants). Results are reported on the {_COHORT_TITLES[run.primary]}.")
    if row is not None:
        text += (f"\n\nThe model chosen on the training cohort alone (highest tuning cross-validation AUC: "
                 f"{chosen}) reached an AUC of {_fmt_ci(row.auc, row.auc_low, row.auc_high)} on the "
                 f"{_COHORT_TITLES[run.primary]}.")
    text += (f"\n\nThe highest AUC on that cohort was {best.auc:.3f} ({best.auc_low:.3f}-{best.auc_high:.3f}) by "
             f"{best.model}; choosing a model by its validation AUC is optimistic, so read it as a ranking, not "
             "as the expected performance.")
    report.add_section("summary", SECTION_TITLES["summary"], text=text)


def _methods(report, run) -> None:
    from sonorad.report import methods_paragraph

    cfg = run.config
    extra = {"counts": run.flow}
    if "radiomics" in run.feature_summary:
        extra["features"] = dict(run.feature_summary["radiomics"])
    if cfg.dl_backbone is not None:
        extra["deep"] = {"backbone": cfg.dl_backbone, "weights": "ImageNet-pretrained", "mode": "frozen"}
    family = cfg.family
    if family.get("harmonize"):
        extra["harmonization"] = "ComBat (fitted on the training centers, center as batch)"
    extra["selection"] = list(run.design.methods)
    extra["models"] = list(run.design.cv_auc.index) + list(run.cnns)
    extra["models_tuning"] = (f"{family.get('cv', 5)}-fold cross-validation stratified by outcome and grouped by "
                              "patient (AUC)")
    extra["missing_data"] = "imputed with training-cohort medians or modes, with a missingness indicator"
    text = methods_paragraph(run.study, extra=extra)
    if run.training_cv_folds:
        text += (f"\n\nThe whole pipeline (feature selection, scores, tuning and fitting) was also cross-validated "
                 f"on the training cohort ({run.training_cv_folds} patient-grouped folds) for honest training-cohort "
                 "performance; the Youden cut-off of each model was chosen on these out-of-fold predictions "
                 "and applied unchanged to every validation cohort.")
        if run.training_cv_folds < cfg.cv_folds:
            text += (f" (The study asked for {cfg.cv_folds} folds; the smallest class of the training cohort allowed "
                     f"{run.training_cv_folds}.)")
    report.add_section("methods", SECTION_TITLES["methods"], text=text)


def _cohort(report, figs, run) -> None:
    from sonorad.report import cohort_flow_figure

    report.add_section("cohort", SECTION_TITLES["cohort"])
    figs.add("cohort", cohort_flow_figure(run.flow, title=run.study.name), "cohort_flow",
             "Flow of cases through the study: excluded cases and the cases (positives) of each cohort")
    if run.explanations.table_one is not None:
        report.add_table("cohort", run.explanations.table_one, "Baseline characteristics by cohort and outcome")
    if len(run.failures):
        report.add_table("cohort", run.failures.set_index("case_id"), "Excluded cases, with the reason and the fix",
                         float_format="{}")


def _plot_funnel(funnel: pd.DataFrame):
    plt = _plt()
    sigs = list(dict.fromkeys(funnel["signature"]))
    sizes = [int((funnel["signature"] == s).sum()) for s in sigs]
    fig, axes = plt.subplots(len(sigs), 1, figsize=(7, 0.8 * len(sigs) + 0.35 * len(funnel)), squeeze=False,
                             gridspec_kw={"height_ratios": sizes})
    for ax, sig in zip(axes[:, 0], sigs):
        f = funnel[funnel["signature"] == sig]
        y = np.arange(len(f))[::-1]
        ax.barh(y, f["n_features"], color="#4c72b0")
        ax.set_yticks(y, f["step"], fontsize=7)
        ax.set_xscale("symlog")
        for yi, n in zip(y, f["n_features"]):
            ax.text(n, yi, f" {n}", va="center", fontsize=7)
        ax.set_title(sig, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("features left (log scale)")
    fig.tight_layout()
    return fig


def _plot_lasso(path: pd.DataFrame, title: str):
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    x = path["log_lambda"]
    a1.errorbar(x, path["cv_mean"], yerr=path["cv_se"], fmt="o-", ms=3, lw=0.8, capsize=2, color="#c44e52")
    # cv_mean is the cross-validated deviance: the best lambda is where it is smallest
    best = path["cv_mean"].idxmin() if path["cv_mean"].notna().any() else None
    if best is not None:
        a1.axvline(x.loc[best], ls="--", lw=0.8, color="0.4")
    a1.set(xlabel="log(lambda)", ylabel="CV deviance", title=f"{title}: cross-validation")
    coefs = path.drop(columns=["lambda", "log_lambda", "cv_mean", "cv_se", "n_nonzero"])
    active = coefs.loc[:, (coefs != 0).any()]
    for col in active.columns:
        a2.plot(x, active[col], lw=0.9)
    a2.axhline(0, lw=0.6, color="0.5")
    a2.set(xlabel="log(lambda)", ylabel="coefficient (standardized)", title=f"{title}: coefficient path")
    fig.tight_layout()
    return fig


def _features(report, figs, run) -> None:
    from sonorad.report.figures import file_stem

    design = run.design
    report.add_section("features", SECTION_TITLES["features"],
                       text="Each step is fitted on the training cohort only; the counts are those of the final "
                            "fit on the whole training cohort.")
    report.add_table("features", design.funnel.set_index("signature"), "Feature-selection funnel: features left "
                     "after each step", float_format="{}")
    figs.add("features", _plot_funnel(design.funnel), "selection_funnel", "Feature-selection funnel")
    for name, path in design.lasso_paths.items():
        figs.add("features", _plot_lasso(path, name), f"lasso_{file_stem(name)}",
                 f"LASSO of the {name}: cross-validated deviance against log(lambda) (the dashed line marks the "
                 "lambda of minimum deviance) and the coefficient path")
    for label, formula in design.formulas.items():
        report.add_code("features", formula, caption=f"{label} formula (features in their original units)")
    selected = design.selected_features
    kept = pd.DataFrame({"family": list(selected), "n_selected": [len(v) for v in selected.values()],
                         "selected features": [", ".join(v[:12]) + (" ..." if len(v) > 12 else "")
                                               for v in selected.values()]})
    report.add_table("features", kept.set_index("family"), "Features selected per family", float_format="{}")


def _clinical(report, run) -> None:
    uni, multi = run.odds_ratios
    report.add_section("clinical", SECTION_TITLES["clinical"],
                       text="Logistic regression on the training cohort (odds ratio, Wald 95% CI, p). Scores "
                            "enter with their out-of-fold training values.")
    for table, caption in ((uni, "Univariable logistic regression"),
                           (multi, "Multivariable logistic regression (predictors kept by the stage-2 LASSO)")):
        if table is not None:
            report.add_table("clinical", table, caption)
    if uni is None and multi is None:
        report.add_text("clinical", "No table could be computed: " + "; ".join(run.notes or ["no variables"]))


def _models(report, run) -> None:
    report.add_section("models", SECTION_TITLES["models"],
                       text="AUC with DeLong 95% CI; threshold metrics with Wilson 95% CIs (F1: bootstrap) at each "
                            "model's Youden cut-off chosen on the training cohort. Tuning CV AUC: the best inner "
                            "cross-validation AUC of the hyperparameter search (used to choose models).")
    if run.cnns:
        report.add_text("models", "The fine-tuned CNNs are not part of the training cross-validation (it would fine-tune "
                                  "them once per fold); their cut-off is chosen on their apparent training predictions, "
                                  "which is optimistic.")
    order = [run.primary] + [c for c in ("external", "internal", "training_cv", "training")
                             if c != run.primary and c in run.probabilities]
    for cohort in order:
        table = _metrics_display(run.evaluation.metrics, cohort)
        if len(table):
            report.add_table("models", table, f"Models on the {_COHORT_TITLES[cohort]} "
                             f"(n = {len(run.probabilities[cohort])})", float_format="{}")


def _roc(report, figs, run) -> None:
    from sonorad.evaluation import roc_curve
    from sonorad.evaluation.plots import plot_roc

    report.add_section("roc", SECTION_TITLES["roc"], text="Highlighted models; every model's curve can be "
                       "recomputed from tables/predictions.csv.")
    for cohort in ("external", "internal", "training_cv", "training"):
        if cohort not in run.probabilities:
            continue
        frame = run.probabilities[cohort]
        y = run.y.loc[frame.index].to_numpy()
        if not 0 < y.sum() < len(y):
            continue
        curves = [roc_curve(y, frame[m].to_numpy(), name=m, level=run.config.level)
                  for m in run.evaluation.highlight if m in frame.columns and frame[m].notna().all()]
        figs.add("roc", plot_roc(curves, title=f"ROC: {_COHORT_TITLES[cohort]}"), f"roc_{cohort}",
                 f"ROC curves on the {_COHORT_TITLES[cohort]}")


def _delong(report, run) -> None:
    tests, matrix = run.evaluation.delong, run.evaluation.delong_matrix
    report.add_section("delong", SECTION_TITLES["delong"],
                       text=f"Paired DeLong tests between models on the {_COHORT_TITLES[run.primary]} "
                            "(two-sided; not adjusted for multiple comparisons).")
    keep = [m for m in matrix.index if m in run.evaluation.highlight] or list(matrix.index)
    report.add_table("delong", matrix.loc[keep, keep], "DeLong p-values between the highlighted models",
                     float_format="{:.4f}")
    if len(tests):
        report.add_table("delong", tests.set_index(["model_a", "model_b"]),
                         "Every pair: AUCs, difference with its 95% CI, z and p", float_format="{:.4f}")


def _calibration(report, figs, run) -> None:
    from sonorad.evaluation.plots import plot_calibration

    table, results = run.evaluation.calibration, run.evaluation.calibration_curves
    report.add_section("calibration", SECTION_TITLES["calibration"],
                       text="Binned observed fraction (Wilson CIs) and LOWESS curve; calibration intercept and slope "
                            "as rms::val.prob; Hosmer-Lemeshow test on deciles of risk.")
    for cohort in ("external", "internal", "training_cv"):
        chosen = [r for (c, _), r in results.items() if c == cohort]
        if chosen:
            figs.add("calibration", plot_calibration(chosen, title=f"Calibration: {_COHORT_TITLES[cohort]}"),
                     f"calibration_{cohort}", f"Calibration on the {_COHORT_TITLES[cohort]}")
    if len(table):
        report.add_table("calibration", table.set_index(["cohort", "model"]),
                         "Brier score, calibration intercept and slope (95% CI), Hosmer-Lemeshow chi-square and p",
                         float_format="{:.3f}")


def _dca(report, figs, run) -> None:
    from sonorad.evaluation.plots import plot_decision_curve

    report.add_section("dca", SECTION_TITLES["dca"],
                       text="Net benefit = TP/n - FP/n x pt/(1 - pt) at each threshold probability pt, against "
                            "treating all and treating none.")
    figs.add("dca", plot_decision_curve(run.evaluation.decision_curve_result, title=f"Decision curve: {_COHORT_TITLES[run.primary]}"),
             f"decision_curve_{run.primary}", f"Decision curves on the {_COHORT_TITLES[run.primary]}")


def _nomogram(report, figs, run) -> None:
    from sonorad.evaluation.plots import plot_nomogram

    report.add_section("nomogram", SECTION_TITLES["nomogram"])
    nomo = run.explanations.nomogram
    if nomo is None:
        report.add_text("nomogram", "No nomogram: " + _why(run, "nomogram", "the design names no logistic model"))
        return
    name = run.explanations.nomogram_model
    figs.add("nomogram", plot_nomogram(nomo, title=f"Nomogram ({name})"), "nomogram",
             f"Nomogram of {name}: read each predictor's points, add them, and read the probability off the "
             "total-points scale")


def _why(run, what: str, default: str) -> str:
    return next((n for n in run.explanations.notes if n.startswith(what)), default)


def _shap(report, figs, run) -> None:
    from sonorad.evaluation.plots import plot_shap_bar, plot_shap_beeswarm, plot_shap_waterfall

    report.add_section("shap", SECTION_TITLES["shap"])
    result = run.explanations.shap
    if result is None:
        report.add_text("shap", "No SHAP values: " + _why(run, "shap", "not computed"))
        return
    name = run.chosen_model
    report.add_text("shap", f"SHAP values of {name} (the model chosen by training CV AUC) on {len(result.case_ids)} "
                            f"cases of the {_COHORT_TITLES[run.primary]}, in its selected-feature space "
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


def _gradcam(report, figs, run) -> None:
    report.add_section("gradcam", SECTION_TITLES["gradcam"])
    cams = run.explanations.gradcam
    if not cams:
        report.add_text("gradcam", "No Grad-CAM: " + _why(run, "no Grad-CAM", "not computed"))
        return
    plt = _plt()
    k = len(cams)
    cols = min(4, k)
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, cam in zip(axes.ravel(), cams):
        ax.imshow(cam.crop, cmap="gray")
        ax.imshow(cam.heatmap, cmap="jet", alpha=0.4, vmin=0, vmax=1)
        if cam.mask is not None and cam.mask.any():
            ax.contour(cam.mask.astype(float), levels=[0.5], colors="white", linewidths=0.8)
        label = "positive" if cam.label == 1 else "negative"
        ax.set_title(f"{cam.case_id}\n{label}, p = {cam.probability:.2f}", fontsize=7)
    fig.tight_layout()
    figs.add("gradcam", fig, "gradcam_gallery",
             f"Grad-CAM of {run.explanations.gradcam_source} on {k} cases of the {_COHORT_TITLES[run.primary]} "
             "(half positive, half negative; drawn at random with the study seed); contour: the lesion mask")


def _checklist(report, run) -> None:
    from sonorad.report import tripod_checklist

    where = {"6a": "Methods", "8a": "Methods", "9a": "Participants", "12a": "Methods", "12b": "Methods",
             "12c": "Feature selection and scores", "12e": "Methods; Model comparison",
             "12f": "Methods", "12g": "Calibration; Decision curves", "20a": "Participants (flow figure)",
             "20b": "Participants (baseline table)", "22": "Feature selection and scores; Nomogram",
             "23a": "Model comparison; ROC curves; Calibration"}
    table = tripod_checklist(where)
    report.add_section("checklist", SECTION_TITLES["checklist"],
                       text="TRIPOD+AI (Collins et al., BMJ 2024;385:e078378): where this report addresses each item. "
                            "Items marked 'to be completed by the authors' need information the study file does "
                            "not hold.")
    report.add_table("checklist", table, "TRIPOD+AI items", index=False, float_format="{}")


def _files(report, run) -> None:
    out = run.out
    listing = sorted(str(p.relative_to(out)) for p in out.rglob("*")
                     if p.is_file() and ".cache" not in p.parts and not p.name.endswith(".part"))
    timings = pd.Series(run.timings, name="seconds").rename_axis("stage").to_frame()
    report.add_section("files", SECTION_TITLES["files"],
                       text="tables/predictions.csv holds every case's probability from every model (case_id, "
                            "cohort, model, label, probability), so every statistic here can be recomputed in "
                            "another tool. models/ holds the fitted pipelines with their metadata (package "
                            "versions, seed, feature-parameter and training-cohort hashes).")
    report.add_code("files", f"sonorad run {run.study.source or 'study.yaml'} --out {out}", caption="Command")
    report.add_table("files", timings, "Wall time per stage (seconds, this run)", float_format="{:.1f}")
    report.add_code("files", "\n".join(listing), caption="Output files")


def write_study_report(run, log=None) -> Path:
    """Draw every figure into ``run.out / "figures"`` and write ``run.out / "report.html"``.

    An optional section that cannot be produced (SHAP, nomogram, Grad-CAM) is reported in the
    section with the reason instead of stopping the report.
    """
    from sonorad import __version__
    from sonorad.report import Report

    say = log.say if log is not None else (lambda m: None)
    report = Report(f"{run.study.name}", subtitle=run.study.description,
                    footer=f"sonorad {__version__}, seed {run.study.seed}")
    figs = _Figures(report, run.out / "figures")
    _summary(report, run)
    _methods(report, run)
    _cohort(report, figs, run)
    _features(report, figs, run)
    _clinical(report, run)
    _models(report, run)
    _roc(report, figs, run)
    _delong(report, run)
    _calibration(report, figs, run)
    _dca(report, figs, run)
    for section, draw, wanted in (("nomogram", _nomogram, run.config.nomogram), ("shap", _shap, run.config.shap),
                                  ("gradcam", _gradcam, run.config.gradcam > 0)):
        if wanted:
            say(f"report: {section}")
            draw(report, figs, run)
    for note in run.notes:
        report.add_text("summary", f"Note: {note}")
    _checklist(report, run)
    _files(report, run)
    return report.write(run.out / "report.html")
