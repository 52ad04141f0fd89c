"""Explanations of a bundle's predictions: SHAP contributions, the nomogram and Grad-CAM.

Every explanation is computed by :mod:`sonorad.explain`, with the functions the study run uses;
this module only supplies what the bundle saved in place of training rows:

- :func:`shap_contributions` and :func:`contribution_rows`: SHAP values of a feature-table model
  (:func:`sonorad.explain.explain_cases`) against the centroid background saved in the bundle,
  as the top :data:`TOP_CONTRIBUTIONS` rows per case (:data:`CONTRIBUTION_COLUMNS`), labelled with
  the predictors' names;
- :func:`nomogram`: the chosen model's nomogram when it is a logistic regression;
- :func:`gradcam_source`, :func:`gradcam_heat`, :func:`gradcam_overlay` and :func:`save_gradcams`:
  Grad-CAM heat maps of a fine-tuned CNN, or of the chosen model's DL-score found by
  :func:`sonorad.explain.find_dl_score` (:func:`dl_score_network`).

What is built once per bundle (the nomogram, the Grad-CAM network) is kept with
:meth:`sonorad.bundle.Bundle.cached`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sonorad.bundle.rows import failure_row as _failure
from sonorad.explain.shap import CONTRIBUTION_FIELDS, explain_cases, explain_parts, top_contributions

if TYPE_CHECKING:
    from sonorad.bundle.inputs import CaseInputs

__all__ = ["CONTRIBUTION_COLUMNS", "TOP_CONTRIBUTIONS", "shap_contributions", "contribution_rows",
           "describe_contributions", "predictor_description", "outcome", "nomogram",
           "dl_score_network", "gradcam_source", "gradcam_heat", "gradcam_overlay", "save_gradcams"]

#: ``label`` is the value as read (a level's text); ``description`` the predictor in the study's words
#: and ``display`` the value as read with the variable's unit.
CONTRIBUTION_COLUMNS = [CONTRIBUTION_FIELDS[0], "model", *CONTRIBUTION_FIELDS[1:], "description", "display"]
#: SHAP contributions kept per case.
TOP_CONTRIBUTIONS = 10


def shap_contributions(bundle, name: str, X: pd.DataFrame):
    """SHAP values of model ``name`` on the model input rows ``X``, against the bundle's saved
    centroid background.

    The bundle keeps no patient rows, so the background is the k-means centroids of the training
    cases' predictors saved at export (:func:`sonorad.bundle.summary.shap_background`); the run
    explains the same model with its training rows instead. Given the same background both give the
    same values (:func:`sonorad.explain.explain_cases`).

    Returns
    -------
    result : sonorad.explain.shap.ShapResult
        One row per row of ``X``, labelled with the predictors' names; ``data`` holds their values
        in their own units.
    display : DataFrame
        ``result.data`` as a table (index: case ids, columns: the predictors).

    Raises
    ------
    ValueError
        The bundle holds no SHAP background for ``name`` (the message says why).
    """
    entry = bundle.explain.get(name) or {"error": "no SHAP background was saved"}
    if "error" in entry:
        raise ValueError(entry["error"])
    background = pd.DataFrame(entry["centroids"], columns=entry["features"])
    result = explain_cases(bundle.model(name), X, background, max_background=len(background),
                           random_state=int(bundle.study.get("seed", 0) or 0), model_name=name)
    return result, pd.DataFrame(result.data, index=result.case_ids, columns=result.feature_names)


def contribution_rows(name: str, result, display: pd.DataFrame, top: int = TOP_CONTRIBUTIONS) -> list[dict]:
    """The ``top`` largest absolute SHAP values of each case as rows of :data:`CONTRIBUTION_COLUMNS`
    (``rank`` 1 = largest; ``value`` in the predictor's own units, as in ``display``)."""
    position = {cid: i for i, cid in enumerate(result.case_ids)}
    rows = []
    for row in top_contributions(result, top):
        row = {"description": row["feature"], "display": row["label"], **row, "model": name,
               "value": float(display.iloc[position[row["case_id"]]][row["feature"]])}
        rows.append({column: row[column] for column in CONTRIBUTION_COLUMNS})
    return rows


def _score_labels() -> dict:
    """Column name -> label of the Rad-score and DL-score (the defaults of :mod:`sonorad.scores`)."""
    from sonorad.scores import DLScore, RadScore

    return {est.name: est.label for est in (RadScore(), DLScore())}


def _declared(bundle) -> dict:
    return {v["name"]: v for v in bundle.schema_data.get("variables", [])}


def predictor_description(bundle, feature: str, encoders=()) -> str:
    """A predictor as the study names it.

    A declared variable reads as its ``description`` (its name without one); a one-hot column of a
    categorical variable as ``"<description>: <level>"`` and a missing indicator as
    ``"<description> (missing)"`` (``encoders``: the fitted
    :class:`sonorad.clinical.ClinicalEncoder` objects of the model); the Rad-score and DL-score as
    ``"Rad-score"`` / ``"DL-score"``; anything else (PyRadiomics and deep features) as its name.
    """
    from sonorad.clinical import predictor_level

    declared = _declared(bundle)

    def words(var):
        entry = declared.get(var) or {}
        return str(entry.get("description") or var)

    scores = _score_labels()
    if feature in scores:
        return scores[feature]
    found = predictor_level(list(encoders), feature) if encoders else None
    if found is not None:
        var, kind, levels = found
        if kind == "one-hot":
            return f"{words(var)}: {levels[0]}"
        if kind == "missing":
            return f"{words(var)} (missing)"
        return words(var)
    return words(feature) if feature in declared else feature


def describe_contributions(bundle, name: str, X: pd.DataFrame, rows: list[dict]) -> list[dict]:
    """``rows`` (:func:`contribution_rows` of model ``name`` on the model input rows ``X``) with
    ``description`` (:func:`predictor_description`) and ``display``: the value as read (a level's
    text, from :func:`sonorad.clinical.decode_value`), followed by the unit of a numeric declared
    variable that declares one."""
    from sonorad.clinical import clinical_encoders

    if not rows:
        return rows
    display_steps = explain_parts(bundle.model(name), X)[0]
    encoders = [enc for step in display_steps for enc in clinical_encoders(step)]
    declared = _declared(bundle)
    out = []
    for row in rows:
        feature = str(row["feature"])
        shown = str(row["label"])
        unit = (declared.get(feature) or {}).get("unit")
        if unit and (declared[feature].get("type") == "numeric"):
            shown = f"{shown} {unit}"
        out.append({**row, "description": predictor_description(bundle, feature, encoders), "display": shown})
    return out


def outcome(bundle) -> dict:
    """What the probability is of: ``{"name", "positive"}`` from the study file's ``label``
    (``name``: its ``description`` when the study gives one, else ``"<column> = <positive>"``)."""
    label = bundle.study.get("label") or {}
    column, positive = str(label.get("column", "label")), str(label.get("positive", "1"))
    return {"name": str(label.get("description") or f"{column} = {positive}"), "positive": positive}


def nomogram(bundle, X: pd.DataFrame):
    """Nomogram of the chosen model when it is a logistic regression, in the predictors' own units.

    ``X`` (model input rows) is only used to find the classifier inside a design's model wrapper.
    ``None`` when the chosen model is not a logistic regression on the feature table. Built once per
    bundle.
    """
    return bundle.cached("nomogram", lambda: _build_nomogram(bundle, X))


def _build_nomogram(bundle, X: pd.DataFrame):
    nomo = None
    entry = bundle.explain.get(bundle.chosen) or {}
    if bundle.model_kind(bundle.chosen) == "skops" and "display" in entry:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        from sonorad.explain.nomogram import build_nomogram

        _, scale, final, _ = explain_parts(bundle.model(bundle.chosen), X)
        if isinstance(final, LogisticRegression):
            tail = Pipeline([(f"scale{i}", s) for i, s in enumerate(scale)] + [("clf", final)])
            d = entry["display"]
            axes = pd.DataFrame({c: [d[c]["low"], d[c]["high"]] for c in entry["features"]})
            try:
                nomo = build_nomogram(tail, axes, categorical=[c for c in entry["features"] if d[c]["binary"]])
            except (ValueError, TypeError):
                nomo = None
    return nomo


# -- Grad-CAM ------------------------------------------------------------------------------------
def dl_score_network(bundle):
    """``(network, crop settings, None)``: a frozen backbone of the bundle with the chosen model's
    DL-score as its one-logit head, found by :func:`sonorad.explain.find_dl_score` (the rule the
    study run uses); ``None`` when the chosen model holds no DL-score read directly from one
    backbone's deep features."""
    from sonorad.explain.network import dl_score_network as network_of

    settings = {s["backbone"]: s for s in bundle.features.get("deep") or []}
    # the cached backbone embeds the cases, so the DL-score head goes on a copy
    found = network_of(bundle.model(bundle.chosen), list(settings),
                       lambda backbone: copy.deepcopy(bundle.backbone(settings[backbone])))
    if found is None:
        return None
    crop = settings[found.backbone]
    return found.network, (float(crop["margin"]), bool(crop["mask_background"])), None


def gradcam_source(bundle):
    """``(network, crop settings, input size)`` for Grad-CAM: a fine-tuned CNN, else the DL-score
    network (:func:`dl_score_network`); ``None`` when the bundle has neither. Built once per bundle."""
    def make():
        source = None
        for name in bundle.models:
            if bundle.model_kind(name) == "cnn":
                m = bundle.model(name)
                source = (m.model_, (float(m.margin), bool(m.mask_background)), m.input_size)
                break
        if source is None:
            source = dl_score_network(bundle)
        return source

    return bundle.cached("gradcam", make)


def gradcam_heat(bundle, inputs: CaseInputs, cid):
    """``(crop, crop mask, heat map in [0, 1])`` of case ``cid``, or ``None`` when the bundle has no
    Grad-CAM network or the case has no crop."""
    from sonorad.explain.gradcam import gradcam_crop

    source = gradcam_source(bundle)
    if source is None or cid not in inputs.crops:
        return None
    net, key, size = source
    crop, crop_mask = inputs.crops[cid][key]
    return crop, crop_mask, gradcam_crop(net, crop, input_size=size)


def gradcam_overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """RGB ``uint8`` image: the gray crop (values in [0, 1]) blended with the heat map in the jet
    colour map, ``alpha`` the heat map's weight; shape ``crop.shape + (3,)``."""
    from matplotlib import colormaps

    gray = np.repeat(np.clip(crop, 0, 1)[..., None], 3, axis=2)
    colour = colormaps["jet"](np.clip(heat, 0, 1))[..., :3]
    return np.round(255 * ((1 - alpha) * gray + alpha * colour)).astype(np.uint8)


def save_gradcams(bundle, inputs: CaseInputs, ids, folder, failures: list) -> pd.DataFrame:
    """Write one Grad-CAM overlay PNG per case of ``ids`` into ``folder``.

    Returns the table ``case_id, path`` of the files written (empty when the bundle has no Grad-CAM
    network); a case whose heat map fails gets a row appended to ``failures`` and the others go on.
    """
    from sonorad.explain.gradcam import save_overlay

    folder = Path(folder)
    rows = []
    if gradcam_source(bundle) is None:
        return pd.DataFrame(columns=["case_id", "path"])
    for cid in ids:
        try:
            crop, crop_mask, heat = gradcam_heat(bundle, inputs, cid)
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(cid)).strip("._") or "case"
            rows.append({"case_id": cid, "path": str(save_overlay(crop, crop_mask, heat, folder / f"{stem}.png",
                                                                 title=str(cid)))})
        except Exception as exc:  # noqa: BLE001 - one case's heatmap never stops the others
            failures.append(_failure(cid, "gradcam", f"{type(exc).__name__}: {exc}", "the prediction is unaffected"))
    return pd.DataFrame(rows, columns=["case_id", "path"])
