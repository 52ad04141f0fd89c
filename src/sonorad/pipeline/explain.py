"""The explain stage: SHAP values, the nomogram, Grad-CAM heatmaps and Table 1 of a fitted study.

Each explanation is computed here from the fitted models and the cohorts and returned as data
(:class:`Explanations`); the runner writes them as tables and images whether or not a report is
drawn, and the report only draws them. An explanation that cannot be computed is recorded in
``notes`` with the reason; the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sonorad.designs import DesignResult

__all__ = ["GradCam", "Explanations", "shap_explanation", "nomogram_of", "dl_score_network", "gradcam_cases",
           "gradcams", "table_one", "explain"]


@dataclass(frozen=True)
class GradCam:
    """One case's Grad-CAM: the ROI crop the network saw, its mask, the heatmap in [0, 1]."""

    case_id: str
    crop: np.ndarray
    mask: np.ndarray
    heatmap: np.ndarray
    label: int
    probability: float


@dataclass(frozen=True)
class Explanations:
    """What the explain stage computed; ``None`` where an explanation was not asked for or failed."""

    shap: object = None
    nomogram: object = None
    nomogram_model: str | None = None
    gradcam: tuple = ()
    gradcam_source: str | None = None
    table_one: object = None
    notes: tuple = field(default_factory=tuple)


def shap_explanation(result: DesignResult, model: str, X: pd.DataFrame, background: pd.DataFrame, *,
                     n_cases: int, seed: int):
    """SHAP values of ``model`` on (at most ``n_cases``, drawn with the seed) rows of ``X``.

    Explained in the space of the model's final estimator (after selection), with the training
    cohort's inputs as background.
    """
    from sonorad.evaluation import explain_model

    estimator, Xs = result.models[model].final_input(X)
    _, B = result.models[model].final_input(background)
    if len(Xs) > n_cases:
        Xs = Xs.sample(n_cases, random_state=seed).sort_index()
    return explain_model(estimator, Xs, background=B, random_state=seed, model_name=model)


def nomogram_of(result: DesignResult, X_train: pd.DataFrame):
    """The nomogram of the design's logistic model (``None`` when the design names none).

    The axes span the training cohort's values of the model's own inputs, imputation and
    encoding included (the pipeline is drawn as fitted).
    """
    from sonorad.evaluation import build_nomogram

    if result.nomogram_model is None:
        return None
    estimator, Xs = result.models[result.nomogram_model].final_input(X_train)
    return build_nomogram(estimator, Xs)


def dl_score_network(result: DesignResult, backbones) -> tuple | None:
    """The frozen backbone with a DL-score as its one-logit head (for Grad-CAM of the DL-score).

    With one DL-score per backbone, the first backbone's (``features.dl_backbone`` order). See
    :func:`sonorad.deep.gradcam.score_network`. Returns ``(network, backbone, score name)``, or
    ``None`` when there is no single-backbone DL-score or it is not linear in the features
    (ComBat in front).
    """
    from sonorad.deep.backbones import load_backbone
    from sonorad.deep.gradcam import score_network

    backbones = [backbones] if isinstance(backbones, str) else list(backbones or ())
    candidates = [(backbones[0], "dl_score")] if len(backbones) == 1 else []
    candidates += [(b, f"dl_score_{b}") for b in backbones]
    for backbone, name in candidates:
        pipe = getattr(result.models.get(name), "estimator_", None)
        if pipe is not None and len(getattr(pipe, "steps", ())) == 1:
            return score_network(load_backbone(backbone), pipe[-1]), backbone, name
    return None


