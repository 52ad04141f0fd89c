"""Deep (CNN) features of a cohort: the entry point the feature-extraction layer calls.

Thin on purpose; the implementation lives in :mod:`sonorad.deep` (backbones, crops, frozen and
fine-tuned embeddings, the DL model and Grad-CAM). torch is imported only when a function runs.
"""

from __future__ import annotations

import pandas as pd


def extract_deep(
    table: pd.DataFrame,
    backbone: str,
    *,
    cache=None,
    batch_size: int = 32,
    margin: float = 0.1,
    mask_background: bool = False,
    weights="default",
    device=None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frozen CNN features of every case: ``(features, failures)``.

    ``features`` is indexed by ``case_id`` with float64 columns ``<backbone>_<i>``; ``failures``
    has columns ``case_id, stage, error, fix`` (stage ``deep_<backbone>``). See
    :func:`sonorad.deep.extractor.extract_deep` for the parameters.
    """
    from sonorad.deep.extractor import extract_deep as _extract_deep

    return _extract_deep(
        table, backbone, cache=cache, batch_size=batch_size, margin=margin,
        mask_background=mask_background, weights=weights, device=device, progress=progress,
    )


def available_backbones() -> list[str]:
    """Backbone names accepted by ``--deep`` and :func:`extract_deep`."""
    from sonorad.deep.backbones import available_backbones as _available

    return _available()


__all__ = ["extract_deep", "available_backbones"]
