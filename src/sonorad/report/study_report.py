"""Figures and the HTML report of a finished study run (:class:`sonorad.pipeline.result.StudyResult`).

The report only draws: every number, table and explanation comes from the result, so
``sonorad report OUT`` re-renders a finished run without refitting anything. Every figure is
saved under ``figures/`` as PNG and SVG at 300 dpi and embedded in ``report.html``.
"""

from __future__ import annotations

from dataclasses import replace
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
    "centers": "Results per center",
    "bootstrap": "Optimism-corrected internal validation",
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
    from sonorad.evaluation.formatting import format_ci

    return format_ci(est, low, high, digits)


def _p_columns(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """``frame`` with its p-value columns as strings in the one p-value format (``<0.001``, 3 decimals)."""
    from sonorad.evaluation.formatting import format_p

    out = frame.copy()
    for c in columns:
        if c in out.columns:
            out[c] = [format_p(v) for v in out[c]]
    return out


def _metrics_display(metrics: pd.DataFrame, cohort: str, order=None) -> pd.DataFrame:
    m = metrics[metrics["cohort"] == cohort].copy()
    if "auc" not in m.columns:
        return pd.DataFrame()
    m = m.set_index("model")
    if order is not None:
        m = m.loc[[o for o in order if o in m.index] + [o for o in m.index if o not in order]]
    out = pd.DataFrame(index=m.index)
    out["AUC (95% CI)"] = [_fmt_ci(r.auc, r.auc_low, r.auc_high) for r in m.itertuples()]
    for stat, label in (("accuracy", "Accuracy"), ("sensitivity", "Sensitivity (recall)"),
                        ("specificity", "Specificity"), ("ppv", "PPV (precision)"), ("npv", "NPV"), ("f1", "F1")):
        out[label] = [_fmt_ci(e, lo, hi) for e, lo, hi in zip(m[stat], m[f"{stat}_low"], m[f"{stat}_high"])]
    out["Cut-off"] = m["threshold"].map(lambda v: f"{v:.3f}")
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
    if run.bootstrap is not None:
        t = run.bootstrap.validation.table
        text += (f" Its optimism-corrected training AUC (bootstrap, {run.bootstrap.validation.n_resamples} resamples, "
                 f"the whole design refitted in each) was {t.loc['AUC', 'corrected']:.3f} (apparent "
                 f"{t.loc['AUC', 'apparent']:.3f}).")
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
    if cfg.dl_backbones:
        extra["deep"] = {"backbone": ", ".join(cfg.dl_backbones), "weights": "ImageNet-pretrained", "mode": "frozen"}
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
            shown = _p_columns(table, [c for c in table.columns if c.lower() in ("p", "p_value", "p-value")])
            shown.index = [_label(run, v) for v in shown.index]
            report.add_table("clinical", shown, caption)
    if uni is None and multi is None:
        report.add_text("clinical", "No table could be computed: " + "; ".join(run.notes or ["no variables"]))


def _label(run, name) -> str:
    """A predictor's name with its study-file ``description`` (an encoded level keeps its suffix)."""
    name = str(name)
    variables = run.study.variables
    for var in sorted(variables, key=len, reverse=True):
        if name == var or name.startswith(f"{var}_") or name.startswith(f"{var}="):
            desc = getattr(variables[var], "description", None)
            if desc:
                return f"{desc} [{name}]"
            break
    return name


def _models(report, run) -> None:
    report.add_section("models", SECTION_TITLES["models"],
                       text="AUC with DeLong 95% CI; threshold metrics with Wilson 95% CIs (F1: bootstrap) at each "
                            "model's Youden cut-off chosen on the training cohort. Tuning CV AUC: the best inner "
                            "cross-validation AUC of the hyperparameter search (used to choose models). Models "
                            "are listed in the pre-declared order: the chosen model first, then by tuning CV AUC "
                            "on the training cohort (never by a validation AUC).")
    if run.cnns:
        report.add_text("models", "The fine-tuned CNNs are not part of the training cross-validation (it would fine-tune "
                                  "them once per fold); their cut-off is chosen on their apparent training predictions, "
                                  "which is optimistic.")
    order = [run.primary] + [c for c in ("external", "internal", "training_cv", "training")
                             if c != run.primary and c in run.probabilities]
    from sonorad.report.paper import model_order

    models = model_order(run)
    for cohort in order:
        table = _metrics_display(run.evaluation.metrics, cohort, models)
        if len(table):
            report.add_table("models", table, f"Models on the {_COHORT_TITLES[cohort]} "
                             f"(n = {len(run.probabilities[cohort])})", float_format="{}")


def _plot_roc_bands(run, cohort: str, models) -> object:
    """ROC curves of ``models`` with their pointwise 95% sensitivity band and the operating point at the
    training cut-off."""
    from sonorad.evaluation import roc_curve
    from sonorad.evaluation.formatting import format_ci

    plt = _plt()
    frame = run.probabilities[cohort]
    y = run.y.loc[frame.index].to_numpy()
    bands = run.roc_bands if run.roc_bands is not None else pd.DataFrame(columns=["cohort", "model"])
    metrics = run.evaluation.metrics.set_index(["cohort", "model"])
    fig, ax = plt.subplots(figsize=(5.6, 5.6))
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6")
    for model in models:
        c = roc_curve(y, frame[model].to_numpy(), name=model, level=run.config.level)
        a = c.auc
        line, = ax.plot(c.fpr, c.tpr, lw=1.4, label=f"{model}: AUC {format_ci(a.auc, a.low, a.high)}")
        b = bands[(bands["cohort"] == cohort) & (bands["model"] == model)]
        if len(b):
            ax.fill_between(b["fpr"], b["tpr_low"], b["tpr_high"], color=line.get_color(), alpha=0.15, lw=0)
        if (cohort, model) in metrics.index:
            r = metrics.loc[(cohort, model)]
            ax.plot(1 - r["specificity"], r["sensitivity"], marker="o", ms=7, mfc="white", mew=1.6,
                    color=line.get_color())
    ax.plot([], [], marker="o", ms=7, mfc="white", color="0.3", ls="", label="cut-off (training Youden)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - Specificity", ylabel="Sensitivity",
           title=f"ROC: {_COHORT_TITLES[cohort]}")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def _roc(report, figs, run) -> None:
    n_boot = 500
    report.add_section("roc", SECTION_TITLES["roc"],
                       text="Highlighted models; every model's curve can be recomputed from tables/predictions.csv. "
                            f"Shaded: pointwise {run.config.level:.0%} confidence band of sensitivity at each "
                            f"specificity ({n_boot} stratified bootstrap resamples, as pROC's ci.se); circle: the "
                            "operating point at the model's cut-off (Youden, chosen on the training cohort).")
    for cohort in ("external", "internal", "training_cv", "training"):
        if cohort not in run.probabilities:
            continue
        frame = run.probabilities[cohort]
        y = run.y.loc[frame.index].to_numpy()
        if not 0 < y.sum() < len(y):
            continue
        models = [m for m in run.evaluation.highlight if m in frame.columns and frame[m].notna().all()]
        figs.add("roc", _plot_roc_bands(run, cohort, models), f"roc_{cohort}",
                 f"ROC curves on the {_COHORT_TITLES[cohort]} with {run.config.level:.0%} bands and the cut-off")


def _chosen_and_baselines(run) -> list[str]:
    """The design's chosen model(s) per family, the primary model, and the baselines (the scores, the
    CNNs and the highlighted models)."""
    chosen = [run.chosen_model, *run.design.chosen.values(), *run.evaluation.highlight]
    return list(dict.fromkeys(chosen))


def _delong(report, run) -> None:
    from sonorad.evaluation.formatting import format_p

    tests, matrix = run.evaluation.delong, run.evaluation.delong_matrix
    report.add_section("delong", SECTION_TITLES["delong"],
                       text=f"Paired DeLong tests between models on the {_COHORT_TITLES[run.primary]} "
                            "(two-sided; not adjusted for multiple comparisons). Shown: the chosen models and the "
                            f"baselines; every pair is in tables/delong_{run.primary}.csv and "
                            f"tables/delong_matrix_{run.primary}.csv.")
    keep = [m for m in _chosen_and_baselines(run) if m in matrix.index] or list(matrix.index)
    shown = matrix.loc[keep, keep].map(lambda v: "" if pd.isna(v) else format_p(v))
    report.add_table("delong", shown, "DeLong p-values between the chosen models and the baselines",
                     float_format="{}")
    if len(tests):
        t = tests[tests["model_a"].isin(keep) & tests["model_b"].isin(keep)]
        t = _p_columns(t, ["p_value"]).set_index(["model_a", "model_b"])
        report.add_table("delong", t, "Pairs among them: AUCs, difference with its 95% CI, z and p",
                         float_format="{:.3f}")


def _plot_calibration_panels(run, cohort: str, results: dict):
    """One panel per model: ideal line, LOWESS curve, grouped observed fractions (Wilson CIs) and, along
    the bottom, a spike histogram of the predictions (events up, non-events down), as rms::val.prob."""
    from sonorad.evaluation.formatting import format_ci

    plt = _plt()
    models = [m for (c, m) in results if c == cohort]
    k = len(models)
    cols = min(3, k)
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.5 * rows), squeeze=False)
    for ax in axes.ravel()[k:]:
        ax.axis("off")
    frame = run.probabilities[cohort]
    bins = np.linspace(0, 1, 101)
    for ax, model in zip(axes.ravel(), models):
        r = results[(cohort, model)]
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6")
        ax.plot(r.smoothed["predicted"], r.smoothed["observed"], lw=1.5, color="#4c72b0")
        b = r.bins
        ax.errorbar(b["mean_predicted"], b["observed"],
                    yerr=np.clip([b["observed"] - b["low"], b["high"] - b["observed"]], 0, None),
                    fmt="o", ms=3, color="#4c72b0", capsize=2, lw=0.7)
        p = frame[model].dropna()
        y = run.y.loc[p.index].to_numpy()
        scale = 0.08
        for outcome, sign, colour in ((1, 1, "#c44e52"), (0, -1, "0.35")):
            counts, _ = np.histogram(p.to_numpy()[y == outcome], bins=bins)
            if counts.max() > 0:
                height = counts / max(1, counts.max()) * scale * sign
                ax.vlines(bins[:-1] + 0.005, scale, scale + height, color=colour, lw=0.8)
        ax.axhline(scale, color="0.8", lw=0.5)
        st = r.statistics.to_row()
        ax.set_title(f"{model}", fontsize=8)
        ax.text(0.98, 0.30, f"slope {format_ci(st['slope'], st['slope_low'], st['slope_high'], 2)}\n"
                            f"intercept {format_ci(st['intercept'], st['intercept_low'], st['intercept_high'], 2)}\n"
                            f"Brier {st['brier']:.3f}, Eavg {st['eavg']:.3f}", ha="right", va="bottom",
                fontsize=6, transform=ax.transAxes)
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
    for ax in axes[-1, :]:
        ax.set_xlabel("Predicted probability", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("Observed fraction", fontsize=7)
    fig.suptitle(f"Calibration: {_COHORT_TITLES[cohort]}", fontsize=9)
    fig.tight_layout()
    return fig


def _calibration(report, figs, run) -> None:
    table, results = run.evaluation.calibration, run.evaluation.calibration_curves
    report.add_section("calibration", SECTION_TITLES["calibration"],
                       text="One panel per model: LOWESS curve, observed fraction in groups of predicted risk "
                            "(Wilson CIs), the ideal line, and a spike histogram of the predictions along the "
                            "bottom (events up, non-events down), as rms::val.prob draws it. The statistics are "
                            "rms::val.prob's: calibration-in-the-large (slope fixed at 1), the intercept and slope "
                            "of the joint logistic fit, Brier, Eavg (ICI), E90, Emax, Spiegelhalter z, and the "
                            "Hosmer-Lemeshow test with its grouping stated.")
    for cohort in ("external", "internal", "training_cv"):
        if any(c == cohort for (c, _) in results):
            figs.add("calibration", _plot_calibration_panels(run, cohort, results), f"calibration_{cohort}",
                     f"Calibration on the {_COHORT_TITLES[cohort]}, one panel per model")
    if len(table):
        from sonorad.report.paper import calibration_paper

        report.add_table("calibration", calibration_paper(run).set_index(["Cohort", "Model"]),
                         "The rms::val.prob set per cohort and model (every column, with the Hosmer-Lemeshow "
                         "grouping, in tables/calibration.csv)", float_format="{}")


def _centers(report, figs, run) -> None:
    from sonorad.report.paper import centers_paper, heterogeneity_paper

    report.add_section("centers", SECTION_TITLES["centers"],
                       text="Every validation center on its own and all of them pooled (TRIPOD+AI 12d, 23b), "
                            "at each model's training cut-off; heterogeneity of the AUC across centers by "
                            "Cochran's Q test (DeLong variances, inverse-variance weights) with I². A center with "
                            "one outcome class has no AUC or calibration and is left out of the test. Every "
                            "model is in tables/metrics_by_center.csv; shown: the chosen models and baselines.")
    if run.centers is None or not len(run.centers.table):
        report.add_text("centers", "Not computed: " + ("evaluation.per_center is false" if not run.config.per_center
                                                        else "the study has no internal or external cohort"))
        return
    keep = [m for m in _chosen_and_baselines(run) if m in set(run.centers.table["model"])]
    table = centers_paper(run, keep)
    # the report shows discrimination and calibration; threshold metrics are in tables/paper/centers.csv
    table = table.drop(columns=[c for c in table.columns if c.startswith(("Sensitivity", "Specificity"))
                                or (c == "Not computable" and not table[c].replace("n/a", "").any())])
    report.add_table("centers", table.set_index(["Cohort", "Model", "Center"]),
                     "Discrimination and calibration per center and pooled (sensitivity and specificity at the "
                     "cut-off: tables/paper/centers.csv)", float_format="{}")
    het = heterogeneity_paper(run, keep)
    het = het.drop(columns=[c for c in ("Left out", "Not computable because") if not het[c].replace("n/a", "").any()])
    report.add_table("centers", het.set_index(["Cohort", "Model"]),
                     "AUC heterogeneity across centers (Cochran's Q, I²)", float_format="{}")
    figs.add("centers", _plot_center_forest(run, keep), "centers_forest",
             "AUC (95% CI) per center and pooled (inverse-variance) for the chosen models and baselines")


def _plot_center_forest(run, models):
    plt = _plt()
    t = run.centers.table
    t = t[t["model"].isin(models) & t["auc"].notna()] if "auc" in t.columns else t.iloc[:0]
    fig, ax = plt.subplots(figsize=(6.5, 0.28 * max(len(t), 3) + 1.0))
    labels = []
    for i, r in enumerate(t.itertuples()):
        yv = len(t) - 1 - i
        pooled = r.center == "pooled"
        ax.errorbar(r.auc, yv, xerr=[[r.auc - r.auc_low], [r.auc_high - r.auc]], fmt="D" if pooled else "s",
                    ms=5 if pooled else 4, color="#c44e52" if pooled else "#4c72b0", capsize=2, lw=0.9)
        labels.append(f"{r.model} · {r.cohort} · {r.center} (n={r.n})")
    ax.set_yticks(range(len(t))[::-1], labels, fontsize=6)
    ax.axvline(0.5, ls=":", color="0.6", lw=0.8)
    ax.set(xlim=(0, 1), xlabel="AUC (95% CI)")
    fig.tight_layout()
    return fig


def _bootstrap(report, figs, run) -> None:
    from sonorad.report.paper import bootstrap_paper

    report.add_section("bootstrap", SECTION_TITLES["bootstrap"])
    if run.bootstrap is None:
        report.add_text("bootstrap", "Not computed (evaluation.bootstrap is 0). Set `evaluation: {bootstrap: 200}` "
                                     "for Harrell's bootstrap optimism correction; each resample refits the whole "
                                     "design.")
        return
    v = run.bootstrap.validation
    used = int(v.table.loc["AUC", "n"])
    report.add_text("bootstrap",
                    f"Harrell's bootstrap (rms::validate, rms::calibrate) for {run.bootstrap.model}, the chosen model: "
                    f"{v.n_resamples} resamples of training patients ({used} usable), the whole design (selection, "
                    "scores, tuning and the choice of model) refitted in each. Apparent: the final model on its own "
                    "training cases; optimism: mean of (bootstrap model on its bootstrap sample - the same model "
                    "on the original training cohort); corrected = apparent - optimism. Intercept and slope are the "
                    "joint logistic recalibration fit. Compare the corrected AUC with the external AUC.")
    report.add_table("bootstrap", bootstrap_paper(run).set_index("Index"),
                     "Apparent, optimism and optimism-corrected indexes of the chosen model", float_format="{}")
    figs.add("bootstrap", _plot_bootstrap_calibration(v, run.bootstrap.model), "bootstrap_calibration",
             f"Bias-corrected calibration curve of {run.bootstrap.model} ({v.n_resamples} bootstrap resamples; "
             f"mean absolute error {v.mean_absolute_error:.3f}, 0.9 quantile {v.e90:.3f})")


def _plot_bootstrap_calibration(v, model):
    plt = _plt()
    c = v.calibration
    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6", label="Ideal")
    ax.plot(c["predicted"], c["apparent"], lw=1.2, color="0.4", label="Apparent")
    ax.plot(c["predicted"], c["corrected"], lw=1.6, color="#c44e52", label="Bias-corrected")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Predicted probability", ylabel="Observed fraction",
           title=f"Bootstrap calibration: {model}")
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


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
    labels = {a.name: _label(run, a.name) for a in nomo.axes}
    figs.add("nomogram", plot_nomogram(nomo, title=f"Nomogram ({name})", labels=labels), "nomogram",
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
    result = replace(result, feature_names=[_label(run, f) for f in result.feature_names])
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
             f"Grad-CAM of {run.explanations.gradcam_source} on {k} cases of the {_COHORT_TITLES[run.primary]} "
             "(half positive, half negative; drawn at random with the study seed); title: the true class and the "
             "model's P(positive); contour: the lesion mask; colour: relevance scaled to 0-1 within each image")


