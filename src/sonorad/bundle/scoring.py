"""Score new cases with a bundle: features with the saved settings -> model input -> models.

:func:`predict_cases` (a cases table) and :func:`predict_case` (one image in memory, for a
calculator) differ only in how they get features (:mod:`sonorad.bundle.inputs`). From the feature
tables on they share :func:`score`: apply the variable schema
(:func:`sonorad.bundle.schema.apply_schema`), build the model input table, warn about inputs unlike
the training cohort's (:mod:`sonorad.bundle.checks`), run every model, explain the chosen one
(:mod:`sonorad.bundle.explanations`). A labelled batch also gets :func:`labelled_metrics`.

Per-case warnings (``warnings``: case_id, column, message):

- a declared numeric variable outside its training range; a level no training case had; a missing
  value (imputed by the model);
- an ROI area (pixels, mm²) or pixel spacing outside the training cohort's 1st-99th percentile range
  (with a 5% tolerance);
- more than a quarter of the radiomics (or deep) features outside their training 1st-99th
  percentile range (a typical training case has about 2% there);
- a center that is not a training center, when a model harmonises by center.

A declared predictor missing for every case of the batch (of two or more cases), or of a center
within it, is said once, in a batch-level row (``case_id`` empty) and a note naming the models that
depend on it (:func:`sonorad.bundle.checks.batch_missing`), instead of once per case.

A case that cannot be used gets a row in ``failures`` (case_id, stage, error, fix) and the others
are still scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.bundle import explanations
from sonorad.bundle._trust import BundleError
from sonorad.bundle.checks import implausible_roi, batch_missing, case_warning_texts, ood_warnings
from sonorad.bundle.explanations import CONTRIBUTION_COLUMNS
from sonorad.bundle.inputs import CaseInputs, inputs_from_case, inputs_from_table, model_input, read_cases_for_prediction
from sonorad.bundle.results import PREDICTION_COLUMNS, WARNING_COLUMNS, BundlePrediction, CaseResult, risk_group
from sonorad.bundle.rows import failure_row as _failure
from sonorad.bundle.schema import apply_schema
from sonorad.errors import FAILURE_COLUMNS, CaseError

__all__ = ["predict_cases", "predict_case", "score", "run_model", "run_cnn", "labelled_metrics"]


# -- models --------------------------------------------------------------------------------------
def _batch(model, X) -> pd.Series:
    """Positive-class probabilities of the rows of X, one call."""
    return pd.Series(np.asarray(model.predict_proba(X))[:, 1].astype(float), index=X.index)


def run_model(name: str, model, X, failures: list) -> pd.Series:
    """Probabilities of the rows of X, scored together.

    When the batch fails, each case is tried alone to find the one(s) at fault; the others are then
    scored together again (a model may use the batch, e.g. ComBat estimating a new center from its
    cases), so one bad case never stops the rest.
    """
    if len(X) == 0:
        return pd.Series(dtype=float)
    try:
        return _batch(model, X)
    except Exception:  # noqa: BLE001 - find the case(s) at fault below
        alone = {}
    for cid in X.index:
        try:
            alone[cid] = float(_batch(model, X.loc[[cid]]).iloc[0])
        except Exception as exc:  # noqa: BLE001
            failures.append(_failure(cid, f"model {name}", f"{type(exc).__name__}: {exc}",
                                     "check this case's values against the bundle's schema.json; the other "
                                     "models and cases are unaffected"))
    if 1 < len(alone) < len(X):
        try:
            return _batch(model, X.loc[list(alone)])
        except Exception:  # noqa: BLE001 - keep the one-by-one probabilities
            pass
    return pd.Series(alone, dtype=float)


def run_cnn(name: str, model, inputs: CaseInputs, ids, failures: list) -> pd.Series:
    """Probabilities of a fine-tuned CNN on the lesion crops of ``ids`` (those that have one); when
    the batch fails, every case gets a failure row."""
    key = (float(model.margin), bool(model.mask_background))
    ids = [c for c in ids if c in inputs.crops]
    if not ids:
        return pd.Series(dtype=float)
    crops = [inputs.crops[c][key][0] for c in ids]
    try:
        return pd.Series(np.asarray(model.predict_proba(crops))[:, 1].astype(float), index=ids)
    except Exception as exc:  # noqa: BLE001
        for cid in ids:
            failures.append(_failure(cid, f"model {name}", f"{type(exc).__name__}: {exc}",
                                     "check that the image and mask of the case open"))
        return pd.Series(dtype=float)


# -- metrics of a labelled batch -----------------------------------------------------------------
def labelled_metrics(bundle, predictions: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Performance of each model on a labelled batch, at the model's saved cut-off.

    Parameters
    ----------
    bundle : Bundle
        Supplies the cut-offs and the study seed (of the F1 bootstrap, as in the run).
    predictions : DataFrame
        :data:`sonorad.bundle.results.PREDICTION_COLUMNS` rows.
    labels : Series
        0/1 label per case id (NaN: unknown, left out).

    Returns
    -------
    DataFrame
        One row per model: ``model``, the row of
        :func:`sonorad.evaluation.metrics.performance_metrics` (the columns of a run's metrics
        table), ``brier`` and ``note``. A statistic the batch cannot give is NaN and ``note`` says
        which and why (one outcome class: no AUC or Brier score, and no sensitivity or no
        specificity; no labelled case: nothing).
    """
    from sonorad.evaluation.calibration import brier_score
    from sonorad.evaluation.metrics import PERFORMANCE_COLUMNS, performance_metrics

    seed = int(bundle.study.get("seed", 0) or 0)
    rows = []
    for name, group in predictions.groupby("model", sort=False):
        y = labels.reindex(group["case_id"]).to_numpy(dtype=float)
        p = group["probability"].to_numpy(dtype=float)
        row = {"model": name, **performance_metrics(y, p, bundle.cutoffs.get(name), random_state=seed)}
        keep = ~(np.isnan(y) | np.isnan(p))
        row["brier"] = float(brier_score(y[keep], p[keep])) if 0 < y[keep].sum() < keep.sum() else np.nan
        row["note"] = _metrics_note(int(keep.sum()), int(y[keep].sum()))
        rows.append(row)
    return pd.DataFrame(rows, columns=["model", *PERFORMANCE_COLUMNS, "brier", "note"])


