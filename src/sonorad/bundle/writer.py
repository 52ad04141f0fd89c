"""Write a model bundle: everything needed to score a new case, and nothing more.

Layout of the bundle folder (``OUT/model/``)::

    manifest.json            format version, sonorad and package versions, models, sha256 of every file
    schema.json              declared variables: type, levels / order, imputation value, training range
    features.json            model input columns; radiomics and deep-feature settings (one entry per
                             backbone, with its weights hash)
    radiomics_params.yaml    the full PyRadiomics parameter file (when radiomics features are used)
    training_summary.json    training-cohort quantiles, levels seen, centers, ROI-size quantiles
    explain.json             SHAP background centroids (>= 5 training cases each) per model
    study.json               study name, label, seed and design settings (no paths)
    card.json, card.md       the model card
    uncertainty.json/.skops  the chosen model's final stage refitted on bootstrap resamples of the
                             training cases, for a per-patient interval (sonorad.bundle.uncertainty)
    performance.json         per model: sensitivity, specificity, PPV, NPV at its cut-off with Wilson
                             CIs, from the counts of one labelled cohort (when the run gave them)
    models/<name>.skops      fitted scikit-learn pipelines (skops: no pickle)
    models/<name>.pt/.json   a fine-tuned CNN: state dict (torch.load(weights_only=True)) + parameters
    segmenter/               the study's box-prompted segmenter (``masks.segmenter``), when it named one:
                             segmenter.pt (state dict) + segmenter.json (settings, cohort counts)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.bundle._trust import BundleError, dump_skops, load_skops
from sonorad.bundle.card import card_markdown, complete_card
from sonorad.bundle.summary import pooled_quantiles, shap_background, training_summary
from sonorad.provenance import atomic_write_text, package_versions, sha256_file

__all__ = ["BUNDLE_FORMAT", "BUNDLE_FORMAT_VERSION", "write_bundle", "bundle_package_versions", "backbone_weights_sha256",
           "column_kinds", "iter_estimators", "write_json"]

BUNDLE_FORMAT = "sonorad-model-bundle"
#: Bumped whenever a file of the layout changes meaning; a reader refuses other versions.
BUNDLE_FORMAT_VERSION = 2
#: The bundle's folder for the study's segmenter (optional; see :func:`write_bundle`).
SEGMENTER_FOLDER = "segmenter"
#: Packages whose versions are recorded (and compared on load).
_STUDY_KEYS = ("name", "description", "seed", "label", "features", "models", "evaluation")


def bundle_package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a bundle records in its manifest (``"packages"``) and
    compares on load: distribution name -> version, ``None`` when not installed (see
    :data:`sonorad.provenance.BUNDLE_PACKAGES`)."""
    return package_versions(by="distribution")


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def write_json(path: Path, data) -> None:
    """Write a bundle JSON file (indent 1, a final newline, no NaN) atomically."""
    atomic_write_text(path, json.dumps(data, indent=1, default=_json_default, allow_nan=False) + "\n")


def backbone_weights_sha256(net) -> str:
    """sha256 of a backbone's trunk and pooling weights (the frozen part; the head is not used).

    Hashes names, dtypes, shapes and bytes of every tensor of ``net.state_dict()`` outside ``head``,
    in name order, so the same weights give the same hash whatever file they came from.
    """
    h = hashlib.sha256()
    for key, tensor in sorted(net.state_dict().items()):
        if key.startswith("head."):
            continue
        t = tensor.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def column_kinds(columns, variables: dict, backbones=()) -> dict[str, str]:
    """Kind of every model input column: ``center``, ``variable``, ``deep`` (``<backbone>_<i>`` of one
    of ``backbones``) or ``radiomics``."""
    from sonorad.designs.base import backbone_of

    backbones = set(backbones)
    kinds = {}
    for column in columns:
        if column == "center":
            kinds[column] = "center"
        elif column in variables:
            kinds[column] = "variable"
        elif backbone_of(column) in backbones:
            kinds[column] = "deep"
        else:
            kinds[column] = "radiomics"
    return kinds


def _is_cnn(model) -> bool:
    return type(model).__name__ == "CNNClassifier" and type(model).__module__.startswith("sonorad.deep")


