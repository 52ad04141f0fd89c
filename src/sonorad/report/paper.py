"""Paper-ready tables of a finished run: ``0.940 (0.888-0.992)`` strings, one p-value format.

Each function takes a :class:`~sonorad.pipeline.result.StudyResult` and returns a table of strings
built with :func:`sonorad.evaluation.formatting.paper_table`; :func:`write_paper_tables` writes each
as CSV and Markdown under ``OUT/tables/paper/``. Models are listed in the pre-declared order: the
chosen model first, then by tuning-CV AUC on the training cohort, never by a
validation AUC.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["model_order", "metrics_paper", "calibration_paper", "centers_paper", "heterogeneity_paper",
           "bootstrap_paper", "write_paper_tables", "COHORT_LABELS", "COHORT_ORDER", "center_rows"]

COHORT_LABELS = {"training": "Training (apparent)", "training_cv": "Training (whole-pipeline training-CV)",
                 "internal": "Internal validation", "external": "External validation"}
#: Order of the cohorts in every paper table: what the paper reports first (validation), the apparent
#: training rows, which only show how far the model fits its own cases, last.
COHORT_ORDER = ("external", "internal", "training_cv", "training")


def model_order(run, models=None) -> list[str]:
    """The chosen model, then the others by training tuning-CV AUC (models without one last, as given)."""
    models = list(models if models is not None else run.probabilities["training"].columns)
    cv = run.design.cv_auc

    def key(m):
        chosen = m != run.chosen_model
        value = cv.get(m) if m in cv.index else None
        return (chosen, value is None or pd.isna(value), -(value or 0.0))

    return sorted(models, key=key)


def _ordered(frame: pd.DataFrame, run) -> pd.DataFrame:
    order = {m: i for i, m in enumerate(model_order(run, list(dict.fromkeys(frame["model"]))))}
    cohorts = {c: i for i, c in enumerate(COHORT_ORDER)}
    return frame.assign(_c=frame["cohort"].map(cohorts).fillna(99), _m=frame["model"].map(order)) \
        .sort_values(["_c", "_m"], kind="stable").drop(columns=["_c", "_m"])


def metrics_paper(run) -> pd.DataFrame:
    """AUC and threshold metrics (95% CI) per cohort x model, with the training cut-off."""
    from sonorad.evaluation.formatting import paper_table

    m = _ordered(run.evaluation.metrics, run).assign(cohort=lambda f: f["cohort"].map(COHORT_LABELS))
    columns = {"Cohort": "cohort", "Model": "model", "n": "n", "Events": "positives",
               "AUC (95% CI)": ("auc", "auc_low", "auc_high")}
    for stat, label in (("sensitivity", "Sensitivity"), ("specificity", "Specificity"), ("ppv", "PPV"),
                        ("npv", "NPV"), ("accuracy", "Accuracy")):
        columns[f"{label} (95% CI)"] = (stat, f"{stat}_low", f"{stat}_high")
    columns["Cut-off"] = "threshold"
    if "train_cv_auc" in m.columns:
        columns["Tuning-CV AUC"] = "train_cv_auc"
    return paper_table(m, columns).reset_index(drop=True)


def calibration_paper(run) -> pd.DataFrame:
    """The rms::val.prob set per cohort x model: both intercepts, slope (95% CI), Brier, E-statistics,
    Spiegelhalter and Hosmer-Lemeshow p."""
    from sonorad.evaluation.formatting import paper_table

    cal = run.evaluation.calibration
    if not len(cal):
        return pd.DataFrame()
    cal = _ordered(cal, run).assign(cohort=lambda f: f["cohort"].map(COHORT_LABELS))
    columns = {"Cohort": "cohort", "Model": "model"}
    for header, src in (("Calibration-in-the-large (95% CI)", ("citl", "citl_low", "citl_high")),
                        ("Intercept (95% CI)", ("intercept", "intercept_low", "intercept_high")),
                        ("Slope (95% CI)", ("slope", "slope_low", "slope_high")),
                        ("Brier", "brier"), ("Eavg (ICI)", "eavg"), ("E90", "e90"), ("Emax", "emax"),
                        ("Spiegelhalter p", "spiegelhalter_p"), ("HL p", "hl_p")):
        cols = src if isinstance(src, tuple) else (src,)
        if all(c in cal.columns for c in cols):
            columns[header] = src
    return paper_table(cal, columns, p_values=["Spiegelhalter p", "HL p"]).reset_index(drop=True)


def center_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The per-center rows of ``run.centers.table`` worth showing: a cohort with one center has no
    "pooled" row (it would repeat that center's row)."""
    if not len(table) or "center" not in table.columns:
        return table
    pooled = table["center"] == "pooled"
    centers = table[~pooled].groupby(["cohort", "model"])["center"].nunique()
    single = {key for key, n in centers.items() if n <= 1}
    repeat = pooled & pd.Series([(c, m) in single for c, m in zip(table["cohort"], table["model"])],
                                index=table.index)
    return table[~repeat]