def _metrics_note(n: int, positives: int) -> str:
    """What a batch of ``n`` labelled cases with ``positives`` events cannot give ("" when all)."""
    if n == 0:
        return "not computable: no scored case has a usable label"
    if positives in (0, n):
        which = "sensitivity, PPV, F1" if positives == 0 else "specificity, NPV"
        return (f"not computable: one outcome class ({positives} positive of {n}); the AUC, its CI, the Brier "
                f"score and {which} need both classes")
    return ""


# -- the shared path -----------------------------------------------------------------------------
def _selected(bundle, models) -> list[str]:
    """The models to run: all of the bundle's, or those named (each checked)."""
    if models is None:
        return bundle.models
    models = [models] if isinstance(models, str) else list(models)
    unknown = [m for m in models if m not in bundle.models]
    if unknown:
        raise BundleError(f"model(s) {unknown} are not in this bundle; it has {bundle.models}.")
    return models


def _run_models(bundle, inputs: CaseInputs, X: pd.DataFrame, models: list[str], failures: list) -> pd.DataFrame:
    """Every model's probabilities of the rows of ``X`` as :data:`PREDICTION_COLUMNS` rows, in the
    cases' order."""
    predictions = []
    for name in models:
        if bundle.model_kind(name) == "cnn":
            p = run_cnn(name, bundle.model(name), inputs, list(X.index), failures)
        else:
            p = run_model(name, bundle.model(name), X, failures)
        cut = bundle.cutoffs.get(name)
        for cid, prob in p.items():
            predictions.append({"case_id": cid, "model": name, "probability": float(prob),
                                "risk_group": risk_group(prob, cut), "cutoff": cut})
    predictions = pd.DataFrame(predictions, columns=PREDICTION_COLUMNS)
    order = {c: i for i, c in enumerate(inputs.ids)}
    return predictions.sort_values("case_id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _explain_chosen(bundle, X: pd.DataFrame, predictions: pd.DataFrame, models: list[str],
                    notes: list) -> list[dict]:
    """SHAP contribution rows of the chosen model for the cases it scored (a feature-table model
    only); when SHAP fails, a note and no rows."""
    chosen = bundle.chosen
    explained = [c for c in X.index if ((predictions["model"] == chosen) & (predictions["case_id"] == c)).any()]
    if not (chosen in models and explained and bundle.model_kind(chosen) == "skops"):
        return []
    try:
        shap_result, Xd = explanations.shap_contributions(bundle, chosen, X.loc[explained])
        rows = explanations.contribution_rows(chosen, shap_result, Xd)
        return explanations.describe_contributions(bundle, chosen, X.loc[explained], rows)
    except Exception as exc:  # noqa: BLE001 - predictions stand without explanations
        notes.append(f"SHAP contributions of {chosen} could not be computed: {type(exc).__name__}: {exc}")
        return []


