"""Checking a cohort table: every problem at once, each naming the case, the column and the fix.

:func:`validate_cases` returns every :class:`~sonorad.errors.Problem` found, each with a
``severity``: ``"error"`` blocks, ``"warning"`` is listed. It checks the required cells, duplicate
ids, the outcome's two classes, frames, pixel spacings, mask labels, the image and mask files, the
declared variables (each value against its declaration through :func:`sonorad.variables.check_column`,
the same rules the model applies when scoring; an undeclared level that looks like a missing-value code
such as ``None`` is pointed out, since only an empty cell is missing), categorical values met only outside training,
patients under two centers, the center split and the class balance per center and part.

Images are not decoded here (``sonorad.imaging`` does that at extraction); a file is checked for
existence, a non-zero size and a recognised image signature only.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from sonorad.cohort.acquisition import spacing_problems
from sonorad.cohort.reading import PATH_COLUMNS, REQUIRED_COLUMNS, SPACING_FIX, label_values, mask_paths, parse_spacing
from sonorad.cohort.splitting import assign_splits
from sonorad.errors import Problem
from sonorad.study import CenterSplit, LabelSpec, StudyConfig
from sonorad.variables import (OUTLIER_IQR_FACTOR, canonical_value, cases_text, check_column, group_problems,
                               unseen_problems)

__all__ = ["validate_cases", "OUTLIER_IQR_FACTOR"]

_MAX_GROUPS = 5


def validate_cases(table: pd.DataFrame, study: StudyConfig | None = None, check_files: bool = True,
                   require_label: bool = True) -> list[Problem]:
    """Check a cohort table and return every problem found.

    Parameters
    ----------
    table : pandas.DataFrame
        A table as :func:`read_cases` returns it (paths already resolved; row order = CSV order).
    study : StudyConfig, optional
        Gives the label column and positive value (default ``label`` / ``1``), the declared variables
        and the split. Without a study only the table itself is checked.
    check_files : bool, optional
        Check that every image, mask and mask2 file exists, is non-empty and has an image signature
        (the files are not decoded; headers are read for the bit depth and pixel spacing), that the
        images do not mix bit depths (a warning), and the pixel spacing by center
        (:func:`sonorad.cohort.acquisition.spacing_problems`: centers that mix spacings are an error
        unless the study file sets ``features.spacing``).
    require_label : bool, optional
        When False (new patients to score) the label column is optional and not checked, nor are the
        class counts.

    Returns
    -------
    list of Problem
        Errors (``severity="error"``) block loading; warnings are informative. Each names the case
        (``case_id``) or the column / study key concerned, what is wrong and what to do.
    """
    label = study.label if study is not None else LabelSpec()
    required = REQUIRED_COLUMNS[:-1] + ((label.column,) if require_label else ())
    missing = [c for c in required if c not in table.columns]
    if missing:
        return [Problem(f"required column {c!r} is missing", fix="add the column", column=c) for c in missing]
    table = table.reset_index(drop=True)
    problems: list[Problem] = []
    problems += _check_required_values(table, tuple(c for c in required if c != "mask"), has_label=require_label)
    problems += _check_masks_or_boxes(table, study)
    problems += _check_duplicate_ids(table)
    label_problems = _check_labels(table, label) if require_label else []
    problems += label_problems
    labels_ok = require_label and not label_problems
    if "frame" in table.columns:
        problems += _check_frames(table)
    if "spacing_mm" in table.columns:
        problems += _check_spacing(table)
    if "mask_label" in table.columns:
        problems += _check_mask_labels(table)
    if check_files:
        depths: dict[str, int | None] = {}
        problems += _check_files(table, depths)
        problems += _check_bit_depths(table, depths)
        problems += spacing_problems(table, study)
    if study is not None:
        problems += _check_variables(table, study)
        parts = _parts_for_levels(table, study, label, labels_ok=labels_ok)
        problems += _check_unseen_levels(table, study, parts, require_label)
    problems += _check_patients(table, study)
    if study is not None and isinstance(study.split, CenterSplit):
        problems += _check_center_split(table, study.split)
    if labels_ok:
        problems += _check_class_balance(table, study, label)
    return problems


def _rows_text(positions: Iterable[int]) -> str:
    lines = [str(int(p) + 2) for p in positions]  # +1 for the header, +1 for 1-based lines
    return f"line{'s' if len(lines) > 1 else ''} {', '.join(lines)} of the CSV"


def _case_of(table: pd.DataFrame, position: int) -> str | None:
    value = table.at[position, "case_id"]
    return None if pd.isna(value) else str(value)


def _check_required_values(table: pd.DataFrame, required: tuple[str, ...], has_label: bool = True) -> list[Problem]:
    problems = []
    for column in required:
        is_label = has_label and column == required[-1]
        # an outcome written as a missing marker ("NA", "nan") is as missing as an empty cell
        absent = table[column].map(canonical_value).isna() if is_label else table[column].isna()
        for position in np.flatnonzero(absent.to_numpy()):
            case_id = _case_of(table, position)
            where = "" if case_id is not None else f" ({_rows_text([position])})"
            what = "label" if is_label else column
            problems.append(Problem(f"missing {what}{where}", fix=f"fill in the {column!r} cell or remove the row",
                                    case_id=case_id, column=column))
    return problems


def _check_masks_or_boxes(table: pd.DataFrame, study: StudyConfig | None) -> list[Problem]:
    """Every case needs a mask, or, with ``masks.segmenter``, a ``box`` the segmenter turns into one.

    A box is parsed here (:func:`sonorad.imaging.boxes.parse_box`); that it lies inside its image is
    checked when the images are read (:func:`sonorad.pipeline.stages.validate`).
    """
    from sonorad.errors import CaseError
    from sonorad.imaging.boxes import parse_box

    segmenter = study is not None and study.masks.segmenter is not None
    boxes = table["box"] if "box" in table.columns else pd.Series(np.nan, index=table.index)
    problems = []
    for position in np.flatnonzero(table["mask"].isna().to_numpy()):
        case_id = _case_of(table, position)
        where = "" if case_id is not None else f" ({_rows_text([position])})"
        box = boxes.iloc[position]
        has_box = not (pd.isna(box) or str(box).strip() == "")
        if not has_box:
            fix = ("draw the lesion's mask and fill in the 'mask' cell, or give the lesion's box in the 'box' column "
                   "(x0,y0,x1,y1 in pixels) for the segmenter (masks.segmenter)" if segmenter
                   else "fill in the 'mask' cell or remove the row")
            problems.append(Problem(f"missing mask{where}" + (" and no box" if segmenter else ""), fix=fix,
                                    case_id=case_id, column="mask"))
        elif not segmenter:
            problems.append(Problem(f"missing mask{where}: the case has a box, but the study names no segmenter to "
                                    "turn it into a mask",
                                    fix="add `masks: {segmenter: path/to/segmenter}` to the study file (a folder "
                                        "written by `sonorad segment train`), or fill in the 'mask' cell",
                                    case_id=case_id, column="mask"))
        else:
            try:
                parse_box(box, case_id)
            except CaseError as err:
                problems.append(Problem(err.problem.message, fix=err.problem.fix, case_id=case_id, column="box"))
    return problems


def _check_duplicate_ids(table: pd.DataFrame) -> list[Problem]:
    ids = table["case_id"]
    problems = []
    for case_id, positions in ids[ids.duplicated(keep=False)].groupby(ids, sort=True).groups.items():
        problems.append(Problem(f"case id appears {len(positions)} times ({_rows_text(positions)})",
                                fix="give every lesion image its own case_id", case_id=case_id, column="case_id"))
    return problems

def _check_labels(table: pd.DataFrame, label: LabelSpec) -> list[Problem]:
    counts = label_values(table, label).value_counts(sort=False).sort_index()
    found = ", ".join(f"{value!r} ({n} cases)" for value, n in counts.items()) or "none"
    if len(counts) != 2:
        return [Problem(f"the label must have exactly two classes; found {len(counts)}: {found}",
                        fix="code the outcome with two values (e.g. 0/1 or benign/malignant) and remove other rows",
                        column=label.column)]
    if label.positive not in counts.index:
        choices = " or ".join(repr(v) for v in counts.index)
        return [Problem(f"the positive label value {label.positive!r} does not occur; labels found: {found}",
                        fix=f"set `label: {{positive: ...}}` in the study file to {choices}",
                        column=label.column)]
    return []

def _check_spacing(table: pd.DataFrame) -> list[Problem]:
    problems = []
    for position, value in table["spacing_mm"].items():
        try:
            parse_spacing(value)
        except ValueError as exc:
            problems.append(Problem(str(exc), fix=SPACING_FIX, case_id=_case_of(table, position),
                                    column="spacing_mm"))
    return problems


def _check_frames(table: pd.DataFrame) -> list[Problem]:
    problems = []
    for position, value in table["frame"].items():
        if pd.isna(value):
            continue
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        if pd.isna(number) or number < 0 or not float(number).is_integer():
            problems.append(Problem(f"frame must be a non-negative integer (0 = first frame), got {value!r}",
                                    fix="correct the frame index or leave the cell empty for single-frame files",
                                    case_id=_case_of(table, position), column="frame"))
    return problems


def _file_problem(path: str, depths: dict[str, int | None]) -> tuple[str, str] | None:
    """Why ``path`` is not a usable image file, as (message, fix), or None when it looks fine.

    The bit depth read from the file's header goes into ``depths[path]``.
    """
    from sonorad.imaging.formats import detect_format
    from sonorad.imaging.readers import probe_bit_depth
    from sonorad.imaging.types import ImageReadError

    from sonorad.imaging.readers import symlink_loop

    try:
        if not os.path.exists(path):
            loop = symlink_loop(path)
            if loop is not None:
                return loop, "point the link (or the cell) at the real file"
            return "does not exist", "check the path; relative paths start from the folder of cases.csv"
        if not os.path.isfile(path):
            return "is a folder, not a file", "point the cell to the image file itself"
        if os.path.getsize(path) == 0:
            return "is empty (0 bytes)", "re-export or re-copy the file"
        detect_format(path)
        depths[path] = probe_bit_depth(path)  # also refuses a header announcing a gigantic image
    except ImageReadError as exc:
        return exc.message, exc.fix
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})", "check the file's permissions"
    return None


def _check_bit_depths(table: pd.DataFrame, depths: dict[str, int | None]) -> list[Problem]:
    """A warning when the images of the cohort do not all have the same bit depth."""
    by_depth: dict[int, list[str]] = {}
    for position in range(len(table)):
        path = table.at[position, "image"]
        depth = depths.get(path) if isinstance(path, str) else None
        if depth is not None:
            by_depth.setdefault(depth, []).append(str(table.at[position, "case_id"]))
    if len(by_depth) <= 1:
        return []
    common = max(by_depth, key=lambda d: len(by_depth[d]))
    listing = "; ".join(f"{d}-bit: {cases_text(ids) if d != common else f'{len(ids)} cases'}"
                        for d, ids in sorted(by_depth.items()))
    return [Problem(
        f"the images mix bit depths ({listing}); radiomics puts images of 9-16 bits on the 8-bit scale "
        "(v * 255 / (2**bits - 1)), but gray levels of different exports may still differ",
        fix="export every image with the same bit depth from the same software, or check that the odd ones "
            "come from the same scanner settings",
        column="image", severity="warning")]


def _check_files(table: pd.DataFrame, depths: dict[str, int | None]) -> list[Problem]:
    seen: dict[str, tuple[str, str] | None] = {}
    problems = []
    for position in range(len(table)):
        case_id = _case_of(table, position)
        for column in PATH_COLUMNS:
            if column not in table.columns:
                continue
            for path in mask_paths(table.at[position, column]):
                if path not in seen:
                    seen[path] = _file_problem(path, depths)
                if seen[path] is not None:
                    message, fix = seen[path]
                    problems.append(Problem(f"{column} file {path} {message}" if message[:1].islower()
                                            else f"{column} file {path}: {message}",
                                            fix=fix, case_id=case_id, column=column))
    return problems

def _check_variables(table: pd.DataFrame, study: StudyConfig) -> list[Problem]:
    """Every declared variable's values against its declaration (:func:`sonorad.variables.check_column`)."""
    problems = []
    for name, spec in study.variables.items():
        if name not in table.columns:
            problems.append(Problem(
                f"column declared in the study (variables.{name}) is not in the table; "
                f"the table has: {', '.join(map(str, table.columns))}",
                fix="add the column to cases.csv or correct the name in the study file (case-sensitive)",
                column=name))
            continue
        checked, refused = check_column(spec, table[name])
        problems += group_problems(refused, table["case_id"], max_groups=_MAX_GROUPS)
        if spec.type == "numeric" and spec.range is None:
            numbers = pd.to_numeric(checked).astype(float)
            problems += _check_outliers(table, name, numbers) + _check_sign(table, name, numbers)
        problems += _missing_markers_as_levels(table, name, spec)
        present = table[name].map(canonical_value).notna()
        problems += _missing_at_whole_centers(table, name, present)
        n_missing = int((~present).sum())
        if n_missing:
            problems.append(Problem(
                f"{n_missing} of {len(table)} cases have no value ({cases_text(table.loc[~present, 'case_id'])})",
                fix="fill in the values if they exist; missing values are imputed on the training set when modelling",
                column=name, severity="warning"))
    return problems


