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
rms::val.prob fit; probabilities of exactly 0 or 1 are left out of the fit, as val.prob does).

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

__all__ = ["METHODS", "RecalibratedModel", "fit_recalibration", "RecalibrationResult", "recalibrate_bundle"]

METHODS = ("intercept", "logistic", "isotonic")


def _logit(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
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
        fit = calibration_intercept_slope(y, p)
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


def _grouped_folds(y: np.ndarray, groups: np.ndarray, folds: int, seed: int):
    from sonorad.selection import make_grouped_cv

    return make_grouped_cv(folds, y, groups, random_state=seed)


def _statistics(y, p, label: str, model: str) -> dict:
    import warnings

    from sonorad.evaluation import roc_auc_ci, val_prob

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vp = val_prob(y, p, name=model).to_row()
    auc = roc_auc_ci(y, p)
    keep = ("citl", "citl_low", "citl_high", "intercept", "intercept_low", "intercept_high", "slope", "slope_low",
            "slope_high", "brier", "eavg", "e90", "emax", "hl_chi2", "hl_df", "hl_p", "spiegelhalter_p")
    return {"model": model, "predictions": label, "n": len(y), "events": int(np.sum(y)), "auc": auc.auc,
            "auc_low": auc.low, "auc_high": auc.high, **{k: vp[k] for k in keep}}


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
    for model, path in figures.items():
        lines += [f"![Calibration of {model} before and after]({path})", ""]
    return "\n".join(lines)


def recalibrate_bundle(bundle, cases, *, method: str, out, folds: int = 5, seed: int = 0, models=None,
                       jobs: int = 1, cache=None, progress: bool = False) -> RecalibrationResult:
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
    """
    from sonorad import __version__
    from sonorad.bundle import load_bundle
    from sonorad.bundle._trust import dump_skops
    from sonorad.bundle.inputs import read_cases_for_prediction
    from sonorad.bundle.writer import write_json
    from sonorad.provenance import sha256_file

    if method not in METHODS:
        raise BundleError(f"unknown --method {method!r}; choose one of {', '.join(METHODS)}")
    bundle = load_bundle(bundle) if not hasattr(bundle, "predict") else bundle
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

    prediction = bundle.predict(table, models=chosen, explain=False, jobs=jobs, cache=cache, progress=progress)
    probs = prediction.probabilities()
    column = str((bundle.study.get("label") or {}).get("column", "label"))
    positive = (bundle.study.get("label") or {}).get("positive", 1)
    from sonorad.variables import canonical_value

    if column not in table.columns:
        raise BundleError(f"the local cases table has no label column {column!r}; recalibration needs the outcome "
                          "of every local case. Fix: add the column (positive value "
                          f"{positive!r}).")
    labels = table[column].map(canonical_value)
    y_all = pd.Series(np.where(labels.isna(), np.nan, (labels == canonical_value(positive)).astype(float)),
                      index=table.index)
    excluded = [prediction.failures.reindex(columns=["case_id", "stage", "error", "fix"])]
    unlabelled = y_all.index[y_all.isna()]
    if len(unlabelled):
        excluded.append(pd.DataFrame({"case_id": unlabelled, "stage": "recalibrate", "error": "no label",
                                      "fix": f"give the case a {column} value or drop it"}))
    ids = [c for c in probs.index if c in y_all.index and pd.notna(y_all[c]) and probs.loc[c, chosen].notna().all()]
    if len(ids) < 10:
        raise BundleError(f"only {len(ids)} local case(s) could be scored and carry a label; recalibration needs a "
                          "sample with both outcomes (at least 10 cases, ideally 100 or more with 20+ events).")
    y = y_all.loc[ids].astype(int).to_numpy()
    groups = (table.loc[ids, "patient_id"].astype(str).to_numpy() if "patient_id" in table.columns
              else np.asarray(ids, dtype=str))
    splits = _grouped_folds(y, groups, folds, seed)

    maps, rows, figures = {}, [], {}
    tmp = out.with_name(f".{out.name}.writing")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(bundle.path, tmp)
    try:
        (tmp / "recalibration").mkdir(exist_ok=True)
        manifest = json.loads((tmp / "manifest.json").read_text())
        for model in chosen:
            p = probs.loc[ids, model].to_numpy(dtype=float)
            try:
                params = fit_recalibration(y, p, method)
            except ValueError as exc:
                raise BundleError(f"model {model!r}: {exc}") from exc
            oof = np.full(len(y), np.nan)
            for tr, te in splits:
                oof[te] = _apply(fit_recalibration(y[tr], p[tr], method), p[te])
            apparent = _apply(params, p)
            rows += [_statistics(y, p, "before", model), _statistics(y, oof, "after (cross-validated)", model),
                     _statistics(y, apparent, "after (apparent)", model)]
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
            fig = _plot(p, oof, y, model, method)
            save_figure(fig, stem, tmp / "recalibration")
            figures[model] = f"{stem}.png"
        validation = pd.DataFrame(rows)
        record = {"method": method, "models": maps, "n_cases": len(ids), "n_patients": int(len(set(groups))),
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
                             for p in sorted(tmp.rglob("*")) if p.is_file() and p.name != "manifest.json"}
        write_json(tmp / "manifest.json", manifest)
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    excluded = pd.concat([e for e in excluded if len(e)] or [pd.DataFrame(columns=["case_id", "stage", "error",
                                                                                   "fix"])], ignore_index=True)
    return RecalibrationResult(path=out, record=record, validation=validation, excluded=excluded)
