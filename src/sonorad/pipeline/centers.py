"""A predictor missing for a whole validation center: which models can still be judged there.

When a declared predictor has no value at any case of a center, every model that reads it is scored
there on one imputed training value, which can invert its ranking at that center. The finding
belongs to the center, so the run evaluates, next to the chosen model, the models that do not need
the missing predictor (:func:`sonorad.explain.dependence.models_reading` decides which read it).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["MISSING_COLUMNS", "MIN_CENTER_CASES", "missing_predictor_centers"]

#: A center needs at least this many cases for "missing at the whole center" to be said.
MIN_CENTER_CASES = 2

MISSING_COLUMNS = ["cohort", "center", "variable", "model", "role", "reads_variable", "n", "auc", "auc_low",
                   "auc_high"]


def _wholly_missing(values: pd.Series, centers: pd.Series) -> list[str]:
    """Centers (of at least :data:`MIN_CENTER_CASES` cases) where every value is missing."""
    from sonorad.variables import canonical_value

    missing = values.map(canonical_value).isna()
    sizes = centers.value_counts()
    return [str(c) for c, n in sizes.items() if n >= MIN_CENTER_CASES and missing[centers == c].all()]


def missing_predictor_centers(models: dict, chosen: str, inputs: dict, table: pd.DataFrame, variables,
                              by_center: pd.DataFrame | None, *, cnns=()) -> pd.DataFrame:
    """One row per (validation cohort, center, missing predictor, model) for the chosen model and
    every model that does not read the predictor, with its AUC at that center.

    Parameters
    ----------
    models : dict of str -> fitted model
        The design's models (``predict_proba`` over the model input table).
    chosen : str
        The study's chosen model.
    inputs : dict of cohort -> DataFrame
        Model input tables; ``"training"`` gives the rows scored at the contrast values.
    table : DataFrame
        The cohort table (index: case ids): the declared variables as given, and ``center``.
    variables : iterable of str
        The declared variables.
    by_center : DataFrame or None
        ``cohort, model, center, n, auc, auc_low, auc_high`` (the run's per-center table).
    cnns : iterable of str
        Fine-tuned CNNs: they read the image only.

    Returns
    -------
    DataFrame of :data:`MISSING_COLUMNS` (empty when no predictor is missing for a whole center).
    """
    from sonorad.explain.dependence import contrast_values, models_reading

    rows = []
    X_train = inputs.get("training")
    if X_train is None or by_center is None or not len(by_center) or "center" not in table.columns:
        return pd.DataFrame(rows, columns=MISSING_COLUMNS)
    metrics = by_center.set_index(["cohort", "center", "model"])
    for cohort in ("internal", "external"):
        if cohort not in inputs:
            continue
        ids = inputs[cohort].index
        centers = table.loc[ids, "center"].astype(str)
        for name in variables:
            if name not in table.columns:
                continue
            where = _wholly_missing(table.loc[ids, name], centers)
            if not where:
                continue
            reading = set(models_reading(models, X_train, name, contrast_values(X_train[name])
                                         if name in X_train.columns else None))
            free = [m for m in [*models, *cnns] if m not in reading]
            for center in where:
                for model in dict.fromkeys([chosen, *free]):
                    key = (cohort, center, model)
                    r = metrics.loc[key] if key in metrics.index else None
                    rows.append({"cohort": cohort, "center": center, "variable": name, "model": model,
                                 "role": "chosen" if model == chosen else "does not need it",
                                 "reads_variable": model in reading,
                                 "n": None if r is None else int(r["n"]),
                                 "auc": None if r is None else float(r["auc"]),
                                 "auc_low": None if r is None else float(r["auc_low"]),
                                 "auc_high": None if r is None else float(r["auc_high"])})
    return pd.DataFrame(rows, columns=MISSING_COLUMNS)