def _missing_at_whole_centers(table: pd.DataFrame, name: str, present: pd.Series) -> list[Problem]:
    """One warning per center where a declared variable has no value at all (a center-level finding).

    A model imputes such a value with the training cohort's median or mode for every case of the
    center, which can invert its ranking there; said once for the center, not once per case.
    """
    if "center" not in table.columns or not present.any():
        return []  # no center column, or missing everywhere (the training check names that)
    problems = []
    for center, has in present.groupby(table["center"].astype(str), sort=True):
        if len(has) >= 2 and not has.any():
            problems.append(Problem(
                f"center {center!r} has no value of {name} in any of its {len(has)} cases; a model would impute "
                f"the training cohort's typical value for every one of them, which can invert its ranking there",
                fix=f"add the values if the center recorded them; otherwise judge that center with the models that "
                    f"do not use {name} (the clinical reference and the imaging scores), or leave {name} out of "
                    f"the study", column=name, severity="warning"))
    return problems


#: Words other tools write for "missing" (pandas' default NA strings, Excel's #N/A). Only an empty
#: cell is missing in cases.csv (and the markers of :func:`sonorad.variables.canonical_value`), so
#: these become levels of a categorical variable whose levels are not declared: said, not guessed.
_MISSING_MARKERS = frozenset({"none", "null", "nil", "#n/a", "#na", "<na>", "-nan", "#n/a n/a",
                              "1.#ind", "1.#qnan", "-1.#ind", "-1.#qnan"})


