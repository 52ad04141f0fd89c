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

__all__ = ["FEATURE_OOD_FRACTION", "MIN_CENTER_CASES", "batch_missing", "models_reading", "ood_warnings"]

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


# -- a predictor missing for a whole batch or center ---------------------------------------------
#: A center needs at least this many cases in the batch for "missing at the whole center" to be said.
MIN_CENTER_CASES = 2


def _contrast(bundle, name: str) -> tuple | None:
    """Two training values of variable ``name`` far apart (numeric: its 5th and 95th percentiles or
    range; otherwise two levels seen), to tell whether a model reads it."""
    info = bundle.summary["columns"].get(name, {})
    qs = [q for q in (info.get("quantiles") or []) if q is not None]
    if len(qs) >= 2 and qs[0] != qs[-1]:
        return float(qs[1] if len(qs) > 2 else qs[0]), float(qs[-2] if len(qs) > 2 else qs[-1])
    levels = info.get("levels_seen") or []
    if len(levels) >= 2:
        return levels[0], levels[-1]
    rng = info.get("range")
    return (float(rng[0]), float(rng[1])) if rng and rng[0] != rng[1] else None


def models_reading(bundle, name: str, X: pd.DataFrame, models: list[str]) -> list[str]:
    """The models (of ``models``, fed the table ``X``) whose probabilities change when variable
    ``name`` changes from a low to a high training value: the models that depend on it."""
    values = _contrast(bundle, name)
    if values is None or not len(X) or name not in X.columns:
        return []
    rows = X.iloc[:20]
    low, high = rows.copy(), rows.copy()
    low[name], high[name] = values[0], values[1]
    out = []
    for model in models:
        if bundle.model_kind(model) != "skops":
            continue
        try:
            a = np.asarray(bundle.model(model).predict_proba(low))[:, 1]
            b = np.asarray(bundle.model(model).predict_proba(high))[:, 1]
        except Exception:  # noqa: BLE001 - a model that cannot take the contrast is not named
            continue
        if np.any(np.abs(a - b) > 1e-9):
            out.append(model)
    return out


def batch_missing(bundle, values: pd.DataFrame, centers: pd.Series | None, X: pd.DataFrame,
                  models: list[str]) -> tuple[list[dict], list[str], set]:
    """A declared predictor missing for every case of the batch, or of a center within it.

    Such a gap is a finding about the site, not about a case: the model imputes one training value
    for the whole site, which can invert its ranking. It is said once per variable.

    Parameters
    ----------
    values : DataFrame
        The declared variables as given (index: case ids).
    centers : Series or None
        Center of each case (``None``: the batch is one group).
    X : DataFrame
        The model input table of the cases that reached the models.
    models : list of str
        The models being run.

    Returns
    -------
    rows : list of dict
        Batch-level ``warnings`` rows (``case_id`` empty, ``column`` the variable).
    notes : list of str
        The same findings as lines for ``BundlePrediction.notes``.
    covered : set of (case_id, column)
        The per-case "no value" warnings these findings replace.
    """
    from sonorad.variables import canonical_value

    rows, notes, covered = [], [], set()
    if len(values) < 2:
        return rows, notes, covered
    imputation = {v["name"]: v.get("imputation") for v in bundle.schema_data["variables"]}
    groups = (centers.reindex(values.index).map(canonical_value) if centers is not None
              else pd.Series(None, index=values.index, dtype=object))
    for name in values.columns:
        if name == "center":
            continue
        missing = values[name].map(canonical_value).isna()
        if missing.all():
            where = [str(c) for c in dict.fromkeys(groups.dropna())]
            scope = f"every case of the batch ({len(values)} cases" + (f"; centers {', '.join(where)})" if where
                                                                          else ")")
            gone = list(values.index)
        else:
            sizes = groups.value_counts()
            whole = [c for c, n in sizes.items() if n >= MIN_CENTER_CASES and missing[groups == c].all()]
            if not whole:
                continue
            gone = list(values.index[groups.isin(whole)])
            plural = "s" if len(whole) > 1 else ""
            scope = f"every case of center{plural} {', '.join(map(str, whole))} ({len(gone)} cases)"
        users = models_reading(bundle, name, X, models)
        named = ", ".join(f"{m} (the chosen model)" if m == bundle.chosen else m for m in users)
        imputed = imputation.get(name)
        how = (f"imputes the training value {_fmt(imputed)} for all of them" if imputed is not None
               else "imputes it for all of them")
        message = (f"{name} is missing for {scope}: the model {how}, and imputing a predictor for a whole site "
                   "can invert a model's ranking there. " +
                   (f"Models that depend on {name}: {named}. " if users else
                    f"No model run here changes its probability with {name}. ") +
                   f"Fix: record {name} at that site, or judge the site with a model that does not use it.")
        rows.append({"case_id": "", "column": name, "message": message})
        notes.append(message)
        covered |= {(str(c), name) for c in gone}
    return rows, notes, covered