def _checklist(report, run) -> None:
    from sonorad.report import tripod_checklist

    where = {"6a": "Methods", "8a": "Methods", "9a": "Participants", "12a": "Methods", "12b": "Methods",
             "12c": "Feature selection and scores", "12e": "Methods; Model comparison",
             "12f": "Methods", "12g": "Calibration; Decision curves", "20a": "Participants (flow figure)",
             "20b": "Participants (baseline table)", "22": "Feature selection and scores; Nomogram",
             "23a": "Model comparison; ROC curves; Calibration"}
    n = {p: int((run.parts == p).sum()) for p in ("train", "internal", "external")}
    events = {p: int(run.y.loc[run.parts.index[run.parts == p]].sum()) for p in n}
    where["11"] = ("Methods: declared variables imputed with training-cohort medians / modes plus a missingness "
                   f"indicator; {len(set(run.failures['case_id']))} case(s) excluded, each with its reason "
                   "(Participants)")
    where["12e"] = ("Methods; Model comparison. Cut-off: each model's Youden cut-off on the training cohort "
                    f"({'cross-validated' if run.training_cv_folds else 'apparent'} predictions), applied unchanged")
    names = {"train": "training", "internal": "internal validation", "external": "external validation"}
    where["20a"] = ("Participants: " + ", ".join(f"{names[k]} {n[k]} cases ({events[k]} events)" for k in n if n[k]))
    where["15"] = ("Model comparison: each model outputs P(positive); the high / low risk cut-off is its Youden "
                   "cut-off chosen on the training cohort (tables/thresholds.csv)")
    where["21"] = "Participants (flow figure); Model comparison, Results per center (n and events per analysis)"
    if run.centers is not None and len(run.centers.table):
        where["12d"] = "Results per center (every metric per center, Cochran's Q / I² across centers)"
        where["23b"] = "Results per center"
    if run.bootstrap is not None:
        where["12c"] = ("Feature selection and scores; internal validation: Optimism-corrected internal validation "
                        "(bootstrap, whole design refitted)")
    where["12f"] = ("No updating in this run: the models are evaluated as fitted. A site can recalibrate the model "
                    "bundle on local labelled cases with `sonorad recalibrate` (recorded in the new bundle)")
    where["22"] = where["22"] + ("; model bundle OUT/model (recalibrate it for a new site with "
                                 "`sonorad recalibrate`)")
    table = tripod_checklist(where)
    report.add_section("checklist", SECTION_TITLES["checklist"],
                       text="TRIPOD+AI (Collins et al., BMJ 2024;385:e078378): where this report addresses each item. "
                            "Items marked 'to be completed by the authors' need information the study file does "
                            "not hold.")
    report.add_table("checklist", table, "TRIPOD+AI items", index=False, float_format="{}")


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".nii", ".gz", ".nrrd", ".svg"}


