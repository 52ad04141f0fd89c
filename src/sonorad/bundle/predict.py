"""Score new cases with a bundle: features with the saved settings -> model input -> models.

:func:`predict_cases` (a cases table) and :func:`predict_case` (one image in memory, for a
calculator) differ only in how they get features: the table path reads every case and runs
:func:`sonorad.features.extract.extract_radiomics` and :func:`sonorad.deep.extractor.extract_deep`
(cached, parallel, per-case failures), the single-case path calls
:func:`sonorad.features.radiomics.extract_case` and embeds the same lesion crop. From the feature
tables on they share :func:`_score`: apply the variable schema, build the model input table, warn
about inputs unlike the training cohort's, run every model, explain the chosen one.

Per-case warnings (``warnings``: case_id, column, message):

- a declared numeric variable outside its training range; a level no training case had; a missing
  value (imputed by the model);
- an ROI area (pixels, mm²) or pixel spacing outside the training cohort's 1st-99th percentile range
  (with a 5% tolerance);
- more than a quarter of the radiomics (or deep) features outside their training 1st-99th
  percentile range (a typical training case has about 2% there);
- a center that is not a training center, when a model harmonises by center.

A case that cannot be used gets a row in ``failures`` (case_id, stage, error, fix) and the others
are still scored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.bundle._trust import BundleError
from sonorad.bundle.summary import ROI_COLUMNS, apply_steps, explain_parts, roi_measures
from sonorad.errors import FAILURE_COLUMNS, CaseError, CohortError, Problem

__all__ = ["BundlePrediction", "CaseResult", "predict_cases", "predict_case", "read_cases_for_prediction",
           "PREDICTION_COLUMNS", "WARNING_COLUMNS", "FAILURE_COLUMNS", "CONTRIBUTION_COLUMNS", "TOP_CONTRIBUTIONS"]

PREDICTION_COLUMNS = ["case_id", "model", "probability", "risk_group", "cutoff"]
WARNING_COLUMNS = ["case_id", "column", "message"]
CONTRIBUTION_COLUMNS = ["case_id", "model", "rank", "feature", "value", "shap", "base_value", "output", "explainer"]
#: SHAP contributions kept per case.
TOP_CONTRIBUTIONS = 10
#: Fraction of imaging features outside the training 1-99% range above which a case is flagged.
FEATURE_OOD_FRACTION = 0.25
_ROI_TOLERANCE = 0.05
_ROI_LABELS = {"area_px": "ROI area (pixels)", "area_mm2": "ROI area (mm²)",
               "spacing_row_mm": "pixel spacing, rows (mm)", "spacing_col_mm": "pixel spacing, columns (mm)"}


# -- results -----------------------------------------------------------------------------------
@dataclass
class BundlePrediction:
    """What :meth:`Bundle.predict` returns.

    Attributes
    ----------
    predictions : DataFrame
        ``case_id, model, probability, risk_group, cutoff``; one row per scored case and model.
        ``risk_group`` is ``"high"`` when the probability is at or above the model's saved cut-off.
    warnings : DataFrame
        ``case_id, column, message``: inputs unlike the training cohort's (the case is still scored).
    failures : DataFrame
        ``case_id, stage, error, fix``: cases (or case/model pairs) that could not be scored.
    contributions : DataFrame
        Top SHAP contributions of the chosen model per case (``CONTRIBUTION_COLUMNS``).
    metrics : DataFrame or None
        Per model, when the cases carry labels: n, positives, AUC with DeLong 95% CI, Brier score,
        sensitivity / specificity at the cut-off.
    gradcam : DataFrame or None
        ``case_id, path`` of the Grad-CAM PNGs written.
    notes : list of str
        What could not be done for the whole batch (e.g. no SHAP background in the bundle).
    """

    predictions: pd.DataFrame
    warnings: pd.DataFrame
    failures: pd.DataFrame
    contributions: pd.DataFrame
    metrics: pd.DataFrame | None = None
    gradcam: pd.DataFrame | None = None
    notes: list = field(default_factory=list)

    @property
    def scored_cases(self) -> list[str]:
        """Case ids with at least one probability."""
        return list(dict.fromkeys(self.predictions["case_id"]))

    def probabilities(self) -> pd.DataFrame:
        """Probabilities as a table: one row per case, one column per model."""
        return self.predictions.pivot(index="case_id", columns="model", values="probability")

    def write(self, out_dir) -> list[Path]:
        """Write predictions.csv, contributions.csv, warnings.csv, failures.csv (and metrics.csv)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tables = {"predictions": self.predictions, "contributions": self.contributions,
                  "warnings": self.warnings, "failures": self.failures}
        if self.metrics is not None:
            tables["metrics"] = self.metrics
        written = []
        for name, table in tables.items():
            path = out / f"{name}.csv"
            table.to_csv(path, index=False, float_format="%.17g" if name == "predictions" else None)
            written.append(path)
        return written


