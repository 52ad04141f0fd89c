"""Study report sections on performance: ROC curves, DeLong tests, calibration, results per center,
bootstrap optimism correction and decision curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sonorad.evaluation.plots import pyplot
from sonorad.report.sections.common import COHORT_TITLES, SECTION_TITLES, chosen_and_baselines, fmt_ci, p_columns

__all__ = ["add_roc", "add_delong", "add_calibration", "add_centers", "add_bootstrap", "add_dca",
           "plot_roc_bands", "plot_calibration_panels", "plot_center_forest", "plot_bootstrap_calibration"]


def plot_roc_bands(run, cohort: str, models) -> object:
    """ROC curves of ``models`` with their pointwise 95% sensitivity band and the operating point at the
    training cut-off."""
    from sonorad.evaluation import roc_curve
    from sonorad.evaluation.formatting import format_ci

    plt = pyplot()
    frame = run.probabilities[cohort]
    y = run.y.loc[frame.index].to_numpy()
    bands = run.roc_bands if run.roc_bands is not None else pd.DataFrame(columns=["cohort", "model"])
    metrics = run.evaluation.metrics.set_index(["cohort", "model"])
    fig, ax = plt.subplots(figsize=(5.6, 5.6))
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6")
    patients = getattr(run, "patients", None)
    cluster = None if patients is None else patients.loc[frame.index].astype(str).to_numpy()
    for model in models:
        # Clustered by patient, as the metrics tables, so the legend's interval is the tables' interval.
        c = roc_curve(y, frame[model].to_numpy(), name=model, level=run.config.level, cluster=cluster)
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
           title=f"ROC: {COHORT_TITLES[cohort]}")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def add_roc(report, figs, run) -> None:
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
        figs.add("roc", plot_roc_bands(run, cohort, models), f"roc_{cohort}",
                 f"ROC curves on the {COHORT_TITLES[cohort]} with {run.config.level:.0%} bands and the cut-off")


def add_delong(report, run) -> None:
    from sonorad.evaluation.formatting import format_p

    tests, matrix = run.evaluation.delong, run.evaluation.delong_matrix
    report.add_section("delong", SECTION_TITLES["delong"],
                       text=f"Paired DeLong tests between models on the {COHORT_TITLES[run.primary]} "
                            "(two-sided; not adjusted for multiple comparisons). Shown: the chosen models and the "
                            f"baselines; every pair is in tables/delong_{run.primary}.csv and "
                            f"tables/delong_matrix_{run.primary}.csv.")
    keep = [m for m in chosen_and_baselines(run) if m in matrix.index] or list(matrix.index)
    shown = matrix.loc[keep, keep].map(lambda v: "" if pd.isna(v) else format_p(v))
    report.add_table("delong", shown, "DeLong p-values between the chosen models and the baselines",
                     float_format="{}")
    if len(tests):
        t = tests[tests["model_a"].isin(keep) & tests["model_b"].isin(keep)]
        t = p_columns(t, ["p_value"]).set_index(["model_a", "model_b"])
        report.add_table("delong", t, "Pairs among them: AUCs, difference with its 95% CI, z and p",
                         float_format="{:.3f}")


def plot_calibration_panels(run, cohort: str, results: dict):
    """One panel per model: ideal line, LOWESS curve, grouped observed fractions (Wilson CIs) and, along
    the bottom, a spike histogram of the predictions (events up, non-events down), as rms::val.prob."""
    from sonorad.evaluation.formatting import format_ci

    plt = pyplot()
    models = [m for (c, m) in results if c == cohort]
    k = len(models)
    cols = min(3, k)
    rows = int(np.ceil(k / cols))
    from sonorad.evaluation.plots import supported_lowess

    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 4.3 * rows), squeeze=False)
    for ax in axes.ravel()[k:]:
        ax.axis("off")
    frame = run.probabilities[cohort]
    bins = np.linspace(0, 1, 101)
    for ax, model in zip(axes.ravel(), models):
        r = results[(cohort, model)]
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6")
        smooth = supported_lowess(r.smoothed)  # only where the predictions are (2.5th-97.5th percentile)
        ax.plot(smooth["predicted"], smooth["observed"], lw=1.5, color="#4c72b0")
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
        # the statistics go above the panel, where they cannot cover a curve
        ax.set_title(f"{model}\nslope {format_ci(st['slope'], st['slope_low'], st['slope_high'], 2)}\n"
                     f"intercept {format_ci(st['intercept'], st['intercept_low'], st['intercept_high'], 2)}\n"
                     f"Brier {st['brier']:.3f}, Eavg {st['eavg']:.3f}", fontsize=8, loc="left")
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.set_aspect("equal")
        ax.tick_params(labelsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("Predicted probability", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("Observed fraction", fontsize=9)
    fig.suptitle(f"Calibration: {COHORT_TITLES[cohort]}", fontsize=10)
    fig.tight_layout()
    return fig


def add_calibration(report, figs, run) -> None:
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
            figs.add("calibration", plot_calibration_panels(run, cohort, results), f"calibration_{cohort}",
                     f"Calibration on the {COHORT_TITLES[cohort]}, one panel per model")
    if len(table):
        from sonorad.report.paper import calibration_paper

        report.add_table("calibration", calibration_paper(run).set_index(["Cohort", "Model"]),
                         "The rms::val.prob set per cohort and model (every column, with the Hosmer-Lemeshow "
                         "grouping, in tables/calibration.csv)", float_format="{}")


def add_centers(report, figs, run) -> None:
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
    keep = [m for m in chosen_and_baselines(run) if m in set(run.centers.table["model"])]
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
    figs.add("centers", plot_center_forest(run, keep), "centers_forest",
             "AUC (95% CI) per center and pooled (inverse-variance) for the chosen models and baselines")
    add_missing_predictors(report, run)


def add_missing_predictors(report, run) -> None:
    """Centers where a declared predictor is missing for every case: the chosen model there, next to
    the models that do not need that predictor."""
    missing = getattr(run, "missing_predictors", None)
    if missing is None or not len(missing):
        return
    for (cohort, center, variable), part in missing.groupby(["cohort", "center", "variable"], sort=False):
        chosen = part[part["role"] == "chosen"].iloc[0]
        free = part[part["role"] != "chosen"]
        report.add_text("centers", f"{variable} is missing for every case of {cohort} center {center}: the models "
                                   f"impute one training value for all of them, which can invert a model's ranking "
                                   f"there. The chosen model {chosen['model']} "
                                   + ("reads it" if chosen["reads_variable"] else "does not read it") + "; "
                                   + (f"{len(free)} model(s) do not need it and are shown beside it."
                                      if len(free) else "every other model reads it too."))
    table = missing.assign(**{
        "AUC (95% CI)": [fmt_ci(r.auc, r.auc_low, r.auc_high) for r in missing.itertuples()],
        "reads the predictor": missing["reads_variable"].map({True: "yes", False: "no"})})
    table = table.rename(columns={"cohort": "Cohort", "center": "Center", "variable": "Missing predictor",
                                  "model": "Model", "role": "Role", "n": "n"})
    report.add_table("centers", table[["Cohort", "Center", "Missing predictor", "Model", "Role", "reads the predictor",
                                       "n", "AUC (95% CI)"]].set_index(["Cohort", "Center", "Missing predictor"]),
                     "Models at a center where a predictor is missing for every case "
                     "(tables/missing_predictor_centers.csv)", float_format="{}")


def plot_center_forest(run, models):
    from sonorad.report.paper import center_rows

    plt = pyplot()
    t = center_rows(run.centers.table)
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


def add_bootstrap(report, figs, run) -> None:
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
    figs.add("bootstrap", plot_bootstrap_calibration(v, run.bootstrap.model), "bootstrap_calibration",
             f"Bias-corrected calibration curve of {run.bootstrap.model} ({v.n_resamples} bootstrap resamples; "
             f"mean absolute error {v.mean_absolute_error:.3f}, 0.9 quantile {v.e90:.3f})")


def plot_bootstrap_calibration(v, model):
    plt = pyplot()
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


def add_dca(report, figs, run) -> None:
    from sonorad.evaluation.plots import plot_decision_curve

    result = run.evaluation.decision_curve_result
    metrics = run.evaluation.metrics
    rows = metrics[(metrics["cohort"] == run.primary) & metrics["model"].isin(result.models)] \
        if "threshold" in metrics.columns else metrics.iloc[:0]
    cutoffs = sorted({float(c) for c in rows.get("threshold", []) if pd.notna(c)})
    report.add_section("dca", SECTION_TITLES["dca"],
                       text="Net benefit = TP/n - FP/n x pt/(1 - pt) at each threshold probability pt, against "
                            f"treating all and treating none (values: tables/decision_curve_{run.primary}.csv). Shown: "
                            "the clinically relevant thresholds, up to 0.6 (or 0.1 beyond the highest cut-off), with "
                            "net benefit down to -0.05 so that treating all stays visible; dotted lines mark the "
                            "models' cut-offs. The second figure shows every threshold.")
    title = f"Decision curve: {COHORT_TITLES[run.primary]}"
    figs.add("dca", plot_decision_curve(result, cutoffs=cutoffs, title=title),
             f"decision_curve_{run.primary}", f"Decision curves on the {COHORT_TITLES[run.primary]}")
    figs.add("dca", plot_decision_curve(result, full_range=True, title=title + " (all thresholds)"),
             f"decision_curve_{run.primary}_full", f"Decision curves on the {COHORT_TITLES[run.primary]}, "
             "every threshold")