def iter_estimators(obj, seen=None):
    """Every estimator-like object inside ``obj`` (pipelines, blocks, wrappers, calibrators), ``obj``
    itself first; each object once."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from iter_estimators(item, seen)
        return
    if isinstance(obj, dict):
        for item in obj.values():
            yield from iter_estimators(item, seen)
        return
    module = type(obj).__module__.split(".")[0]
    if module not in ("sklearn", "sonorad", "xgboost", "lightgbm") or not hasattr(obj, "__dict__"):
        return
    yield obj
    for value in vars(obj).values():
        if isinstance(value, (list, tuple, dict)) or hasattr(value, "__dict__"):
            yield from iter_estimators(value, seen)


def _keeps_training_vectors(model) -> bool:
    """Whether a fitted model stores training feature vectors (k-NN's cases, SVM's support vectors)."""
    return any(hasattr(est, "_fit_X") or hasattr(est, "support_vectors_") or hasattr(est, "X_train_")
               for est in iter_estimators(model))


def _imputation_values(models: dict) -> dict[str, object]:
    """Imputation value of each declared variable, from the first fitted ClinicalEncoder seen."""
    from sonorad.clinical import ClinicalEncoder

    out: dict[str, object] = {}
    for model in models.values():
        for est in iter_estimators(model):
            if not isinstance(est, ClinicalEncoder) or not hasattr(est, "fill_"):
                continue
            for column, fill in est.fill_.items():
                if column in out:
                    continue
                kind = est.types_[column]
                levels = est.levels_.get(column)
                if kind == "ordinal" and levels is not None:
                    code = float(fill)
                    out[column] = levels[int(code)] if code.is_integer() else f"between {levels[int(code)]} and {levels[int(code) + 1]}"
                elif isinstance(fill, (int, float, np.integer, np.floating)):
                    out[column] = float(fill)
                else:
                    out[column] = str(fill)
    return out


def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
    slug, i = base, 2
    while slug.lower() in taken:
        slug, i = f"{base}_{i}", i + 1
    taken.add(slug.lower())
    return slug


def _cnn_files(model, folder: Path, slug: str) -> dict:
    import torch

    net = model.model_
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    weights = folder / "models" / f"{slug}.pt"
    torch.save(state, weights)
    params = {k: v for k, v in model.get_params(deep=False).items() if k not in ("weights", "device")}
    meta = {"params": params, "input_size": int(net.input_size), "weights_id": str(net.weights_id),
            "classes": [int(c) for c in model.classes_], "best_epoch": getattr(model, "best_epoch_", None)}
    write_json(folder / "models" / f"{slug}.json", meta)
    return {"file": f"models/{slug}.pt", "meta": f"models/{slug}.json", "kind": "cnn", "input": "crops"}


def _check_round_trip(name: str, model, data: bytes, X: pd.DataFrame) -> None:
    again = load_skops(data, f"model {name!r}")
    a = np.asarray(model.predict_proba(X))[:, 1]
    b = np.asarray(again.predict_proba(X))[:, 1]
    if not np.allclose(a, b, rtol=0, atol=1e-12, equal_nan=True):
        raise BundleError(f"model {name!r} does not give the same probabilities after saving "
                          f"(largest difference {np.nanmax(np.abs(a - b)):.3g}). Fix: leave it out (exclude=) "
                          "and report the estimator class as a sonorad bug.")


def _explain_entry(model, X: pd.DataFrame, seed: int) -> dict:
    from sonorad.explain.shap import apply_steps, explain_parts

    display, _, final, X = explain_parts(model, X)
    Xd = apply_steps(display, X)
    centroids, sizes = shap_background(Xd, random_state=seed)
    described = {}
    for column in Xd.columns:
        values = Xd[column].to_numpy(dtype=float)
        binary = bool(set(np.unique(values)) <= {0.0, 1.0})
        low, high = (0.0, 1.0) if binary else (float(v) for v in pooled_quantiles(values, (0.01, 0.99)))
        described[str(column)] = {"low": low, "high": high, "binary": binary}
    return {"features": [str(c) for c in Xd.columns], "centroids": centroids.tolist(), "sizes": sizes,
            "classifier": type(final).__name__, "display": described}


def _training_quartiles(summary: dict, column: dict) -> list[float] | None:
    """[q1, q3] of a numeric column from the training summary's pooled quantiles (no case's value)."""
    probs, values = summary.get("quantiles") or [], column.get("quantiles") or []
    if 0.25 not in probs or 0.75 not in probs or len(values) != len(probs):
        return None
    q1, q3 = values[probs.index(0.25)], values[probs.index(0.75)]
    return [q1, q3] if q1 is not None and q3 is not None else None


def _schema(variables: dict, summary: dict, imputation: dict, study: dict, columns) -> list[dict]:
    """``schema.json``: each declared variable the model uses, with what the training cohort held.

    ``training_quartiles`` (pooled [q1, q3], numeric variables) let prediction and the calculator
    refuse a value far outside the training values (:func:`sonorad.variables.plausible_range`).
    """
    declared = (study.get("variables") or {}) if isinstance(study, dict) else {}
    out = []
    for name, spec in variables.items():
        if name not in columns:
            continue
        col = summary["columns"].get(name, {})
        extra = declared.get(name) if isinstance(declared.get(name), dict) else {}
        out.append({
            "name": name,
            "type": spec.type,
            "levels": list(spec.levels) if spec.levels else None,
            "order": list(spec.order) if spec.order else None,
            "allowed_values": list(spec.allowed_values) if spec.allowed_values else None,
            "role": spec.role,
            "description": spec.description,
            "unit": getattr(spec, "unit", None) or extra.get("unit"),
            "imputation": imputation.get(name),
            "training_range": col.get("range"),
            "training_quartiles": _training_quartiles(summary, col) if spec.type == "numeric" else None,
            "training_levels": col.get("levels_seen"),
            "n_missing_in_training": col.get("n_missing"),
            "plausible_range": list(spec.range) if getattr(spec, "range", None) else None,
            "unseen": getattr(spec, "unseen", None),
        })
    return out


def _check_inputs(models, chosen, cutoffs, features, variables, training_input, exclude):
    if not isinstance(training_input, pd.DataFrame) or training_input.empty:
        raise BundleError("training_input must be the training cohort's model input table (a non-empty DataFrame).")
    if training_input.columns.duplicated().any():
        raise BundleError(f"training_input repeats columns {list(training_input.columns[training_input.columns.duplicated()])[:5]}.")
    unknown = [n for n in exclude if n not in models]
    if unknown:
        raise BundleError(f"exclude names model(s) {unknown} that are not among the models {list(models)}.")
    kept = {n: m for n, m in models.items() if n not in set(exclude)}
    if not kept:
        raise BundleError("every model is excluded; a bundle needs at least one model.")
    if chosen not in kept:
        raise BundleError(f"chosen model {chosen!r} is {'excluded' if chosen in models else 'not among the models'}; "
                          f"choose one of {list(kept)}.")
    bad = {n: c for n, c in cutoffs.items() if n in kept and not (isinstance(c, (int, float)) and np.isfinite(c))}
    if bad:
        raise BundleError(f"cut-offs must be finite numbers; got {bad}.")
    missing = {"radiomics_params", "deep"} - set(features)
    if missing:
        raise BundleError(f"features needs the keys radiomics_params and deep (None when unused); missing {sorted(missing)}.")
    deep = features.get("deep") or []
    if not isinstance(deep, (list, tuple)) or not all(isinstance(d, dict) and "backbone" in d for d in deep):
        raise BundleError("features['deep'] must be a list of settings, one per backbone, each with its name "
                          "('backbone'); [] or None when no deep feature is used.")
    names = [d["backbone"] for d in deep]
    if len(set(names)) < len(names):
        raise BundleError(f"features['deep'] lists a backbone twice: {names}.")
    for name in variables:
        if "center" == name:
            raise BundleError("a declared variable cannot be called 'center'.")
    return kept


def _deep_settings(deep: dict) -> dict:
    from sonorad.deep.backbones import load_backbone

    weights = deep.get("weights", "default")
    net = load_backbone(deep["backbone"], weights)
    return {"backbone": deep["backbone"], "margin": float(deep.get("margin", 0.1)),
            "mask_background": bool(deep.get("mask_background", False)),
            "batch_size": int(deep.get("batch_size", 32)),
            "weights": weights if isinstance(weights, str) or weights is None else str(weights),
            "weights_id": str(net.weights_id), "weights_sha256": backbone_weights_sha256(net),
            "input_size": int(net.input_size), "feature_dim": int(net.spec.feature_dim)}


def _performance(performance: dict, kept: dict, cutoffs: dict) -> dict:
    """``performance.json``: :func:`sonorad.bundle.results.cutoff_performance` of every kept model
    with a cut-off and counts."""
    from sonorad.bundle.results import cutoff_performance

    models = {}
    for name, counts in (performance.get("models") or {}).items():
        if name in kept and cutoffs.get(name) is not None:
            models[name] = cutoff_performance(*(int(counts[k]) for k in ("tp", "fp", "tn", "fn")),
                                              cutoff=float(cutoffs[name]), cohort=str(performance["cohort"]))
    return {"cohort": str(performance["cohort"]), "models": models}


def _uncertainty(tmp: Path, model, training_input: pd.DataFrame, uncertainty: dict, seed: int) -> dict:
    """Fit and save the bootstrap refits of the chosen model's final stage; ``uncertainty.json``
    says what was saved, or why nothing was."""
    from sonorad.bundle.uncertainty import DEFAULT_RESAMPLES, MAX_BYTES, UNCERTAINTY_FILE, fit_resamples

    labels = uncertainty["labels"]
    y = labels.reindex(training_input.index) if isinstance(labels, pd.Series) else np.asarray(labels)
    resamples = int(uncertainty.get("resamples") or DEFAULT_RESAMPLES)
    try:
        payload, note = fit_resamples(model, training_input, y, resamples=resamples, seed=seed,
                                      scores=uncertainty.get("scores"))
    except Exception as exc:  # noqa: BLE001 - the bundle stands without a per-patient interval
        payload, note = None, f"not available: refitting the final stage failed ({type(exc).__name__}: {exc})"
    info = {"file": None, "resamples": resamples, "seed": seed, "classifier": None, "note": note}
    if payload is None:
        return info
    info["classifier"] = payload["classifier"]
    if _keeps_training_vectors(payload["estimators"]):
        info["note"] = (f"not available: the final stage ({payload['classifier']}) keeps its training cases, "
                        "which a bundle never stores")
        return info
    path = tmp / UNCERTAINTY_FILE
    try:
        size = len(dump_skops(payload["estimators"], path, "uncertainty refits"))
    except BundleError as exc:
        path.unlink(missing_ok=True)
        info["note"] = f"not available: the refits cannot be saved ({exc})"
        return info
    if size > MAX_BYTES:
        path.unlink()
        info["note"] = (f"not available: {resamples} refits of {payload['classifier']} would add "
                        f"{size / 1e6:.0f} MB to the bundle (limit {MAX_BYTES / 1e6:.0f} MB)")
        return info
    info.update(file=UNCERTAINTY_FILE, resamples=payload["resamples"], seconds=round(payload["seconds"], 3))
    return info


def _prepare_folder(folder: Path) -> Path:
    if folder.exists() and any(folder.iterdir()) and not (folder / "manifest.json").is_file():
        raise BundleError(f"{folder} exists and is not a sonorad bundle; refusing to overwrite it. "
                          "Fix: give an empty or new folder.")
    tmp = folder.with_name(f".{folder.name}.writing")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "models").mkdir(parents=True)
    return tmp


def _segmenter_files(path, tmp: Path) -> dict:
    """Copy a segmenter folder's two files into ``tmp/segmenter/`` after the safe loader checked them."""
    from sonorad.segment.io import META_FILE, WEIGHTS_FILE, load_segmenter

    meta = load_segmenter(Path(path)).meta  # refuses a foreign or damaged folder before it is copied
    (tmp / SEGMENTER_FOLDER).mkdir()
    for name in (META_FILE, WEIGHTS_FILE):
        shutil.copyfile(Path(path) / name, tmp / SEGMENTER_FOLDER / name)
    return {"folder": SEGMENTER_FOLDER, "weights_sha256": meta.get("weights_sha256"),
            "validation_dice_median": (meta.get("validation") or {}).get("dice_median")}