@dataclass
class CaseResult:
    """What :meth:`Bundle.predict_case` returns for one case.

    Attributes
    ----------
    case_id : str
    model : str
        The chosen model.
    probability : float
        Its probability of the positive class.
    probabilities : dict of str -> float
        Every model's probability.
    risk_group : str or None
        ``"high"`` / ``"low"`` at the saved cut-off (``None`` without one).
    cutoff : float or None
    contributions : list of dict
        ``feature, value, shap`` of the chosen model, largest |SHAP| first.
    base_value : float or None
        SHAP base value (expected model output over the background); ``shap_output`` says its scale.
    shap_output : str or None
        ``"log-odds"`` or ``"probability"``.
    nomogram : dict or None
        ``points`` per predictor, ``total_points``, ``linear_predictor``, ``probability``, when the
        chosen model is a logistic regression.
    gradcam : ndarray (H, W, 3) uint8 or None
        Grad-CAM overlay on the lesion crop.
    warnings : list of str
    """

    case_id: str
    model: str
    probability: float
    probabilities: dict
    risk_group: str | None
    cutoff: float | None
    contributions: list
    base_value: float | None
    shap_output: str | None
    nomogram: dict | None
    gradcam: np.ndarray | None
    warnings: list

    def to_dict(self) -> dict:
        """JSON-able form (the Grad-CAM overlay is left out; ``has_gradcam`` says whether there is one)."""
        return {"case_id": self.case_id, "model": self.model, "probability": self.probability,
                "probabilities": dict(self.probabilities), "risk_group": self.risk_group, "cutoff": self.cutoff,
                "contributions": [dict(c) for c in self.contributions], "base_value": self.base_value,
                "shap_output": self.shap_output, "nomogram": self.nomogram,
                "has_gradcam": self.gradcam is not None, "warnings": list(self.warnings)}


# -- inputs ------------------------------------------------------------------------------------
@dataclass
class _Inputs:
    ids: list
    values: pd.DataFrame                # declared variables (+ center), raw, index = ids
    radiomics: pd.DataFrame | None      # rows of cases whose extraction worked
    deep: pd.DataFrame | None
    rois: pd.DataFrame                  # ROI_COLUMNS of cases whose image was read
    crops: dict                         # case -> {(margin, mask_background): (crop, crop_mask)}
    failures: list
    labels: pd.Series | None = None
    unknown_values: list = field(default_factory=list)


def _failure(case_id, stage: str, error: str, fix: str) -> dict:
    return {"case_id": str(case_id), "stage": stage, "error": error, "fix": fix}


def _crop_settings(bundle) -> list[tuple[float, bool]]:
    """Crop settings needed by CNN models and Grad-CAM."""
    settings = []
    for name in bundle.models:
        model = bundle.model(name)
        if bundle.manifest["models"][name]["kind"] == "cnn":
            settings.append((float(model.margin), bool(model.mask_background)))
    for deep in bundle.features.get("deep") or []:
        settings.append((float(deep["margin"]), bool(deep["mask_background"])))
    return list(dict.fromkeys(settings))


def _crops_of(pixels, mask, settings) -> dict:
    from sonorad.deep.inputs import roi_crop_with_mask

    return {s: roi_crop_with_mask(pixels, mask, margin=s[0], mask_background=s[1]) for s in settings}


def read_cases_for_prediction(csv_path) -> pd.DataFrame:
    """Read a cases CSV that may have no label column (otherwise as :func:`sonorad.cohort.read_cases`)."""
    from sonorad.cohort import read_cases

    try:
        return read_cases(csv_path, require_label=False)
    except TypeError:  # read_cases without require_label: name a column every table has as the label
        return read_cases(csv_path, label_column="case_id")


def _label_column(bundle) -> tuple[str, str]:
    from sonorad.study import canonical_value

    label = bundle.study.get("label") or {}
    return str(label.get("column", "label")), canonical_value(label.get("positive", 1))


def _labels(bundle, table: pd.DataFrame, ids) -> pd.Series | None:
    from sonorad.study import canonical_value

    column, positive = _label_column(bundle)
    if column not in table.columns or column == "case_id":
        return None
    text = table[column].map(canonical_value)
    if text.isna().all():
        return None
    y = pd.Series(np.where(text.isna(), np.nan, (text == positive).astype(float)), index=ids, name="label")
    return y


