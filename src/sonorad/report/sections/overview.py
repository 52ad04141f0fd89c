"""Study report sections on the study itself: summary, methods, participants, feature selection,
clinical variables and the model comparison table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sonorad.evaluation.plots import pyplot
from sonorad.report.sections.common import (COHORT_TITLES, SECTION_TITLES, fmt_ci, metrics_display, p_columns,
                                            predictor_label)

__all__ = ["add_summary", "add_methods", "add_cohort", "add_features", "add_clinical", "add_models",
           "plot_funnel", "plot_lasso", "primary_choice", "reference_display"]


def primary_choice(run):
    """How the chosen model's family chose it (:class:`~sonorad.designs.choice.ModelChoice`), or ``None``
    (a family of one model, or a result saved before the choices were kept)."""
    design = run.design
    family = next((f for f, m in design.chosen.items() if m == design.primary), None)
    return (design.choices or {}).get(family)


def reference_display(comparison) -> pd.DataFrame:
    """The comparison with the clinical reference as strings: one row per statistic, those not
    computed with the reason."""
    from sonorad.evaluation.formatting import format_p

    rows = [{"Statistic": r.statistic, "Estimate (95% CI)": (f"{r.estimate:.3f}" if pd.isna(r.low)
                                                           else fmt_ci(r.estimate, r.low, r.high)),
             "p": format_p(r.p_value), "Method": r.method} for r in comparison.to_frame().itertuples()]
    for note in comparison.notes:
        name, _, why = str(note).partition(" not computed: ")
        rows.append({"Statistic": name[:1].upper() + name[1:], "Estimate (95% CI)": "not computed", "p": "",
                     "Method": why or str(note)})
    return pd.DataFrame(rows).set_index("Statistic")


def add_summary(report, run) -> None:
    metrics = run.evaluation.metrics
    m = metrics[metrics["cohort"] == run.primary].dropna(subset=["auc"])
    best = m.sort_values("auc", ascending=False).iloc[0]
    chosen = run.chosen_model
    row = m.set_index("model").loc[chosen] if chosen in set(m["model"]) else None
    n = {p: int((run.parts == p).sum()) for p in ("train", "internal", "external")}
    text = (f"{len(run.y)} cases were analysed ({n['train']} training, {n['internal']} internal and "
            f"{n['external']} external validation); {len(set(run.failures['case_id']))} were excluded "
            f"(section Participants). Results are reported on the {COHORT_TITLES[run.primary]}.")
    if row is not None:
        text += (f"\n\nThe model chosen on the training cohort alone (by its tuning-CV AUC: "
                 f"{chosen}) reached an AUC of {fmt_ci(row.auc, row.auc_low, row.auc_high)} on the "
                 f"{COHORT_TITLES[run.primary]}.")
    if run.reference is not None:
        text += " " + run.reference.summary
    if run.bootstrap is not None:
        t = run.bootstrap.validation.table
        text += (f" Its optimism-corrected training AUC (bootstrap, {run.bootstrap.validation.n_resamples} resamples, "
                 f"the whole design refitted in each) was {t.loc['AUC', 'corrected']:.3f} (apparent "
                 f"{t.loc['AUC', 'apparent']:.3f}).")
    text += (f"\n\nThe highest AUC on that cohort was {best.auc:.3f} ({best.auc_low:.3f}-{best.auc_high:.3f}) by "
             f"{best.model}; choosing a model by its validation AUC is optimistic, so read it as a ranking, not "
             "as the expected performance.")
    report.add_section("summary", SECTION_TITLES["summary"], text=text)


def add_methods(report, run) -> None:
    from sonorad.report import methods_paragraph

    cfg = run.config
    extra = {"counts": run.flow}
    if "radiomics" in run.feature_summary:
        extra["features"] = dict(run.feature_summary["radiomics"])
    if "automatic_rois" in run.feature_summary:
        extra["automatic_rois"] = dict(run.feature_summary["automatic_rois"])
    if cfg.dl_backbones:
        extra["deep"] = {"backbone": ", ".join(cfg.dl_backbones), "weights": "ImageNet-pretrained", "mode": "frozen"}
    family = cfg.models
    if family.get("harmonize"):
        extra["harmonization"] = "ComBat (fitted on the training centers, center as batch)"
    extra["selection"] = list(run.design.methods)
    extra["models"] = list(run.design.cv_auc.index) + list(run.cnns)
    folds = getattr(cfg, "tuning_folds", None) or family.get("cv", 5)  # the folds used: models.cv may be lowered
    extra["models_tuning"] = (f"{folds}-fold cross-validation stratified by outcome and grouped by "
                              "patient (AUC)")
    extra["missing_data"] = "imputed with training-cohort medians or modes, with a missingness indicator"
    text = methods_paragraph(run.study, extra=extra)
    from sonorad.designs.choice import TIE_RULE

    if any((run.design.choices or {}).values()) and TIE_RULE not in text:  # designs usually state it already
        text += (f"\n\nWithin each model family, the model was chosen on its tuning-CV AUC (the mean AUC over the "
                 f"tuning folds of its best hyperparameters) by the {TIE_RULE}.")
    if run.reference is not None:
        text += (f"\n\nThe chosen model ({run.reference.model}) was compared with the clinical reference model "
                 f"({run.reference.reference}: a logistic regression on the declared clinical and ultrasound "
                 f"variables alone) on the {COHORT_TITLES.get(run.reference.cohort, run.reference.cohort)}: paired "
                 "DeLong test of the AUCs, continuous net reclassification improvement (NRI), integrated "
                 "discrimination improvement (IDI) and, when both are nested logistic regressions, the "
                 "likelihood-ratio test on the training cohort.")
    if run.training_cv_folds:
        text += (f"\n\nThe whole pipeline (feature selection, scores, tuning and fitting) was also cross-validated "
                 f"on the training cohort ({run.training_cv_folds} patient-grouped folds) for honest training-cohort "
                 "performance; the Youden cut-off of each model was chosen on these out-of-fold predictions "
                 "and applied unchanged to every validation cohort.")
        if run.training_cv_folds < cfg.cv_folds:
            text += (f" (The study asked for {cfg.cv_folds} folds; the smallest class of the training cohort allowed "
                     f"{run.training_cv_folds}.)")
    report.add_section("methods", SECTION_TITLES["methods"], text=text)


def add_cohort(report, figs, run) -> None:
    from sonorad.report import cohort_flow_figure

    report.add_section("cohort", SECTION_TITLES["cohort"])
    figs.add("cohort", cohort_flow_figure(run.flow, title=run.study.name), "cohort_flow",
             "Flow of cases through the study: excluded cases and the cases (positives) of each cohort")
    if run.explanations.table_one is not None:
        report.add_table("cohort", run.explanations.table_one, "Baseline characteristics by cohort and outcome")
    acquisition = getattr(run, "acquisition", None)  # None in results saved before it was kept
    if acquisition is not None and len(acquisition):
        from sonorad.report.acquisition import acquisition_display

        report.add_table("cohort", acquisition_display(acquisition), "Acquisition by center", float_format="{}",
                         note="Pixel spacing: the mean of each image's row and column spacing, range over the "
                              "center's images (median), from the cases table's spacing_mm column or the image "
                              "file's header; image size in pixels (range over the center's images).")
    if len(run.failures):
        report.add_table("cohort", run.failures.set_index("case_id"), "Excluded cases, with the reason and the fix",
                         float_format="{}")


def plot_funnel(funnel: pd.DataFrame):
    plt = pyplot()
    sigs = list(dict.fromkeys(funnel["signature"]))
    sizes = [int((funnel["signature"] == s).sum()) for s in sigs]
    from matplotlib.ticker import FixedLocator, FuncFormatter

    fig, axes = plt.subplots(len(sigs), 1, figsize=(8, 0.8 * len(sigs) + 0.4 * len(funnel)), squeeze=False,
                             sharex=True, gridspec_kw={"height_ratios": sizes})
    top = max(1, int(funnel["n_features"].max()))
    ticks = [0, 1] + [10 ** k for k in range(1, len(str(top)) + 1)]
    for ax, sig in zip(axes[:, 0], sigs):
        f = funnel[funnel["signature"] == sig]
        y = np.arange(len(f))[::-1]
        ax.barh(y, f["n_features"], color="#4c72b0")
        ax.set_yticks(y, f["step"], fontsize=8)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(0, ticks[-1] * 1.5)
        for yi, n in zip(y, f["n_features"]):
            ax.text(n, yi, f" {n}", va="center", fontsize=8)
        ax.set_title(sig, fontsize=9, loc="left")
        ax.grid(axis="x", color="0.9", lw=0.6)
    ax = axes[-1, 0]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v):,}"))
    ax.set_xlabel("features left (log scale; 0 and 1 on a linear piece)")
    fig.tight_layout()
    return fig


def plot_lasso(path: pd.DataFrame, title: str):
    plt = pyplot()
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


def add_features(report, figs, run) -> None:
    from sonorad.report.figures import file_stem

    design = run.design
    report.add_section("features", SECTION_TITLES["features"],
                       text="Each step is fitted on the training cohort only; the counts are those of the final "
                            "fit on the whole training cohort.")
    report.add_table("features", design.funnel.set_index("signature"), "Feature-selection funnel: features left "
                     "after each step", float_format="{}")
    figs.add("features", plot_funnel(design.funnel), "selection_funnel", "Feature-selection funnel")
    for name, path in design.lasso_paths.items():
        figs.add("features", plot_lasso(path, name), f"lasso_{file_stem(name)}",
                 f"LASSO of the {name}: cross-validated deviance against log(lambda) (the dashed line marks the "
                 "lambda of minimum deviance) and the coefficient path")
    for label, formula in design.formulas.items():
        report.add_code("features", formula, caption=f"{label} formula (features in their original units)")
    selected = design.selected_features
    kept = pd.DataFrame({"family": list(selected), "n_selected": [len(v) for v in selected.values()],
                         "selected features": [", ".join(v[:12]) + (" ..." if len(v) > 12 else "")
                                               for v in selected.values()]})
    report.add_table("features", kept.set_index("family"), "Features selected per family", float_format="{}")


def add_clinical(report, run) -> None:
    uni, multi = run.odds_ratios
    report.add_section("clinical", SECTION_TITLES["clinical"],
                       text="Logistic regression on the training cohort (odds ratio, Wald 95% CI, p). Scores "
                            "enter with their out-of-fold training values.")
    for table, caption in ((uni, "Univariable logistic regression"),
                           (multi, "Multivariable logistic regression (predictors kept by the stage-2 LASSO)")):
        if table is not None:
            shown = p_columns(table, [c for c in table.columns if c.lower() in ("p", "p_value", "p-value")])
            shown.index = [predictor_label(run, v) for v in shown.index]
            report.add_table("clinical", shown, caption)
    if uni is None and multi is None:
        report.add_text("clinical", "No table could be computed: " + "; ".join(run.notes or ["no variables"]))


def add_models(report, run) -> None:
    report.add_section("models", SECTION_TITLES["models"],
                       text="AUC with DeLong 95% CI; threshold metrics with Wilson 95% CIs (F1: bootstrap) at each "
                            "model's Youden cut-off chosen on the training cohort. Tuning-CV AUC: the best inner "
                            "cross-validation AUC of the hyperparameter search (used to choose models); the "
                            "whole-pipeline training-CV rows refit selection, tuning and the choice in every fold. "
                            "Models are listed in the pre-declared order: the chosen model first, then by "
                            "tuning-CV AUC on the training cohort (never by a validation AUC).")
    choice = primary_choice(run)
    if choice is not None:
        report.add_text("models", f"Choice of the model: {choice.sentence()}.")
    if run.cnns:
        report.add_text("models", "The fine-tuned CNNs are not part of the training cross-validation (it would fine-tune "
                                  "them once per fold); their cut-off is chosen on their apparent training predictions, "
                                  "which is optimistic.")
    order = [run.primary] + [c for c in ("external", "internal", "training_cv", "training")
                             if c != run.primary and c in run.probabilities]
    from sonorad.report.paper import model_order

    models = model_order(run)
    for cohort in order:
        table = metrics_display(run.evaluation.metrics, cohort, models)
        if len(table):
            report.add_table("models", table, f"Models on the {COHORT_TITLES[cohort]} "
                             f"(n = {len(run.probabilities[cohort])})", float_format="{}")
    if run.reference is not None:
        ref = run.reference
        report.add_text("models", ref.summary)
        report.add_table("models", reference_display(ref), f"Comparison with the clinical reference: {ref.model} "
                         f"against {ref.reference} on the {COHORT_TITLES.get(ref.cohort, ref.cohort)}",
                         float_format="{}")