def score(bundle, inputs: CaseInputs, models: list[str], explain: bool) -> tuple[BundlePrediction, pd.DataFrame]:
    """Feature tables -> predictions, warnings, failures, contributions (shared by both entry points).

    Returns the result (``metrics`` and ``gradcam`` not filled) and the model input table ``X`` of
    the cases that reached the models.
    """
    failures = list(inputs.failures)
    failed = {f["case_id"] for f in failures}
    values, warnings, var_failures = apply_schema(bundle, inputs.values)
    failures += var_failures
    failed |= {f["case_id"] for f in var_failures}
    ok = [c for c in inputs.ids if c not in failed]
    X, input_failures = model_input(bundle, inputs, values, ok)
    failures += input_failures
    warnings += ood_warnings(bundle, inputs, X)
    predictions = _run_models(bundle, inputs, X, models, failures)
    batch_rows, notes, covered = batch_missing(bundle, inputs.values, inputs.centers, X, models)
    warnings = batch_rows + [w for w in warnings if (str(w["case_id"]), w["column"]) not in covered]
    contributions = _explain_chosen(bundle, X, predictions, models, notes) if explain else []
    result = BundlePrediction(
        predictions=predictions,
        warnings=pd.DataFrame(warnings, columns=WARNING_COLUMNS),
        failures=pd.DataFrame(failures, columns=FAILURE_COLUMNS),
        contributions=pd.DataFrame(contributions, columns=CONTRIBUTION_COLUMNS),
        notes=notes)
    return result, X


def _label_findings(bundle, labels, result: BundlePrediction) -> None:
    """A warning row per case whose label is neither positive nor negative, and one note naming them."""
    from sonorad.bundle.inputs import _label_column

    column = _label_column(bundle)[0]
    note = labels.note(column)
    if note is None:
        return
    allowed = ", ".join(repr(v) for v in [labels.positive, *labels.negatives])
    rows = [{"case_id": cid, "column": column,
             "message": f"label {value!r} is neither the positive value nor a negative one (allowed: {allowed}); "
                        "the case is scored but left out of metrics.csv"} for cid, value in labels.refused.items()]
    result.warnings = pd.concat([result.warnings, pd.DataFrame(rows, columns=WARNING_COLUMNS)], ignore_index=True)
    result.notes.append(note)


def predict_cases(bundle, cases, *, models=None, explain: bool = True, gradcam_dir=None, jobs: int = 1,
                  cache=None, progress: bool = False) -> BundlePrediction:
    """Score every case of a cases table with the bundle's models.

    Parameters
    ----------
    bundle : Bundle
    cases : DataFrame or str or Path
        Cases table (``case_id``, ``image``, ``mask``, optional ``frame`` / ``spacing_mm``, the declared
        variables, ``center``); a ``label`` column is optional and gives ``metrics``. A path is read
        with :func:`read_cases_for_prediction`.
    models : list of str, optional
        Models to run (default: all).
    explain : bool
        SHAP contributions of the chosen model.
    gradcam_dir : str or Path, optional
        Write a Grad-CAM overlay PNG per case there (needs a fine-tuned CNN or a DL-score in the
        chosen model).
    jobs : int
        Worker processes of the radiomics extraction.
    cache : FeatureCache, str, Path or None
        Feature cache (e.g. the run's ``features/.cache``): cases already extracted are reused.
    progress : bool
        Progress bars.

    Returns
    -------
    BundlePrediction
    """
    if isinstance(cases, (str, Path)):
        cases = read_cases_for_prediction(cases)
    models = _selected(bundle, models)
    inputs = inputs_from_table(bundle, cases, jobs=jobs, cache=cache, progress=progress)
    result, _ = score(bundle, inputs, models, explain)
    if inputs.labels is not None and len(result.predictions):
        _label_findings(bundle, inputs.labels, result)
        result.metrics = labelled_metrics(bundle, result.predictions, inputs.labels.y)
        notes = dict.fromkeys(n for n in result.metrics["note"] if n)
        result.notes += [f"metrics: {n}" for n in notes]
    if gradcam_dir is not None:
        failures = []
        result.gradcam = explanations.save_gradcams(bundle, inputs, result.scored_cases, gradcam_dir, failures)
        if explanations.gradcam_source(bundle) is None:
            result.notes.append("no Grad-CAM: the bundle has neither a fine-tuned CNN nor a DL-score in the chosen model")
        if failures:
            result.failures = pd.concat([result.failures, pd.DataFrame(failures, columns=FAILURE_COLUMNS)],
                                        ignore_index=True)
    return result