def _variable_columns(bundle) -> list[str]:
    kinds = bundle.features["column_kinds"]
    return [c for c in bundle.features["input_columns"] if kinds[c] in ("variable", "center")]


def _check_table(bundle, table: pd.DataFrame) -> list[str]:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"cases must be a DataFrame (sonorad.cohort.read_cases) or a CSV path, got {type(table).__name__}")
    ids = [str(c) for c in (table["case_id"] if "case_id" in table.columns else table.index)]
    problems = [Problem(f"column {c!r} is missing", fix="add it (the image and lesion-mask paths of each case)", column=c)
                for c in ("image", "mask") if c not in table.columns]
    for column in _variable_columns(bundle):
        if column not in table.columns:
            what = "the center of each case" if column == "center" else "a variable the models use"
            problems.append(Problem(f"column {column!r} ({what}) is missing",
                                    fix="add the column; leave a cell empty where the value is unknown "
                                        "(it is then imputed)", column=column))
    seen, repeated = set(), []
    for cid in ids:
        if cid in seen:
            repeated.append(cid)
        seen.add(cid)
    problems += [Problem("case id appears more than once", fix="give every lesion image its own case_id",
                         case_id=cid, column="case_id") for cid in dict.fromkeys(repeated)]
    if problems:
        raise CohortError(problems, source="cases table")
    return ids


def _inputs_from_table(bundle, table: pd.DataFrame, *, jobs: int, cache, progress: bool) -> _Inputs:
    from sonorad.features.extract import cases_from_table
    from sonorad.imaging import load_roi

    ids = _check_table(bundle, table)
    table = table.copy()
    table.index = pd.Index(ids, name="case_id")
    table["case_id"] = ids
    cases = cases_from_table(table)
    settings = _crop_settings(bundle)
    failures, rois, crops = [], {}, {}
    for case in cases:
        try:
            if not case.masks:
                raise CaseError(case.case_id, "no mask file given", "fill the mask column with the lesion mask's path")
            image, mask = load_roi(case.image, list(case.masks), case_id=case.case_id, frame=case.frame,
                                   spacing=case.spacing)
            rois[case.case_id] = roi_measures(image, mask)
            crops[case.case_id] = _crops_of(image.pixels, mask, settings)
        except CaseError as exc:
            failures.append(_failure(case.case_id, "image", exc.problem.message, exc.problem.fix))
        except Exception as exc:  # noqa: BLE001 - one unreadable case never stops the others
            failures.append(_failure(case.case_id, "image", f"{type(exc).__name__}: {exc}",
                                     "check that the image opens and the mask outlines the lesion on it"))
    ok = [c for c in ids if c in rois]
    radiomics = deep = None
    if ok and bundle.features.get("radiomics") is not None:
        from sonorad.features.extract import extract_radiomics

        radiomics, failed = extract_radiomics(table.loc[ok], params=_radiomics_params(bundle), cache=cache,
                                              jobs=jobs, progress=progress)
        failures += failed.to_dict("records")
        ok = [c for c in ok if c in radiomics.index]
    settings_deep = bundle.features.get("deep") or []
    if ok and settings_deep:
        from sonorad.deep.extractor import extract_deep
        from sonorad.features.extract import _as_cache

        for settings in settings_deep:
            _backbone(bundle, settings)  # checks the weights hash before anything is embedded
        tables = []
        for settings in settings_deep:
            table_deep, failed = extract_deep(table.loc[ok], settings["backbone"], cache=_as_cache(cache),
                                              batch_size=settings["batch_size"], margin=settings["margin"],
                                              mask_background=settings["mask_background"],
                                              weights=settings.get("weights", "default"), progress=progress)
            failures += failed.to_dict("records")
            tables.append(table_deep)
        deep = pd.concat(tables, axis=1)  # a case that one backbone failed on: NaNs there, and its failure row
    values = table.reindex(columns=_variable_columns(bundle))
    return _Inputs(ids, values, radiomics, deep, pd.DataFrame.from_dict(rois, orient="index"), crops, failures,
                   _labels(bundle, table, ids))


def _radiomics_params(bundle) -> dict:
    if "radiomics_params" not in bundle._cache:
        from sonorad.features.radiomics import load_params, params_hash

        params = load_params(bundle.path / bundle.features["radiomics"]["params_file"])
        if params_hash(params) != bundle.features["radiomics"]["params_hash"]:
            from importlib import metadata

            bundle.load_warnings.append(
                f"the PyRadiomics parameters hash differs from the one recorded at writing "
                f"(pyradiomics {metadata.version('pyradiomics')} installed); features may differ")
        bundle._cache["radiomics_params"] = params
    return bundle._cache["radiomics_params"]


