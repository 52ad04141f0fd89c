"""What every section of the study report shares: section titles, cohort names, figure saving and table cells."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sonorad.evaluation.plots import pyplot

__all__ = ["SECTION_TITLES", "COHORT_TITLES", "FigureSaver", "chosen_and_baselines", "fmt_ci", "metrics_display",
           "p_columns", "predictor_label"]


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
    "checklist": "Reporting checklists (TRIPOD+AI, CLEAR)",
    "files": "Files and reproducibility",
}


#: Cohort key of a run -> how the report names it.
COHORT_TITLES = {"training": "training cohort (apparent)",
                 "training_cv": "training cohort (whole-pipeline training-CV)",
                 "internal": "internal validation cohort", "external": "external validation cohort"}


class FigureSaver:
    """Saves each figure (PNG + SVG, 300 dpi), embeds it in the report and closes it."""

    def __init__(self, report, folder: Path):
        self.report = report
        self.folder = folder

    def add(self, section: str, fig, stem: str, caption: str) -> None:
        from sonorad.report.figures import save_figure

        save_figure(fig, stem, self.folder)
        self.report.add_figure(section, fig, caption)
        pyplot().close(fig)


def fmt_ci(est, low, high, digits=3) -> str:
    """``estimate (low-high)`` in the paper's one CI format (:func:`sonorad.evaluation.formatting.format_ci`)."""
    from sonorad.evaluation.formatting import format_ci

    return format_ci(est, low, high, digits)


def p_columns(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """``frame`` with its p-value columns as strings in the one p-value format (``<0.001``, 3 decimals)."""
    from sonorad.evaluation.formatting import format_p

    out = frame.copy()
    for c in columns:
        if c in out.columns:
            out[c] = [format_p(v) for v in out[c]]
    return out


def metrics_display(metrics: pd.DataFrame, cohort: str, order=None) -> pd.DataFrame:
    """The model comparison table of one cohort: AUC and threshold metrics with CIs, as strings.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The run's metrics, one row per (``cohort``, ``model``).
    cohort : str
        Which cohort's rows to show.
    order : list of str, optional
        Models listed first, in this order; the others follow.

    Returns
    -------
    pandas.DataFrame
        Indexed by model; empty when the cohort has no AUC column.
    """
    m = metrics[metrics["cohort"] == cohort].copy()
    if "auc" not in m.columns:
        return pd.DataFrame()
    m = m.set_index("model")
    if order is not None:
        m = m.loc[[o for o in order if o in m.index] + [o for o in m.index if o not in order]]
    out = pd.DataFrame(index=m.index)
    out["AUC (95% CI)"] = [fmt_ci(r.auc, r.auc_low, r.auc_high) for r in m.itertuples()]
    for stat, label in (("accuracy", "Accuracy"), ("sensitivity", "Sensitivity (recall)"),
                        ("specificity", "Specificity"), ("ppv", "PPV (precision)"), ("npv", "NPV"), ("f1", "F1")):
        out[label] = [fmt_ci(e, lo, hi) for e, lo, hi in zip(m[stat], m[f"{stat}_low"], m[f"{stat}_high"])]
    out["Cut-off"] = m["threshold"].map(lambda v: f"{v:.3f}")
    if "train_cv_auc" in m.columns:  # the tuning-CV AUC (sonorad.designs.choice), not the training_cv cohort's
        out["Tuning-CV AUC"] = m["train_cv_auc"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    out.index.name = "model"
    return out


def predictor_label(run, name) -> str:
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


def chosen_and_baselines(run) -> list[str]:
    """The design's chosen model(s) per family, the primary model, and the baselines (the scores, the
    CNNs and the highlighted models)."""
    chosen = [run.chosen_model, *run.design.chosen.values(), *run.evaluation.highlight]
    return list(dict.fromkeys(chosen))