def gradcam_cases(y: pd.Series, n: int, seed: int) -> list[str]:
    """``n`` cases, half positive and half negative, drawn at random with the seed."""
    rng = np.random.default_rng(seed)
    pos = sorted(y.index[y == 1])
    neg = sorted(y.index[y == 0])
    take_pos = min(len(pos), (n + 1) // 2)
    take_neg = min(len(neg), n - take_pos)
    chosen = list(rng.choice(pos, take_pos, replace=False)) + list(rng.choice(neg, take_neg, replace=False))
    return [str(c) for c in chosen]


def gradcams(net, table: pd.DataFrame, y: pd.Series, probability: pd.Series, *, margin: float,
             mask_background: bool, input_size: int | None = None) -> tuple[list[GradCam], list[str]]:
    """Grad-CAM of every case of ``table``; returns ``(results, failed case ids with reasons)``."""
    from sonorad.deep.gradcam import gradcam_crop
    from sonorad.deep.inputs import case_crop_with_mask

    out, failed = [], []
    for cid, row in table.iterrows():
        try:
            crop, crop_mask = case_crop_with_mask(row, str(cid), margin=margin, mask_background=mask_background)
            heat = gradcam_crop(net, crop, input_size=input_size)
        except Exception as exc:  # noqa: BLE001 - one bad case never stops the others
            failed.append(f"{cid}: {type(exc).__name__}: {exc}")
            continue
        out.append(GradCam(str(cid), crop, crop_mask, heat, int(y.loc[cid]), float(probability.get(cid, np.nan))))
    return out, failed


def table_one(cohort_table: pd.DataFrame, parts: pd.Series, study, y: pd.Series):
    """Baseline characteristics by cohort and outcome (``None`` without declared variables)."""
    from sonorad.report import baseline_table

    if not study.variables:
        return None
    return baseline_table(cohort_table.loc[y.index], parts, study, label=y,
                          label_names={0: "negative", 1: "positive"}, random_state=study.seed)


def explain(result: DesignResult, *, study, config, inputs: dict, probabilities: dict, primary: str,
            cohort_table: pd.DataFrame, parts: pd.Series, y: pd.Series, cnns: dict, say=print) -> Explanations:
    """Every explanation the study asks for (``evaluation.shap``, ``nomogram``, ``gradcam``) and Table 1."""
    notes, out = [], {}
    explained = "training" if primary == "training_cv" else primary
    tasks = []
    if config.shap:
        tasks.append(("shap", lambda: shap_explanation(result, result.primary, inputs[explained], inputs["training"],
                                                       n_cases=config.shap_cases, seed=study.seed)))
    if config.nomogram:
        tasks.append(("nomogram", lambda: nomogram_of(result, inputs["training"])))
    if config.gradcam > 0:
        tasks.append(("gradcam", lambda: _gradcam(result, config, cnns, probabilities[primary], cohort_table,
                                                  y, study.seed, notes)))
    tasks.append(("table_one", lambda: table_one(cohort_table, parts, study, y)))
    for name, compute in tasks:
        say(f"explain: {name}")
        try:
            out[name] = compute()
        except Exception as exc:  # noqa: BLE001 - an explanation that fails never loses the run
            notes.append(f"{name} not computed: {type(exc).__name__}: {exc}")
    if config.nomogram and result.nomogram_model is None:
        notes.append("no nomogram: the design names no logistic model to draw")
    grad, source = out.get("gradcam") or ((), None)
    return Explanations(shap=out.get("shap"), nomogram=out.get("nomogram"),
                        nomogram_model=result.nomogram_model if out.get("nomogram") is not None else None,
                        gradcam=tuple(grad), gradcam_source=source, table_one=out.get("table_one"),
                        notes=tuple(notes))


def _gradcam(result, config, cnns, probabilities: pd.DataFrame, cohort_table, y, seed, notes):
    if cnns:
        name, model = next(iter(cnns.items()))
        net, margin, mask_bg = model.model_, model.margin, model.mask_background
        source, column = f"the fine-tuned {name}", name
    else:
        found = dl_score_network(result, config.dl_backbones)
        if found is None:
            notes.append("no Grad-CAM: the study has neither a fine-tuned CNN nor a linear DL-score")
            return (), None
        net, backbone, column = found
        margin, mask_bg = config.margin, config.mask_background
        source = f"the DL-score (frozen {backbone} with the DL-score as its output)"
    ids = gradcam_cases(y.loc[probabilities.index], config.gradcam, seed)
    p = probabilities[column] if column in probabilities.columns else pd.Series(dtype=float)
    found, failed = gradcams(net, cohort_table.loc[ids], y, p, margin=margin, mask_background=mask_bg)
    if failed:
        notes.append("Grad-CAM failed for " + "; ".join(failed))
    return found, source