def _missing_markers_as_levels(table: pd.DataFrame, name: str, spec) -> list[Problem]:
    """A warning when an undeclared categorical level looks like a missing-value code."""
    if spec.type == "numeric" or spec.allowed_values is not None:
        return []  # numbers refuse them; declared levels either list them or refuse them
    text = table[name].map(canonical_value)
    looks = text.map(lambda v: isinstance(v, str) and v.lower() in _MISSING_MARKERS).astype(bool)
    if not looks.any():
        return []
    words = ", ".join(repr(w) for w in sorted(set(text[looks])))
    n = int(looks.sum())
    return [Problem(
        f"{n} case{'s hold' if n > 1 else ' holds'} {words}, read as a level of {name}, not as a missing value "
        f"({cases_text(table.loc[looks, 'case_id'])}); only an empty cell is missing",
        fix=f"leave the cell empty where the value is unknown, or declare variables.{name}.levels to make "
            f"the level explicit", column=name, severity="warning")]


def _check_outliers(table: pd.DataFrame, name: str, numbers: pd.Series) -> list[Problem]:
    """Far outliers of a numeric variable without a declared range (warnings)."""
    finite = numbers.dropna()
    if len(finite) < 8:
        return []
    q1, q3 = np.percentile(finite, [25, 75])
    iqr = q3 - q1
    if not iqr > 0:
        return []
    low, high = q1 - OUTLIER_IQR_FACTOR * iqr, q3 + OUTLIER_IQR_FACTOR * iqr
    far = (finite < low) | (finite > high)
    problems = []
    for position in finite.index[far]:
        problems.append(Problem(
            f"{name} = {finite[position]:g} is far outside the other values of this column (middle half "
            f"{q1:g} to {q3:g}; flagged beyond {OUTLIER_IQR_FACTOR:g} interquartile ranges)",
            fix=f"check the cell (a unit error, a missing-value code such as 999, a typing error?); declare "
                f"variables.{name}.range: [low, high] in the study file to make such values errors, or to accept them",
            case_id=_case_of(table, position), column=name, severity="warning"))
    return problems


