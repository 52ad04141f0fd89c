"""The ``features``, ``models`` and ``evaluation`` sections of a study file, checked before any work starts.

:class:`~sonorad.study.StudyConfig` keeps these sections as plain dicts; :func:`run_config` reads
them into a :class:`RunConfig` with defaults filled in, and reports every unknown key or bad value
at once in one :class:`~sonorad.errors.ConfigError` (key path, value, allowed choices).

The keys are documented in ``docs/running-a-study.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sonorad.errors import ConfigError, Problem
from sonorad.study import StudyConfig

__all__ = ["FEATURE_KEYS", "EVALUATION_KEYS", "RUNNER_MODEL_KEYS", "RunConfig", "run_config"]

#: Keys of the ``features:`` section.
FEATURE_KEYS = ("radiomics", "params", "deep", "dl_backbone", "jobs", "cache", "icc", "margin",
                "mask_background", "batch_size", "executor")
#: Keys of the ``evaluation:`` section.
EVALUATION_KEYS = ("cv_folds", "level", "shap", "shap_cases", "gradcam", "nomogram", "highlight", "bootstrap",
                   "per_center")
#: Keys of the ``models:`` section read by the runner itself (the rest go to ``build_family``).
RUNNER_MODEL_KEYS = ("cnn", "bundle_exclude")
_ICC_KEYS = ("n_cases", "threshold")
_CNN_KEYS = ("backbones", "weights", "epochs", "batch_size", "lr", "patience", "val_fraction", "augment",
             "margin", "mask_background", "input_size", "device")


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
    deep : tuple of str
        Backbones for frozen CNN features (``features.deep``).
    dl_backbones : tuple of str
        The backbones whose features feed the DL-score(s) / DL families (``features.dl_backbone``:
        one name or a list, default every backbone of ``deep``; empty: no deep features in the
        models). Study 1 fits one DL-score per backbone (``models.dl_scores``).
    jobs : int
        Worker processes for radiomics extraction and training cross-validation.
    cache : Path or None
        Shared per-case feature cache (default ``OUT/features/.cache``).
    icc : dict or None
        ``{"n_cases": 30, "threshold": 0.75}``: ICC(3,1) on training cases (second reader's mask or
        perturbed masks) and an ICC filter before the Rad-score; ``None``: no ICC step.
    margin, mask_background, batch_size :
        CNN input crop settings and batch size of the frozen extraction.
    family : dict
        The ``models:`` section without the runner's own keys, for
        :func:`sonorad.designs.build_design`.
    bundle_exclude : tuple of str
        Models left out of the model bundle (``models.bundle_exclude``; e.g. ``[knn, svm]``, which
        keep training feature vectors).
    cnn : dict or None
        Fine-tuned CNN classifiers (``models.cnn``): ``backbones`` plus
        :class:`sonorad.deep.finetune.CNNClassifier` parameters.
    cv_folds : int
        Folds of the training cross-validation of the whole pipeline (0: none).
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
    """

    radiomics: bool = True
    params: Path | None = None
    deep: tuple[str, ...] = ("efficientnet_lite0",)
    dl_backbones: tuple[str, ...] = ("efficientnet_lite0",)
    jobs: int = 1
    cache: Path | None = None
    icc: dict | None = None
    margin: float = 0.1
    mask_background: bool = False
    batch_size: int = 32
    family: dict = field(default_factory=dict)
    cnn: dict | None = None
    bundle_exclude: tuple[str, ...] = ()
    cv_folds: int = 5
    level: float = 0.95
    shap: bool = True
    shap_cases: int = 100
    gradcam: int = 8
    nomogram: bool = True
    highlight: tuple[str, ...] | None = None
    bootstrap: int = 0
    per_center: bool = True

    @property
    def design(self) -> str:
        return self.family.get("design", "study1")


def _relative(value, base: Path | None) -> Path:
    path = Path(str(value)).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path


class _Checker:
    def __init__(self):
        self.problems: list[Problem] = []

    def add(self, key: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(message=message, fix=fix, column=key))

    def keys(self, section: dict, name: str, allowed) -> None:
        for key in section:
            if key not in allowed:
                self.add(f"{name}.{key}", f"unknown key {key!r}; allowed keys: {', '.join(allowed)}",
                         "remove it or correct its spelling")

    def boolean(self, section: dict, name: str, key: str, default: bool) -> bool:
        value = section.get(key, default)
        if not isinstance(value, bool):
            self.add(f"{name}.{key}", f"must be true or false, got {value!r}")
            return default
        return value

    def integer(self, section: dict, name: str, key: str, default: int, minimum: int = 0) -> int:
        value = section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.add(f"{name}.{key}", f"must be an integer >= {minimum}, got {value!r}")
            return default
        return value

    def number(self, section: dict, name: str, key: str, default: float, low: float, high: float) -> float:
        value = section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            self.add(f"{name}.{key}", f"must be a number in [{low}, {high}], got {value!r}")
            return default
        return float(value)

    def names(self, section: dict, name: str, key: str, default) -> tuple[str, ...] | None:
        value = section.get(key, default)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            self.add(f"{name}.{key}", f"must be a name or a list of names, got {value!r}")
            return tuple(default) if default else None
        return tuple(value)


