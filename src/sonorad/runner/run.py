"""``sonorad run STUDY.yaml --out DIR``: one study file to tables, figures, a model bundle and a report.

The runner calls the stages of :mod:`sonorad.pipeline.stages` in order, logs each with its wall
time to the console and ``DIR/run.log``, checkpoints the costly ones under the hash of their
inputs (an interrupted or repeated run resumes), and writes what they return:

1. **validate** the cohort table (table-level problems stop the run with every problem listed; a
   case whose files are missing or unreadable is excluded and written to ``features/failures.csv``);
2. **features**: PyRadiomics and frozen CNN features, cached per case; optional ICC;
3. **fit** the design on the training cohort only (``models/design.joblib``), and fine-tuned CNNs;
4. **cross-validate** the whole design on the training cohort (patient-grouped folds);
5. **predict** every cohort and **evaluate** (``tables/``), per validation center with the
   heterogeneity test, and (``evaluation.bootstrap: N``) bootstrap optimism correction of the chosen
   model, the whole design refitted per resample (resumable: ``models/bootstrap_<hash>/``);
6. **explain**: SHAP, nomogram, Grad-CAM and Table 1 (``tables/``, ``figures/gradcam/``);
7. the **model bundle** (``model/``) and the frozen result (``result.joblib``);
8. the **report** (``figures/``, ``report.html``), which only draws the result.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pandas as pd

from sonorad.errors import SonoradError
from sonorad.parallel import fitting_jobs
from sonorad.pipeline import stages
from sonorad.pipeline.checkpoint import checkpoint
from sonorad.pipeline.result import StudyResult
from sonorad.provenance import content_hash
from sonorad.runner.attempts import Attempt, command_line
from sonorad.runner.config import RunConfig, run_config
from sonorad.runner.progress import HEARTBEAT_S, duration, heartbeat, progress_bars

__all__ = ["run_study", "RunFailed", "RunLog"]


class RunFailed(SonoradError):
    """A stage of ``sonorad run`` failed; the message names the stage, the error and the log file."""


class RunLog:
    """Timestamped progress lines to the console and to ``run.log``, and each stage's wall time."""

    def __init__(self, path: Path, echo: bool = True, heartbeat: float = HEARTBEAT_S):
        self.path = path
        self.echo = echo
        self.heartbeat = heartbeat
        self.t0 = time.perf_counter()
        self.last_line = time.monotonic()
        self._lock = threading.Lock()  # the heartbeat thread writes lines too
        self.attempt: Attempt | None = None  # this attempt's record in OUT/attempts.json
        self.timings: dict[str, float] = {}
        self.reused: list[str] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")
        self._fh.write(f"\n=== sonorad run started {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n")

    def say(self, message: str) -> None:
        line = f"[{time.perf_counter() - self.t0:7.1f} s] {message}"
        with self._lock:
            if self.echo:
                print(line, flush=True)
            self._write(line)

    def detail(self, text: str) -> None:
        """Multi-line text: to the log file, and to the console when echoing."""
        with self._lock:
            if self.echo:
                print(text, flush=True)
            self._write(text.rstrip())

    def _write(self, text: str) -> None:
        self._fh.write(text + "\n")
        self._fh.flush()
        self.last_line = time.monotonic()

    def stage(self, name: str, function, *args, **kwargs):
        """Run one stage: logged, timed; an unexpected error becomes :class:`RunFailed`."""
        self.say(f"-- {name}")
        t0 = time.perf_counter()
        try:
            with heartbeat(self.say, name, interval=self.heartbeat, last_output=lambda: self.last_line):
                result = function(*args, **kwargs)
        except (SonoradError, KeyboardInterrupt):
            raise
        except Exception as exc:
            self.detail(traceback.format_exc())
            raise RunFailed(f"stage {name!r} failed: {type(exc).__name__}: {exc}\n"
                            f"The traceback is in {self.path}. Finished work (features, fitted models) is kept; "
                            "rerun the same command after fixing the cause to resume.") from exc
        self.timings[name] = round(time.perf_counter() - t0, 1)
        if self.attempt is not None:
            self.attempt.update(self.timings, self.reused)
        return result

    def progress(self, label: str, *, resumed: int = 0, lines: int = 4, stream=None) -> Progress:
        """A ``progress(done, total)`` callback for a stage with countable steps (folds, resamples);
        ``resumed``: steps already done (from a checkpoint) when it starts."""
        return Progress(label, self, resumed=resumed, lines=lines, stream=stream)

    def checkpoint(self, label: str, path: Path, key: str, compute, *, metadata=None, describe=None):
        obj, seconds = checkpoint(path, key, compute, metadata=metadata, describe=describe)
        if seconds is None:
            self.say(f"{label}: reusing {path}")
            self.reused.append(label)
        else:
            self.say(f"{label} done ({seconds:.0f} s)")
        return obj

    @contextmanager
    def forward(self, logger: str):
        """Log records of ``logger`` (INFO and up) become progress lines while the block runs."""
        import logging

        class _Handler(logging.Handler):
            def emit(handler, record):  # noqa: N805 - the handler, not the log
                self.say(record.getMessage())

        target = logging.getLogger(logger)
        handler, level = _Handler(logging.INFO), target.level
        target.addHandler(handler)
        target.setLevel(min(level or logging.INFO, logging.INFO))
        try:
            yield
        finally:
            target.removeHandler(handler)
            target.setLevel(level)

    def close(self) -> None:
        self._fh.close()


