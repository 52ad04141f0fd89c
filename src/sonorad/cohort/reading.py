"""Reading the cohort table (``cases.csv``): parse it, resolve its paths, refuse an unusable table.

One row per lesion image, with the columns ``case_id, patient_id, center, image, mask, label``
(the label column may be renamed by the study file, and is optional for a table of new patients to
score: ``require_label=False``), optional ``mask2`` (a second reader's mask), ``frame`` (DICOM frame
index), ``spacing_mm`` and ``mask_label`` (the lesion's label in a label-map mask), and the clinical /
ultrasound columns the study declares. Paths are absolute or relative to the CSV's folder; ``mask``
may list several files separated by ``;``.

:func:`read_cases` only parses the table; its cells are checked by :mod:`sonorad.cohort.checks`.
The per-cell readings shared by the checks and by extraction live here too: :func:`parse_spacing`
(the ``spacing_mm`` rule), :func:`case_mask_settings` (the mask label and lesion policy per case) and
:func:`label_values` (the outcome as canonical text).
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.errors import CohortError, Problem
from sonorad.study import LabelSpec, StudyConfig
from sonorad.variables import canonical_value

__all__ = [
    "REQUIRED_COLUMNS",
    "PATH_COLUMNS",
    "ID_COLUMNS",
    "SPACING_FIX",
    "read_cases",
    "parse_spacing",
    "case_mask_settings",
    "label_values",
    "mask_paths",
]

#: Columns every cohort table must have (``label`` is the study's label column).
REQUIRED_COLUMNS = ("case_id", "patient_id", "center", "image", "mask", "label")
#: Columns holding file paths, resolved to absolute strings by :func:`read_cases`.
PATH_COLUMNS = ("image", "mask", "mask2")
#: Identifier columns, read as text.
ID_COLUMNS = ("case_id", "patient_id", "center")


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
        types pandas infers. Only an empty cell is missing (NaN): text such as ``NA``, ``None`` or
        ``null`` is kept as written (a level, an id; the variable checks decide what it means).
        Images are not opened.

    Raises
    ------
    CohortError
        Only when the table is unusable: missing or unreadable file, no rows, a column name that
        appears twice in the header, or missing required columns (all of them listed; a table
        separated by tabs, semicolons or '|' gets one message naming its separator).
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
        raw = _header_cells(path)
        problem = _layout_problem(raw, label_column, require_label)
        if problem is not None:
            raise CohortError([problem], source=source)
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig")
        names = {name: str(name).strip() for name in header.columns}
        as_text = {raw: str for raw, clean in names.items() if clean in ID_COLUMNS + PATH_COLUMNS}
        # Only an empty cell is missing: pandas' default missing markers ("NA", "None", "null", ...)
        # would turn a patient id "NA" or a declared level "None" into a missing value.
        table = pd.read_csv(path, dtype=as_text, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise CohortError([Problem(f"cannot read the cohort table as CSV: {exc}",
                                   fix="save it as a comma-separated UTF-8 file with one header row")],
                          source=source) from None
    table = table.rename(columns=names)
    required = REQUIRED_COLUMNS[:-1] + ((label_column,) if require_label else ())
    missing = [c for c in required if c not in table.columns]
    if missing:
        found = ", ".join(map(str, table.columns))
        raise CohortError([Problem(f"required column {c!r} is missing; the table has: {found}",
                                   fix="add the column (names are case-sensitive)", column=c) for c in missing],
                          source=source)
    if table.empty:
        raise CohortError([Problem("the cohort table has no rows", fix="add one row per lesion image")], source=source)
    for column in ID_COLUMNS + PATH_COLUMNS:
        if column in table.columns:
            table[column] = table[column].map(_clean_text)
    base = path.resolve().parent
    for column in PATH_COLUMNS:
        if column in table.columns:
            table[column] = table[column].map(lambda cell: _resolve_paths(cell, base))
    table.index = pd.Index(table["case_id"], name="case_id")
    return table


#: Separators a spreadsheet may have used instead of the comma, as a message names them.
_OTHER_SEPARATORS = {"\t": "tab-separated", ";": "separated by semicolons", "|": "separated by '|'"}


def _header_cells(path: Path) -> list[str]:
    """The header row's cells as written (pandas renames a repeated name ``age`` to ``age.1``)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        line = handle.readline(1 << 20)
    return next(csv.reader([line]), []) if line.strip() else []


def _layout_problem(cells: list[str], label_column: str, require_label: bool) -> Problem | None:
    """A header that shows the table cannot be read as meant: another separator, or a repeated name."""
    required = REQUIRED_COLUMNS[:-1] + ((label_column,) if require_label else ())
    names = [c.strip() for c in cells]
    if not set(required) <= set(names):
        for separator, wording in _OTHER_SEPARATORS.items():
            parts = {part.strip() for c in names for part in c.split(separator)}
            if any(separator in c for c in names) and len(parts & set(required)) >= 2:
                shown = ",".join(cells)[:120]
                return Problem(
                    f"this file is {wording}, not comma-separated (its header reads {shown!r}), so its "
                    f"columns cannot be found",
                    fix="save it as comma-separated CSV (in Excel: 'CSV UTF-8 (Comma delimited)'), with '.' as "
                        "the decimal point")
    counts = Counter(n for n in names if n)
    repeated = [n for n, k in counts.items() if k > 1]
    if repeated:
        name = repeated[0]
        positions = [i + 1 for i, n in enumerate(names) if n == name]
        others = f" (also repeated: {', '.join(map(repr, repeated[1:]))})" if len(repeated) > 1 else ""
        return Problem(
            f"the column name {name!r} appears {len(positions)} times in the header (columns "
            f"{', '.join(map(str, positions))}){others}; which one holds the values is ambiguous",
            fix="keep one column of each name: delete the extra copy, or rename it if it holds other data",
            column=name)
    return None


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


def mask_paths(cell) -> list[str]:
    return [p.strip() for p in cell.split(";") if p.strip()] if isinstance(cell, str) else []



def label_values(table: pd.DataFrame, label: LabelSpec) -> pd.Series:
    """The outcome column as canonical text (:func:`sonorad.variables.canonical_value`); missing is None."""
    return table[label.column].map(canonical_value)


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