def centers_paper(run, models=None) -> pd.DataFrame:
    """Per validation center and pooled: n, events, AUC, slope, intercept (95% CI), Brier, HL p (a
    cohort of one center has no pooled row, :func:`center_rows`)."""
    from sonorad.evaluation.formatting import paper_table

    if run.centers is None or not len(run.centers.table):
        return pd.DataFrame()
    t = center_rows(run.centers.table)
    if models is not None:
        t = t[t["model"].isin(list(models))]
    t = _ordered(t, run).assign(cohort=lambda f: f["cohort"].map(COHORT_LABELS))
    columns = {"Cohort": "cohort", "Model": "model", "Center": "center", "n": "n", "Events": "n_events"}
    for header, src in (("AUC (95% CI)", ("auc", "auc_low", "auc_high")),
                        ("Intercept (95% CI)", ("intercept", "intercept_low", "intercept_high")),
                        ("Slope (95% CI)", ("slope", "slope_low", "slope_high")), ("Brier", "brier"),
                        ("Sensitivity (95% CI)", ("sensitivity", "sensitivity_low", "sensitivity_high")),
                        ("Specificity (95% CI)", ("specificity", "specificity_low", "specificity_high")),
                        ("HL p", "hl_p"), ("Not computable", "not_computable")):
        cols = src if isinstance(src, tuple) else (src,)
        if all(c in t.columns for c in cols):
            columns[header] = src
    return paper_table(t, columns, p_values=["HL p"]).reset_index(drop=True)


def heterogeneity_paper(run, models=None) -> pd.DataFrame:
    """Cochran's Q test of equal AUCs across the centers of each validation cohort, with I²."""
    from sonorad.evaluation.formatting import paper_table

    if run.centers is None or not len(run.centers.heterogeneity):
        return pd.DataFrame()
    h = run.centers.heterogeneity
    if models is not None:
        h = h[h["model"].isin(list(models))]
    h = _ordered(h, run).assign(cohort=lambda f: f["cohort"].map(COHORT_LABELS),
                                i2=lambda f: f["i2"] * 100)
    out = paper_table(h, {"Cohort": "cohort", "Model": "model", "Centers": "centers_used",
                          "Pooled AUC (95% CI)": ("pooled_auc", "pooled_low", "pooled_high"), "Q": "q",
                          "df": "df", "p": "p_value", "I² (%)": "i2", "Left out": "excluded",
                          "Not computable because": "reason"}, p_values=["p"], digits=3)
    out["I² (%)"] = [v if v == "n/a" else f"{float(v):.1f}" for v in out["I² (%)"]]
    return out.reset_index(drop=True)


def bootstrap_paper(run) -> pd.DataFrame:
    """Apparent, optimism and optimism-corrected AUC, intercept, slope and Brier (rms::validate layout)."""
    from sonorad.evaluation.formatting import paper_table

    if run.bootstrap is None:
        return pd.DataFrame()
    t = run.bootstrap.validation.table.reset_index()
    return paper_table(t, {"Index": "index", "Apparent": "apparent", "Training (bootstrap)": "training",
                           "Test (original)": "test", "Optimism": "optimism", "Corrected": "corrected",
                           "Resamples used": "n"}).reset_index(drop=True)


def write_paper_tables(run, folder: Path) -> list[Path]:
    """Every paper table as ``NAME.csv`` and ``NAME.md`` in ``folder``, and the CLEAR checklist of the run
    as ``clear_checklist.csv`` (:func:`sonorad.report.clear.run_clear_checklist`); returns the paths written."""
    from sonorad.evaluation.formatting import markdown_table

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in (("metrics", metrics_paper(run)), ("calibration", calibration_paper(run)),
                        ("centers", centers_paper(run)), ("center_heterogeneity", heterogeneity_paper(run)),
                        ("bootstrap_validation", bootstrap_paper(run))):
        if table is None or not len(table):
            continue
        table.to_csv(folder / f"{name}.csv", index=False)
        (folder / f"{name}.md").write_text(markdown_table(table) + "\n", encoding="utf-8")
        written += [folder / f"{name}.csv", folder / f"{name}.md"]
    from sonorad.report.clear import run_clear_checklist

    run_clear_checklist(run).to_csv(folder / "clear_checklist.csv", index=False)
    written.append(folder / "clear_checklist.csv")
    return written
