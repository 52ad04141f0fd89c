"""The frozen result of a study run: everything the report draws, saved in the run folder.

``StudyResult.save(out)`` writes ``OUT/result.joblib``; ``StudyResult.load(out)`` reads it back, so
``sonorad report OUT`` re-renders a finished run without refitting anything. The result holds no
fitted model (those are in ``OUT/models/`` and the model bundle ``OUT/model/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from sonorad.designs import DesignResult
from sonorad.pipeline.explanations import Explanations
from sonorad.pipeline.stages import Evaluation
from sonorad.provenance import atomic_write

__all__ = ["StudyResult", "RESULT_FILE", "RESULT_FORMAT"]

RESULT_FILE = "result.joblib"
#: bumped when the fields change; an older result is refused with a message to rerun
RESULT_FORMAT = 2


@dataclass(frozen=True)
class StudyResult:
    """A finished run.

    Attributes
    ----------
    study, config : the validated study and its runner sections.
    out : Path
    parts : Series
        ``train`` / ``internal`` / ``external`` of every included case.
    y : Series
        0/1 outcome of every included case.
    failures : DataFrame
        Excluded cases: ``case_id, stage, error, fix``.
    flow : dict
        Counts of the cohort flow figure (:func:`sonorad.report.cohort_flow_counts`).
    feature_summary : dict
        Number of features per table and the PyRadiomics settings used.
    design : DesignResult
        What the design learned, without the fitted models.
    cnns : tuple of str
        Fine-tuned CNN models (names as in ``probabilities``).
    training_cv_folds : int
        Folds of the training cross-validation actually used (0: none).
    probabilities : dict of cohort -> DataFrame (case_id x model)
    evaluation : Evaluation
    odds_ratios : tuple of (univariable, multivariable) DataFrames (or None)
    explanations : Explanations
    centers : CenterResults or None
        Every metric per validation center and pooled, with the heterogeneity test
        (``evaluation.per_center``).
    bootstrap : Bootstrap or None
        Bootstrap optimism-corrected internal validation of the chosen model (``evaluation.bootstrap``).
    roc_bands : DataFrame or None
        Pointwise sensitivity CI at each specificity of the highlighted models
        (:func:`sonorad.pipeline.statistics.roc_bands`), for the ROC figures.
    patients : Series or None
        Patient id of every included case (indexed like ``y``): the ROC figures' AUC intervals are
        clustered by patient, as the tables. ``None`` in results saved before it was kept.
    acquisition : DataFrame or None
        One row per center (:func:`sonorad.cohort.acquisition.acquisition_table`): image format,
        pixel spacing and its source, image size, bit depth, scanner. Shown in the report and the
        model card when present.
    reference : ReferenceComparison or None
        The chosen model against the clinical reference model on the primary validation cohort
        (:func:`sonorad.pipeline.stages.reference_comparison`: DeLong, NRI, IDI and the
        likelihood-ratio test or why not). ``None`` without a reference model, and in results saved
        before it was kept.
    missing_predictors : DataFrame or None
        Validation centers where a declared predictor is missing for every case: the chosen model
        and the models that do not need the predictor, with their AUC there
        (:func:`sonorad.pipeline.centers.missing_predictor_centers`).
    notes : tuple of str
        Everything the run could not do or changed on its own, said in the report.
    timings : dict of stage -> seconds
    reused : tuple of str
        Stages whose saved output was reused.
    """

    study: object
    config: object
    out: Path
    parts: pd.Series
    y: pd.Series
    failures: pd.DataFrame
    flow: dict
    feature_summary: dict
    design: DesignResult
    cnns: tuple
    training_cv_folds: int
    probabilities: dict
    evaluation: Evaluation
    odds_ratios: tuple
    explanations: Explanations
    centers: object = None
    bootstrap: object = None
    roc_bands: object = None
    patients: pd.Series | None = None
    acquisition: pd.DataFrame | None = None
    reference: object = None
    missing_predictors: pd.DataFrame | None = None
    notes: tuple = ()
    timings: dict = field(default_factory=dict)
    reused: tuple = ()
    format: int = RESULT_FORMAT

    @property
    def primary(self) -> str:
        return self.evaluation.primary_cohort

    @property
    def chosen_model(self) -> str:
        return self.design.primary

    def ids(self, part: str) -> pd.Index:
        return self.parts.index[self.parts == part]

    def save(self, out: Path | None = None) -> Path:
        import joblib

        folder = Path(out or self.out)
        path = folder / RESULT_FILE
        kept = replace(self, design=replace(self.design, models={}))
        atomic_write(path, lambda tmp: joblib.dump(kept, tmp))
        return path

    @classmethod
    def load(cls, out: str | Path) -> StudyResult:
        """The result saved in a run folder; a clear error when there is none or it is too old."""
        import joblib

        from sonorad.errors import SonoradError

        path = Path(out) / RESULT_FILE
        if not path.is_file():
            raise SonoradError(f"{path} does not exist: {out} is not a finished sonorad run. Fix: run "
                               f"`sonorad run STUDY.yaml --out {out}` first.")
        try:
            result = joblib.load(path)
        except Exception as exc:  # noqa: BLE001
            raise SonoradError(f"{path} could not be read ({type(exc).__name__}: {exc}). Fix: rerun the study "
                               "into this folder; its features and models are reused.") from exc
        if not isinstance(result, cls) or getattr(result, "format", None) != RESULT_FORMAT:
            raise SonoradError(f"{path} was written by another sonorad version. Fix: rerun the study into this "
                               "folder; its features and models are reused.")
        return replace(result, out=Path(out))
