"""What a bundle keeps of the training cohort: aggregate summaries, never rows.

- :func:`training_summary`: per column of the model input table, quantiles (1st, 5th, 25th, 50th,
  75th, 95th, 99th percentile), mean, SD and the number of missing values; for declared numeric
  variables also the training range (min, max); for categorical ones the levels seen; the training
  centers; and the same quantiles of the ROI measures (:data:`ROI_COLUMNS`). Used for the
  out-of-distribution warnings at prediction time. Each quantile is the mean of the
  :data:`MIN_CASES_PER_CENTROID` order statistics around it (:func:`pooled_quantiles`), so no stored
  quantile is one case's value; the training range of a declared numeric variable is the one
  exception (the youngest and the oldest patient's age, say: one value each, not a row).
- :func:`shap_background`: k-means centroids of the training cases in the space the final
  classifier sees, each centroid the mean of at least :data:`MIN_CASES_PER_CENTROID` cases.
  The linear and permutation SHAP explainers take them as their background instead of raw rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["QUANTILES", "ROI_COLUMNS", "MIN_CASES_PER_CENTROID", "MAX_CENTROIDS", "roi_measures", "roi_table",
           "pooled_quantiles",
           "training_summary", "shap_background"]

#: Quantiles stored for every numeric column.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: ROI measures compared with the training cohort's.
ROI_COLUMNS = ("area_px", "area_mm2", "spacing_row_mm", "spacing_col_mm")
#: Smallest number of training cases averaged into one SHAP background centroid.
MIN_CASES_PER_CENTROID = 5
#: Largest SHAP background (the permutation explainer's cost grows with it).
MAX_CENTROIDS = 20


def roi_measures(image, mask: np.ndarray) -> dict[str, float]:
    """ROI area (pixels, mm²) and pixel spacing of one case, the measures of :data:`ROI_COLUMNS`.

    Parameters
    ----------
    image : sonorad.imaging.UltrasoundImage
    mask : ndarray of bool, shape = image.pixels.shape

    Examples
    --------
    >>> from sonorad.imaging import UltrasoundImage
    >>> m = np.zeros((10, 10), bool); m[2:6, 2:7] = True
    >>> roi_measures(UltrasoundImage(np.zeros((10, 10)), spacing=(0.1, 0.2)), m)["area_mm2"]
    0.4
    """
    area = int(np.count_nonzero(mask))
    row, col = (float(s) for s in image.spacing)
    return {"area_px": float(area), "area_mm2": round(area * row * col, 12),
            "spacing_row_mm": row, "spacing_col_mm": col}


def pooled_quantiles(values, probs=QUANTILES, k: int = MIN_CASES_PER_CENTROID) -> np.ndarray:
    """Quantiles, each the mean of the ``k`` order statistics nearest its position ``p * (n - 1)``.

    A plain sample quantile can be one case's exact value (the median of an odd number of cases);
    a pooled one averages ``k`` cases. With fewer than ``k`` values every quantile is their mean.

    >>> pooled_quantiles(np.arange(11.0), probs=(0.5,), k=5)
    array([5.])
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return np.full(len(probs), np.nan)
    if n <= k:
        return np.full(len(probs), x.mean())
    out = []
    for p in probs:
        start = int(np.clip(round(p * (n - 1) - (k - 1) / 2), 0, n - k))
        out.append(x[start:start + k].mean())
    return np.asarray(out)


def roi_table(table: pd.DataFrame) -> pd.DataFrame:
    """ROI measures (:data:`ROI_COLUMNS`) of every case of a cohort table that can be read.

    The ``training_rois`` argument of :func:`sonorad.bundle.write_bundle`. Each case is read with
    :func:`sonorad.imaging.load_roi` (``frame`` and ``spacing_mm`` honoured); a case that cannot be
    read is left out (the extraction stage reports it).
    """
    from sonorad.errors import CaseError
    from sonorad.features.extract import cases_from_table
    from sonorad.imaging import load_roi

    rows = {}
    for case in cases_from_table(table):
        if not case.masks:
            continue
        try:
            image, mask = load_roi(case.image, list(case.masks), case_id=case.case_id, frame=case.frame,
                                   spacing=case.spacing)
        except CaseError:
            continue
        rows[case.case_id] = roi_measures(image, mask)
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(ROI_COLUMNS)).rename_axis("case_id")


