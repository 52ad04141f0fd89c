"""``sonorad run STUDY.yaml --out DIR``: one study file to tables, figures and a report.

Stages, each logged with its wall time to the console and ``DIR/run.log``:

1. **validate** the cohort table against the study (table-level problems stop the run with every
   problem listed; a case whose image or mask file is missing or unreadable is excluded and
   written to ``features/failures.csv`` with the reason and the fix);
2. **features**: PyRadiomics and frozen CNN features, cached per case (an interrupted run resumes;
   a case that fails extraction is excluded and recorded, the others carry on); optional ICC;
3. **fit** the configured family (and fine-tuned CNNs) on the training cohort only, saved to
   ``models/`` with their metadata; reused when the study, the training cases and their features
   are unchanged;
4. **cross-validate** the whole pipeline on the training cohort (patient-grouped, stratified
   folds; everything refitted in every fold) for honest training-cohort predictions;
5. **predict** every cohort and compute every statistic (``tables/``);
6. **explain and report**: SHAP, nomogram, Grad-CAM, figures (``figures/``, PNG + SVG at 300
   dpi) and ``report.html``.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.errors import CohortError, ConfigError, Problem, SonoradError
from sonorad.runner.config import RunConfig, run_config

__all__ = ["StudyRun", "run_study", "RunFailed"]

FAILURE_COLUMNS = ["case_id", "stage", "error", "fix"]


class RunFailed(SonoradError):
    """A stage of ``sonorad run`` failed; the message names the stage, the error and the log file."""


class RunLog:
    """Timestamped progress lines to the console and to ``run.log``."""

    def __init__(self, path: Path, echo: bool = True):
        self.path = path
        self.echo = echo
        self.t0 = time.perf_counter()
        self.stage_times: dict[str, float] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")
        self._fh.write(f"\n=== sonorad run started {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n")

    def say(self, message: str) -> None:
        line = f"[{time.perf_counter() - self.t0:7.1f} s] {message}"
        if self.echo:
            print(line, flush=True)
        self._fh.write(line + "\n")
        self._fh.flush()

    def detail(self, text: str) -> None:
        """Multi-line text: to the log file, and to the console when echoing."""
        if self.echo:
            print(text, flush=True)
        self._fh.write(text.rstrip() + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


@dataclass
class StudyRun:
    """Everything a run produced, in memory (the same content is written under ``out``).

    Attributes
    ----------
    study, config : the validated study and its runner sections.
    out : Path
    cohort : Cohort
        The whole validated table (excluded cases included).
    parts : Series
        ``train`` / ``internal`` / ``external`` of every *included* case.
    y : Series
        0/1 outcome of every included case.
    failures : DataFrame
        Excluded cases: ``case_id, stage, error, fix``.
    features : dict
        ``radiomics``, ``deep`` (the DL backbone), ``clinical``, ``us`` tables of included cases, plus
        ``deep_<backbone>`` for every extracted backbone.
    family : Study1Family or Study2Family (fitted)
    cnns : dict of str -> CNNClassifier (fitted)
    probabilities : dict of cohort -> DataFrame (case_id x model)
    """

    study: object
    config: RunConfig
    out: Path
    cohort: object = None
    parts: pd.Series = None
    y: pd.Series = None
    failures: pd.DataFrame = None
    features: dict = field(default_factory=dict)
    icc: pd.DataFrame | None = None
    family: object = None
    cnns: dict = field(default_factory=dict)
    probabilities: dict = field(default_factory=dict)
    cutoffs: pd.DataFrame = None
    metrics: pd.DataFrame = None
    primary: str = None
    highlight: list = field(default_factory=list)
    delong: tuple = None
    calibration: tuple = None
    decision_curve: tuple = None
    funnel: pd.DataFrame = None
    lasso_paths: dict = field(default_factory=dict)
    coefficients: pd.DataFrame = None
    clinical: tuple = None
    cv_auc: pd.Series = None
    shap: object = None
    nomogram: object = None
    gradcam: pd.DataFrame = None
    notes: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    reused: list = field(default_factory=list)
    hashes: dict = field(default_factory=dict)

    def ids(self, part: str) -> pd.Index:
        return self.parts.index[self.parts == part]

    def tables(self, ids) -> dict:
        """Model input tables restricted to ``ids`` (the family's ``tables`` argument)."""
        return {k: v.loc[ids] for k, v in self.features.items()
                if k in ("radiomics", "deep", "clinical", "us") and v is not None}


# -- small helpers ------------------------------------------------------------------------------
def _sha256(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, pd.DataFrame | pd.Series):
            h.update(np.ascontiguousarray(pd.util.hash_pandas_object(part, index=True).to_numpy()).tobytes())
            names = part.columns if isinstance(part, pd.DataFrame) else [part.name]
            h.update(json.dumps([str(c) for c in names]).encode())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()


def _save_pickle(obj, path: Path) -> None:
    import joblib

    tmp = path.with_suffix(path.suffix + ".part")
    joblib.dump(obj, tmp)
    tmp.replace(path)


def _load_pickle(path: Path, key: str):
    import joblib

    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        return None
    try:
        if json.loads(meta.read_text()).get("key") != key:
            return None
        return joblib.load(path)
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is recomputed, never trusted
        return None


def _metadata(run: StudyRun, key: str, **extra) -> dict:
    from sonorad import __version__
    from sonorad.report import package_versions

    return {"key": key, "sonorad": __version__, "study": run.study.name, "seed": run.study.seed,
            "design": run.config.design, "feature_params_sha256": run.hashes.get("params"),
            "training_cohort_sha256": run.hashes.get("training"),
            "n_training_cases": int((run.parts == "train").sum()), "package_versions": package_versions(),
            **extra}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def _checkpoint(run: StudyRun, log: RunLog, label: str, path: Path, key: str, compute, describe=None):
    """The object saved at ``path`` under ``key``, else ``compute()`` saved there with its metadata.

    Returns ``(object, seconds)``; ``seconds`` is ``None`` when the saved object was reused.
    """
    obj = _load_pickle(path, key)
    if obj is not None:
        log.say(f"{label}: reusing {path}")
        run.reused.append(label)
        return obj, None
    t0 = time.perf_counter()
    obj = compute()
    seconds = time.perf_counter() - t0
    _save_pickle(obj, path)
    _write_json(path.with_suffix(".json"),
                _metadata(run, key, seconds=round(seconds, 1), **(describe(obj) if describe else {})))
    return obj, seconds


def _cache_dir(run: StudyRun) -> Path:
    """The per-case feature cache: ``features.cache`` or ``OUT/features/.cache``."""
    return run.config.cache if run.config.cache is not None else run.out / "features" / ".cache"


# -- stage 1: validate --------------------------------------------------------------------------
_PATH_COLUMNS = ("image", "mask", "mask2")


def validate_stage(study, log: RunLog):
    """Validate the table; return ``(cohort, excluded failures)``.

    A missing or unreadable image/mask file excludes its case (recorded, not fatal); every other
    error-level problem stops the run with the whole list.
    """
    from sonorad.cohort import Cohort, read_cases, validate_cases

    if study.cohort is None:
        raise ConfigError("the study names no cohort table. Fix: add `cohort: path/to/cases.csv` to the study "
                          "file or pass --cohort")
    table = read_cases(study.cohort, label_column=study.label.column)
    problems = validate_cases(table, study=study, check_files=True)
    per_case = [p for p in problems if p.severity == "error" and p.case_id is not None
                and p.column in _PATH_COLUMNS]
    blocking = [p for p in problems if p.severity == "error" and p not in per_case]
    if blocking:
        raise CohortError(blocking, source=str(study.cohort))
    warnings = tuple(p for p in problems if p.severity != "error")
    for w in warnings:
        log.say(f"warning: {w}")
    failures = pd.DataFrame([{"case_id": p.case_id, "stage": "validate", "error": p.message, "fix": p.fix}
                             for p in per_case], columns=FAILURE_COLUMNS)
    cohort = Cohort(table=table, study=study, warnings=warnings, source=Path(study.cohort))
    return cohort, failures


# -- stage 2: features --------------------------------------------------------------------------
def features_stage(run: StudyRun, table: pd.DataFrame, log: RunLog, progress: bool) -> pd.DataFrame:
    """Extract (or read from the cache) every feature table; return the extraction failures."""
    from sonorad.features.deep import extract_deep
    from sonorad.features.extract import extract_radiomics
    from sonorad.features.radiomics import load_params
    from sonorad.features.store import FeatureCache

    cfg = run.config
    out = run.out / "features"
    out.mkdir(parents=True, exist_ok=True)
    cache = FeatureCache(_cache_dir(run))
    failures = []
    if cfg.radiomics:
        params = load_params(cfg.params)
        run.hashes["params"] = _sha256(params)
        t0 = time.perf_counter()
        feats, fails = extract_radiomics(table, params=params, cache=cache, jobs=cfg.jobs, progress=progress)
        feats.to_parquet(out / "radiomics.parquet")
        failures.append(fails)
        run.features["radiomics"] = feats
        log.say(f"radiomics: {feats.shape[1]} PyRadiomics features for {len(feats)} of {len(table)} cases, "
                f"{len(fails)} failed ({time.perf_counter() - t0:.0f} s)")
    for backbone in cfg.deep:
        t0 = time.perf_counter()
        feats, fails = extract_deep(table, backbone, cache=cache, batch_size=cfg.batch_size, margin=cfg.margin,
                                    mask_background=cfg.mask_background, progress=progress)
        feats.to_parquet(out / f"deep_{backbone}.parquet")
        failures.append(fails)
        run.features[f"deep_{backbone}"] = feats
        log.say(f"deep {backbone}: {feats.shape[1]} frozen features for {len(feats)} cases, {len(fails)} failed "
                f"({time.perf_counter() - t0:.0f} s)")
    if cfg.dl_backbone is not None:
        run.features["deep"] = run.features[f"deep_{cfg.dl_backbone}"]
    return pd.concat([f.reindex(columns=FAILURE_COLUMNS) for f in failures] or
                     [pd.DataFrame(columns=FAILURE_COLUMNS)], ignore_index=True)


def _variable_tables(run: StudyRun, ids) -> None:
    study = run.study
    table = run.cohort.table.loc[ids]
    clinical = [n for n, v in study.variables.items() if v.role != "ultrasound"]
    us = study.variables_with_role("ultrasound")
    run.features["clinical"] = table[clinical].copy() if clinical else None
    run.features["us"] = table[us].copy() if us else None


def icc_stage(run: StudyRun, table: pd.DataFrame, log: RunLog, progress: bool) -> None:
    """ICC(3,1) of every radiomics feature on training cases; feeds the Rad-score's ICC filter."""
    from sonorad.features.icc import feature_icc

    cfg = run.config
    path = run.out / "features" / "icc.csv"
    train = table.loc[run.ids("train")]
    n_cases = min(cfg.icc["n_cases"], len(train))
    t0 = time.perf_counter()
    icc = feature_icc(train, params=cfg.params, seed=run.study.seed, n_cases=n_cases, jobs=cfg.jobs,
                      cache=_cache_dir(run), progress=progress)
    icc.to_csv(path)
    run.icc = icc
    kept = int((icc["icc"] >= cfg.icc["threshold"]).sum()) if "icc" in icc.columns else None
    log.say(f"ICC(3,1) on {n_cases} training cases: {kept} of {len(icc)} features "
            f"with ICC >= {cfg.icc['threshold']} ({time.perf_counter() - t0:.0f} s)")


# -- stage 3/4: fit and cross-validate ----------------------------------------------------------
def _family_section(run: StudyRun) -> dict:
    section = dict(run.config.family)
    if run.icc is not None:
        icc = run.icc["icc"] if "icc" in run.icc.columns else run.icc
        key = "rad_score" if section.get("design", "study1") == "study1" else "selection"
        sub = dict(section.get(key) or {})
        sub.setdefault("icc", icc)
        sub.setdefault("icc_threshold", run.config.icc["threshold"])
        section[key] = sub
    return section


def _family(run: StudyRun):
    from sonorad.families import build_family

    return build_family(_family_section(run), variables=run.study.variables, seed=run.study.seed)


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """Study-2 columns (family, model) -> ``family/model``."""
    if isinstance(frame.columns, pd.MultiIndex):
        frame = frame.copy()
        frame.columns = [f"{a}/{b}" for a, b in frame.columns]
    return frame


def _fit_family(family, run: StudyRun, ids):
    centers = run.cohort.table.loc[ids, "center"].astype(str)
    return family.fit(run.tables(ids), run.y.loc[ids], groups=run.cohort.groups.loc[ids].astype(str),
                      centers=centers)


def _predict_family(family, run: StudyRun, ids) -> pd.DataFrame:
    centers = run.cohort.table.loc[ids, "center"].astype(str)
    return _flat(family.predict_proba(run.tables(ids), centers=centers))


def fit_stage(run: StudyRun, log: RunLog) -> None:
    """Fit the family on the training cohort, or reload it when nothing it depends on changed."""
    (run.out / "models").mkdir(parents=True, exist_ok=True)
    train = run.ids("train")
    family, seconds = _checkpoint(run, log, "fit", run.out / "models" / "family.joblib", run.hashes["fit"],
                                  lambda: _fit_family(_family(run), run, train))
    if seconds is not None:
        log.say(f"fit: {type(family).__name__} on {len(train)} training cases ({seconds:.0f} s)")
    run.family = family
    cv = family.cv_auc_
    run.cv_auc = (cv.stack().rename_axis(["model", "family"]).reset_index()
                  .assign(name=lambda d: d["family"] + "/" + d["model"]).set_index("name")[0]
                  if isinstance(cv, pd.DataFrame) else cv.copy())
    if hasattr(family, "rad_score_") and family.rad_score_ is not None:
        log.detail(family.rad_score_.formula())
    if hasattr(family, "dl_score_") and family.dl_score_ is not None:
        log.detail(family.dl_score_.formula())


def cnn_stage(run: StudyRun, log: RunLog) -> None:
    """Fine-tune every configured CNN classifier on the training cohort (the DL models)."""
    from sonorad.deep.finetune import CNNClassifier

    cfg = dict(run.config.cnn)
    backbones = cfg.pop("backbones")
    train = run.ids("train")
    table = run.cohort.table.loc[train]
    for backbone in backbones:
        name = f"cnn_{backbone}"
        model, seconds = _checkpoint(
            run, log, name, run.out / "models" / f"{name}.joblib", _sha256(run.hashes["fit"], name, cfg),
            lambda: CNNClassifier(backbone=backbone, random_state=run.study.seed, **cfg).fit(
                table, run.y.loc[train], groups=run.cohort.groups.loc[train].astype(str)),
            describe=lambda m: {"backbone": backbone, "best_epoch": int(m.best_epoch_)})
        if seconds is not None:
            log.say(f"fine-tuned {backbone}: best epoch {model.best_epoch_} ({seconds:.0f} s)")
        run.cnns[name] = model


def _cv_fold(template, run_state: dict, tr, te):
    from sklearn.base import clone

    family = clone(template)
    tables = run_state["tables"]
    y, groups, centers = run_state["y"], run_state["groups"], run_state["centers"]
    fit_tables = {k: v.iloc[tr] for k, v in tables.items()}
    family.fit(fit_tables, y.iloc[tr], groups=groups.iloc[tr], centers=centers.iloc[tr])
    test_tables = {k: v.iloc[te] for k, v in tables.items()}
    return _flat(family.predict_proba(test_tables, centers=centers.iloc[te]))


def cv_stage(run: StudyRun, log: RunLog) -> None:
    """Out-of-fold training predictions of the whole pipeline (selection, scores, tuning refitted per fold)."""
    from joblib import Parallel, delayed

    from sonorad.selection import make_grouped_cv

    folds_n = run.config.cv_folds
    train = run.ids("train")
    y = run.y.loc[train]
    groups = run.cohort.groups.loc[train].astype(str)
    folds = make_grouped_cv(folds_n, y.to_numpy(), groups.to_numpy(), random_state=run.study.seed)

    def out_of_fold() -> pd.DataFrame:
        state = {"tables": run.tables(train), "y": y, "groups": groups,
                 "centers": run.cohort.table.loc[train, "center"].astype(str)}
        log.say(f"training cross-validation: {len(folds)} patient-grouped folds, whole pipeline refitted in "
                f"each ({run.config.jobs} in parallel)")
        parts = Parallel(n_jobs=min(run.config.jobs, len(folds)))(
            delayed(_cv_fold)(_family(run), state, tr, te) for tr, te in folds)
        return pd.concat(parts).reindex(train)

    oof, seconds = _checkpoint(run, log, "training cross-validation",
                               run.out / "models" / "training_cv_predictions.joblib",
                               _sha256(run.hashes["fit"], "cv", folds_n), out_of_fold,
                               describe=lambda _: {"folds": len(folds)})
    run.probabilities["training_cv"] = oof
    if seconds is not None:
        log.say(f"training cross-validation done ({seconds:.0f} s)")


# -- stage 5: predict and evaluate --------------------------------------------------------------
_PART_COHORT = {"train": "training", "internal": "internal", "external": "external"}


def predict_stage(run: StudyRun) -> None:
    for part, cohort in _PART_COHORT.items():
        ids = run.ids(part)
        if not len(ids):
            continue
        frame = _predict_family(run.family, run, ids)
        for name, model in run.cnns.items():
            frame[name] = model.predict_proba(run.cohort.table.loc[ids])[:, 1]
        run.probabilities[cohort] = frame


def _default_highlight(run: StudyRun) -> list[str]:
    columns = list(run.probabilities["training"].columns)
    chosen = [c for c in ("rad_score", "dl_score") if c in columns]
    if isinstance(run.family.best_model_, dict):  # study 2: the best model of each family
        chosen += [f"{fam}/{m}" for fam, m in run.family.best_model_.items()]
    else:
        chosen += [m for m in ("logistic_regression", run.family.best_model_) if m in columns]
    chosen += list(run.cnns)
    return list(dict.fromkeys(chosen))


def evaluate_stage(run: StudyRun) -> None:
    from sonorad.runner import inspect
    from sonorad.runner import statistics as st

    cfg = run.config
    run.cutoffs = st.youden_cutoffs(run.probabilities, run.y)
    run.metrics = st.metrics_table(run.probabilities, run.y, run.cutoffs, level=cfg.level, seed=run.study.seed,
                                   cv_auc=run.cv_auc)
    run.primary = st.primary_cohort(run.probabilities)
    highlight = list(cfg.highlight) if cfg.highlight else _default_highlight(run)
    unknown = [h for h in highlight if h not in run.probabilities["training"].columns]
    if unknown:
        run.notes.append(f"evaluation.highlight names unknown models {unknown}; they are left out")
    run.highlight = [h for h in highlight if h not in unknown]
    primary = run.probabilities[run.primary]
    run.delong = st.delong_tables(primary, run.y, level=cfg.level)
    run.calibration = st.calibration_table(run.probabilities, run.y, run.highlight, level=cfg.level)
    run.decision_curve = st.decision_curve_table(primary, run.y, run.highlight)
    run.funnel = inspect.family_funnels(run.family)
    run.lasso_paths = inspect.lasso_paths(run.family)
    run.coefficients = inspect.score_coefficients(run.family)
    train = run.ids("train")
    scores = getattr(run.family, "oof_scores_", None)
    selected = run.family.selected_features_ if isinstance(run.family.selected_features_, list) else None
    uni, multi, notes = inspect.clinical_tables(run.study.variables, run.cohort.table.loc[train], run.y.loc[train],
                                                scores, selected)
    run.clinical = (uni, multi)
    run.notes += notes


def write_tables(run: StudyRun) -> list[Path]:
    from sonorad.report.figures import file_stem
    from sonorad.runner import statistics as st

    d = run.out / "tables"
    d.mkdir(parents=True, exist_ok=True)
    written = []

    def put(frame, name, index=False):
        if frame is None:
            return
        path = d / name
        frame.to_csv(path, index=index)
        written.append(path)

    put(st.long_predictions(run.probabilities, run.y), "predictions.csv")
    put(run.metrics, "metrics.csv")
    put(run.cutoffs.drop(columns="_cut").reset_index(), "thresholds.csv")
    put(run.delong[0], f"delong_{run.primary}.csv")
    put(run.delong[1], f"delong_matrix_{run.primary}.csv", index=True)
    put(run.calibration[0], "calibration.csv")
    put(run.decision_curve[0], f"decision_curve_{run.primary}.csv")
    put(run.funnel, "selection_funnel.csv")
    if len(run.coefficients):
        put(run.coefficients, "score_coefficients.csv")
    for name, path_frame in run.lasso_paths.items():
        put(path_frame, f"lasso_path_{file_stem(name)}.csv")
    put(run.clinical[0], "univariable_logistic.csv", index=True)
    put(run.clinical[1], "multivariable_logistic.csv", index=True)
    if run.cv_auc is not None:
        put(run.cv_auc.rename("train_cv_auc").rename_axis("model").reset_index(), "training_tuning_cv_auc.csv")
    put(run.failures, "excluded_cases.csv")
    return written


# -- the whole run ------------------------------------------------------------------------------
def _stage(run: StudyRun, log: RunLog, name: str, function, *args):
    log.say(f"-- {name}")
    t0 = time.perf_counter()
    try:
        result = function(*args)
    except (SonoradError, KeyboardInterrupt):
        raise
    except Exception as exc:
        log.detail(traceback.format_exc())
        raise RunFailed(f"stage {name!r} failed: {type(exc).__name__}: {exc}\n"
                        f"The traceback is in {log.path}. Finished work (features, fitted models) is kept; "
                        "rerun the same command after fixing the cause to resume.") from exc
    run.timings[name] = round(time.perf_counter() - t0, 1)
    return result


def run_study(study, out, *, cohort: str | Path | None = None, jobs: int | None = None, progress: bool = True,
              echo: bool = True, report: bool = True, scheduler=None, shared_fs: bool = False) -> StudyRun:
    """Run a whole study: validate, extract, fit, cross-validate, predict, evaluate and report.

    Parameters
    ----------
    study : str, Path or StudyConfig
        The study file (or a validated study).
    out : str or Path
        Output folder; rerunning into the same folder resumes (cached features, saved models).
    cohort : str or Path, optional
        A cohort table to use instead of the study's ``cohort`` (the ``--cohort`` option).
    jobs : int, optional
        Worker processes (overrides ``features.jobs``).
    progress, echo : bool
        Progress bars; progress lines on the console (always written to ``out/run.log``).
    report : bool
        Draw figures and write ``report.html`` (tables are always written).
    scheduler, shared_fs
        Run extraction, tuning and cross-validation on a Dask cluster (``--scheduler``; default
        ``SONORAD_SCHEDULER``, else ``features.executor``); see :func:`sonorad.parallel.use_cluster`.

    Returns
    -------
    StudyRun
    """
    from dataclasses import replace

    from sonorad.study import StudyConfig, load_study

    if not isinstance(study, StudyConfig):
        study = load_study(study)
    if cohort is not None:
        study = replace(study, cohort=Path(cohort).resolve())
    config = run_config(study, jobs=jobs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out / "run.log", echo=echo)
    run = StudyRun(study=study, config=config, out=out)
    from sonorad.parallel import resolve_scheduler, use_cluster

    try:
        with use_cluster(resolve_scheduler(scheduler, study.features.get("executor")), shared_fs=shared_fs):
            _run(run, log, progress, report)
    finally:
        log.close()
    return run


def _run(run: StudyRun, log: RunLog, progress: bool, report: bool) -> None:
    import yaml

    study, cfg = run.study, run.config
    log.say(f"study {study.name!r}: design {cfg.design}, seed {study.seed}, cohort {study.cohort}")
    (run.out / "study.yaml").write_text(yaml.safe_dump(study.to_dict(), sort_keys=False))

    cohort, failures = _stage(run, log, "validate", validate_stage, study, log)
    run.cohort = cohort
    log.detail(cohort.summary())
    good = cohort.table.index.difference(pd.Index(failures["case_id"].astype(str)), sort=False)
    if len(failures):
        log.say(f"{failures['case_id'].nunique()} case(s) excluded at validation (files missing or unreadable)")

    extraction = _stage(run, log, "features", features_stage, run, cohort.table.loc[good], log, progress)
    failures = pd.concat([failures, extraction], ignore_index=True)
    failed = set(failures["case_id"].astype(str))
    included = [c for c in cohort.table.index if c not in failed]
    run.failures = failures
    failures.to_csv(run.out / "features" / "failures.csv", index=False)
    if failed:
        shown = ", ".join(sorted(failed)[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        log.say(f"excluded {len(failed)} case(s): {shown} (reasons and fixes in features/failures.csv)")
    run.parts = cohort.split_labels().loc[included]
    run.y = cohort.y.loc[included]
    for name in [k for k in run.features if run.features[k] is not None]:
        run.features[name] = run.features[name].reindex(included)
    _variable_tables(run, included)
    _check_parts(run)

    if cfg.icc is not None and cfg.radiomics:
        _stage(run, log, "icc", icc_stage, run, cohort.table.loc[run.ids("train")], log, progress)
    train = run.ids("train")
    run.hashes["training"] = _sha256(sorted(train), run.y.loc[train],
                                     *[v.loc[train] for k, v in sorted(run.features.items()) if v is not None],
                                     cohort.groups.loc[train].astype(str))
    # what the fitted models depend on: the design and its settings, the variables, the seed and the
    # training data (cases, labels, patients, features); not paths, worker counts or the evaluation
    study_dict = {k: v for k, v in study.to_dict().items() if k in ("seed", "label", "variables", "split", "models")}
    run.hashes["fit"] = _sha256(study_dict, run.hashes["training"], None if run.icc is None else run.icc)
    _clear_outputs(run.out)

    _stage(run, log, "fit", fit_stage, run, log)
    if cfg.cnn is not None:
        _stage(run, log, "fine-tune CNN", cnn_stage, run, log)
    if cfg.cv_folds:
        _stage(run, log, "training cross-validation", cv_stage, run, log)
    _stage(run, log, "predict", predict_stage, run)
    _stage(run, log, "statistics", evaluate_stage, run)
    written = write_tables(run)
    _show_results(run, log)
    if report:
        from sonorad.report.study_report import write_study_report

        path = _stage(run, log, "figures and report", write_study_report, run, log)
        log.say(f"report: {path}")
    pd.Series(run.timings, name="seconds").rename_axis("stage").to_csv(run.out / "tables" / "timings.csv")
    log.say(f"done: {len(written)} tables in {run.out / 'tables'}")


def _clear_outputs(out: Path) -> None:
    """Remove the previous run's tables and figures: every file there is rewritten by this run."""
    import shutil

    for name in ("tables", "figures"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    if (out / "report.html").exists():
        (out / "report.html").unlink()


def _check_parts(run: StudyRun) -> None:
    problems = []
    train = run.ids("train")
    if not len(train):
        problems.append(Problem("no training case is left", "check the split and the excluded cases"))
    elif run.y.loc[train].nunique() < 2:
        problems.append(Problem("the training cohort holds one class only",
                                "check the label column and the training centers"))
    if problems:
        raise CohortError(problems, source=str(run.study.cohort))


def _show_results(run: StudyRun, log: RunLog) -> None:
    m = run.metrics[run.metrics["cohort"] == run.primary].set_index("model")
    cols = [c for c in ("auc", "auc_low", "auc_high", "accuracy", "precision", "recall", "f1", "train_cv_auc")
            if c in m.columns]
    log.detail(f"\n{run.primary} cohort (cut-off: training Youden):\n"
               + m[cols].sort_values("auc", ascending=False).round(3).to_string() + "\n")
