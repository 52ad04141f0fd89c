"""Checks of new cases against the training cohort: warnings for inputs unlike the training cases'.

The case is still scored; the warning tells the reader, in plain words, what is unusual, why it
matters and what to do (:func:`ood_warnings`). An image most of whose features lie outside the
training range (:data:`IMAGE_UNLIKE_FRACTION`; a colour breast image on a model of salivary-gland
B-mode images, say) gets a warning that starts with :data:`DO_NOT_USE`: the image does not look
like the training images and the result should not be used. :func:`case_warning_texts` gives a
single case's warnings as the sentences a calculator shows, the most serious first. (The declared
variables are checked by :func:`sonorad.bundle.schema.apply_schema`.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sonorad.bundle.rows import format_value as _fmt
from sonorad.bundle.summary import ROI_COLUMNS

if TYPE_CHECKING:
    from sonorad.bundle.inputs import CaseInputs

__all__ = ["DO_NOT_USE", "FEATURE_OOD_FRACTION", "IMAGE_UNLIKE_FRACTION", "MIN_CENTER_CASES", "batch_missing",
           "case_warning_texts", "models_reading", "ood_warnings"]

#: Fraction of imaging features outside the training 1-99% range above which a case is flagged
#: (about 2% for a training case).
FEATURE_OOD_FRACTION = 0.25
#: Above this fraction (most features) the image is taken for one unlike the training images, and
#: the warning says not to use the result.
IMAGE_UNLIKE_FRACTION = 0.5
#: How the warning for an image unlike the training images begins (a page may show it prominently).
DO_NOT_USE = "Do not use this result"
_ROI_TOLERANCE = 0.05
_CAUTION = "interpret the risk with caution"
#: Per ROI measure: what it is, whose it is, its unit, and what to check when it is too large / too small.
_ROI_WORDS = {
    "area_px": ("The outlined lesion", "lesions of the training patients", "pixels",
                "check that the outline covers only the lesion", "check that the outline covers the whole lesion"),
    "area_mm2": ("The outlined lesion", "lesions of the training patients", "mm²",
                 "check that the outline covers only the lesion and that the image's pixel size is right",
                 "check that the outline covers the whole lesion and that the image's pixel size is right"),
    "spacing_row_mm": ("The image's pixel height", "training images", "mm",
                       "check the pixel size given with the image (a depth or zoom unlike the training images?)",
                       "check the pixel size given with the image (a depth or zoom unlike the training images?)"),
    "spacing_col_mm": ("The image's pixel width", "training images", "mm",
                       "check the pixel size given with the image (a depth or zoom unlike the training images?)",
                       "check the pixel size given with the image (a depth or zoom unlike the training images?)"),
}
_FEATURE_WORDS = {"radiomics": "radiomics measures (the texture, brightness and shape of the outlined region)",
                  "deep": "deep-learning image features"}


def _num(x: float) -> str:
    """A number for a sentence: whole from 100 on, else four significant digits (``26554``, ``1794``, ``0.0781``)."""
    x = float(x)
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.4g}"


def _roi_message(column: str, value: float, low: float, high: float) -> str:
    """What is unusual about an ROI measure, why it matters and what to do, in words."""
    subject, whose, unit, fix_large, fix_small = _ROI_WORDS[column]
    larger = value > high
    return (f"{subject} is {'larger' if larger else 'smaller'} than in 99% of the {whose} "
            f"({_num(value)} {unit}; training {_num(low)}-{_num(high)}). The model has not seen such "
            f"{'lesions' if column.startswith('area') else 'images'}, so its risk may be unreliable. "
            f"What to do: {fix_large if larger else fix_small}; {_CAUTION}.")


def _features_message(kind: str, share: float, n: int) -> str:
    """An image whose features lie outside the training range: unlike the training images (most of
    them: do not use the result), or different from them (more than a quarter: caution)."""
    what = (f"{share:.0%} of its {n} {_FEATURE_WORDS.get(kind, kind + ' features')} lie outside the range "
            "seen in training (about 2% for a training image)")
    if share > IMAGE_UNLIKE_FRACTION:
        return (f"{DO_NOT_USE}: the image does not look like the training images. {what[0].upper()}{what[1:]}. "
                "It may be another kind of image (another organ, a colour or Doppler image, markers or text "
                "over the lesion) or come from a very different scanner; the model was not made for it, so "
                "its risk means nothing here. What to do: use a grayscale ultrasound image like the "
                "training images, with the lesion outlined as in training.")
    return (f"The image differs from the training images: {what}. It may come from another scanner or "
            "preset, or the lesion may be outlined differently than in training, so the risk may be "
            f"unreliable. What to do: check the image and the outline; {_CAUTION}.")


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
                                     "message": _roi_message(column, v, q[0], q[-1])})
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
                                 "message": _features_message(kind, float(s), len(cols))})
    if bundle.needs_center and "center" in X.columns:
        known = set(bundle.summary.get("centers") or [])
        for cid, center in X["center"].items():
            if center is not None and known and str(center) not in known:
                warnings.append({"case_id": cid, "column": "center",
                                 "message": f"The center {center!r} is not one of the training centers. The model "
                                            "adjusts image features to each center, and estimates this center's "
                                            "adjustment from its cases scored together, so with few cases the "
                                            "risk may be unreliable. What to do: score several cases of this "
                                            f"center together, or choose a training center if it is one; {_CAUTION}."})
    return warnings


def case_warning_texts(result, unknown_values=()) -> list[str]:
    """One case's warnings as the sentences a calculator shows, the most serious first.

    Parameters
    ----------
    result : BundlePrediction
        The scored case: its ``warnings`` (case_id, column, message), ``failures`` (of models other
        than the chosen one; case_id, stage, error, fix) and ``notes``.
    unknown_values : iterable of str
        Value names given that are not variables of the model (ignored by scoring).

    Returns
    -------
    list of str
        A warning that the image is unlike the training images (:data:`DO_NOT_USE`) first, then the
        other warnings, what failed, the ignored names and the notes.
    """
    messages = [str(m) for m in result.warnings["message"]]
    texts = sorted(messages, key=lambda m: not m.startswith(DO_NOT_USE))  # stable: the rest keep their order
    texts += [f"One of the bundle's models could not score this case ({f.stage}): {str(f.error).rstrip('.')}. "
              "The result shown does not depend on it." + (f" What to do: {str(f.fix).rstrip('.')}." if f.fix else "")
              for f in result.failures.itertuples()]
    texts += [f"{name!r} is not a variable of this model and was ignored. What to do: check its spelling."
              for name in unknown_values]
    return texts + list(result.notes)


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
    ``name`` changes from a low to a high training value: the models that depend on it
    (:func:`sonorad.explain.dependence.models_reading`, the rule the run's report uses too)."""
    from sonorad.explain.dependence import models_reading as reading

    tables = {m: bundle.model(m) for m in models if bundle.model_kind(m) == "skops"}
    return reading(tables, X, name, _contrast(bundle, name))


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
                   f"What to do: record {name} at that site, or judge the site with a model that does not use it.")
        rows.append({"case_id": "", "column": name, "message": message})
        notes.append(message)
        covered |= {(str(c), name) for c in gone}
    return rows, notes, covered