def _case_nomogram(bundle, X: pd.DataFrame) -> dict | None:
    """Nomogram points of the one case in ``X`` when the chosen model has a nomogram."""
    nomo = explanations.nomogram(bundle, X)
    if nomo is None:
        return None
    from sonorad.explain.shap import apply_steps, explain_parts

    from sonorad.clinical import clinical_encoders

    display, _, _, Xf = explain_parts(bundle.model(bundle.chosen), X)
    row = apply_steps(display, Xf)
    pts = nomo.nomogram_points(row.iloc[[0]].reset_index(drop=True))
    encoders = [enc for step in display for enc in clinical_encoders(step)]
    return {"points": {k: float(v) for k, v in pts.points.items()}, "total_points": pts.total_points,
            "linear_predictor": pts.linear_predictor, "probability": pts.probability,
            "labels": {k: explanations.predictor_description(bundle, str(k), encoders) for k in pts.points.keys()}}


def _case_gradcam(bundle, inputs: CaseInputs, case_id: str, warnings: list):
    """Grad-CAM overlay of the case, or ``None`` (no network; a failure is added to ``warnings``)."""
    try:
        heat = explanations.gradcam_heat(bundle, inputs, case_id)
    except Exception as exc:  # noqa: BLE001 - the prediction stands without a heatmap
        warnings.append(f"gradcam: {type(exc).__name__}: {exc}")
        return None
    return None if heat is None else explanations.gradcam_overlay(heat[0], heat[2])


def _performance(bundle) -> tuple[dict | None, str | None]:
    """The chosen model's saved performance at its cut-off, or ``None`` and why not."""
    saved = getattr(bundle, "performance", None)
    if saved is None:
        return None, ("not available: this bundle holds no performance at the cut-off (written before "
                      "bundles kept it, or by a run without a labelled cohort to measure it on)")
    entry = (saved.get("models") or {}).get(bundle.chosen)
    if entry is None:
        return None, f"not available: the bundle holds no performance of {bundle.chosen} at its cut-off"
    return dict(entry), None


def _uncertainty(bundle, X: pd.DataFrame) -> tuple[dict | None, str | None]:
    """The chosen model's per-patient interval (:mod:`sonorad.bundle.uncertainty`), or ``None`` and
    why not."""
    from sonorad.bundle.uncertainty import case_interval

    info = getattr(bundle, "uncertainty", None)
    if info is None:
        return None, ("not available: this bundle holds no bootstrap refits of its model (written before "
                      "bundles kept them, or without the training labels)")
    refits = bundle.uncertainty_refits()
    if refits is None:
        return None, info.get("note") or "not available: the bundle's refits are missing"
    try:
        return case_interval(bundle.model(bundle.chosen), refits, X, classifier=info.get("classifier") or "?"), None
    except Exception as exc:  # noqa: BLE001 - the probability stands without its interval
        return None, f"not available: the interval could not be computed ({type(exc).__name__}: {exc})"


def _chosen_probability(bundle, image, mask, values: dict, case_id: str) -> float:
    """The chosen model's probability of one case (no explanation): the ROI sensitivity's scorer."""
    inputs = inputs_from_case(bundle, image, mask, values, case_id)
    result, _ = score(bundle, inputs, [bundle.chosen], False)
    p = result.predictions.loc[result.predictions["model"] == bundle.chosen, "probability"]
    if not len(p):
        first = result.failures.iloc[0] if len(result.failures) else None
        raise ValueError(first["error"] if first is not None else f"{bundle.chosen} gave no probability")
    return float(p.iloc[0])