def _check_sign(table: pd.DataFrame, name: str, numbers: pd.Series) -> list[Problem]:
    """Negative values of a numeric variable whose other values are all >= 0 (warnings).

    A negative age or size among positive ones is almost always a typing or sign error that the
    interquartile rule of :func:`_check_outliers` misses when it is small (-5 among ages 30-80).
    """
    finite = numbers.dropna()
    negative = finite < 0
    if not negative.any() or negative.sum() * 2 >= len(finite):
        return []  # no negatives, or a variable that is negative as often as not
    return [Problem(
        f"{name} = {finite[position]:g} is negative while the other values of this column are not",
        fix=f"check the cell (a sign or typing error?); declare variables.{name}.range: [low, high] in the study "
            f"file to make such values errors, or to accept them",
        case_id=_case_of(table, position), column=name, severity="warning")
        for position in finite.index[negative]]


def _parts_for_levels(table: pd.DataFrame, study: StudyConfig, label: LabelSpec, labels_ok: bool) -> pd.Series | None:
    """The part of each row (positional index) as far as it is known before the labels are valid."""
    if study.split is None:
        return None
    if labels_ok:
        y = (label_values(table, label) == label.positive).astype(int)
        return assign_splits(table, study, y).reset_index(drop=True)
    if isinstance(study.split, CenterSplit):
        return pd.Series(np.where(table["center"].isin(study.split.external), "external", "train"), index=table.index)
    return None


