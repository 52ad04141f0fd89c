"""What scoring with a bundle returns: :class:`BundlePrediction` (a batch) and :class:`CaseResult`
(one case), the column sets of their tables, the risk group at a model's cut-off and the
performance at that cut-off a bundle keeps (:func:`cutoff_performance`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.provenance import atomic_write

__all__ = ["BundlePrediction", "CaseResult", "PREDICTION_COLUMNS", "WARNING_COLUMNS", "COHORT_WORDS", "risk_group",
           "cutoff_performance"]

PREDICTION_COLUMNS = ["case_id", "model", "probability", "risk_group", "cutoff"]
WARNING_COLUMNS = ["case_id", "column", "message"]
#: How a run's cohort names read in a result.
COHORT_WORDS = {"external": "external", "internal": "internal", "training_cv": "training (cross-validated)",
                "training": "training (apparent: the cases the model was fitted on)"}


@dataclass
class BundlePrediction:
    """What :meth:`Bundle.predict` returns.

    Attributes
    ----------
    predictions : DataFrame
        ``case_id, model, probability, risk_group, cutoff``; one row per scored case and model.
        ``risk_group`` is ``"high"`` when the probability is at or above the model's saved cut-off.
    warnings : DataFrame
        ``case_id, column, message``: inputs unlike the training cohort's (the case is still scored).
    failures : DataFrame
        ``case_id, stage, error, fix``: cases (or case/model pairs) that could not be scored.
    contributions : DataFrame
        Top SHAP contributions of the chosen model per case (:data:`sonorad.bundle.explanations.CONTRIBUTION_COLUMNS`).
    metrics : DataFrame or None
        When the cases carry labels, one row per model: ``model``, the columns of
        :func:`sonorad.evaluation.metrics.performance_metrics` at the model's saved cut-off (n,
        positives, AUC with DeLong 95% CI, threshold, accuracy / sensitivity / specificity / PPV /
        NPV with Wilson CIs, F1, tp / fp / tn / fn: the same row as a run's metrics table) and
        ``brier``.
    gradcam : DataFrame or None
        ``case_id, path`` of the Grad-CAM PNGs written.
    notes : list of str
        What could not be done for the whole batch (e.g. no SHAP background in the bundle).
    """

    predictions: pd.DataFrame
    warnings: pd.DataFrame
    failures: pd.DataFrame
    contributions: pd.DataFrame
    metrics: pd.DataFrame | None = None
    gradcam: pd.DataFrame | None = None
    notes: list = field(default_factory=list)

    @property
    def scored_cases(self) -> list[str]:
        """Case ids with at least one probability."""
        return list(dict.fromkeys(self.predictions["case_id"]))

    def probabilities(self) -> pd.DataFrame:
        """Probabilities as a table: one row per case, one column per model."""
        return self.predictions.pivot(index="case_id", columns="model", values="probability")

    def write(self, out_dir) -> list[Path]:
        """Write predictions.csv, contributions.csv, warnings.csv, failures.csv (and metrics.csv)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tables = {"predictions": self.predictions, "contributions": self.contributions,
                  "warnings": self.warnings, "failures": self.failures}
        if self.metrics is not None:
            tables["metrics"] = self.metrics
        written = []
        for name, table in tables.items():
            path = out / f"{name}.csv"
            fmt = "%.17g" if name == "predictions" else None
            atomic_write(path, lambda tmp, table=table, fmt=fmt: table.to_csv(tmp, index=False, float_format=fmt))
            written.append(path)
        return written