def predict_case(bundle, image, mask, values: dict, *, case_id: str = "case", explain: bool = True,
                 gradcam: bool = True, models=None, roi_sensitivity: bool = False,
                 roi_pixels: int | None = None) -> CaseResult:
    """Score one case held in memory (a calculator's path).

    Parameters
    ----------
    bundle : Bundle
    image : sonorad.imaging.UltrasoundImage
        Gray image with its pixel spacing.
    mask : ndarray of bool
        Lesion ROI on the image's grid.
    values : dict
        Declared variable -> value (missing keys or ``None`` are imputed by the model), and
        ``center`` when a model harmonises by center.
    case_id : str
    explain : bool
        SHAP contributions (and the nomogram points of a logistic model).
    gradcam : bool
        Grad-CAM overlay when the bundle has a network for it.
    models : list of str, optional
        Models to run (default: all); the chosen model is always run.
    roi_sensitivity : bool
        Also score the chosen model on the mask eroded and dilated by ``roi_pixels``
        (:mod:`sonorad.bundle.sensitivity`; no SHAP, no Grad-CAM).
    roi_pixels : int, optional
        Erosion / dilation radius (default :data:`sonorad.bundle.sensitivity.DEFAULT_PIXELS`).

    Returns
    -------
    CaseResult

    Raises
    ------
    CaseError
        The case cannot be scored by the chosen model (bad mask, value outside the known levels, ...);
        the message names the problem and the fix.
    """
    case_id = str(case_id)
    too_large = implausible_roi(bundle, mask)  # before extraction, which costs minutes on such an ROI
    if too_large is not None:
        raise CaseError(case_id, too_large, "outline only the lesion")
    inputs = inputs_from_case(bundle, image, mask, values, case_id)
    models = _selected(bundle, models)
    models = models if bundle.chosen in models else [*models, bundle.chosen]
    result, X = score(bundle, inputs, models, explain)
    probs = {r.model: r.probability for r in result.predictions.itertuples()}
    if bundle.chosen not in probs:
        problems = result.failures
        first = problems.iloc[0] if len(problems) else None
        message = first["error"] if first is not None else f"the chosen model {bundle.chosen} gave no probability"
        raise CaseError(case_id, message, first["fix"] if first is not None else "")
    warnings = case_warning_texts(result, inputs.unknown_values)
    contributions = [{"feature": r.feature, "label": r.description, "value": r.value, "display": r.display,
                      "shap": r.shap} for r in result.contributions.itertuples()]
    base = float(result.contributions["base_value"].iloc[0]) if len(result.contributions) else None
    output = str(result.contributions["output"].iloc[0]) if len(result.contributions) else None
    nomogram = _case_nomogram(bundle, X) if explain else None
    overlay = _case_gradcam(bundle, inputs, case_id, warnings) if gradcam else None
    cut = bundle.cutoffs.get(bundle.chosen)
    p = probs[bundle.chosen]
    performance, performance_note = _performance(bundle)
    uncertainty, uncertainty_note = _uncertainty(bundle, X.iloc[:1])
    sensitivity, sensitivity_note = None, None
    if roi_sensitivity:
        from sonorad.bundle import sensitivity as roi

        sensitivity, sensitivity_note = roi.roi_sensitivity(
            lambda changed: _chosen_probability(bundle, image, changed, values, case_id), mask, p,
            pixels=roi.DEFAULT_PIXELS if roi_pixels is None else roi_pixels)
    return CaseResult(case_id=case_id, model=bundle.chosen, probability=p, probabilities=probs,
                      risk_group=risk_group(p, cut), cutoff=cut, contributions=contributions, base_value=base,
                      shap_output=output, nomogram=nomogram, gradcam=overlay, warnings=warnings,
                      outcome=explanations.outcome(bundle), performance_at_cutoff=performance,
                      performance_note=performance_note, uncertainty=uncertainty,
                      uncertainty_note=uncertainty_note, roi_sensitivity=sensitivity,
                      roi_sensitivity_note=sensitivity_note)