def _backbone(bundle, deep: dict):
    """The frozen backbone of one ``features.json`` deep entry, after checking its weights are those
    the models were trained on."""
    key = f"backbone:{deep['backbone']}"
    if key not in bundle._cache:
        from sonorad.bundle.writer import backbone_weights_sha256
        from sonorad.deep.backbones import load_backbone

        net = load_backbone(deep["backbone"], deep.get("weights", "default"))
        digest = backbone_weights_sha256(net)
        if digest != deep["weights_sha256"]:
            raise BundleError(
                f"the {deep['backbone']} weights installed here (sha256 {digest[:12]}...) are not those the models "
                f"were trained with ({deep['weights_sha256'][:12]}..., {deep['weights_id']}). Fix: install the "
                "backbone weights listed in the bundle's features.json (same package versions as in manifest.json).")
        bundle._cache[key] = net
    return bundle._cache[key]


def _inputs_from_case(bundle, image, mask, values: dict, case_id: str) -> _Inputs:
    from sonorad.features.radiomics import _check_inputs, extract_case

    if not isinstance(values, dict):
        raise TypeError(f"values must be a dict of variable -> value, got {type(values).__name__}")
    pixels, mask, _ = _check_inputs(image, mask, case_id)
    radiomics = deep = None
    if bundle.features.get("radiomics") is not None:
        feats = extract_case(image, mask, _radiomics_params(bundle), case_id=case_id)
        radiomics = pd.DataFrame([feats], index=[case_id], dtype=np.float64)
    crops = {case_id: _crops_of(pixels, mask, _crop_settings(bundle))}
    if bundle.features.get("deep"):
        from sonorad.deep.extractor import embed_crops

        tables = []
        for settings in bundle.features["deep"]:
            net = _backbone(bundle, settings)
            crop = crops[case_id][(float(settings["margin"]), bool(settings["mask_background"]))][0]
            vec = embed_crops(net, [crop], batch_size=settings["batch_size"])
            tables.append(pd.DataFrame(vec, index=[case_id],
                                       columns=[f"{settings['backbone']}_{i}" for i in range(vec.shape[1])]))
        deep = pd.concat(tables, axis=1)
    columns = _variable_columns(bundle)
    unknown = sorted(set(values) - set(columns) - {"label"})
    row = {c: values.get(c, np.nan) for c in columns}
    frame = pd.DataFrame([row], index=[case_id], columns=columns, dtype=object)
    inputs = _Inputs([case_id], frame, radiomics, deep, pd.DataFrame([roi_measures(image, mask)], index=[case_id]),
                     crops, [], unknown_values=unknown)
    return inputs


# -- schema, model input, warnings ---------------------------------------------------------------
def _fmt(x) -> str:
    return f"{x:.6g}" if isinstance(x, (float, np.floating)) else str(x)


def _unseen_level(name: str, value, allowed, case_id) -> dict:
    shown = ", ".join(map(str, allowed))
    return _failure(case_id, "variables", f"{name} = {value!r} is not a level the model knows ({shown})",
                    f"use one of {shown}, or leave the cell empty to have it imputed")


def _unseen_policy():
    """:func:`sonorad.cohort.apply_unseen_policy` when this sonorad has it."""
    try:
        from sonorad.cohort import apply_unseen_policy
    except ImportError:
        return None
    return apply_unseen_policy


def _apply_unseen(spec, case_id, raw, known) -> tuple[object, list, dict | None]:
    """One categorical value outside the known levels under the variable's ``unseen`` policy:
    ``(coded value, warnings, None)`` or ``(None, [], failure)``."""
    try:
        coded, notes = _unseen_policy()(pd.Series([raw], index=[case_id], dtype=object), spec, known)
    except CohortError as exc:
        problem = exc.problems[0]
        return None, [], _failure(case_id, "variables", f"{spec.name}: {problem.message}", problem.fix)
    return coded.iloc[0], notes, None


