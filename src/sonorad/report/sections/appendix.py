"""Study report sections at the end: the TRIPOD+AI and CLEAR checklists and the files of the run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sonorad.report.sections.common import SECTION_TITLES

__all__ = ["add_checklist", "add_files", "output_files"]


def add_checklist(report, run) -> None:
    from sonorad.report import tripod_checklist
    from sonorad.report.clear import run_clear_checklist
    from sonorad.report.tripod import segmentation_items

    where = {"6a": "Methods", "8a": "Methods", "9a": "Participants", "12a": "Methods", "12b": "Methods",
             "12c": "Feature selection and scores", "12e": "Methods; Model comparison",
             "12f": "Methods", "12g": "Calibration; Decision curves", "20a": "Participants (flow figure)",
             "20b": "Participants (baseline table)", "22": "Feature selection and scores",
             "23a": "Model comparison; ROC curves; Calibration"}
    n = {p: int((run.parts == p).sum()) for p in ("train", "internal", "external")}
    events = {p: int(run.y.loc[run.parts.index[run.parts == p]].sum()) for p in n}
    where["11"] = ("Methods: declared variables imputed with training-cohort medians / modes plus a missingness "
                   f"indicator; {len(set(run.failures['case_id']))} case(s) excluded, each with its reason "
                   "(Participants)")
    where["12e"] = ("Methods; Model comparison. Cut-off: each model's Youden cut-off on the training cohort "
                    f"({'cross-validated' if run.training_cv_folds else 'apparent'} predictions), applied unchanged")
    names = {"train": "training", "internal": "internal validation", "external": "external validation"}
    where["20a"] = ("Participants: " + ", ".join(f"{names[k]} {n[k]} cases ({events[k]} events)" for k in n if n[k]))
    where["15"] = ("Model comparison: each model outputs P(positive); the high / low risk cut-off is its Youden "
                   "cut-off chosen on the training cohort (tables/thresholds.csv)")
    where["21"] = "Participants (flow figure); Model comparison, Results per center (n and events per analysis)"
    if run.centers is not None and len(run.centers.table):
        where["12d"] = "Results per center (every metric per center, Cochran's Q / I² across centers)"
        where["23b"] = "Results per center"
    if run.bootstrap is not None:
        where["12c"] = ("Feature selection and scores; internal validation: Optimism-corrected internal validation "
                        "(bootstrap, whole design refitted)")
    where["12f"] = ("No updating in this run: the models are evaluated as fitted. A site can recalibrate the model "
                    "bundle on local labelled cases with `sonorad recalibrate` (recorded in the new bundle)")
    if getattr(run.explanations, "nomogram", None) is not None:  # only a nomogram actually drawn counts
        where["22"] += "; Nomogram"
    where["22"] = where["22"] + ("; model bundle OUT/model (recalibrate it for a new site with "
                                 "`sonorad recalibrate`)")
    where.update(segmentation_items(run))
    table = tripod_checklist(where)
    report.add_section("checklist", SECTION_TITLES["checklist"],
                       text="TRIPOD+AI (Collins et al., BMJ 2024;385:e078378) and CLEAR (Kocak et al., Insights "
                            "Imaging 2023;14:75): where this report addresses each item. Items marked 'to be "
                            "completed by the authors' need information the study file does not hold.")
    report.add_table("checklist", table, "TRIPOD+AI items", index=False, float_format="{}")
    clear = run_clear_checklist(run)
    report.add_table("checklist", clear, f"CLEAR items ({int((clear['filled_by'] == 'run').sum())} of {len(clear)} "
                     "answered by this run; tables/paper/clear_checklist.csv)", index=False, float_format="{}")


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".nii", ".gz", ".nrrd", ".svg"}


def output_files(out: Path) -> list[str]:
    """What the run wrote: no cache, no partial files, no input images (a cohort folder inside OUT), and
    the figure and Grad-CAM images summarised per folder."""
    written = ("tables", "figures", "models", "model", "features")
    listing, images = [], {}
    for p in sorted(out.rglob("*")):
        if not p.is_file() or ".cache" in p.parts or p.name.endswith((".part", ".tmp")):
            continue
        rel = p.relative_to(out)
        if len(rel.parts) > 1 and rel.parts[0] not in written:
            continue                      # e.g. the demo's cohort images: inputs, not outputs
        if p.suffix.lower() in _IMAGE_SUFFIXES:
            images.setdefault(str(rel.parent), 0)
            images[str(rel.parent)] += 1
            continue
        if len(rel.parts) > 2 and rel.parts[0] == "models" and rel.parts[1].startswith("bootstrap_"):
            images.setdefault(str(rel.parent), 0)
            images[str(rel.parent)] += 1
            continue
        listing.append(str(rel))
    listing += [f"{folder}/ ({n} files)" for folder, n in images.items()]
    return sorted(listing)


def add_files(report, run) -> None:
    out = run.out
    listing = output_files(out)
    timings = pd.Series(run.timings, name="seconds").rename_axis("stage").to_frame()
    report.add_section("files", SECTION_TITLES["files"],
                       text="tables/predictions.csv holds every case's probability from every model (case_id, "
                            "patient_id, center, cohort, model, label, probability), so every statistic here can "
                            "be recomputed in "
                            "another tool. models/ holds the fitted pipelines with their metadata (package "
                            "versions, seed, feature-parameter and training-cohort hashes).")
    command = getattr(run.config, "command", None) or f"sonorad run {run.study.source or 'study.yaml'} --out {out}"
    report.add_code("files", command, caption="Command")
    report.add_table("files", timings, "Wall time per stage (seconds, this run)", float_format="{:.1f}")
    for i, attempt in enumerate(getattr(run.config, "attempts", ()) or (), 1):
        earlier = pd.Series(attempt.get("timings", {}), name="seconds", dtype=float).rename_axis("stage").to_frame()
        report.add_table("files", earlier, f"Wall time per stage (seconds), earlier attempt {i} "
                                           f"({attempt.get('started', '')}: {attempt.get('command', '')})",
                         float_format="{:.1f}")
    report.add_code("files", "\n".join(listing), caption="Output files")