def _training_rows(parts: pd.Series | None, n: int, require_label: bool) -> np.ndarray:
    """Which rows train the model: the ``train`` part; without known parts, every row of a labelled
    table and none of a table of cases to score."""
    if parts is not None:
        return (parts == "train").to_numpy()
    return np.full(n, require_label, dtype=bool)


def _check_unseen_levels(table: pd.DataFrame, study: StudyConfig, parts: pd.Series | None,
                         require_label: bool) -> list[Problem]:
    """Categorical values outside the levels the model will know, under each variable's ``unseen`` policy.

    Without declared levels the model knows the values of the training rows; a value met only in
    the other parts is an error (``unseen: error``) or a warning (``unseen: other``). With declared
    levels, :func:`_check_variables` refuses a value outside them, except under ``unseen: other``:
    then it is a warning in a table of cases to score (prediction codes it), and still an error in
    a cohort to model (the model cannot learn, nor the run score, an undeclared level).
    """
    problems = []
    train = _training_rows(parts, len(table), require_label)
    for name, spec in study.variables.items():
        if spec.type != "categorical" or name not in table.columns:
            continue
        if spec.levels is not None:
            if spec.unseen == "other":
                problems += _undeclared_levels(table, spec, require_label)
            continue
        if not train.any() or train.all():
            continue
        known = sorted(set(table.loc[train, name].map(canonical_value).dropna()))
        groups = parts[~train] if parts is not None else pd.Series("", index=table.index)[~train]
        for part in sorted(set(groups)):
            rows = groups.index[groups == part]
            found = unseen_problems(table.loc[rows, name], spec, known)
            problems += group_problems(found, table.loc[rows, "case_id"], max_groups=_MAX_GROUPS,
                                       where=f"; it occurs only in the {part} cases")
    return problems


def _undeclared_levels(table: pd.DataFrame, spec, require_label: bool) -> list[Problem]:
    """Values outside the declared levels of a categorical variable declared ``unseen: other``."""
    if require_label:
        refused = check_column(dataclasses.replace(spec, unseen="error"), table[spec.name])[1]
        return group_problems(refused, table["case_id"], max_groups=_MAX_GROUPS,
                              where="; unseen: other applies to cases to score, not to a cohort to model")
    found = unseen_problems(table[spec.name], spec, spec.levels)
    return group_problems(found, table["case_id"], max_groups=_MAX_GROUPS)