@dataclass
class CaseResult:
    """What :meth:`Bundle.predict_case` returns for one case.

    Attributes
    ----------
    case_id : str
    model : str
        The chosen model.
    probability : float
        Its probability of the positive class.
    probabilities : dict of str -> float
        Every model's probability.
    risk_group : str or None
        ``"high"`` / ``"low"`` at the saved cut-off (``None`` without one).
    cutoff : float or None
    contributions : list of dict
        ``feature, label, value, display, shap`` of the chosen model, largest |SHAP| first: ``label``
        is the predictor in the study's words (its description; ``"Rad-score"``, ``"DL-score"``;
        PyRadiomics features by name), ``display`` its value as read (a level's text, or the number
        with its unit).
    base_value : float or None
        SHAP base value (expected model output over the background); ``shap_output`` says its scale.
    shap_output : str or None
        ``"log-odds"`` or ``"probability"``.
    nomogram : dict or None
        ``points`` per predictor, ``total_points``, ``linear_predictor``, ``probability``, when the
        chosen model is a logistic regression.
    gradcam : ndarray (H, W, 3) uint8 or None
        Grad-CAM overlay on the lesion crop.
    warnings : list of str
    outcome : dict or None
        ``{"name", "positive"}``: what ``probability`` is the probability of, from the study file.
    performance_at_cutoff : dict or None
        The chosen model's sensitivity, specificity, PPV and NPV at the cut-off with their CIs, as
        saved in the bundle (:func:`cutoff_performance`); ``performance_note`` says why not when
        ``None``.
    performance_note : str or None
    uncertainty : dict or None
        ``{"low", "high", "level", "resamples", "method"}``: an interval of this patient's
        probability (:mod:`sonorad.bundle.uncertainty`); ``uncertainty_note`` says why not when
        ``None``.
    uncertainty_note : str or None
    roi_sensitivity : dict or None
        When asked for: ``{"low", "high", "pixels", "probabilities": {"eroded", "dilated"},
        "areas_px", "method"}``, the chosen model's probability on the outline eroded and dilated
        (:mod:`sonorad.bundle.sensitivity`); ``roi_sensitivity_note`` says what could not be scored.
    roi_sensitivity_note : str or None
    """

    case_id: str
    model: str
    probability: float
    probabilities: dict
    risk_group: str | None
    cutoff: float | None
    contributions: list
    base_value: float | None
    shap_output: str | None
    nomogram: dict | None
    gradcam: np.ndarray | None
    warnings: list
    outcome: dict | None = None
    performance_at_cutoff: dict | None = None
    performance_note: str | None = None
    uncertainty: dict | None = None
    uncertainty_note: str | None = None
    roi_sensitivity: dict | None = None
    roi_sensitivity_note: str | None = None

    def to_dict(self) -> dict:
        """JSON-able form (the Grad-CAM overlay is left out; ``has_gradcam`` says whether there is one)."""
        return {"case_id": self.case_id, "model": self.model, "probability": self.probability,
                "probabilities": dict(self.probabilities), "risk_group": self.risk_group, "cutoff": self.cutoff,
                "contributions": [dict(c) for c in self.contributions], "base_value": self.base_value,
                "shap_output": self.shap_output, "nomogram": self.nomogram,
                "has_gradcam": self.gradcam is not None, "warnings": list(self.warnings),
                "outcome": None if self.outcome is None else dict(self.outcome),
                "performance_at_cutoff": self.performance_at_cutoff, "performance_note": self.performance_note,
                "uncertainty": self.uncertainty, "uncertainty_note": self.uncertainty_note,
                "roi_sensitivity": self.roi_sensitivity, "roi_sensitivity_note": self.roi_sensitivity_note}


def risk_group(p: float, cutoff: float | None) -> str | None:
    """``"high"`` when the probability is at or above the cut-off, else ``"low"``; ``None`` without a
    cut-off or a finite probability.

    >>> risk_group(0.7, 0.5), risk_group(0.2, 0.5), risk_group(0.7, None)
    ('high', 'low', None)
    """
    if cutoff is None or not np.isfinite(p):
        return None
    return "high" if p >= cutoff else "low"


def cutoff_performance(tp: int, fp: int, tn: int, fn: int, *, cutoff: float, cohort: str,
                       level: float = 0.95) -> dict:
    """Sensitivity, specificity, PPV and NPV at a cut-off from the counts of a labelled cohort,
    each with its Wilson score interval (:func:`sonorad.evaluation.thresholds.wilson_ci`).

    Parameters
    ----------
    tp, fp, tn, fn : int
        Confusion-matrix counts at the cut-off (``probability >= cutoff`` is positive).
    cutoff : float
    cohort : str
        The run's cohort name (``external``, ``internal``, ``training_cv``, ``training``); shown in
        the words of :data:`COHORT_WORDS`.
    level : float

    Returns
    -------
    dict
        ``cohort``, ``n``, ``cutoff``, the counts, ``sensitivity`` / ``specificity`` / ``ppv`` /
        ``npv`` as ``{"value", "low", "high"}`` (``None`` each when the denominator is 0),
        ``level`` and ``method``.

    Examples
    --------
    >>> r = cutoff_performance(8, 1, 9, 2, cutoff=0.4, cohort="external")
    >>> r["sensitivity"]["value"], [round(r["sensitivity"][k], 4) for k in ("low", "high")]
    (0.8, [0.4902, 0.9433])
    """
    from sonorad.evaluation.thresholds import wilson_ci

    counts = {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}
    if any(v < 0 for v in counts.values()):
        raise ValueError(f"confusion-matrix counts must be >= 0, got {counts}")

    def proportion(k, n):
        if n == 0:
            return None
        low, high = wilson_ci(k, n, level)
        return {"value": k / n, "low": low, "high": high}

    return {"cohort": COHORT_WORDS.get(cohort, cohort), "n": sum(counts.values()), "cutoff": float(cutoff),
            **counts,
            "sensitivity": proportion(tp, tp + fn), "specificity": proportion(tn, tn + fp),
            "ppv": proportion(tp, tp + fp), "npv": proportion(tn, tn + fn), "level": float(level),
            "method": f"Wilson score {round(100 * level)}% intervals of the proportions, from the "
                      f"{COHORT_WORDS.get(cohort, cohort)} cohort's cases at the saved cut-off"}
