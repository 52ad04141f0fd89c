"""The explanations stage of a run: SHAP values, the nomogram, Grad-CAM heatmaps and Table 1 of a fitted study.

Each explanation is computed with :mod:`sonorad.explain` (the functions a bundle's calculator
uses too) from the fitted models and the cohorts and returned as data
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


#: How the note of an explanation the study cannot have begins (the run's notes read on their own).
_MISSING_PREFIX = {"nomogram": "no nomogram: ", "gradcam": "no Grad-CAM: "}


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

    def reason(self, name: str, default: str) -> str:
        """Why explanation ``name`` (``shap``, ``nomogram``, ``gradcam``, ``table_one``) is missing.

        The reason of its note, without the note's own prefix (``"no Grad-CAM: "``,
        ``"gradcam not computed: "``), so a heading can precede it; ``default`` when no note says.
        """
        prefixes = [f"{name} not computed: ", _MISSING_PREFIX.get(name)]
        for note in self.notes:
            for prefix in prefixes:
                if prefix and note.startswith(prefix):
                    return note[len(prefix):]
        return default


def shap_explanation(result: DesignResult, model: str, X: pd.DataFrame, background: pd.DataFrame, *,
                     n_cases: int, seed: int):
    """SHAP values of ``model`` on (at most ``n_cases``, drawn with the seed) rows of ``X``.

    Explained by :func:`sonorad.explain.explain_cases` (the classifier after selection, labelled
    with the predictors' names), with the predictors of the training cohort's rows
    (``background``, model input table) as the background.
    """
    from sonorad.explain import display_table, explain_cases

    fitted = result.models[model]
    if len(X) > n_cases:
        X = X.sample(n_cases, random_state=seed).sort_index()
    return explain_cases(fitted, X, display_table(fitted, background), random_state=seed, model_name=model)


def nomogram_of(result: DesignResult, X_train: pd.DataFrame):
    """The nomogram of the design's logistic model (``None`` when the design names none).

    The axes span the training cohort's values of the model's own inputs, imputation and
    encoding included (the pipeline is drawn as fitted).
    """
    from sonorad.explain import build_nomogram

    if result.nomogram_model is None:
        return None
    estimator, Xs = result.models[result.nomogram_model].final_input(X_train)
    return build_nomogram(estimator, Xs)


def dl_score_network(result: DesignResult, backbones) -> tuple | None:
    """The frozen backbone with the primary model's DL-score as its one-logit head (for Grad-CAM).

    Found by :func:`sonorad.explain.find_dl_score` in the primary model, the rule a bundle uses
    for its chosen model. Returns ``(network, backbone, score name)``, or ``None`` when the
    primary model holds no DL-score read directly from one backbone's features (ComBat in front,
    a joint score over several backbones, no DL-score).
    """
    from sonorad.deep.backbones import load_backbone
    from sonorad.explain import dl_score_network as network_of

    found = network_of(result.models[result.primary], backbones, load_backbone)
    return None if found is None else (found.network, found.backbone, found.score_name)


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
    from sonorad.deep.inputs import case_crop_with_mask
    from sonorad.explain import gradcam_crop

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
    from sonorad.evaluation.baseline import baseline_statistics
    from sonorad.report import baseline_table

    if not study.variables:
        return None
    statistics = baseline_statistics(cohort_table.loc[y.index], parts, study, label=y, random_state=study.seed,
                                     patient="patient_id")
    return baseline_table(statistics, label_names={0: "negative", 1: "positive"})


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