def _check_mask_labels(table: pd.DataFrame) -> list[Problem]:
    problems = []
    for position, value in table["mask_label"].items():
        if pd.isna(value):
            continue
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        if pd.isna(number) or number <= 0 or not float(number).is_integer():
            problems.append(Problem(f"mask_label must be the lesion's label in the mask, a whole number > 0, "
                                    f"got {value!r}",
                                    fix="write the label value (e.g. 1), or leave the cell empty for a binary mask",
                                    case_id=_case_of(table, position), column="mask_label"))
    return problems

def _part_of_center(study: StudyConfig | None) -> dict[str, str]:
    if study is None or not isinstance(study.split, CenterSplit):
        return {}
    parts = {c: "train" for c in study.split.train}
    parts.update({c: "external" for c in study.split.external})
    return parts


def _check_patients(table: pd.DataFrame, study: StudyConfig | None) -> list[Problem]:
    """A patient must sit under one center, hence (for a center split) in one part."""
    rows = table.dropna(subset=["patient_id", "center"])
    n_centers = rows.groupby("patient_id")["center"].nunique()
    part_of = _part_of_center(study)
    problems = []
    for patient in n_centers.index[n_centers > 1]:
        cases = rows[rows["patient_id"] == patient]
        by_center = cases.groupby("center")["case_id"].apply(list)
        parts = {part_of.get(c) for c in by_center.index} - {None}
        listing = "; ".join(f"center {c} ({cases_text(ids)})" for c, ids in by_center.items())
        if len(parts) > 1:
            message = (f"patient {patient} is in two splits, train and external, which leaks the patient "
                       f"into validation: {listing}")
        else:
            message = f"patient {patient} appears under {len(by_center)} centers: {listing}"
        problems.append(Problem(message, column="patient_id", fix=(
            "a patient belongs to one center: correct the center, or make patient ids unique across centers "
            "(e.g. prefix them with the center) if two centers reused the same ids")))
    return problems


def _check_center_split(table: pd.DataFrame, split: CenterSplit) -> list[Problem]:
    present = table["center"].dropna()
    centers = sorted(set(present))
    problems = []
    for part in ("train", "external"):
        for center in getattr(split, part):
            if center not in centers:
                problems.append(Problem(
                    f"split.{part} names center {center!r}, which is not in the table; centers in the table: "
                    f"{', '.join(centers)}",
                    fix="correct the name (center names are case-sensitive) or remove it from the split",
                    column="center"))
    assigned = set(split.train) | set(split.external)
    for center in centers:
        if center not in assigned:
            problems.append(Problem(
                f"center {center!r} ({int((present == center).sum())} cases) is in neither split.train nor "
                "split.external",
                fix="add it to one of the two lists in the study file, or remove its rows from the table",
                column="center"))
    return problems


def _check_class_balance(table: pd.DataFrame, study: StudyConfig | None, label: LabelSpec) -> list[Problem]:
    values = label_values(table, label)
    positive = values == label.positive
    known = values.notna() & table["center"].notna()
    part_of = _part_of_center(study)
    problems = []
    for center in sorted(set(table.loc[known, "center"])):
        in_center = known & (table["center"] == center)
        n_pos = int((positive & in_center).sum())
        n = int(in_center.sum())
        if 0 < n_pos < n:
            continue
        part = part_of.get(center)
        which = "positive" if n_pos else "negative"
        why = ("its own AUC and calibration cannot be computed; pooled external metrics still can"
               if part == "external" else "the center is confounded with the label")
        problems.append(Problem(f"center {center!r} has only {which} cases ({n}): {why}",
                                fix="check the labels of this center, or pool it with others when reporting",
                                column="center", severity="warning"))
    for part in ("train", "external"):
        centers = [c for c, p in part_of.items() if p == part]
        in_part = known & table["center"].isin(centers)
        n = int(in_part.sum())
        n_pos = int((positive & in_part).sum())
        if n and not 0 < n_pos < n:
            problems.append(Problem(
                f"the {part} part (centers {', '.join(centers)}) has only {'positive' if n_pos else 'negative'} "
                f"cases ({n}): models cannot be {'fitted' if part == 'train' else 'validated'} on one class",
                fix="move centers between split.train and split.external so both parts hold both classes",
                column="center"))
    return problems