def write_bundle(folder, *, models: dict, chosen: str, cutoffs: dict, features: dict, variables: dict,
                 training_input: pd.DataFrame, training_rois: pd.DataFrame | None, card: dict, study: dict,
                 exclude=(), seed: int | None = None, key=None, performance: dict | None = None,
                 uncertainty: dict | None = None, segmenter=None) -> Path:
    """Write a model bundle folder (see the module docstring for the layout).

    Parameters
    ----------
    folder : str or Path
        Bundle folder, e.g. ``OUT/model``; replaced when it holds a previous bundle, refused when it
        holds anything else.
    models : dict of str -> fitted estimator
        Pipelines taking the model input table (``predict_proba(X)[:, 1]``), or a fine-tuned
        :class:`sonorad.deep.finetune.CNNClassifier` (which takes the cases).
    chosen : str
        The model a single case is scored with (the study's chosen model).
    cutoffs : dict of str -> float
        Training-CV cut-off per model (probability scale); a model without one gets no risk group.
    features : dict
        ``{"radiomics_params": dict or None, "deep": [{"backbone", "margin", "mask_background",
        "batch_size"}, ...] or None}``: one deep entry per backbone whose features the models read.
    variables : dict of str -> sonorad.variables.VariableSpec
        The study's declared variables.
    training_input : DataFrame
        The training cohort's model input table (index case_id). Used only to compute aggregate
        summaries and SHAP background centroids and to check the saved models; never stored.
    training_rois : DataFrame or None
        ROI measures of the training cases (:data:`sonorad.bundle.summary.ROI_COLUMNS`); summarised only.
    card : dict
        Model card entries: ``intended_use``, ``cohorts``, ``external_auc``, ``calibration``, ...
    study : dict
        The study file mapping; name, description, seed, label and design sections are kept (no paths).
    exclude : iterable of str
        Models left out (e.g. ``["knn", "svm"]``, which keep training feature vectors).
    seed : int, optional
        Seed of the SHAP background clustering (default: the study seed, else 0).
    key : bytes, str or Path, optional
        Sign the bundle with this key (or the key in this file): ``manifest.sig``, an HMAC-SHA256
        of the manifest (:mod:`sonorad.bundle.signing`). Default: the key file named by
        ``$SONORAD_BUNDLE_KEY_FILE``, else no signature.
    performance : dict, optional
        ``{"cohort": name, "models": {model: {"tp", "fp", "tn", "fn"}}}``: each model's confusion
        counts at its cut-off on one labelled cohort (``external``, ``internal``, ``training_cv``
        or ``training``); saved with their Wilson intervals
        (:func:`sonorad.bundle.results.cutoff_performance`) in ``performance.json``. Counts only:
        no case is stored.
    uncertainty : dict, optional
        ``{"labels": training labels (Series by case id, or in training_input's order),
        "scores": out-of-fold training scores of a design's second stage or None, "resamples": B}``:
        refit the chosen model's final stage on B bootstrap resamples of the training cases
        (:func:`sonorad.bundle.uncertainty.fit_resamples`, seeded with ``seed``) for a per-patient
        interval. Without it the bundle has none.
    segmenter : str or Path, optional
        The study's box-prompted segmenter folder (``masks.segmenter``). Its two files are checked by
        the safe loader (:func:`sonorad.segment.io.load_segmenter`) and copied into ``segmenter/``,
        so that the calculator proposes outlines with the segmenter the study's ROIs came from.

    Returns
    -------
    Path
        The bundle folder.
    """
    from sonorad import __version__

    from sonorad.bundle.signing import resolve_key, sign_bundle

    key = resolve_key(key)  # an unreadable key file fails before any work
    folder = Path(folder)
    exclude = list(exclude)
    kept = _check_inputs(models, chosen, cutoffs, features, variables, training_input, exclude)
    seed = int(seed if seed is not None else (study or {}).get("seed", 0) or 0)
    deep = [_deep_settings(d) for d in features.get("deep") or []]
    kinds = column_kinds(training_input.columns, variables, [d["backbone"] for d in deep])
    if any(k == "radiomics" for k in kinds.values()) and features.get("radiomics_params") is None:
        odd = [c for c, k in kinds.items() if k == "radiomics"][:5]
        raise BundleError(f"columns {odd} are neither declared variables, center nor deep features, and no "
                          "PyRadiomics parameters were given to recompute them. Fix: pass features['radiomics_params'] "
                          "or drop those columns from the model input table.")
    tmp = _prepare_folder(folder)
    try:
        entries, taken, explain = {}, set(), {}
        sklearn_models = {}
        for name, model in kept.items():
            slug = _slug(name, taken)
            if _is_cnn(model):
                entry = _cnn_files(model, tmp, slug)
            else:
                data = dump_skops(model, tmp / "models" / f"{slug}.skops", name)
                _check_round_trip(name, model, data, training_input)
                entry = {"file": f"models/{slug}.skops", "kind": "skops", "input": "model_input"}
                sklearn_models[name] = model
                try:
                    explain[name] = _explain_entry(model, training_input, seed)
                except Exception as exc:  # noqa: BLE001 - the model is still usable without SHAP
                    explain[name] = {"error": f"{type(exc).__name__}: {exc}"}
            entry["class"] = f"{type(model).__module__}.{type(model).__qualname__}"
            entry["keeps_training_vectors"] = _keeps_training_vectors(model) if not _is_cnn(model) else False
            entries[name] = entry

        summary = training_summary(training_input, training_rois, variables, kinds)
        write_json(tmp / "training_summary.json", summary)
        write_json(tmp / "explain.json", {"method": "k-means centroids of the training predictors; each is "
                                                     "the mean of at least 5 training cases", "models": explain})
        imputation = _imputation_values(sklearn_models)
        write_json(tmp / "schema.json", {"variables": _schema(variables, summary, imputation, study or {},
                                                               training_input.columns)})
        feature_info = {"input_columns": [str(c) for c in training_input.columns],
                        "column_kinds": {str(c): k for c, k in kinds.items()},
                        "dtypes": {str(c): str(training_input[c].dtype) for c in training_input.columns},
                        "radiomics": None, "deep": deep}
        if features.get("radiomics_params") is not None:
            import yaml

            from sonorad.features.radiomics import load_params, params_hash

            params = load_params(features["radiomics_params"])
            (tmp / "radiomics_params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
            feature_info["radiomics"] = {"params_file": "radiomics_params.yaml", "params_hash": params_hash(params)}
            from sonorad.imaging.spacing import rule_of

            # the pixel-spacing rule, also held in radiomics_params.yaml (its `sonorad` entry)
            feature_info["radiomics"]["spacing"] = rule_of(params).as_dict() or {"spacing": "as given"}
        write_json(tmp / "features.json", feature_info)
        if performance:
            write_json(tmp / "performance.json", _performance(performance, kept, cutoffs))
        if uncertainty is not None:
            write_json(tmp / "uncertainty.json", _uncertainty(tmp, sklearn_models[chosen], training_input,
                                                              uncertainty, seed) if chosen in sklearn_models else
                       {"file": None, "note": "not available: the chosen model is a fine-tuned CNN, whose "
                                              "refitting on resamples is not affordable"})
        segmenter_entry = _segmenter_files(segmenter, tmp) if segmenter is not None else None
        study_kept = {k: v for k, v in (study or {}).items() if k in _STUDY_KEYS}
        write_json(tmp / "study.json", study_kept)
        full_card = complete_card(card or {}, models=entries, chosen=chosen, cutoffs=cutoffs, excluded=exclude,
                                  study=study or {}, sonorad_version=__version__)
        write_json(tmp / "card.json", full_card)
        (tmp / "card.md").write_text(card_markdown(full_card), encoding="utf-8")

        files = {}
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            files[path.relative_to(tmp).as_posix()] = sha256_file(path)
        manifest = {
            "format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, "sonorad_version": __version__,
            "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "packages": bundle_package_versions(),
            "chosen": chosen, "cutoffs": {n: float(c) for n, c in cutoffs.items() if n in kept},
            "models": entries, "excluded_models": exclude, "files": files,
        }
        if segmenter_entry is not None:
            manifest["segmenter"] = segmenter_entry
        write_json(tmp / "manifest.json", manifest)
        if key is not None:
            sign_bundle(tmp, key)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
