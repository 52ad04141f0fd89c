"""Explanations of fitted models: SHAP values, nomograms, Grad-CAM heatmaps and the DL-score network.

One home for every explanation, so the study run and a bundle's calculator explain a model with
the same functions; each takes a fitted model, its input rows and plain values (never a run's or a
bundle's own objects):

- :mod:`sonorad.explain.shap`: :func:`explain_model`, :func:`explain_cases` (the model's parts,
  the background, contributions labelled with the predictors' names), :class:`ShapResult`;
- :mod:`sonorad.explain.nomogram`: :func:`build_nomogram` of a logistic model, :class:`Nomogram`;
- :mod:`sonorad.explain.network`: :func:`find_dl_score`, the one rule that finds a model's DL-score,
  and :func:`dl_score_network`, the backbone that computes it;
- :mod:`sonorad.explain.gradcam`: :func:`gradcam`, :func:`gradcam_crop`, :func:`save_overlay`.

torch and shap are imported inside the functions that use them.
"""

from .gradcam import gradcam, gradcam_crop, save_gradcams, save_overlay
from .network import DLScoreNetwork, dl_score_network, find_dl_score, score_network
from .nomogram import Nomogram, NomogramPoints, build_nomogram, nomogram_points
from .shap import (CONTRIBUTION_FIELDS, MAX_BACKGROUND, ShapResult, apply_steps, choose_explainer, display_table,
                   explain_cases, explain_model, explain_parts, explain_space, top_contributions)

__all__ = [
    "ShapResult", "explain_model", "choose_explainer", "explain_space", "explain_parts", "apply_steps",
    "display_table", "explain_cases", "top_contributions", "CONTRIBUTION_FIELDS", "MAX_BACKGROUND",
    "Nomogram", "NomogramPoints", "build_nomogram", "nomogram_points",
    "DLScoreNetwork", "find_dl_score", "score_network", "dl_score_network",
    "gradcam", "gradcam_crop", "save_overlay", "save_gradcams",
]