def _output_files(out: Path) -> list[str]:
    """What the run wrote: no cache, no partial files, no input images (a cohort folder inside OUT), and
    the figure and Grad-CAM images summarised per folder."""
    written = ("tables", "figures", "models", "model", "features")
    listing, images = [], {}
    for p in sorted(out.rglob("*")):
        if not p.is_file() or ".cache" in p.parts or p.name.endswith((".part", ".tmp")):
            continue
        rel = p.relative_to(out)
        if len(rel.parts) > 1 and rel.parts[0] not in written:
            continue                      # e.g. the demo's cohort images: inputs, not outputs
        if p.suffix.lower() in _IMAGE_SUFFIXES:
            images.setdefault(str(rel.parent), 0)
            images[str(rel.parent)] += 1
            continue
        if len(rel.parts) > 2 and rel.parts[0] == "models" and rel.parts[1].startswith("bootstrap_"):
            images.setdefault(str(rel.parent), 0)
            images[str(rel.parent)] += 1
            continue
        listing.append(str(rel))
    listing += [f"{folder}/ ({n} files)" for folder, n in images.items()]
    return sorted(listing)


def _files(report, run) -> None:
    out = run.out
    listing = _output_files(out)
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
    _centers(report, figs, run)
    _bootstrap(report, figs, run)
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