class Progress:
    """``done / total`` of a stage with its elapsed time and ETA.

    On a terminal the console line is rewritten in place (carriage return); otherwise (a log file, a
    pipe, a scheduler's output) only a few plain lines are printed, at about every 1/``lines`` of the
    work and at the end. ``run.log`` always gets the plain lines. Steps done before the stage started
    (resumed from a checkpoint) do not count towards the rate.
    """

    def __init__(self, label: str, log: RunLog, *, resumed: int = 0, lines: int = 4, stream=None):
        self.label, self.log, self.lines = label, log, max(1, int(lines))
        self.stream = stream if stream is not None else sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.resumed = self.mark = int(resumed)

    def text(self, done: int, total: int) -> str:
        elapsed = time.perf_counter() - self.t0
        line = f"{self.label}: {done}/{total} ({100 * done / max(total, 1):.0f}%), {duration(elapsed)} elapsed"
        fresh = done - self.resumed
        if done < total and fresh > 0:
            line += f", about {duration(elapsed / fresh * (total - done))} left"
        return line

    def __call__(self, done: int, total: int) -> None:
        if done <= self.resumed and done < total:
            self.log.say(f"{self.label}: {done}/{total} reused from the checkpoint")
            return
        line = self.text(done, total)
        step = max(1, int(round(total / self.lines)))
        plain = done >= total or done >= self.mark + step
        if plain:
            self.mark = done
        if self.log.echo and self.tty:
            end = "\n" if done >= total else ""
            print("\r" + line.ljust(79), end=end, file=self.stream, flush=True)
            if plain:
                with self.log._lock:
                    self.log._write(f"[{time.perf_counter() - self.log.t0:7.1f} s] {line}")
        elif plain:
            self.log.say(line)


