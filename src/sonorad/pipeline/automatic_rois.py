"""Automatic ROIs in a study: cases with a ``box`` and no ``mask`` get their mask from ``masks.segmenter``.

Two steps, both before any extraction:

- :func:`check_automatic_rois` (``validate``): the segmenter folder loads (safely, see
  :func:`sonorad.segment.io.load_segmenter`) and every box lies inside its image
  (:func:`sonorad.imaging.boxes.check_box`); every problem at once, by case id;
- :func:`propose_rois` (the run): one call to :func:`sonorad.segment.predict.segment_cases` for those
  cases, the masks written under ``OUT/auto_masks/``; per case the ROI's source (``manual`` or
  ``automatic``), confidence and flags; a flagged proposal excludes its case, with the reason and the
  fix as a failure row, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.errors import FAILURE_COLUMNS, ConfigError, Problem

__all__ = ["ROI_COLUMNS", "AutomaticRois", "automatic_by_cohort", "automatic_cases", "check_automatic_rois",
           "load_study_segmenter", "propose_rois", "segmenter_summary"]

#: Columns of ``tables/automatic_rois.csv``.
ROI_COLUMNS = ["case_id", "roi_source", "status", "box", "confidence", "flags", "lesion_pixels", "mask", "error", "fix"]
_KEY = "masks.segmenter"


def _filled(cell) -> bool:
    return not (cell is None or (isinstance(cell, float) and np.isnan(cell)) or str(cell).strip() == "")


def automatic_cases(table: pd.DataFrame) -> pd.Index:
    """The case ids of ``table`` whose mask is to be proposed: a filled ``box`` and no ``mask``."""
    if "box" not in table.columns:
        return pd.Index([], name="case_id")
    need = table["box"].map(_filled) & ~table["mask"].map(_filled)
    return pd.Index(table.loc[need, "case_id"].astype(str), name="case_id")


def load_study_segmenter(study):
    """The study's segmenter (``masks.segmenter``), or ``None`` when it names none.

    Raises
    ------
    ConfigError
        The folder is missing or is not a sonorad segmenter; the message names the study-file key.
    """
    from sonorad.segment.io import load_segmenter

    path = study.masks.segmenter
    if path is None:
        return None
    try:
        return load_segmenter(path)
    except ConfigError as err:
        raise ConfigError(f"{_KEY}: {err}") from None


def check_automatic_rois(table: pd.DataFrame, study, *, exclude=()) -> list[Problem]:
    """What would fail in :func:`propose_rois`, checked before any work: every problem at once.

    Parameters
    ----------
    table : DataFrame
        The cases table (:func:`sonorad.cohort.read_cases`).
    study : StudyConfig
    exclude : iterable of str
        Cases already excluded (unreadable files): not checked again.

    Returns
    -------
    list of Problem
        Errors: a case with a box but no segmenter declared is :func:`sonorad.cohort.validate_cases`'
        concern; here a segmenter folder that does not load (key ``masks.segmenter``) and a box that
        is not four numbers, degenerate, not inside its image or under 4 pixels (by case id).
    """
    from sonorad.errors import CaseError
    from sonorad.imaging import ImageReadError, read_image
    from sonorad.imaging.boxes import check_box, parse_box

    if study is None or study.masks.segmenter is None:
        return []
    problems = []
    try:
        load_study_segmenter(study)
    except ConfigError as err:
        problems.append(Problem(str(err), fix="give the folder written by `sonorad segment train`", column=_KEY))
    excluded = set(map(str, exclude))
    for case_id in automatic_cases(table):
        if case_id in excluded:
            continue
        row = table.loc[case_id]
        try:
            box = parse_box(row["box"], case_id)
            frame = int(row["frame"]) if "frame" in table.columns and _filled(row["frame"]) else None
            try:
                shape = read_image(row["image"], frame=frame).pixels.shape
            except ImageReadError:
                continue  # validate_cases already names the unreadable image
            check_box(box, shape, case_id)
        except CaseError as err:
            problems.append(Problem(err.problem.message, fix=err.problem.fix, case_id=case_id, column="box"))
    return problems


@dataclass(frozen=True)
class AutomaticRois:
    """What :func:`propose_rois` did.

    Attributes
    ----------
    table : DataFrame
        The cases table with ``mask`` set to the proposed mask (absolute path) for every automatic
        case whose proposal was not flagged.
    rois : DataFrame
        One row per case (:data:`ROI_COLUMNS`): ``roi_source`` is ``manual`` or ``automatic``.
    failures : DataFrame
        The automatic cases excluded (flagged or failed proposals), ``case_id, stage, error, fix``.
    summary : dict
        ``n_automatic``, ``n_rois``, ``n_excluded``, ``segmenter`` (:func:`segmenter_summary`).
    """

    table: pd.DataFrame
    rois: pd.DataFrame
    failures: pd.DataFrame
    summary: dict


def segmenter_summary(segmenter) -> dict:
    """What the report says of a segmenter (from its ``segmenter.json``): counts only, no case or patient id.

    Keys: ``encoder``, ``encoder_weights``, ``n_cases``, ``n_patients``, ``cases_per_center``,
    ``val_dice_median``, ``val_dice_mean``, ``weights_sha256``.
    """
    meta = dict(getattr(segmenter, "meta", {}) or {})
    cohort, validation = dict(meta.get("cohort") or {}), dict(meta.get("validation") or {})
    return {"encoder": meta.get("encoder"), "encoder_weights": meta.get("encoder_weights"),
            "n_cases": cohort.get("n_cases"), "n_patients": cohort.get("n_patients"),
            "cases_per_center": cohort.get("cases_per_center"), "val_dice_median": validation.get("dice_median"),
            "val_dice_mean": validation.get("dice_mean"), "weights_sha256": meta.get("weights_sha256")}


def _flag_reason(flags: str) -> tuple[str, str]:
    words = {"empty": "no lesion-like region was found in the box", "box_edge_all_round": "the mask fills the box",
             "several_blobs": "the segmenter found several regions", "low_confidence": "the confidence is low",
             "low_contrast": "the region does not stand out from its surroundings"}
    names = [f for f in flags.split(";") if f]
    why = "; ".join(words.get(f, f) for f in names)
    return (f"automatic ROI flagged ({', '.join(names)}): {why}",
            "check the box (it should enclose the whole lesion), or draw the mask by hand and fill in the 'mask' cell")


def propose_rois(table: pd.DataFrame, segmenter, out, *, exclude=(), say=None) -> AutomaticRois:
    """Propose the masks of the automatic cases of ``table`` (one :func:`segment_cases` call).

    Parameters
    ----------
    table : DataFrame
        The cases table, indexed by case id.
    segmenter : Segmenter
    out : str or Path
        The run's output folder: masks under ``out/auto_masks/masks/``, the segmenter's own tables
        (``cases.csv``, ``segmentation.csv``, ``failures.csv``) under ``out/auto_masks/``.
    exclude : iterable of str
        Cases already excluded: not segmented.
    say : callable, optional
        The run log.
    """
    from sonorad.segment.predict import segment_cases

    excluded = set(map(str, exclude))
    auto = [c for c in automatic_cases(table) if c not in excluded]
    manual = [str(c) for c in table.index if str(c) not in set(auto) | excluded]
    rows = [{"case_id": c, "roi_source": "manual", "status": "ok"} for c in manual]
    failures, updated = [], table.copy()
    if auto:
        folder = Path(out) / "auto_masks"
        result = segment_cases(segmenter, table.loc[auto].reset_index(drop=True), folder, boxes="box")
        for rec in result.per_case.to_dict("records"):
            case_id = str(rec["case_id"])
            status, flags = rec["status"], rec["flags"] if _filled(rec["flags"]) else ""
            row = {"case_id": case_id, "roi_source": "automatic", "status": status, "box": rec["box"],
                   "confidence": rec["confidence"], "flags": flags, "lesion_pixels": rec["lesion_pixels"]}
            if status == "ok" and _filled(rec["mask_file"]):
                row["mask"] = str((folder / rec["mask_file"]).resolve())
                updated.loc[case_id, "mask"] = row["mask"]
            else:
                error, fix = (_flag_reason(flags) if status == "flagged"
                              else (rec["error"], rec["fix"] if _filled(rec["fix"]) else ""))
                row.update(status="excluded" if status == "flagged" else status, error=error, fix=fix)
                failures.append({"case_id": case_id, "stage": "automatic ROI", "error": error, "fix": fix})
            rows.append(row)
    rois = pd.DataFrame(rows).reindex(columns=ROI_COLUMNS)
    order = {str(c): k for k, c in enumerate(table.index)}
    rois = rois.sort_values("case_id", key=lambda s: s.map(order)).reset_index(drop=True)
    failures = pd.DataFrame(failures, columns=FAILURE_COLUMNS)
    summary = {"n_automatic": int((rois["roi_source"] == "automatic").sum()) - len(failures),
               "n_proposed": len(auto), "n_rois": len(rois) - len(failures), "n_excluded": len(failures),
               "segmenter": segmenter_summary(segmenter)}
    if say is not None:
        say(f"automatic ROIs: {summary['n_proposed']} proposed by the segmenter, {summary['n_excluded']} flagged "
            f"and excluded (tables/automatic_rois.csv), {len(manual)} drawn by hand")
    return AutomaticRois(updated, rois, failures, summary)



def automatic_by_cohort(rois: pd.DataFrame, parts: pd.Series) -> dict:
    """Accepted automatic ROIs and all ROIs analysed per cohort: ``{part: {"automatic": n, "rois": N}}``.

    ``parts`` maps the analysed case ids to ``train`` / ``internal`` / ``external``; TRIPOD+AI asks
    whether the ROIs were made alike in development and validation.
    """
    accepted = rois.loc[(rois["roi_source"] == "automatic") & (rois["status"] == "ok"), "case_id"].astype(str)
    parts = parts.astype(str)
    parts.index = parts.index.astype(str)
    return {part: {"automatic": int(parts.loc[parts.index.isin(accepted)].eq(part).sum()),
                   "rois": int(parts.eq(part).sum())} for part in parts.unique()}
