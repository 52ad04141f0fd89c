"""Checks of new cases against the training cohort: warnings for inputs unlike the training cases'.

The case is still scored; the warning tells the reader that the model extrapolates. See
:func:`ood_warnings`. (The declared variables are checked by :func:`sonorad.bundle.schema.apply_schema`.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sonorad.bundle.rows import format_value as _fmt
from sonorad.bundle.summary import ROI_COLUMNS

if TYPE_CHECKING:
    from sonorad.bundle.inputs import CaseInputs

__all__ = ["FEATURE_OOD_FRACTION", "ood_warnings"]

#: Fraction of imaging features outside the training 1-99% range above which a case is flagged.
FEATURE_OOD_FRACTION = 0.25
_ROI_TOLERANCE = 0.05
_ROI_LABELS = {"area_px": "ROI area (pixels)", "area_mm2": "ROI area (mm²)",
               "spacing_row_mm": "pixel spacing, rows (mm)", "spacing_col_mm": "pixel spacing, columns (mm)"}


def _outside(value: float, quantiles: list, tolerance: float = 0.0) -> bool:
    """Whether ``value`` lies outside the first-to-last quantile range widened by ``tolerance`` of its
    largest magnitude (never, when the range is unknown)."""
    lo, hi = quantiles[0], quantiles[-1]
    if lo is None or hi is None:
        return False
    pad = tolerance * max(abs(lo), abs(hi))
    return value < lo - pad or value > hi + pad


def ood_warnings(bundle, inputs: CaseInputs, X: pd.DataFrame) -> list[dict]:
    """Warnings for the cases of ``X`` whose inputs are unlike the training cohort's.

    Parameters
    ----------
    bundle : Bundle
    inputs : CaseInputs
        Supplies each case's ROI measures.
    X : DataFrame
        The model input rows of the cases that are scored.

    Returns
    -------
    list of dict
        Rows ``case_id, column, message``: an ROI measure outside the training 1st-99th percentile
        range widened by 5%; more than :data:`FEATURE_OOD_FRACTION` of the radiomics (or deep)
        features outside their training 1st-99th percentile range; a center that is not a training
        center when a model harmonises by center.
    """
    warnings = []
    rois = bundle.summary.get("rois") or {}
    # without a physical pixel size (1 mm = 1 pixel, e.g. PNG) on both sides, mm² repeats the pixel area
    unit_spacing = all(set((rois.get(c) or {}).get("quantiles") or [None]) == {1.0}
                       for c in ("spacing_row_mm", "spacing_col_mm"))
    for cid in X.index:
        if cid in inputs.rois.index:
            case_unit = (inputs.rois.at[cid, "spacing_row_mm"], inputs.rois.at[cid, "spacing_col_mm"]) == (1.0, 1.0)
            for column in ROI_COLUMNS:
                info = rois.get(column)
                if not info or "quantiles" not in info or (column == "area_mm2" and unit_spacing and case_unit):
                    continue
                v = float(inputs.rois.at[cid, column])
                if _outside(v, info["quantiles"], _ROI_TOLERANCE):
                    q = info["quantiles"]
                    warnings.append({"case_id": cid, "column": column,
                                     "message": f"{_ROI_LABELS[column]} {_fmt(v)} is far from the training cohort's "
                                                f"(1st-99th percentile {_fmt(q[0])}-{_fmt(q[-1])})"})
    columns = bundle.summary["columns"]
    kinds = bundle.features["column_kinds"]
    for kind in ("radiomics", "deep"):
        cols = [c for c in X.columns if kinds[c] == kind and "quantiles" in columns.get(c, {})]
        if not cols:
            continue
        lo = np.array([columns[c]["quantiles"][0] for c in cols], dtype=float)
        hi = np.array([columns[c]["quantiles"][-1] for c in cols], dtype=float)
        values = X[cols].to_numpy(dtype=float)
        share = ((values < lo) | (values > hi)).mean(axis=1)
        for cid, s in zip(X.index, share):
            if s > FEATURE_OOD_FRACTION:
                warnings.append({"case_id": cid, "column": f"{kind} features",
                                 "message": f"{s:.0%} of the {len(cols)} {kind} features lie outside their training "
                                            "1st-99th percentile range (about 2% for a typical training case): the "
                                            "image may differ from the training images (scanner, preset, ROI)"})
    if bundle.needs_center and "center" in X.columns:
        known = set(bundle.summary.get("centers") or [])
        for cid, center in X["center"].items():
            if center is not None and known and str(center) not in known:
                warnings.append({"case_id": cid, "column": "center",
                                 "message": f"center {center!r} is not a training center; its harmonisation is "
                                            "estimated from the cases of that center scored together"})
    return warnings