def run_study(study, out, *, cohort: str | Path | None = None, jobs: int | None = None, progress: bool = True,
              echo: bool = True, report: bool = True, scheduler=None, shared_fs: bool = False) -> StudyResult:
    """Run a whole study: validate, extract, fit, cross-validate, predict, evaluate, explain, bundle, report.

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
        Draw figures and write ``report.html`` (tables, the bundle and the result are always written).
    scheduler, shared_fs
        Run extraction, tuning and cross-validation on a Dask cluster (``--scheduler``; default
        ``SONORAD_SCHEDULER``, else ``features.executor``); see :func:`sonorad.parallel.use_cluster`.

    Returns
    -------
    StudyResult
    """
    from sonorad.study import StudyConfig, load_study

    if not isinstance(study, StudyConfig):
        study = load_study(study)
    if cohort is not None:
        study = replace(study, cohort=Path(cohort).resolve())
    config = run_config(study, jobs=jobs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    command, options = command_line(study.source or "study.yaml", out, cohort=cohort, jobs=jobs, report=report,
                                    scheduler=scheduler, shared_fs=shared_fs)
    log = RunLog(out / "run.log", echo=echo)
    log.attempt = Attempt(out, command)
    config = replace(config, command=command, attempts=tuple(log.attempt.earlier))
    log.say(f"options: {options}")
    from sonorad.parallel import resolve_scheduler, use_cluster

    try:
        with use_cluster(resolve_scheduler(scheduler, study.features.get("executor")), shared_fs=shared_fs):
            return _run(study, config, out, log, progress, report)
    finally:
        log.close()


def _cache_dir(config: RunConfig, out: Path) -> Path:
    """The per-case feature cache: ``features.cache`` or ``OUT/features/.cache``."""
    return config.cache if config.cache is not None else out / "features" / ".cache"


def _metadata(study, config, hashes: dict, n_train: int) -> dict:
    from sonorad import __version__
    from sonorad.provenance import package_versions

    return {"sonorad": __version__, "study": study.name, "seed": study.seed, "design": config.design,
            "feature_params_sha256": hashes.get("params"), "training_cohort_sha256": hashes.get("training"),
            "n_training_cases": n_train, "package_versions": package_versions()}


def _run(study, cfg: RunConfig, out: Path, log: RunLog, progress: bool, report: bool) -> StudyResult:
    import yaml

    from sonorad.runner import outputs

    log.say(f"study {study.name!r}: design {cfg.design}, seed {study.seed}, cohort {study.cohort}")
    (out / "study.yaml").write_text(yaml.safe_dump(study.to_dict(), sort_keys=False))
    notes = []

    cohort, failures = log.stage("validate", stages.validate, study, say=log.say)
    for w in cohort.warnings:
        log.say(f"warning: {w}")
    log.detail(cohort.summary())
    good = cohort.table.index.difference(pd.Index(failures["case_id"].astype(str)), sort=False)
    if len(failures):
        log.say(f"{failures['case_id'].nunique()} case(s) excluded at validation (files missing or unreadable)")
    rois = None
    if study.masks.segmenter is not None:  # a box and no mask: the mask is proposed before extraction
        cohort, failures, rois = log.stage("automatic ROIs", stages.automatic_rois, cohort, failures, study, out,
                                           say=log.say)
        good = cohort.table.index.difference(pd.Index(failures["case_id"].astype(str)), sort=False)

    cache = _cache_dir(cfg, out)
    table = stages.with_mask_settings(cohort.table.loc[good], study)
    from sonorad.cohort.acquisition import resample_target

    cfg = replace(cfg, spacing_mm=resample_target(cfg.spacing, cfg.spacing_mm, table, cohort.split_labels()))
    if cfg.spacing is not None:
        from sonorad.imaging.spacing import SpacingRule

        log.say(f"pixel spacing (features.spacing): {SpacingRule(cfg.spacing, cfg.spacing_mm).describe()}")
    with log.forward("sonorad.features"):  # "N of M from the cache, K computed"
        features = log.stage("features", stages.extract, table, cfg, cache=cache, progress=progress_bars(progress),
                             say=log.say)
    outputs.write_features(features, out / "features")
    failures = pd.concat([failures, features.failures], ignore_index=True)
    failures.to_csv(out / "features" / "failures.csv", index=False)
    ids = stages.included(cohort, failures)
    n_failed = failures["case_id"].nunique()
    if n_failed:
        failed = sorted(set(failures["case_id"].astype(str)))
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        log.say(f"excluded {len(failed)} case(s): {shown} (reasons and fixes in features/failures.csv)")
    parts = cohort.split_labels().loc[ids]
    y = cohort.y.loc[ids]
    groups = cohort.groups.loc[ids].astype(str)
    stages.check_parts(parts, y, study.cohort)
    train = parts.index[parts == "train"]

    icc = None
    if cfg.icc is not None and cfg.radiomics:
        icc = log.stage("icc", stages.compute_icc, cohort.table.loc[train], cfg, seed=study.seed, cache=cache,
                        progress=progress_bars(progress))
        icc.to_csv(out / "features" / "icc.csv")
        kept = int((icc["icc"] >= cfg.icc["threshold"]).sum()) if "icc" in icc.columns else None
        log.say(f"ICC(3,1): {kept} of {len(icc)} features with ICC >= {cfg.icc['threshold']}")

    columns = stages.feature_columns(features, study, cfg)
    cohorts = stages.cohort_ids(parts)
    inputs = {name: stages.model_inputs(cohort.table, features, columns, rows, cfg) for name, rows in cohorts.items()}
    inputs, coded = stages.apply_unseen_levels(inputs, study.variables)
    for note in coded:
        log.say(f"note: {note}")
    notes += coded
    X_train = inputs["training"]
    hashes = {"params": None if features.params is None else content_hash(features.params),
              "training": content_hash(sorted(train), y.loc[train], X_train.loc[sorted(train)], groups.loc[train])}
    # what the fitted models depend on: the design and its settings, the variables, the seed and the
    # training data (cases, labels, patients, features); not paths, worker counts or the evaluation
    study_dict = {k: v for k, v in study.to_dict().items() if k in ("seed", "label", "variables", "split", "models")}
    fit_key = content_hash(study_dict, hashes["training"], None if icc is None else icc)
    meta = _metadata(study, cfg, hashes, len(train))
    _clear_outputs(out)

    design = stages.make_design(study, cfg, icc)
    cfg, note = _tuning_folds(cfg, design, y.loc[train])
    if note:
        notes.append(note)
        log.say(f"note: {note}")
    previous = _previous_seconds(out / "models" / "design.json", fit_key)
    if previous:
        log.say(f"fit: one step (selection, scores, tuning); the last fit in this folder took {duration(previous)}")
    with fitting_jobs(cfg.jobs):
        result = log.stage("fit", log.checkpoint, "fit", out / "models" / "design.joblib", fit_key,
                           lambda: stages.fit(design, X_train, y, groups, columns), metadata=meta)
    for formula in result.formulas.values():
        log.detail(formula)

    cnns = {}
    if cfg.cnn is not None:
        table = cohort.table.loc[train]
        for backbone in cfg.cnn["backbones"]:
            name = f"cnn_{backbone}"
            cnns[name] = log.stage(
                f"fine-tune {backbone}", log.checkpoint, name, out / "models" / f"{name}.joblib",
                content_hash(fit_key, name, cfg.cnn),
                lambda b=backbone: stages.fine_tune(table, y, groups, cfg.cnn, seed=study.seed, backbone=b),
                metadata=meta, describe=lambda m: {"best_epoch": int(m.best_epoch_)})

    probabilities = log.stage("predict", stages.predict, result, inputs, cnns,
                              {name: cohort.table.loc[rows] for name, rows in cohorts.items()})
    n_folds, fold = 0, None
    if cfg.cv_folds:
        fit_s = log.timings.get("fit") if "fit" not in log.reused else _previous_seconds(
            out / "models" / "design.json")
        log.say(f"training cross-validation: {cfg.cv_folds} patient-grouped folds, whole pipeline refitted in "
                f"each, one fold at a time ({cfg.jobs} worker(s) per fit)"
                + (f"; one fit took {duration(fit_s)}" if fit_s else ""))
        with fitting_jobs(cfg.jobs):
            oof, n_folds = log.stage(
                "training cross-validation", log.checkpoint, "training cross-validation",
                out / "models" / "training_cv_predictions.joblib", content_hash(fit_key, "cv", cfg.cv_folds),
                lambda: stages.cross_validate(design, X_train, y, groups, columns, folds=cfg.cv_folds,
                                              seed=study.seed, progress=log.progress("training cross-validation")),
                metadata=meta, describe=lambda r: {"folds": r[1]})
        if n_folds < cfg.cv_folds:
            from sonorad.models import cv_folds_note

            notes.append(cv_folds_note(cfg.cv_folds, y.loc[train])[1]
                         or f"evaluation.cv_folds = {cfg.cv_folds} was lowered to {n_folds} patient-grouped folds")
            log.say(f"note: {notes[-1]}")
        probabilities = {"training": probabilities["training"], "training_cv": oof,
                         **{k: v for k, v in probabilities.items() if k != "training"}}
        fold = stages.cv_folds(X_train, y, groups, folds=cfg.cv_folds, seed=study.seed)

    highlight = tuple(cfg.highlight) if cfg.highlight else tuple(dict.fromkeys([*result.highlight, *cnns]))
    evaluation = log.stage("statistics", stages.evaluate, probabilities, y, cv_auc=result.cv_auc, highlight=highlight,
                           level=cfg.level, seed=study.seed, groups=groups, cv_folds=fold)
    notes += evaluation.notes
    reference = log.stage("clinical reference", stages.reference_comparison, result, probabilities, y, X_train,
                          level=cfg.level, groups=groups)
    if reference is not None:
        log.say(reference.summary)
    centers = None
    if cfg.per_center and any(c in probabilities for c in ("internal", "external")):
        centers = log.stage("per-center statistics", stages.per_center, probabilities, y,
                            cohort.table.loc[ids, "center"].astype(str), evaluation.cutoffs, level=cfg.level,
                            groups=groups)
    missing = None
    if centers is not None:
        from sonorad.pipeline.centers import missing_predictor_centers

        missing = missing_predictor_centers(result.models, result.primary, inputs, cohort.table, study.variables,
                                            centers.table, cnns=tuple(cnns))
    from sonorad.pipeline import statistics

    bands = log.stage("ROC confidence bands", statistics.roc_bands, probabilities, y, evaluation.highlight,
                      level=cfg.level, seed=study.seed)
    boot = None
    if cfg.bootstrap:
        boot = log.stage("bootstrap validation", _bootstrap, design, result, X_train, y, groups, columns, cfg, study,
                         out / "models" / f"bootstrap_{content_hash(fit_key, 'bootstrap')[:16]}", log)
        if boot.validation.failures:
            why = "; ".join(sorted(set(boot.validation.failures.values())))
            notes.append(f"bootstrap: {len(boot.validation.failures)} of {boot.validation.n_resamples} resamples "
                         f"were not used ({why})")
    uni, multi, or_notes = stages.odds_ratio_tables(
        study.variables, cohort.table.loc[train], y.loc[train], result.training_scores,
        None if result.multivariable_predictors is None else list(result.multivariable_predictors))
    notes += or_notes

    explanations = log.stage("explain", _explain, result, study, cfg, inputs, probabilities, evaluation, cohort,
                             parts, y, cnns, log)
    notes += explanations.notes

    from sonorad.cohort.acquisition import acquisition_table
    from sonorad.pipeline.automatic_rois import automatic_by_cohort
    from sonorad.report import cohort_flow_counts

    study_result = StudyResult(
        study=study, config=cfg, out=out, parts=parts, y=y, failures=failures,
        flow=cohort_flow_counts(cohort.split_labels(), cohort.y, failures, patients=cohort.groups),
        feature_summary={**_feature_summary(features, cfg), **({"automatic_rois": {
            **rois.summary, "by_cohort": automatic_by_cohort(rois.rois, parts)}} if rois else {})},
        design=result, cnns=tuple(cnns),
        training_cv_folds=n_folds, probabilities=probabilities, evaluation=evaluation, odds_ratios=(uni, multi),
        explanations=explanations, centers=centers, bootstrap=boot, roc_bands=bands, patients=groups,
        reference=reference, missing_predictors=missing,
        acquisition=acquisition_table(cohort.table.loc[ids]), notes=tuple(notes),
        timings=dict(log.timings), reused=tuple(log.reused))
    written = outputs.write_tables(study_result, cases=cohort.table.loc[ids].filter(["patient_id", "center"]))
    if rois is not None:
        rois.rois.to_csv(out / "tables" / "automatic_rois.csv", index=False)
    outputs.write_gradcams(explanations, out / "figures" / "gradcam")
    bundle = log.stage("model bundle", _write_bundle, study, cfg, out, result, cnns, evaluation, features, X_train,
                       parts, y, cohort.table)
    log.say(f"model bundle: {bundle}")
    _show_results(study_result, log)
    study_result.save()
    if report:
        from sonorad.report.study_report import write_study_report

        path = log.stage("figures and report", write_study_report, study_result, log)
        log.say(f"report: {path}")
    log.attempt.update(log.timings, log.reused, finished=True)
    study_result = replace(study_result, timings=dict(log.timings))
    study_result.save()
    pd.Series(log.timings, name="seconds").rename_axis("stage").to_csv(out / "tables" / "timings.csv")
    log.say(f"done: {len(written)} tables in {out / 'tables'}")
    return study_result


def _tuning_folds(cfg: RunConfig, design, y_train) -> tuple[RunConfig, str | None]:
    """``cfg`` with the folds the design's tuning will use, and the sentence saying they were lowered.

    Tuning folds are stratified, so ``models.cv`` is lowered to the training cohort's smallest class
    (:func:`sonorad.selection.make_grouped_cv`); the report states the folds used, not those asked for.
    """
    import inspect

    from sonorad.models import cv_folds_note

    requested = design.section.get("cv")
    if requested is None:  # the engine's own default
        param = inspect.signature(design.engine).parameters.get("cv")
        requested = None if param is None else param.default
    if not isinstance(requested, int):
        return cfg, None
    n_folds, note = cv_folds_note(requested, y_train, key="models.cv")
    return replace(cfg, tuning_folds=n_folds), note


def _previous_seconds(meta: Path, key: str | None = None) -> float | None:
    """The wall time a checkpoint's metadata recorded (of another key, when ``key`` is given), if any."""
    import json

    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if key is not None and data.get("key") == key:
        return None          # the same fit: it will be reused, not rerun
    seconds = data.get("seconds")
    return float(seconds) if isinstance(seconds, (int, float)) and seconds > 0 else None


def _bootstrap(design, result, X_train, y, groups, columns, cfg: RunConfig, study, folder: Path, log: RunLog):
    """Bootstrap validation of the chosen model; resamples already in ``folder`` are reused."""
    done = len(list(folder.glob("resample_*.json"))) if folder.is_dir() else 0
    fit_s = log.timings.get("fit") if "fit" not in log.reused else _previous_seconds(folder.parent / "design.json")
    expected = f"; each refits the whole design (one fit took {duration(fit_s)})" if fit_s else ""
    log.say(f"bootstrap validation of {result.primary}: {cfg.bootstrap} resamples of patients ({done} already in "
            f"{folder}), {cfg.jobs} in parallel{expected}")
    with fitting_jobs(cfg.jobs):  # its workers, like the fit's, exit if this process is killed
        boot = stages.bootstrap(design, result, X_train, y, groups, columns, n_resamples=cfg.bootstrap,
                                seed=study.seed, jobs=cfg.jobs, checkpoint=folder,
                                progress=log.progress("bootstrap", resumed=min(done, cfg.bootstrap)))
    if done >= cfg.bootstrap:
        log.reused.append("bootstrap validation")
    t = boot.validation.table
    log.say(f"bootstrap: AUC apparent {t.loc['AUC', 'apparent']:.3f}, optimism {t.loc['AUC', 'optimism']:.3f}, "
            f"corrected {t.loc['AUC', 'corrected']:.3f} ({int(t.loc['AUC', 'n'])} resamples used)")
    return boot


def _explain(result, study, cfg, inputs, probabilities, evaluation, cohort, parts, y, cnns, log):
    from sonorad.pipeline.explanations import explain

    return explain(result, study=study, config=cfg, inputs=inputs, probabilities=probabilities,
                   primary=evaluation.primary_cohort, cohort_table=cohort.table, parts=parts, y=y, cnns=cnns,
                   say=log.say)


def _write_bundle(study, cfg, out, result, cnns, evaluation, features, X_train, parts, y, cohort_table) -> Path:
    """``OUT/model/``: every model, the feature settings, the variable schema, the model card and the
    study's segmenter (when it named one)."""
    from sonorad.bundle import roi_table, write_bundle

    deep = [{"backbone": backbone, "margin": cfg.margin, "mask_background": cfg.mask_background,
             "batch_size": cfg.batch_size} for backbone in cfg.dl_backbones]
    train = X_train.index
    card = stages.model_card(study, result, evaluation, parts, y, cohort_table)
    return write_bundle(out / "model", models={**result.models, **cnns}, chosen=result.primary,
                        cutoffs=evaluation.cutoffs["threshold"].astype(float).to_dict(),
                        features={"radiomics_params": features.params, "deep": deep}, variables=study.variables,
                        training_input=X_train, training_rois=roi_table(cohort_table.loc[train]), card=card,
                        study=study.to_dict(), exclude=cfg.bundle_exclude, seed=study.seed,
                        performance=_cutoff_counts(evaluation),
                        uncertainty={"labels": y.loc[train], "scores": result.training_scores},
                        segmenter=study.masks.segmenter)


def _cutoff_counts(evaluation) -> dict | None:
    """Each model's confusion counts at its cut-off on the cohort the study is judged on (external,
    else internal, else training CV), for the bundle's ``performance.json``."""
    metrics, cohort = evaluation.metrics, evaluation.primary_cohort
    rows = metrics[(metrics["cohort"] == cohort)].dropna(subset=["tp", "fp", "tn", "fn"])
    if not len(rows):
        return None
    return {"cohort": cohort, "models": {str(r["model"]): {k: int(r[k]) for k in ("tp", "fp", "tn", "fn")}
                                         for _, r in rows.iterrows()}}


def _feature_summary(features: stages.Features, cfg: RunConfig) -> dict:
    summary = {"n_features": {name: int(t.shape[1]) for name, t in features.tables().items()}}
    if features.params is not None:
        setting = features.params.get("setting", {}) or {}
        summary["radiomics"] = {"image_types": list((features.params.get("imageType") or {}).keys()),
                                "feature_classes": list((features.params.get("featureClass") or {}).keys()),
                                "bin_width": setting.get("binWidth"),
                                "n_features": int(features.radiomics.shape[1])}
        if cfg.icc is not None:
            summary["radiomics"]["icc_threshold"] = cfg.icc["threshold"]
    return summary


def _clear_outputs(out: Path) -> None:
    """Remove the previous run's tables and figures: every file there is rewritten by this run."""
    import shutil

    for name in ("tables", "figures"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in ("report.html", "result.joblib"):
        if (out / name).exists():
            (out / name).unlink()


def _show_results(result: StudyResult, log: RunLog) -> None:
    metrics = result.evaluation.metrics
    m = metrics[metrics["cohort"] == result.primary].set_index("model")
    cols = [c for c in ("auc", "auc_low", "auc_high", "accuracy", "precision", "recall", "f1", "train_cv_auc")
            if c in m.columns]
    from sonorad.report.paper import model_order

    # the report's order (the chosen model, then by training tuning-CV AUC), never by validation AUC
    log.detail(f"\n{result.primary} cohort (cut-off: training Youden):\n"
               + m.loc[model_order(result, list(m.index)), cols].round(3).to_string() + "\n")