def _apply_schema(bundle, values: pd.DataFrame) -> tuple[pd.DataFrame, list, list]:
    """Check and convert the declared variables: (clean values, warnings, failures)."""
    from sonorad.study import canonical_value

    warnings, failures = [], []
    columns = bundle.summary["columns"]
    imputation = {v["name"]: v.get("imputation") for v in bundle.schema_data["variables"]}
    out = values.copy()
    for name in values.columns:
        if name == "center":
            out[name] = values[name].map(lambda v: None if canonical_value(v) is None else str(v).strip())
            continue
        spec = bundle.variables[name]
        info = columns.get(name, {})
        dtype = bundle.features["dtypes"].get(name, "object")
        for case_id, raw in values[name].items():
            text = canonical_value(raw)
            if text is None:
                imp = imputation.get(name)
                how = f"imputed with the training value {_fmt(imp)}" if imp is not None else \
                    "the model's own handling of missing values applies"
                warnings.append({"case_id": case_id, "column": name, "message": f"no value; {how}"})
                continue
            if spec.type == "numeric":
                number = pd.to_numeric(pd.Series([raw]), errors="coerce").iloc[0]
                if pd.isna(number):
                    failures.append(_failure(case_id, "variables", f"{name} = {raw!r} is not a number",
                                             "write a number (decimal point '.') or leave the cell empty"))
                    continue
                plausible = getattr(spec, "range", None)
                if plausible is not None and not (plausible[0] <= number <= plausible[1]):
                    failures.append(_failure(case_id, "variables",
                                             f"{name} = {_fmt(float(number))} is outside the plausible range "
                                             f"[{_fmt(plausible[0])}, {_fmt(plausible[1])}] the study declares",
                                             "correct the value (check its unit), or leave the cell empty"))
                    continue
                lo_hi = info.get("range")
                if lo_hi and lo_hi[0] is not None and not (lo_hi[0] <= number <= lo_hi[1]):
                    warnings.append({"case_id": case_id, "column": name,
                                     "message": f"{name} = {_fmt(float(number))} is outside the training range "
                                                f"[{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]; the model extrapolates"})
                continue
            seen = info.get("levels_seen") or []
            allowed = list(spec.allowed_values) if spec.allowed_values else list(seen)
            if text not in allowed and spec.type == "categorical" and _unseen_policy() is not None:
                coded, notes, failure = _apply_unseen(spec, case_id, raw, allowed)
                if failure is not None:
                    failures.append(failure)
                else:
                    out.at[case_id, name] = coded
                    warnings += [{"case_id": case_id, "column": name, "message": f"{p.message}. {p.fix}"} for p in notes]
            elif text not in allowed:
                failures.append(_unseen_level(name, raw, allowed, case_id))
            elif seen and text not in seen:
                warnings.append({"case_id": case_id, "column": name,
                                 "message": f"{name} = {text!r} is a declared level that no training case had; "
                                            "the model has not learnt it"})
        if dtype.startswith(("int", "float", "uint", "bool", "Int", "Float")):
            out[name] = pd.to_numeric(values[name], errors="coerce").astype(float)
    return out, warnings, failures


def _model_input(bundle, inputs: _Inputs, values: pd.DataFrame, ok: list) -> tuple[pd.DataFrame, list]:
    """The model input table of the cases in ``ok`` (columns and order as in training)."""
    kinds = bundle.features["column_kinds"]
    columns = bundle.features["input_columns"]
    parts, failures = [], []
    for kind, table in (("radiomics", inputs.radiomics), ("deep", inputs.deep)):
        wanted = [c for c in columns if kinds[c] == kind]
        if not wanted:
            continue
        block = table.reindex(index=ok, columns=wanted) if table is not None else pd.DataFrame(index=ok, columns=wanted)
        parts.append(block.astype(np.float64))
        absent = [c for c in wanted if table is None or c not in table.columns]
        if absent:
            for cid in ok:
                failures.append(_failure(cid, kind, f"{len(absent)} {kind} feature(s) the models use were not "
                                                    f"produced with the saved settings (e.g. {absent[:3]})",
                                         "use the package versions listed in the bundle's manifest.json"))
    parts.append(values.loc[ok, [c for c in columns if kinds[c] in ("variable", "center")]])
    X = pd.concat(parts, axis=1)[columns]
    X.index.name = "case_id"
    bad = {f["case_id"] for f in failures}
    return X.loc[[c for c in ok if c not in bad]], failures


def _outside(value: float, quantiles: list, tolerance: float = 0.0) -> bool:
    lo, hi = quantiles[0], quantiles[-1]
    if lo is None or hi is None:
        return False
    pad = tolerance * max(abs(lo), abs(hi))
    return value < lo - pad or value > hi + pad


def _ood_warnings(bundle, inputs: _Inputs, X: pd.DataFrame) -> list:
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


# -- models --------------------------------------------------------------------------------------
def _batch(model, X) -> pd.Series:
    return pd.Series(np.asarray(model.predict_proba(X))[:, 1].astype(float), index=X.index)


def _run_model(name: str, model, X, failures: list) -> pd.Series:
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


def _run_cnn(name: str, model, inputs: _Inputs, ids, failures: list) -> pd.Series:
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


def _risk_group(p: float, cutoff: float | None) -> str | None:
    if cutoff is None or not np.isfinite(p):
        return None
    return "high" if p >= cutoff else "low"


