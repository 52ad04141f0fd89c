"""Deep features by transfer learning: CNN backbones, frozen and fine-tuned embeddings, DL model.

Modules
-------
backbones   registry of torchvision / EfficientNet-Lite / small CNN backbones and their weights
inputs      lesion crops and backbone-normalised tensors
extractor   ``extract_deep`` (cohort -> feature table, cached) and ``DeepFeatureExtractor``
finetune    ``finetune``, ``CNNClassifier`` (the DL model) and ``compare_backbones``

Grad-CAM heatmaps of these networks are in :mod:`sonorad.explain.gradcam`.

Names are imported lazily, so ``import sonorad.deep`` does not load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "available_backbones": "backbones",
    "backbone_spec": "backbones",
    "load_backbone": "backbones",
    "Backbone": "backbones",
    "BackboneSpec": "backbones",
    "roi_crop": "inputs",
    "embed_crops": "extractor",
    "extract_deep": "extractor",
    "DeepFeatureExtractor": "extractor",
    "finetune": "finetune",
    "FineTuneResult": "finetune",
    "CNNClassifier": "finetune",
    "compare_backbones": "finetune",
    "BackboneComparison": "finetune",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"sonorad.deep.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'sonorad.deep' has no attribute {name!r}")
