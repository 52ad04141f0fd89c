"""The ``features``, ``models`` and ``evaluation`` sections of a study file, checked before any work starts.

:class:`~sonorad.study.StudyConfig` keeps these sections as plain dicts; :func:`run_config` checks
them against their declaration (:mod:`sonorad.study.schema`, the design's own ``models`` keys
included) and reads them into a :class:`RunConfig` with defaults filled in, reporting every unknown
key or bad value at once in one :class:`~sonorad.errors.ConfigError` (key path, value, allowed
choices).

The keys are documented in ``docs/running-a-study.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sonorad.errors import ConfigError, Problem
from sonorad.study import StudyConfig
from sonorad.defaults import DEFAULT_DESIGN, RUNNER_MODEL_KEYS
from sonorad.study.schema import check_runner_sections

__all__ = ["RunConfig", "run_config"]


@dataclass(frozen=True)
class RunConfig:
    """What ``sonorad run`` does, read from a study file.

    Attributes
    ----------
    radiomics : bool
        Extract PyRadiomics features (``features.radiomics``, default true).
    params : Path or None
        PyRadiomics parameter file (``features.params``, relative to the study file); ``None``:
        sonorad's shipped 2D file.
    spacing, spacing_mm : str or None, float or None
        The pixel-spacing rule (``features.spacing``: ``resample`` / ``pixels`` / ``None``) and the
        resampling target (``features.spacing_mm``; ``None``: the training median, set by the run).
    deep : tuple of str
        Backbones for frozen CNN features (``features.deep``).
    dl_backbones : tuple of str
        The backbones whose features feed the DL-score(s) / DL families (``features.dl_backbone``:
        one name or a list, default every backbone of ``deep``; empty: no deep features in the
        models). The score-fusion design fits one DL-score per backbone (``models.dl_scores``).
    jobs : int
        Worker processes for radiomics extraction and training cross-validation.
    cache : Path or None
        Shared per-case feature cache (default ``OUT/features/.cache``).
    icc : dict or None
        ``{"n_cases": 30, "threshold": 0.75}``: ICC(3,1) on training cases (second reader's mask or
        perturbed masks) and an ICC filter before the Rad-score; ``None``: no ICC step.
    margin, mask_background, batch_size :
        CNN input crop settings and batch size of the frozen extraction.
    models : dict
        The ``models:`` section as the study file gives it, less the runner's own keys (``cnn``,
        ``bundle_exclude``): the design's settings, for :func:`sonorad.designs.build_design`.
    bundle_exclude : tuple of str
        Models left out of the model bundle (``models.bundle_exclude``; e.g. ``[knn, svm]``, which
        keep training feature vectors).
    cnn : dict or None
        Fine-tuned CNN classifiers (``models.cnn``): ``backbones`` plus
        :class:`sonorad.deep.finetune.CNNClassifier` parameters.
    cv_folds : int
        Folds of the training cross-validation of the whole pipeline (0: none).
    tuning_folds : int or None
        Folds the design's tuning used (``models.cv``, lowered to the size of the training cohort's
        smallest class); set by the run once the training cohort is known, ``None`` before.
    level : float
        Confidence level of every interval.
    shap, nomogram : bool
    shap_cases : int
        Cases explained by SHAP (from the primary validation cohort).
    gradcam : int
        Cases in the Grad-CAM gallery (0: none).
    highlight : tuple of str or None
        Models drawn in the ROC, calibration and decision-curve figures (default: the scores, the
        CNNs, logistic regression and the best model by training CV AUC).
    bootstrap : int
        Bootstrap resamples of the optimism-corrected internal validation of the chosen model
        (``evaluation.bootstrap``; default 0: none). The whole design is refitted in every resample,
        so each costs about one ``fit`` stage; 200 or more for a paper.
    per_center : bool
        Every metric per validation center and pooled, with the AUC heterogeneity test
        (``evaluation.per_center``, default true).
    command : str or None
        The ``sonorad run`` command line that reproduces the run, with its options (``--jobs`` ...).
    attempts : tuple of dict
        The earlier attempts into the same folder, oldest first, as in ``OUT/attempts.json``
        (``started``, ``command``, ``timings`` by stage, ``reused`` stages, ``finished``).
    """

    radiomics: bool = True
    params: Path | None = None
    spacing: str | None = None
    spacing_mm: float | None = None
    deep: tuple[str, ...] = ("efficientnet_lite0",)
    dl_backbones: tuple[str, ...] = ("efficientnet_lite0",)
    jobs: int = 1
    cache: Path | None = None
    icc: dict | None = None
    margin: float = 0.1
    mask_background: bool = False
    batch_size: int = 32
    models: dict = field(default_factory=dict)
    cnn: dict | None = None
    bundle_exclude: tuple[str, ...] = ()
    cv_folds: int = 5
    tuning_folds: int | None = None
    level: float = 0.95
    shap: bool = True
    shap_cases: int = 100
    gradcam: int = 8
    nomogram: bool = True
    highlight: tuple[str, ...] | None = None
    bootstrap: int = 0
    per_center: bool = True
    command: str | None = None
    attempts: tuple[dict, ...] = ()

    def __setstate__(self, state: dict) -> None:
        # run folders saved before the ``models:`` section had its own name held it as ``family``
        if "family" in state:
            state = {**state, "models": state["family"]}
            del state["family"]
        self.__dict__.update(state)

    @property
    def design(self) -> str:
        """The design's name (an old name in the study file gives the current one)."""
        from sonorad.designs import get_design

        return get_design(self.models.get("design", DEFAULT_DESIGN)).name


def run_config(study: StudyConfig, *, jobs: int | None = None) -> RunConfig:
    """Read and check the runner's sections of a study.

    Parameters
    ----------
    study : StudyConfig
    jobs : int, optional
        Overrides ``features.jobs`` (the ``--jobs`` option).

    Raises
    ------
    ConfigError
        Listing every problem of the three sections.
    """
    values, problems = check_runner_sections(dict(study.features), dict(study.models), dict(study.evaluation),
                                             source=study.source)
    if jobs is not None and jobs < 1:
        problems.append(Problem(f"must be >= 1, got {jobs}", column="--jobs"))
    if problems:
        lines = [f"  - {p.column}: {p.message}" + (f". Fix: {p.fix}" if p.fix else "") for p in problems]
        where = f" in {study.source}" if study.source is not None else ""
        raise ConfigError(f"study {study.name!r}{where} has {len(problems)} problem(s) in its features / "
                          "models / evaluation sections:\n" + "\n".join(lines))
    features, checked_models = values["features"], values["models"]
    dl_backbones = tuple(dict.fromkeys(features.pop("dl_backbone") or ()))
    features.pop("executor", None)
    cnn = study.models.get("cnn")
    if cnn is not None:
        cnn = {**cnn, **checked_models["cnn"]}
    return RunConfig(**{**features, "deep": features["deep"] or (), "dl_backbones": dl_backbones,
                        "jobs": jobs if jobs is not None else features["jobs"]},
                     models={k: v for k, v in study.models.items() if k not in RUNNER_MODEL_KEYS},
                     cnn=cnn, bundle_exclude=checked_models["bundle_exclude"] or (), **values["evaluation"])
