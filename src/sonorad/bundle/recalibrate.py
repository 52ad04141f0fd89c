"""Site recalibration of a model bundle: ``sonorad recalibrate BUNDLE local_cases.csv --method M --out NEW``.

A model that discriminates well at a new site often over- or under-estimates risk there (a
different case mix, scanner or prevalence). Recalibration refits only the mapping from the
model's probability to the site's observed risk, on a labelled sample from that site, and leaves
every fitted feature step and model untouched:

* ``intercept``: ``logit(q) = a + logit(p)`` (calibration-in-the-large; the slope stays 1);
* ``logistic``: ``logit(q) = a + b logit(p)`` (logistic recalibration, "Platt" on the logit);
* ``isotonic``: ``q = f(p)`` with ``f`` the non-decreasing step function fitted by isotonic
  regression (piecewise linear between its knots, clipped outside them).

``intercept`` and ``logistic`` are strictly increasing maps of ``p`` (a fitted slope ``b <= 0`` is
refused), so the AUC is unchanged; ``isotonic`` can tie cases and change it slightly. The
intercept and slope are those of :func:`sonorad.evaluation.calibration_intercept_slope` (the
rms::val.prob fit) on probabilities clipped to ``[1e-6, 1 - 1e-6]`` (:data:`CLIP`): a probability
of exactly 0 or 1 counts in the fit instead of being left out, and the report says how many there
were. A model that ranks the local cases backwards (local AUC below 0.5, or a cross-validated
calibration slope at or below 0) is refused unless ``force=True``. The sample is checked before
anything is fitted: both outcomes, each from at least two patients.

Predictions come from :meth:`sonorad.bundle.Bundle.predict`, the code path that scores new
patients. Each recalibrated model is wrapped in a :class:`RecalibratedModel` (skops-serialisable,
listed in the bundle's trusted types); the new bundle records the method, the number of cases,
patients and events, the date and the original bundle's sha256 in ``recalibration.json``, its
manifest and model card. Its own validation is cross-validated on the local sample
(patient-grouped folds: each fold's cases are recalibrated by a map fitted on the other folds),
with calibration before and after in ``recalibration/report.md`` and a figure. Only aggregate
numbers are stored, never a case id or a patient row.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from sonorad.bundle._trust import BundleError

__all__ = ["CLIP", "METHODS", "MIN_PER_CLASS", "RecalibratedModel", "check_sample", "cross_validated",
           "fit_recalibration", "RecalibrationResult", "recalibrate_bundle"]

METHODS = ("intercept", "logistic", "isotonic")
#: Probabilities of exactly 0 or 1 have no logit: the intercept and logistic maps clip every
#: probability to ``[CLIP, 1 - CLIP]`` (logit +-13.8) when they are fitted and when they are applied,
#: so such cases count in the fit instead of being left out of it.
CLIP = 1e-6
#: A local sample needs at least this many events and non-events, each from at least this many
#: patients (the cross-validated validation keeps a patient's cases in one fold).
MIN_PER_CLASS = 2


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, CLIP, 1.0 - CLIP)
    return np.log(p) - np.log1p(-p)


def _expit(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


class RecalibratedModel(ClassifierMixin, BaseEstimator):
    """A fitted model whose P(positive) is mapped through a site recalibration.

    Parameters
    ----------
    base : fitted estimator
        The bundle's model (``predict_proba`` on the model input table); never refitted.
    method : {"intercept", "logistic", "isotonic"}
    intercept, slope : float
        ``logit(q) = intercept + slope * logit(p)`` (``intercept`` method: slope 1).
    knots_x, knots_y : list of float
        Isotonic knots (``IsotonicRegression.X_thresholds_`` / ``y_thresholds_``).
    """

    def __init__(self, base=None, method: str = "logistic", intercept: float = 0.0, slope: float = 1.0,
                 knots_x=None, knots_y=None):
        self.base = base
        self.method = method
        self.intercept = intercept
        self.slope = slope
        self.knots_x = knots_x
        self.knots_y = knots_y

    @property
    def classes_(self):
        return getattr(self.base, "classes_", np.array([0, 1]))

    def fit(self, X=None, y=None):
        raise NotImplementedError("a RecalibratedModel is built by sonorad.bundle.recalibrate.fit_recalibration; "
                                  "its base model is never refitted")

    def transform_proba(self, p) -> np.ndarray:
        """The recalibrated probability of original probabilities ``p``."""
        p = np.asarray(p, dtype=float)
        if self.method == "isotonic":
            return np.interp(p, np.asarray(self.knots_x, float), np.asarray(self.knots_y, float))
        return _expit(float(self.intercept) + float(self.slope) * _logit(p))

    def predict_proba(self, X) -> np.ndarray:
        q = self.transform_proba(np.asarray(self.base.predict_proba(X))[:, 1])
        return np.column_stack([1.0 - q, q])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def fit_recalibration(y, p, method: str) -> dict:
    """Parameters of the recalibration map of ``method`` fitted on labels ``y`` and probabilities ``p``.

    Returns ``{"method", "intercept", "slope", "knots_x", "knots_y"}``. Raises ``ValueError`` when the
    sample has one outcome class or (``logistic``) the fitted slope is not positive.
    """
    import warnings

    from sklearn.isotonic import IsotonicRegression

    from sonorad.evaluation import calibration_intercept_slope

    if method not in METHODS:
        raise ValueError(f"unknown recalibration method {method!r}; choose one of {', '.join(METHODS)}")
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    if y.min() == y.max():
        raise ValueError(f"the local sample has one outcome class only (all {y[0]}); recalibration needs both")
    out = {"method": method, "intercept": 0.0, "slope": 1.0, "knots_x": None, "knots_y": None}
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        out["knots_x"] = [float(v) for v in iso.X_thresholds_]
        out["knots_y"] = [float(v) for v in iso.y_thresholds_]
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = calibration_intercept_slope(y, np.clip(p, CLIP, 1.0 - CLIP))
    if method == "intercept":
        out["intercept"] = float(fit.loc["calibration-in-the-large", "estimate"])
    else:
        out["intercept"] = float(fit.loc["intercept", "estimate"])
        out["slope"] = float(fit.loc["slope", "estimate"])
        if not np.isfinite(out["slope"]):
            raise ValueError("the calibration slope could not be estimated on this sample (perfect separation, or "
                             "too few cases with probabilities strictly between 0 and 1). Fix: use a larger local "
                             "sample, or --method intercept")
        if out["slope"] <= 0:
            raise ValueError(f"the fitted calibration slope is {out['slope']:.3g}: the model does not rank the local "
                             "cases in the right direction, and a logistic recalibration would reverse it. Fix: "
                             "check the labels, or use --method intercept")
    if not np.isfinite(out["intercept"]):
        raise ValueError("the recalibration intercept did not converge (perfect separation in the local sample)")
    return out


def _apply(params: dict, p: np.ndarray) -> np.ndarray:
    return RecalibratedModel(None, **{k: v for k, v in params.items()}).transform_proba(p)


def check_sample(y: np.ndarray, groups: np.ndarray, folds: int) -> int:
    """The number of folds the local sample allows, after checking it can be recalibrated at all.

    Raises BundleError naming what is needed: both outcomes, each with at least
    :data:`MIN_PER_CLASS` cases from as many patients.
    """
    y = np.asarray(y, dtype=int)
    groups = np.asarray(groups, dtype=object)
    n_ev, n_non = int(y.sum()), int(len(y) - y.sum())
    p_ev, p_non = len(set(groups[y == 1])), len(set(groups[y == 0]))
    if min(n_ev, n_non, p_ev, p_non) < MIN_PER_CLASS:
        raise BundleError(
            f"the local sample has {n_ev} event(s) from {p_ev} patient(s) and {n_non} non-event(s) from {p_non} "
            f"patient(s); recalibration needs at least {MIN_PER_CLASS} events and {MIN_PER_CLASS} non-events, each "
            f"from at least {MIN_PER_CLASS} patients (its cross-validated validation keeps each patient's cases in "
            "one fold), and is only reliable with 100 or more cases and 20+ events. Fix: add labelled local cases "
            "of the rarer outcome, from other patients.")
    return int(min(folds, p_ev, p_non))


def _patients(table: pd.DataFrame) -> np.ndarray:
    """The patient of each row: ``patient_id``, or the case id where it is missing or absent."""
    ids = np.asarray([str(c) for c in table.index], dtype=object)
    if "patient_id" not in table.columns:
        return ids
    from sonorad.variables import canonical_value

    given = table["patient_id"].map(canonical_value).to_numpy(dtype=object)
    return np.where(pd.isna(given), ids, given).astype(object)


def _grouped_folds(y: np.ndarray, groups: np.ndarray, folds: int, seed: int):
    from sonorad.selection import make_grouped_cv

    return make_grouped_cv(check_sample(y, groups, folds), y, groups, random_state=seed)


def _reason(exc: Exception) -> str:
    return str(exc).split(". Fix:")[0]


def cross_validated(y: np.ndarray, p: np.ndarray, splits, method: str) -> tuple[np.ndarray, list[str]]:
    """Each fold's probabilities recalibrated by a map fitted on the other folds.

    A fold whose map cannot be fitted (one outcome class in the other folds, a slope that cannot be
    estimated or is not positive) keeps NaN and gets a note; the other folds go on.
    """
    oof = np.full(len(y), np.nan)
    notes = []
    for k, (tr, te) in enumerate(splits, start=1):
        try:
            oof[te] = _apply(fit_recalibration(y[tr], p[tr], method), p[te])
        except ValueError as exc:
            notes.append(f"fold {k} of {len(splits)} ({len(te)} cases): not computable ({_reason(exc)})")
    return oof, notes


_STAT_KEYS = ("citl", "citl_low", "citl_high", "intercept", "intercept_low", "intercept_high", "slope", "slope_low",
              "slope_high", "brier", "eavg", "e90", "emax", "hl_chi2", "hl_df", "hl_p", "spiegelhalter_p")


def _statistics(y, p, label: str, model: str, note: str = "") -> dict:
    """One row of the local validation; the cases without a probability (a fold that could not be
    recalibrated) are left out, and a statistic that cannot be computed is NaN with a note."""
    import warnings

    from sonorad.evaluation import roc_auc_ci, val_prob

    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    keep = np.isfinite(p)
    y, p = y[keep], p[keep]
    row = {"model": model, "predictions": label, "n": int(len(y)), "events": int(np.sum(y)), "auc": np.nan,
           "auc_low": np.nan, "auc_high": np.nan, **dict.fromkeys(_STAT_KEYS, np.nan)}
    notes = [note] if note else []
    try:
        if not 0 < y.sum() < len(y):
            raise ValueError(f"one outcome class among the {len(y)} cases with a probability")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vp = val_prob(y, p, name=model).to_row()
        auc = roc_auc_ci(y, p)
        row.update(auc=auc.auc, auc_low=auc.low, auc_high=auc.high, **{k: vp[k] for k in _STAT_KEYS})
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        notes.append(f"not computable: {_reason(exc)}")
    row["note"] = "; ".join(notes)
    return row


def _exact_note(p: np.ndarray, method: str) -> str:
    """How many probabilities are exactly 0 or 1, and what the method does with them ("" when none)."""
    n0, n1 = int(np.sum(p == 0.0)), int(np.sum(p == 1.0))
    if not n0 + n1:
        return ""
    rule = ("kept as they are by the isotonic fit" if method == "isotonic" else
            f"clipped to [{CLIP:g}, 1 - {CLIP:g}] in the fit and the map, so they count in the fit")
    return (f"{n0 + n1} of {len(p)} probabilities are exactly 0 ({n0}) or 1 ({n1}): {rule}; the calibration "
            "statistics of this table (rms::val.prob) leave them out")


def _direction_problems(model: str, before: dict, cv: dict) -> list[str]:
    """Signs that the model ranks the local cases backwards."""
    out = []
    if np.isfinite(before["auc"]) and before["auc"] < 0.5:
        out.append(f"{model}: the local AUC is {before['auc']:.3f} (below 0.5): the model ranks the local cases "
                   "backwards")
    if np.isfinite(cv["slope"]) and cv["slope"] <= 0:
        out.append(f"{model}: the cross-validated calibration slope is {cv['slope']:.3g} (at or below 0): the "
                   "recalibrated model does not rank new local cases in the right direction")
    return out


@dataclass
class RecalibrationResult:
    """What :func:`recalibrate_bundle` did.

    Attributes
    ----------
    path : Path
        The new bundle.
    record : dict
        ``recalibration.json``: method, cases, patients, events, date, original sha256, per-model maps.
    validation : DataFrame
        Per model: the local sample's statistics ``before`` (the bundle's probabilities),
        ``after (cross-validated)`` (each fold recalibrated by a map fitted on the other folds) and
        ``after (apparent)`` (the final map on the whole sample).
    excluded : DataFrame
        Local cases that could not be scored or have no label (``case_id, stage, error, fix``).
    """

    path: Path
    record: dict
    validation: pd.DataFrame
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)


def _plot(before, after, y: np.ndarray, model: str, method: str):
    """Calibration before and after (cross-validated) on the local cases, with the spread of the
    original predictions."""
    from sonorad.evaluation import calibration
    from sonorad.evaluation.plots import plot_calibration_curves

    results = [calibration(y, before, name="before"),
               calibration(y, after, name=f"after {method} (cross-validated)")]
    return plot_calibration_curves(results, colors=["0.4", "#c44e52"], risk_distribution=(y, before),
                                   title=f"Local calibration of {model}")


def _report_md(record: dict, validation: pd.DataFrame, figures: dict) -> str:
    from sonorad.evaluation.formatting import markdown_table, paper_table

    table = paper_table(validation, {
        "Model": "model", "Predictions": "predictions", "n": "n", "Events": "events",
        "AUC (95% CI)": ("auc", "auc_low", "auc_high"), "Intercept (95% CI)": ("intercept", "intercept_low",
                                                                              "intercept_high"),
        "Slope (95% CI)": ("slope", "slope_low", "slope_high"), "CITL": "citl", "Brier": "brier",
        "Eavg": "eavg", "HL chi2": "hl_chi2", "HL p": "hl_p"}, p_values=["HL p"])
    lines = [f"# Site recalibration ({record['method']})", "",
             f"- Original bundle sha256: `{record['original_bundle_sha256']}`",
             f"- Date (UTC): {record['date_utc']}",
             f"- Local sample: {record['n_cases']} cases, {record['n_patients']} patients, {record['n_events']} events"
             + (f"; {record['n_excluded']} case(s) not used (unscored or unlabelled)" if record["n_excluded"] else ""),
             f"- Validation: {record['validation']}", "",
             ("Before: the bundle's probabilities. After (cross-validated): each fold's cases recalibrated by a map "
              "fitted on the other folds (an honest estimate for the site). After (apparent): the saved map on the "
              "whole local sample."), "", markdown_table(table), ""]
    if record.get("warnings"):
        lines += ["## Warning: written with --force", ""] + [f"- {w}" for w in record["warnings"]] + [""]
    if record.get("notes"):
        lines += ["## Notes", ""] + [f"- {m}: {n}" for m, ns in record["notes"].items() for n in ns] + [""]
    for model, path in figures.items():
        lines += [f"![Calibration of {model} before and after]({path})", ""]
    return "\n".join(lines)


def recalibrate_bundle(bundle, cases, *, method: str, out, folds: int = 5, seed: int = 0, models=None,
                       jobs: int = 1, cache=None, progress: bool = False, key=None,
                       force: bool = False) -> RecalibrationResult:
    """Recalibrate a bundle's models on a labelled local sample and write a new bundle.

    Parameters
    ----------
    bundle : str, Path or Bundle
        The bundle to recalibrate (never modified).
    cases : str, Path or DataFrame
        The local cases table (as for ``sonorad predict``) with the bundle's label column and
        ``patient_id`` (folds are grouped by patient; without it each case is its own patient).
    method : {"intercept", "logistic", "isotonic"}
    out : str or Path
        The new bundle folder (a new or empty folder, or a previous bundle, which is replaced).
    folds : int
        Folds of the local cross-validated validation (stratified, patient-grouped).
    seed : int
        Seed of the folds.
    models : list of str, optional
        Models to recalibrate (default: every model the bundle scores from the model input table;
        fine-tuned CNNs are copied unchanged).
    jobs, cache, progress :
        As for :meth:`Bundle.predict`.
    key : bytes, str or Path, optional
        Signing key (or its file; default ``$SONORAD_BUNDLE_KEY_FILE``): the bundle is loaded only
        when signed with it, and the new bundle is signed with it. Without a key the new bundle is
        unsigned (the original's signature does not cover the rewritten manifest).
    force : bool
        Write the new bundle even when the model ranks the local cases backwards (local AUC below
        0.5, or a non-positive cross-validated calibration slope); the refusal is then a warning
        in the report.
    """
    from sonorad import __version__
    from sonorad.bundle import load_bundle
    from sonorad.bundle._trust import dump_skops
    from sonorad.bundle.inputs import batch_labels, read_cases_for_prediction
    from sonorad.bundle.writer import write_json
    from sonorad.provenance import sha256_file

    if method not in METHODS:
        raise BundleError(f"unknown --method {method!r}; choose one of {', '.join(METHODS)}")
    from sonorad.bundle.signing import SIGNATURE_FILE, resolve_key, sign_bundle

    key = resolve_key(key)
    bundle = load_bundle(bundle, key=key) if not hasattr(bundle, "predict") else bundle
    out = Path(out).resolve()
    if out == Path(bundle.path).resolve():
        raise BundleError("--out is the bundle being recalibrated; give a new folder (the original is kept).")
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise BundleError(f"{out} exists and is not a sonorad bundle; refusing to overwrite it. Fix: give an empty "
                          "or new folder.")
    table = read_cases_for_prediction(cases) if isinstance(cases, (str, Path)) else cases
    skops = [n for n, e in bundle.manifest["models"].items() if e.get("kind") == "skops"]
    chosen = list(models) if models is not None else skops
    unknown = [m for m in chosen if m not in skops]
    if unknown:
        raise BundleError(f"cannot recalibrate {unknown}: the bundle's recalibratable models are {skops}")

    column = str((bundle.study.get("label") or {}).get("column", "label"))
    positive = (bundle.study.get("label") or {}).get("positive", 1)
    if column not in table.columns:
        raise BundleError(f"the local cases table has no label column {column!r}; recalibration needs the outcome "
                          "of every local case. Fix: add the column (positive value "
                          f"{positive!r}).")
    labels = batch_labels(bundle, table, list(table.index))
    if labels is None:
        raise BundleError(f"the label column {column!r} of the local cases table is empty; recalibration needs the "
                          f"outcome of every local case. Fix: fill it (positive value {positive!r}).")
    y_all, all_groups = labels.y, _patients(table)
    known = y_all.notna().to_numpy()
    check_sample(y_all[known].to_numpy(), all_groups[known], folds)     # before any feature is computed

    prediction = bundle.predict(table, models=chosen, explain=False, jobs=jobs, cache=cache, progress=progress)
    probs = prediction.probabilities()
    batch_notes = list(prediction.notes)        # e.g. a predictor missing for the whole local sample
    excluded = [prediction.failures.reindex(columns=["case_id", "stage", "error", "fix"])]
    unlabelled = [c for c in y_all.index[y_all.isna()] if str(c) not in labels.refused]
    if len(unlabelled):
        excluded.append(pd.DataFrame({"case_id": unlabelled, "stage": "recalibrate",
                                      "error": f"no label (the {column} cell is empty)",
                                      "fix": f"give the case a {column} value or drop it"}))
    if labels.refused:
        allowed = ", ".join(repr(v) for v in [labels.positive, *labels.negatives])
        excluded.append(pd.DataFrame({"case_id": list(labels.refused), "stage": "recalibrate",
                                      "error": [f"label {v!r} is neither the positive value nor a negative one"
                                                for v in labels.refused.values()],
                                      "fix": f"recode it as one of {allowed}, or drop the case"}))
    ids = [c for c in probs.index if c in y_all.index and pd.notna(y_all[c]) and probs.loc[c, chosen].notna().all()]
    if len(ids) < 10:
        raise BundleError(f"only {len(ids)} local case(s) could be scored and carry a label; recalibration needs a "
                          "sample with both outcomes (at least 10 cases, ideally 100 or more with 20+ events).")
    y = y_all.loc[ids].astype(int).to_numpy()
    groups = all_groups[[table.index.get_loc(c) for c in ids]]
    splits = _grouped_folds(y, groups, folds, seed)

    fitted, rows, problems = {}, [], []
    notes = {"local sample": batch_notes}
    for model in chosen:
        p = probs.loc[ids, model].to_numpy(dtype=float)
        try:
            params = fit_recalibration(y, p, method)
        except ValueError as exc:
            raise BundleError(f"model {model!r}: {exc}") from exc
        oof, fold_notes = cross_validated(y, p, splits, method)
        exact = _exact_note(p, method)
        before = _statistics(y, p, "before", model, exact)
        cv = _statistics(y, oof, "after (cross-validated)", model, "; ".join(fold_notes))
        rows += [before, cv, _statistics(y, _apply(params, p), "after (apparent)", model)]
        problems += _direction_problems(model, before, cv)
        notes[model] = [n for n in (exact, *fold_notes) if n]
        fitted[model] = (params, p, oof)
    if problems and not force:
        raise BundleError("recalibration refused: " + "; ".join(problems) + ". Recalibration rescales a model's "
                          "risks; it cannot repair a model that ranks the site's cases backwards (check the labels, "
                          "the positive value and the case mix, or that a predictor is not missing for the whole "
                          "site). Nothing was written. Fix: do not use this model at this site, or pass --force to "
                          "write the bundle anyway with this warning in its report.")

    maps, figures = {}, {}
    tmp = out.with_name(f".{out.name}.writing")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(bundle.path, tmp)
    try:
        (tmp / "recalibration").mkdir(exist_ok=True)
        manifest = json.loads((tmp / "manifest.json").read_text())
        for model, (params, p, oof) in fitted.items():
            wrapped = RecalibratedModel(bundle.model(model), **{k: v for k, v in params.items()})
            entry = manifest["models"][model]
            dump_skops(wrapped, tmp / entry["file"], model)
            entry["recalibrated"] = {"method": method, "base_class": entry.get("class")}
            entry["class"] = f"{RecalibratedModel.__module__}.{RecalibratedModel.__qualname__}"
            if model in manifest["cutoffs"]:
                manifest["cutoffs"][model] = float(_apply(params, np.array([manifest["cutoffs"][model]]))[0])
            maps[model] = {k: v for k, v in params.items() if v is not None}
            from sonorad.report.figures import file_stem, save_figure

            stem = f"calibration_{file_stem(model)}"
            shown = np.isfinite(oof)
            try:
                fig = _plot(p[shown], oof[shown], y[shown], model, method)
            except (ValueError, ArithmeticError) as exc:
                notes[model].append(f"calibration figure not drawn: {_reason(exc)}")
                continue
            save_figure(fig, stem, tmp / "recalibration")
            figures[model] = f"{stem}.png"
        validation = pd.DataFrame(rows)
        record = {"method": method, "models": maps, "n_cases": len(ids), "n_patients": int(len(set(groups))),
                  "warnings": problems, "notes": {m: n for m, n in notes.items() if n},
                  "n_events": int(y.sum()), "n_excluded": int(sum(len(e) for e in excluded)),
                  "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "original_bundle_sha256": bundle.sha256, "original_bundle_path": str(bundle.path),
                  "sonorad_version": __version__,
                  "validation": f"{len(splits)}-fold cross-validation on the local sample, stratified by outcome "
                                "and grouped by patient",
                  "cutoffs": "each cut-off mapped through its model's recalibration (same cases above it)"}
        validation.to_csv(tmp / "recalibration" / "local_validation.csv", index=False)
        (tmp / "recalibration" / "report.md").write_text(_report_md(record, validation, figures), encoding="utf-8")
        rows_json = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
                     for r in validation.to_dict(orient="records")]      # JSON has no NaN / inf
        write_json(tmp / "recalibration.json", {**record, "local_validation": rows_json})
        explain = json.loads((tmp / "explain.json").read_text())
        for model in chosen:
            explain["models"][model] = {"error": f"{model} was recalibrated ({method}); SHAP contributions of the "
                                                 "original bundle explain its ranking"}
        write_json(tmp / "explain.json", explain)
        card = json.loads((tmp / "card.json").read_text())
        card["recalibration"] = {k: record[k] for k in ("method", "n_cases", "n_patients", "n_events", "date_utc",
                                                        "original_bundle_sha256", "validation")}
        write_json(tmp / "card.json", card)
        md = (tmp / "card.md").read_text(encoding="utf-8")
        md += (f"\n\n## Site recalibration\n\n{method} recalibration on {len(ids)} local cases ({int(y.sum())} events, "
               f"{len(set(groups))} patients), {record['date_utc']}; original bundle sha256 "
               f"{bundle.sha256}. Local validation: recalibration/report.md.\n")
        (tmp / "card.md").write_text(md, encoding="utf-8")
        manifest["recalibration"] = {k: record[k] for k in ("method", "n_cases", "n_events", "date_utc",
                                                            "original_bundle_sha256")}
        manifest["files"] = {p.relative_to(tmp).as_posix(): sha256_file(p)
                             for p in sorted(tmp.rglob("*"))
                             if p.is_file() and p.relative_to(tmp).as_posix() not in ("manifest.json", SIGNATURE_FILE)}
        write_json(tmp / "manifest.json", manifest)
        (tmp / SIGNATURE_FILE).unlink(missing_ok=True)      # it signed the original manifest
        if key is not None:
            sign_bundle(tmp, key)
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    excluded = pd.concat([e for e in excluded if len(e)] or [pd.DataFrame(columns=["case_id", "stage", "error",
                                                                                   "fix"])], ignore_index=True)
    return RecalibrationResult(path=out, record=record, validation=validation, excluded=excluded)
