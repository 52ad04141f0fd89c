"""The DL-score as a network: the one rule that finds it in a fitted model, and the network itself.

A DL-score is linear in one backbone's pooled deep features, so a frozen backbone whose one-logit
head is set to the score's weights computes the DL-score from the image (:func:`score_network`);
Grad-CAM of that network explains the DL-score. :func:`find_dl_score` is the single rule that
says which DL-score of a fitted model this is, used by the study run and by the bundle alike:

- structural, not by model name: a fitted :class:`sonorad.scores.DLScore` inside the model;
- read directly: the DL-score receives the model input's own columns, with no transform in front
  (a DL-score after ComBat harmonisation is not linear in the backbone's features). The parts that
  receive the input directly are found by following the first step of a pipeline, every block of
  a column router (``FeatureBlocks``, ``ColumnTransformer``), the estimator of a column wrapper
  (``ColumnModel``) and every score of a second stage (``ScoreStack``; its final model reads the
  scores, not the features);
- one backbone: every feature it was fitted on is ``<backbone>_<i>`` of one of ``backbones``.

The first such DL-score found (in the order the model holds its parts) is the one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:
    from sonorad.deep.backbones import Backbone

__all__ = ["DLScoreNetwork", "find_dl_score", "score_network", "dl_score_network"]


@dataclass(frozen=True)
class DLScoreNetwork:
    """A frozen backbone that outputs a DL-score as its one logit.

    Attributes
    ----------
    network : Backbone
        In eval mode; ``network(x)`` is the DL-score (log-odds) of the normalised images ``x``.
    backbone : str
        The backbone's name (``features.dl_backbone``).
    score_name : str
        The DL-score's name (``dl_score`` or ``dl_score_<backbone>``), its model's name in a run.
    """

    network: object
    backbone: str
    score_name: str


def _skipped(step) -> bool:
    return step is None or (isinstance(step, str) and step in ("passthrough", "drop"))


def _direct_readers(model) -> Iterator:
    """The parts of a fitted model that receive its input columns untransformed, depth first."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps if not _skipped(step)]
        if steps:
            yield from _direct_readers(steps[0])
    elif hasattr(model, "final_input") and hasattr(model, "scores"):  # a second stage over scores
        for _, score in model.scores:
            yield from _direct_readers(score)
    elif hasattr(model, "final_input") and hasattr(model, "estimator_"):  # a column wrapper
        yield from _direct_readers(model.estimator_)
    elif isinstance(getattr(model, "transformers_", None), list):  # a column router: each block
        for _, block, _ in model.transformers_:
            if not _skipped(block):
                yield from _direct_readers(block)
    else:
        yield model


def find_dl_score(model, backbones: Sequence[str]) -> tuple[object, str] | None:
    """The DL-score of a fitted model that a backbone network can compute, by the module's rule.

    Parameters
    ----------
    model : fitted estimator
        Any fitted model: a Pipeline, a design's ``ColumnModel`` or ``ScoreStack``, a bare
        :class:`~sonorad.scores.DLScore`.
    backbones : sequence of str
        Backbones whose features the model may read (a study's ``features.dl_backbone``).

    Returns
    -------
    (DLScore, backbone) or None
        ``None`` when the model holds no such DL-score.
    """
    from sonorad.designs.base import backbone_of
    from sonorad.scores import DLScore

    allowed = [backbones] if isinstance(backbones, str) else list(backbones or ())
    for score in _direct_readers(model):
        if not (isinstance(score, DLScore) and hasattr(score, "coef_")):
            continue
        found = {backbone_of(f) for f in getattr(score, "feature_names_in_", ())}
        if len(found) == 1 and next(iter(found)) in allowed:
            return score, next(iter(found))
    return None


def score_network(net: Backbone, score) -> Backbone:
    """``net`` with its one-logit head set to a linear score of its pooled features (the DL-score).

    The DL-score is linear in the z-scored pooled features, ``b0 + sum_i c_i (f_i - m_i) / s_i``
    (``score``: a fitted :class:`sonorad.scores.DLScore` over ``<backbone>_<i>`` columns), so a
    linear head with weights ``c_i / s_i`` and bias ``b0 - sum_i c_i m_i / s_i`` gives exactly the
    score, and Grad-CAM of the network explains the DL-score itself. ``net`` is changed in place.
    """
    import torch

    idx = np.asarray([int(f.rsplit("_", 1)[1]) for f in score.features_], dtype=int)
    weight = np.zeros(net.spec.feature_dim)
    weight[idx] = score.coef_ / score.sd_
    bias = float(score.intercept_ - np.sum(score.coef_ * score.mean_ / score.sd_))
    linear = net.head[1]
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(weight, dtype=linear.weight.dtype)[None, :])
        linear.bias.fill_(bias)
    return net.eval()


def dl_score_network(model, backbones: Sequence[str], load: Callable[[str], Backbone]) -> DLScoreNetwork | None:
    """The network that computes the DL-score :func:`find_dl_score` finds in ``model``.

    Parameters
    ----------
    model : fitted estimator
        The model whose DL-score is wanted (a run's primary model, a bundle's chosen one).
    backbones : sequence of str
        Backbones the study extracted features with.
    load : callable
        ``load(backbone)`` returns the frozen backbone network to give the DL-score head to (a
        run loads the pretrained weights, a bundle its saved copy); it is changed in place.

    Returns
    -------
    DLScoreNetwork or None
        ``None`` when the model holds no DL-score read directly from one backbone's features.
    """
    found = find_dl_score(model, backbones)
    if found is None:
        return None
    score, backbone = found
    return DLScoreNetwork(score_network(load(backbone), score), backbone, str(score.name))
