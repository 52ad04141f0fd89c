"""Evaluation statistics that match the reference implementations.

ROC/AUC with DeLong (pROC) or stratified-bootstrap CIs and DeLong tests (Obuchowski's clustered
versions when a patient has several images), training-fitted cut-offs
with Wilson CIs, calibration (the full ``rms::val.prob`` set: calibration-in-the-large, intercept
and slope, Brier, Emax/E90/Eavg, Spiegelhalter, Dxy, R2; Hosmer-Lemeshow as ``ResourceSelection``),
per-center results with an AUC heterogeneity test (Cochran's Q, I^2), bootstrap optimism
correction (as ``rms::validate`` / ``rms::calibrate``), decision curves (as ``dcurves``) and NRI/IDI
(nomograms and SHAP explanations live in :mod:`sonorad.explain`). Every function returns a result dataclass
with ``to_frame()``; figures are drawn by :mod:`sonorad.evaluation.plots` from those results and
paper-ready strings come from :mod:`sonorad.evaluation.formatting`.
"""

from .baseline import BaselineStatistics, baseline_statistics
from .calibration import CalibrationResult, brier_score, calibration
from .goodness_of_fit import HosmerLemeshowResult, hosmer_lemeshow
from .recalibration import calibration_intercept_slope
from .valprob import ValProbResult, val_prob
from .centers import AucHeterogeneity, CenterPerformance, auc_heterogeneity, performance_by_center
from .decision_curve import DecisionCurveResult, decision_curve, net_benefit
from .formatting import format_ci, format_estimate, format_p, markdown_table, paper_table
from .optimism import BootstrapValidation, bootstrap_validation
from .reclassification import ReclassificationResult, idi, nri
from .roc import (AucResult, DeLongTestResult, RocCurve, auc_score, clustered_auc_covariance,
                  clustered_auc_variance, delong_test, delong_variance, roc_auc_ci, roc_curve)
from .thresholds import ThresholdMetrics, YoudenThreshold, threshold_metrics, wilson_ci

__all__ = [
    "AucResult", "DeLongTestResult", "RocCurve", "auc_score", "delong_variance", "roc_auc_ci",
    "delong_test", "roc_curve", "clustered_auc_variance", "clustered_auc_covariance",
    "YoudenThreshold", "ThresholdMetrics", "threshold_metrics", "wilson_ci",
    "CalibrationResult", "HosmerLemeshowResult", "calibration", "hosmer_lemeshow", "brier_score",
    "calibration_intercept_slope", "ValProbResult", "val_prob",
    "BaselineStatistics", "baseline_statistics",
    "AucHeterogeneity", "CenterPerformance", "auc_heterogeneity", "performance_by_center",
    "DecisionCurveResult", "decision_curve", "net_benefit",
    "BootstrapValidation", "bootstrap_validation",
    "ReclassificationResult", "nri", "idi",
    "format_ci", "format_estimate", "format_p", "paper_table", "markdown_table",
]
