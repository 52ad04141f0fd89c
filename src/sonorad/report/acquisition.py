"""The acquisition table as shown in the report and the model card: one row per center.

:func:`acquisition_display` turns :func:`sonorad.cohort.acquisition.acquisition_table` (a frame
indexed by center, or its records as kept in a model card) into text cells: image format, pixel
spacing (range and median, or "none: features in pixels") with where it came from, image size,
bit depth and scanner.

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({"cases": [3], "with_spacing": [3], "spacing_from": ["file"],
...                       "spacing_mm": ["0.08-0.1"], "median_spacing_mm": [0.09],
...                       "image_size": ["480 x 640"], "bit_depth": ["8"], "format": ["DICOM"],
...                       "scanner": ["Acme X1"]}, index=pd.Index(["A"], name="center"))
>>> acquisition_display(table).loc["A", "Pixel spacing (mm)"]
'0.08-0.1 (median 0.09)'
"""

from __future__ import annotations

import pandas as pd

__all__ = ["ACQUISITION_COLUMNS", "acquisition_display"]

#: Display columns, in order.
ACQUISITION_COLUMNS = ("Cases", "Format", "Pixel spacing (mm)", "Spacing from", "Image size (rows x cols)",
                       "Bit depth", "Scanner")
_SOURCES = {"spacing_mm": "spacing_mm column", "file": "image file", "none": "none"}


def _text(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def _count(value) -> int:
    try:
        return 0 if pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return 0


def _spacing(row) -> str:
    known, cases = _count(row.get("with_spacing")), _count(row.get("cases"))
    if "with_spacing" not in row:  # a record without the counts: show what it says
        return _text(row.get("spacing_mm")) or "not recorded"
    if not known:
        return "none: features in pixels"
    text = _text(row.get("spacing_mm"))
    median = row.get("median_spacing_mm")
    if median is not None and not pd.isna(median) and text and "-" in text:
        text += f" (median {float(median):.3g})"
    if known < cases:
        text += f"; known for {known} of {cases} cases"
    return text


def acquisition_display(acquisition) -> pd.DataFrame:
    """The acquisition table as text cells, indexed by center.

    Parameters
    ----------
    acquisition : pandas.DataFrame or list of dict
        :func:`sonorad.cohort.acquisition.acquisition_table` (index ``center``), or its records with
        a ``center`` entry (``table.reset_index().to_dict("records")``, as in ``card.json``).

    Returns
    -------
    pandas.DataFrame
        Index ``Center``; columns :data:`ACQUISITION_COLUMNS`.
    """
    frame = pd.DataFrame.from_records(acquisition) if isinstance(acquisition, list) else acquisition.copy()
    if "center" in frame.columns:
        frame = frame.set_index("center")
    rows = {}
    for center, row in frame.iterrows():
        row = row.to_dict()
        sources = [_SOURCES.get(s.strip(), s.strip()) for s in _text(row.get("spacing_from")).split(",") if s.strip()]
        rows[str(center)] = {
            "Cases": _text(_count(row.get("cases"))) if row.get("cases") is not None else "",
            "Format": _text(row.get("format")) or "unknown",
            "Pixel spacing (mm)": _spacing(row),
            "Spacing from": ", ".join(sources),
            "Image size (rows x cols)": _text(row.get("image_size")),
            "Bit depth": _text(row.get("bit_depth")),
            "Scanner": _text(row.get("scanner")) or "not recorded",
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(ACQUISITION_COLUMNS)).rename_axis("Center")