def _features(c: _Checker, section: dict, base: Path | None) -> dict:
    from sonorad.features.deep import available_backbones

    c.keys(section, "features", FEATURE_KEYS)
    out = {"radiomics": c.boolean(section, "features", "radiomics", True)}
    params = section.get("params")
    out["params"] = None if params is None else _relative(params, base)
    if out["params"] is not None and not out["params"].is_file():
        c.add("features.params", f"the PyRadiomics parameter file {out['params']} does not exist",
              "give a path relative to the study file's folder, or leave the key out for sonorad's default")
    deep = c.names(section, "features", "deep", ("efficientnet_lite0",)) or ()
    known = available_backbones()
    for name in deep:
        if name not in known:
            c.add("features.deep", f"unknown backbone {name!r}; choose among {', '.join(known)}")
    out["deep"] = deep
    dl = c.names(section, "features", "dl_backbone", deep) or ()
    for name in dl:
        if name not in deep:
            c.add("features.dl_backbone", f"{name!r} is not one of features.deep {list(deep)}",
                  "name extracted backbones only")
    if len(set(dl)) < len(dl):
        c.add("features.dl_backbone", f"lists a backbone twice: {list(dl)}", "name each backbone once")
    out["dl_backbones"] = tuple(dict.fromkeys(dl))
    if not out["radiomics"] and not deep:
        c.add("features", "radiomics is off and no deep backbone is given: nothing to extract",
              "set radiomics: true or list backbones under deep")
    out["jobs"] = c.integer(section, "features", "jobs", 1, minimum=1)
    out["cache"] = None if section.get("cache") is None else _relative(section["cache"], base)
    icc = section.get("icc")
    if icc is True:
        icc = {}
    if icc is not None and icc is not False:
        if not isinstance(icc, dict):
            c.add("features.icc", f"must be true, false or a mapping with {', '.join(_ICC_KEYS)}; got {icc!r}")
            icc = None
        else:
            c.keys(icc, "features.icc", _ICC_KEYS)
            icc = {"n_cases": c.integer(icc, "features.icc", "n_cases", 30, minimum=3),
                   "threshold": c.number(icc, "features.icc", "threshold", 0.75, 0.0, 1.0)}
    out["icc"] = icc or None
    out["margin"] = c.number(section, "features", "margin", 0.1, 0.0, 2.0)
    out["mask_background"] = c.boolean(section, "features", "mask_background", False)
    out["batch_size"] = c.integer(section, "features", "batch_size", 32, minimum=1)
    return out


def _models(c: _Checker, section: dict, base: Path | None) -> dict:
    from sonorad.deep.backbones import available_backbones
    from sonorad.deep.finetune import is_augment

    family = {k: v for k, v in section.items() if k not in RUNNER_MODEL_KEYS}
    cnn = section.get("cnn")
    if cnn is not None:
        if not isinstance(cnn, dict):
            c.add("models.cnn", f"must be a mapping with keys {', '.join(_CNN_KEYS)}; got {cnn!r}")
            cnn = None
        else:
            c.keys(cnn, "models.cnn", _CNN_KEYS)
            cnn = dict(cnn)
            cnn["backbones"] = c.names(cnn, "models.cnn", "backbones", ("efficientnet_lite0",))
            for name in cnn["backbones"] or ():
                if name not in available_backbones():
                    c.add("models.cnn.backbones", f"unknown backbone {name!r}; choose among "
                          f"{', '.join(available_backbones())}")
            if "augment" in cnn and not is_augment(cnn["augment"]):
                c.add("models.cnn.augment", f"must be true, false or scanner_shift, got {cnn['augment']!r}")
            weights = cnn.get("weights")
            if isinstance(weights, str) and weights not in ("default", "random"):
                cnn["weights"] = str(_relative(weights, base))
    exclude = c.names(section, "models", "bundle_exclude", ()) or ()
    return {"family": family, "cnn": cnn, "bundle_exclude": tuple(exclude)}


def _evaluation(c: _Checker, section: dict) -> dict:
    c.keys(section, "evaluation", EVALUATION_KEYS)
    out = {"cv_folds": c.integer(section, "evaluation", "cv_folds", 5)}
    if out["cv_folds"] == 1:
        c.add("evaluation.cv_folds", "must be 0 (no training cross-validation) or at least 2, got 1")
    out["level"] = c.number(section, "evaluation", "level", 0.95, 0.5, 0.999)
    out["shap"] = c.boolean(section, "evaluation", "shap", True)
    out["shap_cases"] = c.integer(section, "evaluation", "shap_cases", 100, minimum=1)
    out["gradcam"] = c.integer(section, "evaluation", "gradcam", 8)
    out["nomogram"] = c.boolean(section, "evaluation", "nomogram", True)
    out["highlight"] = c.names(section, "evaluation", "highlight", None)
    out["bootstrap"] = c.integer(section, "evaluation", "bootstrap", 0)
    out["per_center"] = c.boolean(section, "evaluation", "per_center", True)
    return out


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
    base = study.source.parent if study.source is not None else None
    c = _Checker()
    features = _features(c, dict(study.features), base)
    models = _models(c, dict(study.models), base)
    evaluation = _evaluation(c, dict(study.evaluation))
    from sonorad.designs import check_models_section

    # the design's own schema: unknown keys, model names and selection keys are found now, not after
    # hours of extraction
    c.problems.extend(check_models_section(models["family"]))
    if jobs is not None:
        if jobs < 1:
            c.add("--jobs", f"must be >= 1, got {jobs}")
        else:
            features["jobs"] = jobs
    if c.problems:
        lines = [f"  - {p.column}: {p.message}" + (f". Fix: {p.fix}" if p.fix else "") for p in c.problems]
        where = f" in {study.source}" if study.source is not None else ""
        raise ConfigError(f"study {study.name!r}{where} has {len(c.problems)} problem(s) in its features / "
                          "models / evaluation sections:\n" + "\n".join(lines))
    return RunConfig(**features, **models, **evaluation)
