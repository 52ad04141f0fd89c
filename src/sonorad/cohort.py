"""Cohort table (``cases.csv``): read it, validate it (every problem at once, by case id), split it.

One row per lesion image, with the columns ``case_id, patient_id, center, image, mask, label``
(the label column may be renamed by the study file, and is optional for a table of new patients to
score: ``require_label=False``), optional ``mask2`` (a second reader's mask), ``frame`` (DICOM frame
index), ``spacing_mm`` and ``mask_label`` (the lesion's label in a label-map mask), and the clinical /
ultrasound columns the study declares. Paths are
absolute or relative to the CSV's folder; ``mask`` may list several files separated by ``;``.

:func:`read_cases` only parses the table. :func:`validate_cases` returns every
:class:`~sonorad.errors.Problem` found, each with a ``severity``: ``"error"`` blocks, ``"warning"``
is listed. :func:`load_cohort` raises :class:`~sonorad.errors.CohortError` when any error exists and
otherwise returns a :class:`Cohort` with the 0/1 outcome and a deterministic, patient-grouped split
into ``train`` / ``internal`` / ``external``.

Images are not decoded here (``sonorad.imaging`` does that at extraction); a file is checked for
existence, a non-zero size and a recognised image signature only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.errors import CohortError, ConfigError, Problem
from sonorad.study import (
    OTHER_LEVEL,
    CenterSplit,
    LabelSpec,
    PatientSplit,
    StudyConfig,
    VariableSpec,
    canonical_value,
)

__all__ = [
    "REQUIRED_COLUMNS",
    "PATH_COLUMNS",
    "SPLIT_PARTS",
    "Cohort",
    "read_cases",
    "validate_cases",
    "load_cohort",
    "apply_unseen_policy",
    "case_mask_settings",
    "OUTLIER_IQR_FACTOR",
]

#: Columns every cohort table must have (``label`` is the study's label column).
REQUIRED_COLUMNS = ("case_id", "patient_id", "center", "image", "mask", "label")
#: Columns holding file paths, resolved to absolute strings by :func:`read_cases`.
PATH_COLUMNS = ("image", "mask", "mask2")
#: The parts a case can be assigned to.
SPLIT_PARTS = ("train", "internal", "external")

_ID_COLUMNS = ("case_id", "patient_id", "center")
_MAX_LISTED = 10
_MAX_GROUPS = 5
#: A numeric value further than this many interquartile ranges outside the quartiles is flagged.
OUTLIER_IQR_FACTOR = 10.0


# --- reading --------------------------------------------------------------------------------------

def read_cases(csv_path: str | Path, *, label_column: str = "label", require_label: bool = True) -> pd.DataFrame:
    """Read a cohort table and resolve its paths.

    Parameters
    ----------
    csv_path : str or Path
        The cohort table (CSV, UTF-8, header row).
    label_column : str, optional
        Name of the outcome column (the study's ``label.column``; default ``"label"``).
    require_label : bool, optional
        When False (a table of new patients to score) the label column may be absent.

    Returns
    -------
    pandas.DataFrame
        One row per case, in file order, indexed by ``case_id`` (kept as a column too).
        ``case_id``, ``patient_id`` and ``center`` are strings; ``image``, ``mask`` and ``mask2`` are
        absolute path strings (several ``mask`` files stay ``;``-separated); other columns keep the
        types pandas infers. Empty cells are missing (NaN). Images are not opened.

    Raises
    ------
    CohortError
        Only when the table is unusable: missing or unreadable file, no rows, or missing required
        columns (all of them listed; a table separated by semicolons is named as such).
    """
    from sonorad.imaging.readers import symlink_loop

    path = Path(csv_path)
    source = str(path)
    loop = symlink_loop(path) if not path.exists() else None
    if loop is not None:
        raise CohortError([Problem(f"the cohort table {path} {loop}", fix="point the link at the real cases.csv")],
                          source=source)
    if not path.is_file():
        raise CohortError([Problem(f"cohort table not found: {path}",
                                   fix=f"check the path (relative paths start from {Path.cwd()})")], source=source)
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig")
        names = {name: str(name).strip() for name in header.columns}
        as_text = {raw: str for raw, clean in names.items() if clean in _ID_COLUMNS + PATH_COLUMNS}
        table = pd.read_csv(path, dtype=as_text, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise CohortError([Problem(f"cannot read the cohort table as CSV: {exc}",
                                   fix="save it as a comma-separated UTF-8 file with one header row")],
                          source=source) from None
    table = table.rename(columns=names)
    required = REQUIRED_COLUMNS[:-1] + ((label_column,) if require_label else ())
    missing = [c for c in required if c not in table.columns]
    if missing and _semicolon_separated(list(table.columns)):
        header = ";".join(map(str, table.columns))[:120]
        raise CohortError([Problem(
            f"the table is separated by semicolons, not commas (its header reads {header!r}), so it was read "
            f"as {len(table.columns)} column(s) and the required columns {', '.join(missing)} were not found",
            fix="save it as comma-separated CSV (in Excel: 'CSV UTF-8 (Comma delimited)'), with '.' as the "
                "decimal point")], source=source)
    if missing:
        found = ", ".join(map(str, table.columns))
        raise CohortError([Problem(f"required column {c!r} is missing; the table has: {found}",
                                   fix="add the column (names are case-sensitive)", column=c) for c in missing],
                          source=source)
    if table.empty:
        raise CohortError([Problem("the cohort table has no rows", fix="add one row per lesion image")], source=source)
    for column in _ID_COLUMNS + PATH_COLUMNS:
        if column in table.columns:
            table[column] = table[column].map(_clean_text)
    base = path.resolve().parent
    for column in PATH_COLUMNS:
        if column in table.columns:
            table[column] = table[column].map(lambda cell: _resolve_paths(cell, base))
    table.index = pd.Index(table["case_id"], name="case_id")
    return table


def _semicolon_separated(columns: list) -> bool:
    """A header read as one (or a few) columns whose names hold ';' between known column names."""
    names = {part.strip() for c in map(str, columns) for part in c.split(";")}
    return any(";" in str(c) for c in columns) and len(names & set(REQUIRED_COLUMNS)) >= 2


def _clean_text(cell):
    if isinstance(cell, str):
        cell = cell.strip()
        return cell if cell else np.nan
    return cell


def _resolve_paths(cell, base: Path):
    if not isinstance(cell, str):
        return cell
    parts = [p.strip() for p in cell.split(";") if p.strip()]
    if not parts:
        return np.nan
    return ";".join(os.path.normpath(os.path.join(base, os.path.expanduser(p))) for p in parts)


def _mask_paths(cell) -> list[str]:
    return [p.strip() for p in cell.split(";") if p.strip()] if isinstance(cell, str) else []


# --- validation -----------------------------------------------------------------------------------

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
        (the files are not decoded; headers are read for the bit depth), and that the images do not
        mix bit depths (a warning).
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
    problems += _check_required_values(table, required, has_label=require_label)
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
    if study is not None:
        problems += _check_variables(table, study)
        parts = _parts_for_levels(table, study, label, labels_ok=labels_ok)
        if parts is not None:
            problems += _check_unseen_levels(table, study, parts)
    problems += _check_patients(table, study)
    if study is not None and isinstance(study.split, CenterSplit):
        problems += _check_center_split(table, study.split)
    if labels_ok:
        problems += _check_class_balance(table, study, label)
    return problems


def _rows_text(positions: Iterable[int]) -> str:
    lines = [str(int(p) + 2) for p in positions]  # +1 for the header, +1 for 1-based lines
    return f"line{'s' if len(lines) > 1 else ''} {', '.join(lines)} of the CSV"


def _cases_text(ids: Iterable) -> str:
    ids = [str(i) for i in ids]
    shown = ", ".join(ids[:_MAX_LISTED])
    more = f" and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else ""
    return f"case{'s' if len(ids) > 1 else ''} {shown}{more}"


def _case_of(table: pd.DataFrame, position: int) -> str | None:
    value = table.at[position, "case_id"]
    return None if pd.isna(value) else str(value)


def _check_required_values(table: pd.DataFrame, required: tuple[str, ...], has_label: bool = True) -> list[Problem]:
    problems = []
    for column in required:
        for position in np.flatnonzero(table[column].isna().to_numpy()):
            case_id = _case_of(table, position)
            where = "" if case_id is not None else f" ({_rows_text([position])})"
            what = "label" if has_label and column == required[-1] else column
            problems.append(Problem(f"missing {what}{where}", fix=f"fill in the {column!r} cell or remove the row",
                                    case_id=case_id, column=column))
    return problems


def _check_duplicate_ids(table: pd.DataFrame) -> list[Problem]:
    ids = table["case_id"]
    problems = []
    for case_id, positions in ids[ids.duplicated(keep=False)].groupby(ids, sort=True).groups.items():
        problems.append(Problem(f"case id appears {len(positions)} times ({_rows_text(positions)})",
                                fix="give every lesion image its own case_id", case_id=case_id, column="case_id"))
    return problems


def _label_values(table: pd.DataFrame, label: LabelSpec) -> pd.Series:
    return table[label.column].map(canonical_value)


def _check_labels(table: pd.DataFrame, label: LabelSpec) -> list[Problem]:
    counts = _label_values(table, label).value_counts(sort=False).sort_index()
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


SPACING_FIX = "give the pixel size in mm as one positive number or 'row,col', or leave the cell empty"


def parse_spacing(value) -> tuple[float, float] | None:
    """A ``spacing_mm`` cell as (row, col) mm; ``None`` when empty (the image file's own spacing is used).

    One number means square pixels; ``"row,col"`` gives both. Raises ``ValueError`` otherwise.

    >>> parse_spacing("0.1"), parse_spacing("0.1,0.2"), parse_spacing("")
    ((0.1, 0.1), (0.1, 0.2), None)
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return None
    try:
        numbers = [float(v) for v in str(value).split(",")]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) != 2 or not all(math.isfinite(v) and v > 0 for v in numbers):
        raise ValueError(f"spacing_mm {value!r} is not a pixel spacing")
    return (numbers[0], numbers[1])


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
    from sonorad.imaging.readers import ImageReadError, detect_format, probe_bit_depth

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
    listing = "; ".join(f"{d}-bit: {_cases_text(ids) if d != common else f'{len(ids)} cases'}"
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
            for path in _mask_paths(table.at[position, column]):
                if path not in seen:
                    seen[path] = _file_problem(path, depths)
                if seen[path] is not None:
                    message, fix = seen[path]
                    problems.append(Problem(f"{column} file {path} {message}" if message[:1].islower()
                                            else f"{column} file {path}: {message}",
                                            fix=fix, case_id=case_id, column=column))
    return problems


def _check_variables(table: pd.DataFrame, study: StudyConfig) -> list[Problem]:
    problems = []
    for name, spec in study.variables.items():
        if name not in table.columns:
            problems.append(Problem(
                f"column declared in the study (variables.{name}) is not in the table; "
                f"the table has: {', '.join(map(str, table.columns))}",
                fix="add the column to cases.csv or correct the name in the study file (case-sensitive)",
                column=name))
            continue
        values = table[name]
        present = values.notna() & values.map(canonical_value).notna()
        if spec.type == "numeric":
            numbers = pd.to_numeric(values, errors="coerce")
            bad = present & numbers.isna()
            hint = " (a decimal comma?)" if values[bad].astype(str).str.fullmatch(r"-?\d+,\d+").any() else ""
            problems += _bad_value_problems(table, name, bad, f"is not a number{hint}",
                                            "write a number (decimal point '.') or leave the cell empty")
            problems += _check_numeric_values(table, name, spec, numbers.where(present & ~bad))
        elif spec.allowed_values is not None:
            allowed = spec.allowed_values
            bad = present & ~values.map(canonical_value).isin(allowed)
            kind = {"ordinal": "order", "binary": "levels", "categorical": "levels"}[spec.type]
            problems += _bad_value_problems(
                table, name, bad,
                f"is not one of the declared {kind} [{', '.join(allowed)}] of this {spec.type} variable",
                f"correct the cells, or add the value to variables.{name}.{kind} in the study file"
                if spec.type != "binary" or spec.levels else
                f"recode the column as 0/1, or declare its two values as variables.{name}.levels: [negative, positive]")
        n_missing = int((~present).sum())
        if n_missing:
            problems.append(Problem(
                f"{n_missing} of {len(table)} cases have no value ({_cases_text(table.loc[~present, 'case_id'])})",
                fix="fill in the values if they exist; missing values are imputed on the training set when modelling",
                column=name, severity="warning"))
    return problems


def _check_numeric_values(table: pd.DataFrame, name: str, spec: VariableSpec, numbers: pd.Series) -> list[Problem]:
    """Non-finite values (errors), values outside the declared range (errors), far outliers (warnings)."""
    problems = []
    known = numbers.notna()
    infinite = known & ~np.isfinite(numbers.astype(float))
    problems += _bad_value_problems(
        table, name, infinite, "is not a finite number (infinite, or too large for a double, > 1.8e308)",
        "correct the cell, or leave it empty if the value is unknown (missing values are imputed)")
    finite = numbers[known & ~infinite].astype(float)
    if spec.range is not None:
        low, high = spec.range
        outside = (finite < low) | (finite > high)
        bad = pd.Series(False, index=numbers.index)
        bad[finite.index[outside]] = True
        problems += _bad_value_problems(
            table, name, bad, f"is outside the declared range [{low:g}, {high:g}] of variables.{name}.range",
            f"correct the cell (a unit error, a missing-value code such as 999?), leave it empty if unknown, "
            f"or widen variables.{name}.range")
        return problems
    if len(finite) < 8:
        return problems
    q1, q3 = np.percentile(finite, [25, 75])
    iqr = q3 - q1
    if not iqr > 0:
        return problems
    low, high = q1 - OUTLIER_IQR_FACTOR * iqr, q3 + OUTLIER_IQR_FACTOR * iqr
    far = (finite < low) | (finite > high)
    for position in finite.index[far]:
        problems.append(Problem(
            f"value {finite[position]:g} is far outside the other values of this column (middle half "
            f"{q1:g} to {q3:g}; flagged beyond {OUTLIER_IQR_FACTOR:g} interquartile ranges)",
            fix=f"check the cell (a unit error, a missing-value code such as 999, a typing error?); declare "
                f"variables.{name}.range: [low, high] in the study file to make such values errors, or to accept them",
            case_id=_case_of(table, position), column=name, severity="warning"))
    return problems


def _parts_for_levels(table: pd.DataFrame, study: StudyConfig, label: LabelSpec, labels_ok: bool) -> pd.Series | None:
    """The part of each row (positional index) as far as it is known before the labels are valid."""
    if study.split is None:
        return None
    if labels_ok:
        y = (_label_values(table, label) == label.positive).astype(int)
        return _assign_splits(table, study, y).reset_index(drop=True)
    if isinstance(study.split, CenterSplit):
        return pd.Series(np.where(table["center"].isin(study.split.external), "external", "train"), index=table.index)
    return None


def _check_unseen_levels(table: pd.DataFrame, study: StudyConfig, parts: pd.Series) -> list[Problem]:
    """Categorical values (no declared levels) that occur outside training but never in it."""
    problems = []
    train = (parts == "train").to_numpy()
    for name, spec in study.variables.items():
        if spec.type != "categorical" or spec.levels is not None or name not in table.columns:
            continue
        text = table[name].map(canonical_value)
        seen = set(text[train].dropna())
        new = text.notna() & ~train & ~text.isin(seen)
        for value, rows in text[new].groupby(text[new], sort=True):
            ids = table.loc[rows.index, "case_id"].astype(str).tolist()
            where = ", ".join(sorted(set(parts[rows.index])))
            if spec.unseen == "other":
                problems.append(Problem(
                    f"value {value!r} occurs only in the {where} cases ({_cases_text(ids)}), never in training; "
                    f"with unseen: other it is coded {OTHER_LEVEL!r} (or as missing) at prediction",
                    fix="recode it to a training level if it means one", case_id=ids[0] if len(ids) == 1 else None,
                    column=name, severity="warning"))
                continue
            problems.append(Problem(
                f"value {value!r} occurs only in the {where} cases ({_cases_text(ids)}), never in the training "
                f"cases ({', '.join(sorted(seen)[:_MAX_LISTED])}), so the model cannot score it",
                fix=f"recode it to a training level, or set variables.{name}.unseen: other in the study file to "
                    f"code unseen values as {OTHER_LEVEL!r} (missing when training has no {OTHER_LEVEL!r})",
                case_id=ids[0] if len(ids) == 1 else None, column=name))
    return problems


def apply_unseen_policy(values: pd.Series, spec: VariableSpec, known_levels) -> tuple[pd.Series, list[Problem]]:
    """Apply a categorical variable's ``unseen`` policy to values met at prediction time.

    Parameters
    ----------
    values : pandas.Series
        The variable's values for the cases to score, indexed by case_id.
    spec : VariableSpec
        The variable as declared in the study file (``spec.unseen``: ``"error"`` or ``"other"``).
    known_levels : iterable
        The levels the model was trained with.

    Returns
    -------
    values : pandas.Series
        Canonical text values; under ``"other"`` an unseen value becomes ``"other"`` when that is a
        known level, else missing (NaN, then imputed as any missing value).
    warnings : list of Problem
        One warning per unseen value, naming its cases.

    Raises
    ------
    CohortError
        Under ``"error"``, listing every unseen value with its cases.

    Examples
    --------
    >>> from sonorad.study import VariableSpec
    >>> spec = VariableSpec("echo", "categorical", unseen="other")
    >>> out, notes = apply_unseen_policy(pd.Series(["hypo", "iso"], index=["c1", "c2"]), spec, ["hypo", "other"])
    >>> out.tolist(), str(notes[0])
    (['hypo', 'other'], "[case c2, column 'echo'] value 'iso' was never seen in training; coded as 'other'. Fix: recode it to a training level (hypo, other) if it means one")
    """
    known = [canonical_value(v) for v in known_levels]
    text = values.map(canonical_value).astype(object)
    new = text.notna() & ~text.isin(known)
    problems = []
    target = OTHER_LEVEL if OTHER_LEVEL in known else np.nan
    for value, rows in text[new].groupby(text[new], sort=True):
        ids = [str(i) for i in rows.index]
        if spec.unseen == "other":
            coded = repr(OTHER_LEVEL) if isinstance(target, str) else "missing (imputed)"
            message = f"value {value!r} was never seen in training; coded as {coded}"
            severity = "warning"
        else:
            message = f"value {value!r} was never seen in training ({_cases_text(ids)}), so the model cannot score it"
            severity = "error"
        problems.append(Problem(message, fix=f"recode it to a training level ({', '.join(known)}) if it means one"
                                + ("" if severity == "warning" else f", or declare variables.{spec.name}.unseen: other"),
                                case_id=ids[0] if len(ids) == 1 else None, column=spec.name, severity=severity))
    if spec.unseen != "other" and problems:
        raise CohortError(problems, source=f"variable {spec.name!r}")
    out = text.copy()
    out[new] = target
    return out, problems


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


def case_mask_settings(table: pd.DataFrame, study: StudyConfig | None = None) -> pd.DataFrame:
    """Per case, the mask label and lesion policy extraction must use.

    The ``mask_label`` column (when present and filled) overrides the study's ``masks.label``.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``table``; columns ``label`` (int or None) and ``lesions`` (``union``,
        ``largest``, ``per-lesion`` or None), ready for :func:`sonorad.imaging.load_roi`
        (``per-lesion``: :func:`sonorad.imaging.load_lesion_rois`).
    """
    default_label = study.masks.label if study is not None else None
    lesions = study.masks.lesions if study is not None else None
    labels = [default_label] * len(table)
    if "mask_label" in table.columns:
        labels = [int(float(v)) if not pd.isna(v) else default_label for v in table["mask_label"]]
    return pd.DataFrame({"label": pd.Series(labels, index=table.index, dtype=object),
                         "lesions": pd.Series([lesions] * len(table), index=table.index, dtype=object)})


def _bad_value_problems(table, column, bad: pd.Series, what: str, fix: str) -> list[Problem]:
    """One problem per bad value naming its cases; one summary problem when many values are bad."""
    rows = table.loc[bad.to_numpy(), ["case_id", column]]
    groups = list(rows.groupby(rows[column].map(canonical_value).astype(str), sort=True))
    if len(groups) > _MAX_GROUPS:
        examples = ", ".join(repr(value) for value, _ in groups[:_MAX_GROUPS])
        return [Problem(f"{len(groups)} different values fail the check (each {what}), e.g. {examples} "
                        f"({len(rows)} cases: {_cases_text(rows['case_id'])})", fix=fix, column=column)]
    problems = []
    for value, group in groups:
        ids = group["case_id"].tolist()
        problems.append(Problem(f"value {value!r} {what} ({_cases_text(ids)})", fix=fix,
                                case_id=ids[0] if len(ids) == 1 else None, column=column))
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
        listing = "; ".join(f"center {c} ({_cases_text(ids)})" for c, ids in by_center.items())
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
    values = _label_values(table, label)
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


# --- splitting ------------------------------------------------------------------------------------

def _patient_table(table: pd.DataFrame, y: pd.Series) -> pd.DataFrame:
    """One row per patient: its (first) center and whether any of its lesions is positive."""
    frame = pd.DataFrame({"patient_id": table["patient_id"].to_numpy(), "center": table["center"].to_numpy(),
                          "y": y.to_numpy()})
    return frame.groupby("patient_id", sort=True).agg(center=("center", "min"), y=("y", "max")).reset_index()


def _allocate(sizes: pd.Series, fraction: float) -> pd.Series:
    """Largest-remainder allocation of ``round(fraction * total)`` held-out patients across strata."""
    total = int(sizes.sum())
    target = int(math.floor(fraction * total + 0.5))
    if total >= 2:
        target = min(max(target, 1), total - 1)
    quotas = sizes * fraction
    counts = np.floor(quotas).astype(int)
    order = (quotas - counts).sort_values(ascending=False, kind="stable").index
    for stratum in order[: max(target - int(counts.sum()), 0)]:
        counts[stratum] += 1
    return counts


def _hold_out(patients: pd.DataFrame, fraction: float, seed: int) -> set[str]:
    """Patients held out, stratified by (center, label); deterministic given the seed and the patient ids."""
    if patients.empty:
        return set()
    rng = np.random.default_rng(seed)
    strata = patients.groupby(["center", "y"], sort=True)["patient_id"]
    counts = _allocate(strata.size(), fraction)
    held: set[str] = set()
    for key, ids in strata:
        ids = np.sort(ids.to_numpy().astype(str))
        held.update(rng.permutation(ids)[: counts[key]].tolist())
    return held


def _assign_splits(table: pd.DataFrame, study: StudyConfig | None, y: pd.Series) -> pd.Series:
    parts = pd.Series("train", index=table.index, name="split", dtype=object)
    split = study.split if study is not None else None
    if split is None:
        return parts
    patients = _patient_table(table, y)
    if isinstance(split, CenterSplit):
        parts[table["center"].isin(split.external).to_numpy()] = "external"
        if split.internal_fraction is not None:
            eligible = patients[patients["center"].isin(split.train)]
            held = _hold_out(eligible, split.internal_fraction, study.split_seed)
            parts[table["patient_id"].isin(held).to_numpy()] = "internal"
    elif isinstance(split, PatientSplit):
        held = _hold_out(patients, split.test_fraction, study.split_seed)
        parts[table["patient_id"].isin(held).to_numpy()] = "internal"
    return parts


# --- the validated cohort -------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Cohort:
    """A validated cohort table with its outcome and split.

    Attributes
    ----------
    table : pandas.DataFrame
        The cases (as :func:`read_cases` returns them), indexed by ``case_id``.
    study : StudyConfig or None
        The study the table was validated against.
    warnings : tuple of Problem
        Problems that do not block (single-class centers, missing variable values).
    parts : pandas.Series, optional
        ``train`` / ``internal`` / ``external`` per case, indexed by ``case_id``; computed from the
        study's split when not given. Read it with :meth:`split_labels`.
    source : Path or None
        The CSV the table was read from.
    """

    table: pd.DataFrame
    study: StudyConfig | None = None
    warnings: tuple[Problem, ...] = ()
    parts: pd.Series = field(default=None, repr=False)
    source: Path | None = None

    def __post_init__(self):
        if self.parts is None:
            y = (_label_values(self.table, self.label) == self.label.positive).astype(int)
            object.__setattr__(self, "parts", _assign_splits(self.table, self.study, y))

    @property
    def label(self) -> LabelSpec:
        """The outcome column and positive value in use."""
        return self.study.label if self.study is not None else LabelSpec()

    @property
    def y(self) -> pd.Series:
        """The outcome as 0/1 integers (1 = the positive label value), indexed by ``case_id``."""
        values = _label_values(self.table, self.label)
        return (values == self.label.positive).astype(int).rename("y")

    @property
    def groups(self) -> pd.Series:
        """Patient id per case, for grouped cross-validation (``groups=cohort.groups``)."""
        return self.table["patient_id"].rename("patient_id")

    def split_labels(self) -> pd.Series:
        """The part of each case: ``train``, ``internal`` or ``external``, indexed by ``case_id``.

        Deterministic given the study seed (or ``split.seed``) and the patient ids, whatever the row
        order; patient-grouped: every image of a patient is in the same part. Without a split in the
        study every case is ``train``.
        """
        return self.parts.copy()

    def subset(self, part: str | Iterable[str]) -> Cohort:
        """The cases of one part (or several), as a :class:`Cohort` keeping the original split.

        Parameters
        ----------
        part : str or iterable of str
            ``"train"``, ``"internal"``, ``"external"``, or a list of them.
        """
        wanted = [part] if isinstance(part, str) else list(part)
        unknown = [p for p in wanted if p not in SPLIT_PARTS]
        if unknown or not wanted:
            raise ValueError(f"part must be one of {', '.join(SPLIT_PARTS)} (or a list of them); got {part!r}")
        keep = self.parts.isin(wanted).to_numpy()
        return Cohort(table=self.table[keep], study=self.study, warnings=self.warnings,
                      parts=self.parts[keep], source=self.source)

    def summary(self) -> str:
        """A readable multi-line description: cases, patients, centers and class counts per part."""
        table, y = self.table, self.y
        label = self.label
        title = f"Cohort {self.source}" if self.source is not None else "Cohort"
        if self.study is not None:
            title += f" (study {self.study.name!r})"
        lines = [
            title,
            f"  {len(table)} cases, {table['patient_id'].nunique()} patients, {table['center'].nunique()} centers",
            f"  label column {label.column!r}, positive = {label.positive!r}: {int(y.sum())} positive, "
            f"{int(len(y) - y.sum())} negative ({100 * y.mean():.1f}% positive)",
            f"  split: {self._split_text()}",
            "",
        ]
        lines += self._counts_table().to_string(index=False).splitlines()
        if self.warnings:
            lines += ["", f"{len(self.warnings)} warning(s):"] + [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)

    def _counts_table(self) -> pd.DataFrame:
        """Cases, patients and class counts per part and center, with a total row per part."""
        frame = pd.DataFrame({"part": self.parts.to_numpy(), "center": self.table["center"].to_numpy(),
                              "patient": self.table["patient_id"].to_numpy(), "y": self.y.to_numpy()})
        rows = []
        for part in SPLIT_PARTS:
            in_part = frame[frame["part"] == part]
            groups = [(c, g) for c, g in in_part.groupby("center", sort=True)]
            if len(groups) > 1:
                groups.append(("(all)", in_part))
            for center, g in groups:
                n_pos = int(g["y"].sum())
                rows.append({"part": part, "center": center, "cases": len(g), "patients": g["patient"].nunique(),
                             "positive": n_pos, "negative": len(g) - n_pos})
        return pd.DataFrame(rows, columns=["part", "center", "cases", "patients", "positive", "negative"])

    def _split_text(self) -> str:
        split = self.study.split if self.study is not None else None
        if split is None:
            return "none declared (every case is train)"
        seed = self.study.split_seed
        if isinstance(split, CenterSplit):
            text = f"by center; train = {', '.join(split.train)}; external = {', '.join(split.external)}"
            if split.internal_fraction is not None:
                text += f"; internal = {split.internal_fraction:g} of the training patients (seed {seed})"
            return text
        return f"by patient; internal test = {split.test_fraction:g} of the patients (seed {seed})"


def load_cohort(csv_path: str | Path | None = None, study: StudyConfig | None = None,
                check_files: bool = True) -> Cohort:
    """Read, validate and split a cohort table.

    Parameters
    ----------
    csv_path : str or Path, optional
        The cohort table; defaults to the study's ``cohort``.
    study : StudyConfig, optional
        Label column and positive value, declared variables and split (see :mod:`sonorad.study`).
    check_files : bool, optional
        Check that the image and mask files exist and look like images (default True).

    Returns
    -------
    Cohort

    Raises
    ------
    CohortError
        Listing every error-level problem (see :func:`validate_cases`), each by case id.
    ConfigError
        When neither ``csv_path`` nor ``study.cohort`` is given.

    Examples
    --------
    >>> cohort = load_cohort("cases.csv", study=load_study("study.yaml"))   # doctest: +SKIP
    >>> train = cohort.subset("train")                                        # doctest: +SKIP
    >>> X, y, groups = train.table[["age"]], train.y, train.groups            # doctest: +SKIP
    """
    if csv_path is None:
        if study is None or study.cohort is None:
            raise ConfigError("load_cohort needs csv_path, or a study whose `cohort` key names the cases table")
        csv_path = study.cohort
    label = study.label if study is not None else LabelSpec()
    table = read_cases(csv_path, label_column=label.column)
    problems = validate_cases(table, study=study, check_files=check_files)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise CohortError(errors, source=str(csv_path))
    warnings = tuple(p for p in problems if p.severity != "error")
    y = (_label_values(table, label) == label.positive).astype(int)
    parts = _assign_splits(table, study, y)
    return Cohort(table=table, study=study, warnings=warnings, parts=parts, source=Path(csv_path))