# -- an ROI no lesion of the training cohort comes near --------------------------------------------
def implausible_roi(bundle, mask: np.ndarray) -> str | None:
    """Why the ROI cannot be a lesion like the training ones, or ``None``.

    The training cohort's ROI areas (pixels) give a plausible range by the rule that refuses a
    variable's implausible values (:func:`sonorad.variables.plausible_range`: 10 interquartile
    ranges beyond the quartiles). An outline far larger is an error of drawing (the whole image
    outlined) or of the image (another resolution), and extraction on it costs minutes, so it is
    refused before any feature is computed. ``None`` for a bundle without ROI quantiles.
    """
    from sonorad.variables import VariableSpec, plausible_range

    quantiles = ((bundle.summary.get("rois") or {}).get("area_px") or {}).get("quantiles") or []
    levels = list(bundle.summary.get("quantiles") or [])
    if 0.25 not in levels or 0.75 not in levels or len(quantiles) != len(levels):
        return None
    q1, q3 = quantiles[levels.index(0.25)], quantiles[levels.index(0.75)]
    allowed = plausible_range(VariableSpec("area_px", "numeric"),
                              {"quartiles": [q1, q3], "range": [quantiles[0], quantiles[-1]]})
    area = int(np.count_nonzero(mask))
    if allowed is None or area <= allowed.high:
        return None
    return (f"The outlined region covers {area} pixels, far more than any lesion of the training patients "
            f"(their middle half: {_num(q1)}-{_num(q3)} pixels; accepted up to {_num(allowed.high)}, "
            f"{allowed.basis}). The model cannot judge such a region. What to do: outline only the lesion; if "
            "the image has a much finer resolution than the training images, export it at the training "
            "resolution.")