# -- explanations --------------------------------------------------------------------------------
def _shap(bundle, name: str, X: pd.DataFrame):
    """(ShapResult, display values) of model ``name`` on X, with the bundle's centroid background."""
    from sonorad.evaluation.explain import explain_model

    entry = bundle.explain.get(name) or {"error": "no SHAP background was saved"}
    if "error" in entry:
        raise ValueError(entry["error"])
    display, scale, final, X = explain_parts(bundle.model(name), X)
    Xd = apply_steps(display, X)
    Xs = apply_steps(scale, Xd)
    background = pd.DataFrame(entry["centroids"], columns=entry["features"])
    bg = apply_steps(scale, background[list(Xd.columns)])
    result = explain_model(final, Xs, background=bg, max_background=len(bg),
                           random_state=int(bundle.study.get("seed", 0) or 0), model_name=name)
    return result, Xd


def _contribution_rows(name: str, result, Xd: pd.DataFrame, top: int = TOP_CONTRIBUTIONS) -> list[dict]:
    rows = []
    for i, cid in enumerate(result.case_ids):
        order = np.argsort(-np.abs(result.values[i]), kind="stable")[:top]
        for rank, j in enumerate(order, start=1):
            feature = result.feature_names[j]
            rows.append({"case_id": cid, "model": name, "rank": rank, "feature": feature,
                         "value": float(Xd.iloc[i][feature]) if feature in Xd.columns else float(result.data[i, j]),
                         "shap": float(result.values[i, j]), "base_value": float(result.base_values[i]),
                         "output": result.output, "explainer": result.explainer})
    return rows


def _nomogram(bundle, X: pd.DataFrame):
    """Nomogram of the chosen model when it is a logistic regression, in the predictors' own units.

    ``X`` (model input rows) is only used to find the classifier inside a design's model wrapper."""
    if "nomogram" in bundle._cache:
        return bundle._cache["nomogram"]
    nomo = None
    entry = bundle.explain.get(bundle.chosen) or {}
    if bundle.manifest["models"][bundle.chosen]["kind"] == "skops" and "display" in entry:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        from sonorad.evaluation.nomogram import build_nomogram

        _, scale, final, _ = explain_parts(bundle.model(bundle.chosen), X)
        if isinstance(final, LogisticRegression):
            tail = Pipeline([(f"scale{i}", s) for i, s in enumerate(scale)] + [("clf", final)])
            d = entry["display"]
            axes = pd.DataFrame({c: [d[c]["low"], d[c]["high"]] for c in entry["features"]})
            try:
                nomo = build_nomogram(tail, axes, categorical=[c for c in entry["features"] if d[c]["binary"]])
            except (ValueError, TypeError):
                nomo = None
    bundle._cache["nomogram"] = nomo
    return nomo


# -- Grad-CAM ------------------------------------------------------------------------------------
def _dl_score_network(bundle):
    """A frozen backbone with one of the chosen model's DL-scores as its one-logit head, when that
    score reads one backbone's deep features directly (no harmonisation in front); the first such
    DL-score of the model."""

    from sonorad.bundle.writer import _estimators
    from sonorad.designs.base import backbone_of
    from sonorad.scores import DLScore

    deep = bundle.features.get("deep") or []
    for est in _estimators(bundle.model(bundle.chosen)):
        if not (isinstance(est, DLScore) and hasattr(est, "coef_")):
            continue
        names = [str(n) for n in getattr(est, "feature_names_in_", [])]
        for settings in deep:
            if names and all(backbone_of(n) == settings["backbone"] for n in names):
                import copy

                from sonorad.deep.gradcam import score_network

                net = score_network(copy.deepcopy(_backbone(bundle, settings)), est)  # the cached one embeds
                return net, (float(settings["margin"]), bool(settings["mask_background"])), None
    return None


def _gradcam_source(bundle):
    """(network, crop settings, input size) for Grad-CAM: a fine-tuned CNN, else the DL-score network."""
    if "gradcam" not in bundle._cache:
        source = None
        for name in bundle.models:
            if bundle.manifest["models"][name]["kind"] == "cnn":
                m = bundle.model(name)
                source = (m.model_, (float(m.margin), bool(m.mask_background)), m.input_size)
                break
        if source is None:
            source = _dl_score_network(bundle)
        bundle._cache["gradcam"] = source
    return bundle._cache["gradcam"]


def _gradcam_heat(bundle, inputs: _Inputs, cid):
    from sonorad.deep.gradcam import gradcam_crop

    source = _gradcam_source(bundle)
    if source is None or cid not in inputs.crops:
        return None
    net, key, size = source
    crop, crop_mask = inputs.crops[cid][key]
    return crop, crop_mask, gradcam_crop(net, crop, input_size=size)