def _number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _numeric_summary(values: pd.Series) -> dict:
    values = pd.to_numeric(values, errors="coerce")
    present = values.dropna().to_numpy(dtype=float)
    out = {"n": int(len(present)), "n_missing": int(values.isna().sum())}
    if len(present):
        qs = pooled_quantiles(present)
        out["quantiles"] = [_number(q) for q in qs]
        out["mean"] = _number(present.mean())
        out["sd"] = _number(present.std(ddof=1)) if len(present) > 1 else None
    return out


def training_summary(training_input: pd.DataFrame, training_rois: pd.DataFrame | None,
                     variables: dict, kinds: dict[str, str]) -> dict:
    """Aggregate summary of the training cohort (see the module docstring); JSON-able.

    Parameters
    ----------
    training_input : DataFrame
        The training cohort's model input table.
    training_rois : DataFrame or None
        One row per training case with the :data:`ROI_COLUMNS` that are known.
    variables : dict of str -> VariableSpec
        The study's declared variables.
    kinds : dict of str -> str
        Column -> ``"radiomics"``, ``"deep"``, ``"variable"`` or ``"center"``.
    """
    from sonorad.variables import canonical_value

    summary = {"n_cases": int(len(training_input)), "quantiles": list(QUANTILES), "columns": {}}
    for column in training_input.columns:
        kind = kinds[column]
        values = training_input[column]
        if kind == "center":
            summary["centers"] = sorted({str(v) for v in values.dropna()})
            continue
        spec = variables.get(column) if kind == "variable" else None
        if spec is not None and spec.type != "numeric":
            levels = sorted({canonical_value(v) for v in values} - {None})
            summary["columns"][column] = {"kind": kind, "levels_seen": levels,
                                          "n_missing": int(values.map(canonical_value).isna().sum())}
            continue
        entry = {"kind": kind, **_numeric_summary(values)}
        if spec is not None:  # a declared numeric variable: its training range is shown and checked
            present = pd.to_numeric(values, errors="coerce").dropna()
            entry["range"] = [_number(present.min()), _number(present.max())] if len(present) else None
        summary["columns"][column] = entry
    summary["rois"] = {}
    if training_rois is not None:
        for column in ROI_COLUMNS:
            if column in training_rois.columns:
                summary["rois"][column] = _numeric_summary(training_rois[column])
    return summary


def shap_background(Xt: pd.DataFrame, *, random_state: int = 0) -> tuple[np.ndarray, list[int]]:
    """K-means centroids of the training predictors, each the mean of >= MIN_CASES_PER_CENTROID cases.

    Clusters are found by k-means on z-scored predictors (so no predictor dominates by its unit),
    with ``min(MAX_CENTROIDS, n // MIN_CASES_PER_CENTROID)`` clusters; then, while a cluster has
    fewer than :data:`MIN_CASES_PER_CENTROID` cases, the smallest one is dissolved and its cases
    join the nearest remaining cluster.

    Returns
    -------
    centroids : ndarray, shape (k, n_predictors)
        Means of the cases of each cluster, in the predictors' own units.
    sizes : list of int
        Cases per centroid.
    """
    from sklearn.cluster import KMeans

    values = np.asarray(Xt, dtype=float)
    n = len(values)
    if n < MIN_CASES_PER_CENTROID:
        raise ValueError(f"{n} training cases: at least {MIN_CASES_PER_CENTROID} are needed for one centroid")
    if not np.isfinite(values).all():
        raise ValueError("the training predictors have missing or infinite values")
    sd = values.std(axis=0)
    z = (values - values.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    k = max(1, min(MAX_CENTROIDS, n // MIN_CASES_PER_CENTROID, len(np.unique(z, axis=0))))
    labels = (np.zeros(n, dtype=int) if k == 1 else
              KMeans(n_clusters=k, n_init=4, random_state=random_state).fit_predict(z))
    clusters = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    while len(clusters) > 1 and min(len(m) for m in clusters.values()) < MIN_CASES_PER_CENTROID:
        small = min(clusters, key=lambda c: (len(clusters[c]), c))
        members = clusters.pop(small)
        keys = sorted(clusters)
        centres = np.vstack([z[clusters[c]].mean(axis=0) for c in keys])
        nearest = np.argmin(((z[members, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        for i, c in zip(members, nearest):
            clusters[keys[c]] = np.append(clusters[keys[c]], i)
    keys = sorted(clusters)
    centroids = np.vstack([values[clusters[c]].mean(axis=0) for c in keys])
    return centroids, [len(clusters[c]) for c in keys]
