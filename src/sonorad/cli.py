"""Command-line interface: parses arguments, calls the library, prints progress.

Thin on purpose: every command is a few lines over a library function, so what the CLI does a
script can do too. Heavy imports happen inside the command functions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sonorad import __version__
from sonorad.errors import SonoradError


def _cmd_extract(args: argparse.Namespace) -> int:
    from sonorad.features.extract import extract_to_dir
    from sonorad.parallel import resolve_scheduler

    backbones = [b.strip() for b in args.deep.split(",") if b.strip()] if args.deep else []
    if args.no_radiomics and not backbones:
        raise SonoradError("--no-radiomics leaves nothing to extract: add --deep BACKBONE")
    summary = extract_to_dir(
        Path(args.cases),
        Path(args.out),
        params=Path(args.params) if args.params else None,
        radiomics=not args.no_radiomics,
        backbones=backbones,
        jobs=args.jobs,
        cache_dir=Path(args.cache) if args.cache else None,
        progress=not args.quiet,
        scheduler=resolve_scheduler(args.scheduler),
        shared_fs=args.shared_fs,
    )
    print(summary)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from sonorad.cohort import load_cohort
    from sonorad.study import load_study

    study = load_study(Path(args.study)) if args.study else None
    if study is not None:
        from sonorad.runner import run_config

        run_config(study)  # the features / models / evaluation sections, before the table's files are read
    if args.no_labels:
        print(_unlabelled_summary(Path(args.cases), study))
        return 0
    cohort = load_cohort(Path(args.cases), study=study)
    from sonorad.errors import CohortError
    from sonorad.pipeline.automatic_rois import check_automatic_rois
    from sonorad.pipeline.preflight import check_cohort

    segmenter_problems = check_automatic_rois(cohort.table, study)  # masks.segmenter loads; boxes in their images
    if segmenter_problems:
        raise CohortError(segmenter_problems, source=str(args.cases))

    checked = check_cohort(cohort)  # what would fail after extraction, before it
    print("\n".join([cohort.summary(), *checked.lines, *(f"  - {w}" for w in checked.warnings)]))
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from sonorad.study.schema import study_json_schema, write_json_schema

    if args.out:
        print(f"study-file JSON Schema written: {write_json_schema(args.out)}")
    else:
        import json

        print(json.dumps(study_json_schema(), indent=2, ensure_ascii=False))
    return 0


def _unlabelled_summary(cases: Path, study) -> str:
    """Validate a table of cases to score (no label column needed) and describe it."""
    from sonorad.cohort import read_cases, validate_cases
    from sonorad.errors import CohortError

    label_column = study.label.column if study is not None else "label"
    table = read_cases(cases, label_column=label_column, require_label=False)
    problems = validate_cases(table, study=study, require_label=False)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise CohortError(errors, source=str(cases))
    warnings = [p for p in problems if p.severity != "error"]
    lines = [f"Cases {cases} (labels not required)",
             f"  {len(table)} cases, {table['patient_id'].nunique()} patients, {table['center'].nunique()} centers"]
    if warnings:
        lines += ["", f"{len(warnings)} warning(s):"] + [f"  - {w}" for w in warnings]
    return "\n".join(lines)


def _cmd_synth(args: argparse.Namespace) -> int:
    from sonorad.synthetic import make_cohort

    csv = make_cohort(
        Path(args.out),
        scenario=args.scenario,
        seed=args.seed,
        signal=args.signal,
        n_patients=args.n_patients,
    )
    print(f"synthetic cohort written: {csv}")
    return 0


def _cmd_icc(args: argparse.Namespace) -> int:
    from sonorad.features.icc import icc_to_dir
    from sonorad.parallel import resolve_scheduler

    summary = icc_to_dir(
        Path(args.cases),
        Path(args.out),
        params=Path(args.params) if args.params else None,
        n_cases=args.n_cases,
        seed=args.seed,
        jobs=args.jobs,
        progress=not args.quiet,
        scheduler=resolve_scheduler(args.scheduler),
        shared_fs=args.shared_fs,
        segmenter=Path(args.segmenter) if args.segmenter else None,
    )
    print(summary)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from sonorad.runner import run_study

    result = run_study(Path(args.study), Path(args.out), cohort=Path(args.cohort) if args.cohort else None,
                       jobs=args.jobs, progress=not args.quiet, report=not args.no_report,
                       scheduler=args.scheduler, shared_fs=args.shared_fs)
    report = "no report (--no-report)" if args.no_report else f"report {result.out / 'report.html'}"
    print(f"sonorad run: done; {report}, tables {result.out / 'tables'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from sonorad.pipeline.result import StudyResult
    from sonorad.report.study_report import write_study_report

    path = write_study_report(StudyResult.load(Path(args.out)))
    print(f"sonorad report: {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from sonorad.demo import run_demo

    run_demo(Path(args.out), seed=args.seed, jobs=args.jobs, progress=not args.quiet)
    return 0


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster: its scheduler's address (tcp://host:8786), or slurm / slurm:N "
                        "(dask-jobqueue); default: $SONORAD_SCHEDULER, else local processes (docs/scaling.md)")
    p.add_argument("--shared-fs", action="store_true",
                   help="with --scheduler: workers read image and mask paths themselves (shared filesystem) "
                        "instead of receiving the files' bytes with each task")


def _add_key_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key-file", metavar="PATH",
                   help="bundle signing key (HMAC-SHA256; default $SONORAD_BUNDLE_KEY_FILE): bundles written are "
                        "signed with it, and only bundles signed with it are loaded (docs/predict.md)")


def _use_key_file(args: argparse.Namespace) -> None:
    """--key-file PATH: the library reads the key file from $SONORAD_BUNDLE_KEY_FILE."""
    if getattr(args, "key_file", None):
        import os

        from sonorad.bundle.signing import KEY_ENV

        os.environ[KEY_ENV] = str(args.key_file)


def _cmd_recalibrate(args: argparse.Namespace) -> int:
    from sonorad.bundle.recalibrate import recalibrate_bundle

    models = args.models.split(",") if args.models else None
    result = recalibrate_bundle(Path(args.bundle), Path(args.cases), method=args.method, out=Path(args.out),
                                folds=args.folds, seed=args.seed, models=models, jobs=args.jobs, cache=args.cache,
                                progress=not args.quiet, force=args.force)
    r = result.record
    print(f"sonorad recalibrate: {r['method']} on {r['n_cases']} local cases ({r['n_events']} events); new bundle "
          f"{result.path}; report {result.path / 'recalibration' / 'report.md'}")
    for warning in r.get("warnings") or []:
        print(f"sonorad recalibrate: WARNING (written with --force): {warning}", file=sys.stderr)
    for model, notes in (r.get("notes") or {}).items():
        for note in notes:
            print(f"sonorad recalibrate: note: {model}: {note}")
    v = result.validation
    cols = ["model", "predictions", "auc", "intercept", "slope", "brier", "hl_p"]
    print(v[cols].round(3).to_string(index=False))
    if len(result.excluded):
        print(f"{len(result.excluded)} local case(s) not used: {', '.join(map(str, result.excluded['case_id'][:5]))}"
              + (" ..." if len(result.excluded) > 5 else ""))
    return 0


def _propose_box_only_rois(bundle, cases_csv: Path, out: Path):
    """The cases table, with the masks of its box-only cases proposed by the bundle's segmenter.

    As in the study run (:func:`sonorad.pipeline.automatic_rois.propose_rois`): masks under
    ``out/auto_masks/``; a flagged proposal excludes its case, with the reason. Without a segmenter in
    the bundle, or without box-only cases, the table is returned as read and ``None``.
    """
    from sonorad.bundle.inputs import read_cases_for_prediction
    from sonorad.pipeline.automatic_rois import automatic_cases, propose_rois

    table = read_cases_for_prediction(cases_csv)
    if bundle.segmenter is None or not len(automatic_cases(table)):
        return table, None
    rois = propose_rois(table, bundle.segmenter, out)
    print(f"sonorad predict: {rois.summary['n_proposed']} mask(s) proposed from boxes by the bundle's segmenter, "
          f"{rois.summary['n_excluded']} flagged and excluded ({out / 'automatic_rois.csv'})")
    excluded = set(rois.failures["case_id"].astype(str))
    return rois.table[~rois.table.index.astype(str).isin(excluded)], rois


def _cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from sonorad.bundle import load_bundle

    bundle = load_bundle(Path(args.bundle))
    for warning in bundle.load_warnings:
        print(f"sonorad predict: warning: {warning}", file=sys.stderr)
    out = Path(args.out)
    cases, rois = _propose_box_only_rois(bundle, Path(args.cases), out)
    result = bundle.predict(cases, gradcam_dir=out / "gradcam" if args.gradcam else None,
                            jobs=args.jobs, cache=Path(args.cache) if args.cache else None, progress=not args.quiet)
    if rois is not None:
        result.failures = pd.concat([rois.failures, result.failures], ignore_index=True)
    written = result.write(out)
    if rois is not None:
        rois.rois.to_csv(out / "automatic_rois.csv", index=False)
        written.append(out / "automatic_rois.csv")
    n_cases = len(set(result.scored_cases) | set(result.failures["case_id"]))
    n_warned = result.warnings.loc[result.warnings["case_id"] != "", "case_id"].nunique()  # "": the whole batch
    print(f"sonorad predict: {len(result.scored_cases)} of {n_cases} case(s) scored with {len(bundle.models)} "
          f"model(s) (chosen: {bundle.chosen}); {n_warned} case(s) with warnings, "
          f"{result.failures['case_id'].nunique()} with failures")
    for note in result.notes:
        print(f"sonorad predict: note: {note}")
    print("written: " + ", ".join(str(p) for p in written))
    if not result.scored_cases:
        print(f"sonorad predict: error: no case could be scored; reasons and fixes in {out / 'failures.csv'}",
              file=sys.stderr)
        return 2
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from sonorad.serve import UploadLimits, serve

    limits = UploadLimits(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                          max_inflight=args.max_inflight)
    serve(Path(args.bundle), host=args.host, port=args.port, token=args.token, token_file=args.token_file,
          keep=Path(args.keep) if args.keep else None, limits=limits, allow_missing=args.allow_missing,
          session_hours=args.session_hours, body_seconds=args.body_timeout,
          max_request_seconds=args.request_timeout, max_receiving=args.max_receiving, workers=args.workers,
          max_queue=args.max_queue, segmenter=Path(args.segmenter) if args.segmenter else None)
    return 0


def _cmd_segment_train(args: argparse.Namespace) -> int:
    from sonorad.cohort import read_cases
    from sonorad.segment.data import load_training_cases
    from sonorad.segment.io import load_segmenter, save_segmenter
    from sonorad.segment.train import train_segmenter

    initial = load_segmenter(Path(args.initial)) if args.initial else None  # refused before any reading
    table = read_cases(Path(args.cases), require_label=False)
    cases = load_training_cases(table, progress=not args.quiet)  # every bad case named, before training
    segmenter = train_segmenter(cases, image_size=args.size, margin=args.margin, jitter=args.jitter,
                                epochs=args.epochs, max_minutes=args.max_minutes, seed=args.seed,
                                lr=args.lr, initial=initial, device=args.device, threads=args.threads,
                                centers=table["center"], progress=not args.quiet)
    out = save_segmenter(segmenter, Path(args.out))
    v, t = segmenter.meta["validation"], segmenter.meta["training"]
    print(f"sonorad segment train: {out} written; validation Dice median {v['dice_median']:.3f} "
          f"(mean {v['dice_mean']:.3f}), {t['epochs_run']} epoch(s) in {t['seconds']:.0f} s on {t['device']}")
    return 0


def _cmd_segment_predict(args: argparse.Namespace) -> int:
    from sonorad.segment.io import load_segmenter
    from sonorad.segment.predict import segment_cases

    segmenter = load_segmenter(Path(args.model))
    result = segment_cases(segmenter, Path(args.cases), Path(args.out), boxes=args.boxes, progress=not args.quiet)
    print(f"sonorad segment predict: {result.summary()}")
    print("written: " + ", ".join(str(p) for p in result.paths.values()))
    if result.cases.empty:
        print(f"sonorad segment predict: error: no usable mask; reasons and fixes in {result.paths['failures']}",
              file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sonorad",
        description="Ultrasound deep-learning radiomics: images + masks -> features -> models -> report.",
    )
    parser.add_argument("--version", action="version", version=f"sonorad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "extract",
        help="extract radiomics (PyRadiomics, 2D) and/or deep features for every case of a cohort table",
        description=(
            "Extract features for every case of CASES.csv. Writes DIR/radiomics.parquet and "
            "DIR/deep_<backbone>.parquet (indexed by case_id) and DIR/failures.csv (one row per case "
            "that could not be used, with the reason). Results are cached per case, so an interrupted "
            "run resumes and a repeated run extracts nothing new."
        ),
    )
    p.add_argument("cases", help="cohort table (CSV with case_id, patient_id, center, image, mask, label)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--params", help="PyRadiomics parameter file (YAML); default: sonorad's 2D file")
    p.add_argument("--deep", help="comma-separated CNN backbones for deep features, e.g. efficientnet_lite0")
    p.add_argument("--no-radiomics", action="store_true", help="skip PyRadiomics features")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--cache", help="feature cache folder (default: DIR/.cache)")
    _add_cluster_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser(
        "validate",
        help="check a cohort table (and optionally a study file) and list every problem by case id",
        description="Validate CASES.csv: columns, files, labels, centers and splits; report every problem at once.",
    )
    p.add_argument("cases", help="cohort table (CSV)")
    p.add_argument("--study", help="study file (YAML) declaring variables, positive label and split")
    p.add_argument("--no-labels", action="store_true",
                   help="the table holds new cases to score: the label column is optional and not checked")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of the study file (for editors; docs/study-file.md)",
        description="Print the study file's JSON Schema, generated from its declaration, or write it to a file.",
    )
    p.add_argument("--out", help="write it to this file (the shipped copy: src/sonorad/study/study.schema.json)")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser(
        "synth",
        help="write a synthetic multicenter ultrasound cohort (PNG images, masks, cases.csv)",
        description="Write a deterministic synthetic multicenter cohort with a known signal strength.",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--scenario", "--design", dest="scenario", default="clnm",
                   choices=["clnm", "primary_secondary"],
                   help="cohort shape of seed study 1 (clnm) or 2 (primary_secondary); --design is an alias")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--signal", type=float, default=1.0, help="signal strength (0 = labels carry no signal)")
    p.add_argument("--n-patients", type=int, default=None, help="number of patients (default: the seed study's)")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser(
        "icc",
        help="feature reproducibility: ICC(3,1) between two readers' masks or perturbed masks",
        description=(
            "Compute ICC(3,1) per radiomics feature between the 'mask' and 'mask2' columns, or, without "
            "mask2, between each mask and perturbed copies of it (erosion/dilation, small shifts). Writes DIR/icc.csv."
        ),
    )
    p.add_argument("cases", help="cohort table (CSV)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--params", help="PyRadiomics parameter file (YAML)")
    p.add_argument("--n-cases", type=int, default=None, help="use a random subset of this many cases")
    p.add_argument("--seed", type=int, default=0, help="seed for the subset and the perturbations")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    p.add_argument("--segmenter", metavar="DIR",
                   help="a segmenter folder (`sonorad segment train`): its masks, from the `box` column or the "
                        "manual mask's box, are the second reader (docs/segmentation.md)")
    _add_cluster_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_icc)

    p = sub.add_parser(
        "demo",
        help="build the synthetic study-1-shaped cohort and run sonorad on it",
        description="Build the built-in synthetic multicenter cohort and run sonorad end to end on it.",
    )
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--jobs", type=int, default=2, help="parallel worker processes (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "run",
        help="run a whole study from its study file: features, models, statistics, figures, report",
        description=(
            "Run a study end to end: validate the cohort, extract features (cached), fit the model family "
            "on the training cohort, cross-validate it, predict every cohort, compute every statistic and "
            "write tables/, figures/, models/ and report.html under --out. Rerunning into the same folder "
            "resumes: cached features and saved models are reused when nothing they depend on changed."
        ),
    )
    p.add_argument("study", help="study file (YAML); see docs/running-a-study.md")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--cohort", help="cohort table to use instead of the study's `cohort` (same columns)")
    p.add_argument("--jobs", type=int, default=None, help="parallel worker processes (default: features.jobs or 1)")
    p.add_argument("--no-report", action="store_true", help="tables only: no figures and no report.html")
    _add_cluster_options(p)
    _add_key_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "report",
        help="draw the figures and report.html of a finished run again, without refitting anything",
        description="Re-render OUT/report.html and OUT/figures/ from the result a finished `sonorad run` saved.",
    )
    p.add_argument("out", help="the run's output folder")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "recalibrate",
        help="refit only the calibration of a model bundle on labelled cases from a new site",
        description=(
            "Recalibrate BUNDLE on LOCAL_CASES.csv (labelled cases from the new site, scored with the bundle): "
            "intercept (calibration-in-the-large), logistic (intercept and slope) or isotonic. Writes a new "
            "bundle recording the method, cases, events, date and the original bundle's sha256, with a "
            "patient-grouped cross-validated before/after calibration report (recalibration/report.md). "
            "The features and models are not refitted; intercept and logistic keep the AUC unchanged."
        ),
    )
    p.add_argument("bundle", help="the model bundle (OUT/model of a run, or a .zip of it)")
    p.add_argument("cases", help="labelled local cases table (CSV as for prediction, with the label column)")
    p.add_argument("--method", required=True, choices=["intercept", "logistic", "isotonic"])
    p.add_argument("--out", required=True, help="the new bundle folder")
    p.add_argument("--folds", type=int, default=5, help="folds of the local cross-validated validation (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds")
    p.add_argument("--models", help="comma-separated models to recalibrate (default: all but fine-tuned CNNs)")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes of the feature extraction")
    p.add_argument("--cache", help="feature cache folder (e.g. a run's features/.cache)")
    p.add_argument("--force", action="store_true",
                   help="write the new bundle even when a model ranks the local cases backwards (local AUC < 0.5 "
                        "or cross-validated slope <= 0); the report then carries the warning")
    _add_key_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_recalibrate)

    p = sub.add_parser(
        "predict",
        help="score new cases with a saved model bundle (OUT/model of a run)",
        description=(
            "Score every case of CASES.csv with the models of BUNDLE (features are extracted with the "
            "bundle's saved settings). Writes DIR/predictions.csv (case_id, model, probability, risk group at "
            "the saved cut-off), contributions.csv (top SHAP contributions of the chosen model), warnings.csv "
            "(inputs unlike the training cohort's), failures.csv (cases that could not be scored, with the fix) "
            "and, when CASES.csv has labels, metrics.csv. Exit status 2 when no case could be scored."
        ),
    )
    p.add_argument("bundle", help="model bundle folder (OUT/model of sonorad run) or a zip of it")
    p.add_argument("cases", help="cases table (CSV with case_id, patient_id, center, image, mask and the "
                                 "study's variables; label optional)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--gradcam", action="store_true", help="also write a Grad-CAM PNG per case (DIR/gradcam)")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes for radiomics (default 1)")
    p.add_argument("--cache", help="feature cache folder to reuse (e.g. a run's features/.cache)")
    _add_key_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "segment",
        help="box-prompted lesion segmentation: train on a cohort's masks, propose masks from boxes",
        description="Train a box-prompted lesion segmenter on a cohort's masks, or propose masks with one "
                    "(docs/segmentation.md).",
    )
    seg = p.add_subparsers(dest="segment_command", required=True, metavar="STEP")
    q = seg.add_parser("train", help="train a segmenter on the masks of CASES.csv",
                       description="Train a U-Net (EfficientNet-Lite0 encoder) on the crops around each mask's "
                                   "box, with box jitter and a patient-grouped validation split. Writes "
                                   "DIR/segmenter.pt (state dict) and DIR/segmenter.json (settings, cohort counts, "
                                   "validation Dice).")
    q.add_argument("cases", help="cohort table (CSV with case_id, patient_id, center, image, mask; label optional)")
    q.add_argument("--out", required=True, help="output folder of the segmenter")
    q.add_argument("--size", type=int, default=128, help="input side in pixels, a multiple of 32 (default 128)")
    q.add_argument("--margin", type=float, default=0.2, help="crop margin around the box, share of its side")
    q.add_argument("--jitter", type=float, default=0.15, help="largest box-edge move in training, share of its side")
    q.add_argument("--epochs", type=int, default=40, help="most passes over the training cases (default 40)")
    q.add_argument("--max-minutes", type=float, default=40.0, help="time bound of the training (default 40)")
    q.add_argument("--seed", type=int, default=0, help="seed of the split, jitter and initialisation")
    q.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate of the decoder (encoder: a third; "
                   "default 0.002)")
    q.add_argument("--from", dest="initial", metavar="SEGMENTER",
                   help="start from a trained segmenter's weights (adapting it to a new site's masks); its "
                        "--size and --margin are kept")
    q.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    q.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    q.add_argument("--quiet", action="store_true", help="no progress lines")
    q.set_defaults(func=_cmd_segment_train)
    q = seg.add_parser("predict", help="propose a mask per case from its box (or its mask's box)",
                       description="Propose a lesion mask for every case of CASES.csv from its 'box' cell "
                                   "(x0,y0,x1,y1 in pixels) or, without one, from its mask's box (Dice against "
                                   "the mask is then reported). Writes DIR/masks/*.png, DIR/cases.csv pointing to "
                                   "them, DIR/segmentation.csv (confidence, flags, Dice) and DIR/failures.csv.")
    q.add_argument("model", help="segmenter folder written by `sonorad segment train`")
    q.add_argument("cases", help="cases table (CSV with case_id, patient_id, center, image, mask and/or box)")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--boxes", choices=["auto", "box", "mask"], default="auto",
                   help="box source: the box column when filled, else the mask's box (auto); only box; only mask")
    q.add_argument("--quiet", action="store_true", help="no progress lines")
    q.set_defaults(func=_cmd_segment_predict)

    p = sub.add_parser(
        "serve",
        help="web risk calculator for one patient: image, ROI and clinical values -> risk, SHAP, Grad-CAM",
        description=(
            "Serve a model bundle as a web calculator (page and JSON API, POST /api/predict) that works "
            "offline. Binds 127.0.0.1 unless --host says otherwise; any other binding needs an access "
            "token, best given in the SONORAD_TOKEN environment variable or with --token-file (--token "
            "shows in the process list). "
            "Uploads are read in memory and nothing is written to disk unless --keep DIR is given. "
            "See docs/serve.md."
        ),
    )
    p.add_argument("bundle", help="model bundle folder (OUT/model of sonorad run) or a zip of it")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--token-file", metavar="PATH",
                   help="file holding the access token on one line (chmod 600); or set SONORAD_TOKEN. "
                        "A token is required when --host is not a loopback address")
    p.add_argument("--token", help="access token on the command line (visible in `ps`: prefer SONORAD_TOKEN "
                                   "or --token-file)")
    p.add_argument("--session-hours", type=float, default=None,
                   help="lifetime of a login session (default 8, or SONORAD_SESSION_HOURS)")
    p.add_argument("--keep", help="write each request's image, mask and result under this folder")
    p.add_argument("--allow-missing", action="store_true",
                   help="let the model impute variables left empty (default: every variable is required)")
    p.add_argument("--max-upload-mb", type=float, default=32.0, help="largest request body in MB (default 32)")
    p.add_argument("--max-pixels", type=int, default=16 * 1024 * 1024,
                   help="largest image in decoded pixels, checked from the header (default 16777216)")
    p.add_argument("--max-inflight", type=int, default=16,
                   help="complete requests processed at once; more are answered 503 (default 16)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes scoring in parallel (default: one per core; 0: in the server's process)")
    p.add_argument("--max-queue", type=int, default=8,
                   help="predictions that may wait for a worker; more are answered 503 (default 8)")
    p.add_argument("--max-receiving", type=int, default=64,
                   help="uploads still arriving at once; more are answered 503 (default 64)")
    p.add_argument("--body-timeout", type=float, default=60.0,
                   help="seconds allowed for a whole upload to arrive; slower ones get 408 (default 60)")
    p.add_argument("--request-timeout", type=float, default=120.0,
                   help="seconds of processing allowed to one request (default 120)")
    p.add_argument("--segmenter", metavar="DIR",
                   help="a box-prompted segmenter (folder of `sonorad segment train`): the page then proposes "
                        "the lesion outline from a box drawn around it (default: the bundle's own segmenter, "
                        "when its study named one under masks.segmenter)")
    _add_key_option(p)
    p.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _use_key_file(args)
        return args.func(args)
    except SonoradError as exc:
        print(f"sonorad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sonorad {args.command}: interrupted; finished work is cached, rerun to resume", file=sys.stderr)
        return 130