def _overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    from matplotlib import colormaps

    gray = np.repeat(np.clip(crop, 0, 1)[..., None], 3, axis=2)
    colour = colormaps["jet"](np.clip(heat, 0, 1))[..., :3]
    return np.round(255 * ((1 - alpha) * gray + alpha * colour)).astype(np.uint8)


def _save_gradcams(bundle, inputs: _Inputs, ids, folder, failures) -> pd.DataFrame:
    from sonorad.deep.gradcam import save_overlay

    folder = Path(folder)
    rows = []
    if _gradcam_source(bundle) is None:
        return pd.DataFrame(columns=["case_id", "path"])
    for cid in ids:
        try:
            crop, crop_mask, heat = _gradcam_heat(bundle, inputs, cid)
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(cid)).strip("._") or "case"
            rows.append({"case_id": cid, "path": str(save_overlay(crop, crop_mask, heat, folder / f"{stem}.png",
                                                                 title=str(cid)))})
        except Exception as exc:  # noqa: BLE001 - one case's heatmap never stops the others
            failures.append(_failure(cid, "gradcam", f"{type(exc).__name__}: {exc}", "the prediction is unaffected"))
    return pd.DataFrame(rows, columns=["case_id", "path"])


# -- metrics -------------------------------------------------------------------------------------
def _metrics(bundle, predictions: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    from sonorad.evaluation import brier_score, roc_auc_ci, wilson_ci

    rows = []
    for name, group in predictions.groupby("model", sort=False):
        y = labels.reindex(group["case_id"]).to_numpy()
        keep = ~np.isnan(y)
        y, p = y[keep].astype(int), group["probability"].to_numpy()[keep]
        row = {"model": name, "n": int(len(y)), "n_positive": int(y.sum()), "auc": np.nan, "auc_low": np.nan,
               "auc_high": np.nan, "brier": np.nan, "cutoff": bundle.cutoffs.get(name), "sensitivity": np.nan,
               "sensitivity_low": np.nan, "sensitivity_high": np.nan, "specificity": np.nan,
               "specificity_low": np.nan, "specificity_high": np.nan}
        if len(y):
            row["brier"] = float(brier_score(y, p))
        if 0 < y.sum() < len(y):
            auc = roc_auc_ci(y, p)
            row.update(auc=auc.auc, auc_low=auc.low, auc_high=auc.high)
        cut = bundle.cutoffs.get(name)
        if cut is not None and len(y):
            call = p >= cut
            tp, fn = int((call & (y == 1)).sum()), int((~call & (y == 1)).sum())
            tn, fp = int((~call & (y == 0)).sum()), int((call & (y == 0)).sum())
            if tp + fn:
                lo, hi = wilson_ci(tp, tp + fn)
                row.update(sensitivity=tp / (tp + fn), sensitivity_low=lo, sensitivity_high=hi)
            if tn + fp:
                lo, hi = wilson_ci(tn, tn + fp)
                row.update(specificity=tn / (tn + fp), specificity_low=lo, specificity_high=hi)
        rows.append(row)
    return pd.DataFrame(rows)


# -- the shared path -----------------------------------------------------------------------------
def _selected(bundle, models) -> list[str]:
    if models is None:
        return bundle.models
    models = [models] if isinstance(models, str) else list(models)
    unknown = [m for m in models if m not in bundle.models]
    if unknown:
        raise BundleError(f"model(s) {unknown} are not in this bundle; it has {bundle.models}.")
    return models


def _score(bundle, inputs: _Inputs, models: list[str], explain: bool):
    """Feature tables -> predictions, warnings, failures, contributions (shared by both entry points)."""
    failures = list(inputs.failures)
    failed = {f["case_id"] for f in failures}
    values, warnings, var_failures = _apply_schema(bundle, inputs.values)
    failures += var_failures
    failed |= {f["case_id"] for f in var_failures}
    ok = [c for c in inputs.ids if c not in failed]
    X, input_failures = _model_input(bundle, inputs, values, ok)
    failures += input_failures
    warnings += _ood_warnings(bundle, inputs, X)

    predictions = []
    for name in models:
        entry = bundle.manifest["models"][name]
        if entry["kind"] == "cnn":
            p = _run_cnn(name, bundle.model(name), inputs, list(X.index), failures)
        else:
            p = _run_model(name, bundle.model(name), X, failures)
        cut = bundle.cutoffs.get(name)
        for cid, prob in p.items():
            predictions.append({"case_id": cid, "model": name, "probability": float(prob),
                                "risk_group": _risk_group(prob, cut), "cutoff": cut})
    predictions = pd.DataFrame(predictions, columns=PREDICTION_COLUMNS)
    order = {c: i for i, c in enumerate(inputs.ids)}
    predictions = predictions.sort_values("case_id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)

    contributions, notes, shap_result = [], [], None
    chosen = bundle.chosen
    explained = [c for c in X.index if ((predictions["model"] == chosen) & (predictions["case_id"] == c)).any()]
    if explain and chosen in models and explained and bundle.manifest["models"][chosen]["kind"] == "skops":
        try:
            shap_result, Xd = _shap(bundle, chosen, X.loc[explained])
            contributions = _contribution_rows(chosen, shap_result, Xd)
        except Exception as exc:  # noqa: BLE001 - predictions stand without explanations
            notes.append(f"SHAP contributions of {chosen} could not be computed: {type(exc).__name__}: {exc}")
    result = BundlePrediction(
        predictions=predictions,
        warnings=pd.DataFrame(warnings, columns=WARNING_COLUMNS),
        failures=pd.DataFrame(failures, columns=FAILURE_COLUMNS),
        contributions=pd.DataFrame(contributions, columns=CONTRIBUTION_COLUMNS),
        notes=notes)
    return result, X


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
    inputs = _inputs_from_table(bundle, cases, jobs=jobs, cache=cache, progress=progress)
    result, _ = _score(bundle, inputs, models, explain)
    if inputs.labels is not None and len(result.predictions):
        result.metrics = _metrics(bundle, result.predictions, inputs.labels)
    if gradcam_dir is not None:
        failures = []
        result.gradcam = _save_gradcams(bundle, inputs, result.scored_cases, gradcam_dir, failures)
        if _gradcam_source(bundle) is None:
            result.notes.append("no Grad-CAM: the bundle has neither a fine-tuned CNN nor a DL-score in the chosen model")
        if failures:
            result.failures = pd.concat([result.failures, pd.DataFrame(failures, columns=FAILURE_COLUMNS)],
                                        ignore_index=True)
    return result


def predict_case(bundle, image, mask, values: dict, *, case_id: str = "case", explain: bool = True,
                 gradcam: bool = True) -> CaseResult:
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
    inputs = _inputs_from_case(bundle, image, mask, values, case_id)
    result, X = _score(bundle, inputs, bundle.models, explain)
    probs = {r.model: r.probability for r in result.predictions.itertuples()}
    if bundle.chosen not in probs:
        problems = result.failures
        first = problems.iloc[0] if len(problems) else None
        message = first["error"] if first is not None else f"the chosen model {bundle.chosen} gave no probability"
        raise CaseError(case_id, message, first["fix"] if first is not None else "")
    warnings = [f"{w.column}: {w.message}" for w in result.warnings.itertuples()]
    warnings += [f"{f.stage}: {f.error}" for f in result.failures.itertuples()]
    warnings += [f"unknown value name {k!r} ignored (not a variable of the model)" for k in inputs.unknown_values]
    warnings += result.notes
    contributions = [{"feature": r.feature, "value": r.value, "shap": r.shap} for r in result.contributions.itertuples()]
    base = float(result.contributions["base_value"].iloc[0]) if len(result.contributions) else None
    output = str(result.contributions["output"].iloc[0]) if len(result.contributions) else None
    nomogram = None
    if explain:
        nomo = _nomogram(bundle, X)
        if nomo is not None:
            display, _, _, Xf = explain_parts(bundle.model(bundle.chosen), X)
            row = apply_steps(display, Xf)
            pts = nomo.nomogram_points(row.iloc[[0]].reset_index(drop=True))
            nomogram = {"points": {k: float(v) for k, v in pts.points.items()}, "total_points": pts.total_points,
                        "linear_predictor": pts.linear_predictor, "probability": pts.probability}
    overlay = None
    if gradcam:
        try:
            heat = _gradcam_heat(bundle, inputs, case_id)
        except Exception as exc:  # noqa: BLE001 - the prediction stands without a heatmap
            heat = None
            warnings.append(f"gradcam: {type(exc).__name__}: {exc}")
        if heat is not None:
            overlay = _overlay(heat[0], heat[2])
    cut = bundle.cutoffs.get(bundle.chosen)
    p = probs[bundle.chosen]
    return CaseResult(case_id=case_id, model=bundle.chosen, probability=p, probabilities=probs,
                      risk_group=_risk_group(p, cut), cutoff=cut, contributions=contributions, base_value=base,
                      shap_output=output, nomogram=nomogram, gradcam=overlay, warnings=warnings)
