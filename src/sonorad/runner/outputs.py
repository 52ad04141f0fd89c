"""The run folder's files: feature tables, result tables and Grad-CAM images.

Everything here writes what a stage returned, in the layout described in ``docs/running-a-study.md``;
nothing is computed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sonorad.pipeline.result import StudyResult

__all__ = ["write_features", "write_tables", "write_gradcams"]


def write_features(features, folder: Path) -> None:
    """``radiomics.parquet`` and ``deep_<backbone>.parquet``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in features.tables().items():
        table.to_parquet(folder / f"{name}.parquet")


def write_tables(result: StudyResult, cases: pd.DataFrame | None = None) -> list[Path]:
    """Every table of a finished run under ``OUT/tables/`` (CSV); returns the paths written.

    ``cases`` (indexed by case id; ``patient_id``, ``center``) adds each case's patient and center to
    ``predictions.csv``, after ``case_id``.
    """
    from sonorad.pipeline import statistics as st
    from sonorad.report.figures import file_stem

    d = result.out / "tables"
    d.mkdir(parents=True, exist_ok=True)
    written = []

    def put(frame, name, index=False):
        if frame is None:
            return
        path = d / name
        frame.to_csv(path, index=index)
        written.append(path)

    ev, design, expl = result.evaluation, result.design, result.explanations
    primary = ev.primary_cohort
    put(_with_cases(st.long_predictions(result.probabilities, result.y), cases), "predictions.csv")
    put(ev.metrics, "metrics.csv")
    put(ev.cutoffs.reset_index(), "thresholds.csv")
    put(ev.delong, f"delong_{primary}.csv")
    put(ev.delong_matrix, f"delong_matrix_{primary}.csv", index=True)
    put(ev.calibration, "calibration.csv")
    put(ev.decision_curve, f"decision_curve_{primary}.csv")
    put(design.funnel, "selection_funnel.csv")
    if len(design.coefficients):
        put(design.coefficients, "score_coefficients.csv")
    for name, path_frame in design.lasso_paths.items():
        put(path_frame, f"lasso_path_{file_stem(name)}.csv")
    uni, multi = result.odds_ratios
    put(uni, "univariable_logistic.csv", index=True)
    put(multi, "multivariable_logistic.csv", index=True)
    if len(design.cv_auc):
        put(design.cv_auc.rename("tuning_cv_auc").rename_axis("model").reset_index(), "training_tuning_cv_auc.csv")
    put(result.failures, "excluded_cases.csv")
    if result.reference is not None:
        put(result.reference.to_frame(), "reference_comparison.csv")
    if result.centers is not None and len(result.centers.table):
        put(result.centers.table, "metrics_by_center.csv")
        put(result.centers.heterogeneity, "center_heterogeneity.csv")
    missing = getattr(result, "missing_predictors", None)
    if missing is not None and len(missing):
        put(missing, "missing_predictor_centers.csv")
    if result.bootstrap is not None:
        put(result.bootstrap.validation.table, "bootstrap_validation.csv", index=True)
        put(result.bootstrap.validation.calibration, "bootstrap_calibration.csv")
    if expl.shap is not None:
        put(expl.shap.importance(), "shap_importance.csv", index=True)
    if expl.nomogram is not None:
        put(expl.nomogram.to_frame(), "nomogram_points.csv")
    if expl.table_one is not None:
        put(expl.table_one.to_frame(), "baseline_characteristics.csv", index=True)
    if expl.gradcam:
        put(pd.DataFrame([{"case_id": g.case_id, "label": g.label, "probability": g.probability,
                           "image": f"figures/gradcam/{g.case_id}.png"} for g in expl.gradcam]), "gradcam_cases.csv")
    from sonorad.report.paper import write_paper_tables

    written += write_paper_tables(result, d / "paper")
    return written


def _with_cases(predictions: pd.DataFrame, cases: pd.DataFrame | None) -> pd.DataFrame:
    """``predictions`` with the case's ``patient_id`` and ``center`` after ``case_id``."""
    if cases is None:
        return predictions
    out = predictions.copy()
    for i, column in enumerate(c for c in ("patient_id", "center") if c in cases.columns):
        out.insert(1 + i, column, cases[column].reindex(out["case_id"].astype(str)).to_numpy())
    return out


def write_gradcams(explanations, folder: Path) -> list[Path]:
    """One overlay PNG per Grad-CAM case: the crop, the heatmap and the mask contour."""
    from sonorad.explain.gradcam import save_overlay

    if not explanations.gradcam:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    return [save_overlay(g.crop, g.mask, g.heatmap, folder / f"{g.case_id}.png", title=g.case_id)
            for g in explanations.gradcam]
