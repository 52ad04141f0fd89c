"""How much one patient's probability depends on the drawn outline: the ROI sensitivity.

The lesion mask is eroded and dilated by ``k`` pixels with the perturbations the feature
reproducibility (ICC) uses (:func:`sonorad.imaging.perturb.perturb_mask`: a disk of radius ``k``;
erosion treats the image border as lesion) and the chosen model scores each outline with the same
image and values. The range is the lowest and highest of the three probabilities (original, eroded,
dilated): a wide range says the risk turns on where the outline is drawn.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["DEFAULT_PIXELS", "roi_sensitivity"]

#: Erosion / dilation radius in pixels.
DEFAULT_PIXELS = 2


def roi_sensitivity(score_mask: Callable[[np.ndarray], float], mask: np.ndarray, probability: float, *,
                    pixels: int = DEFAULT_PIXELS) -> tuple[dict | None, str | None]:
    """The chosen model's probability on the outline eroded and dilated by ``pixels``.

    Parameters
    ----------
    score_mask : callable
        ``score_mask(mask) -> probability`` of the chosen model on the same image and values;
        may raise (the outline is then reported in the note, not scored).
    mask : ndarray of bool
        The outline scored (2D).
    probability : float
        The chosen model's probability on ``mask``.
    pixels : int
        Erosion / dilation radius, at least 1.

    Returns
    -------
    result : dict or None
        ``low``, ``high`` (min and max over the original, eroded and dilated outlines' probabilities),
        ``pixels``, ``probabilities`` {``eroded``, ``dilated``} (``None`` for an outline that could
        not be scored), ``areas_px`` {``original``, ``eroded``, ``dilated``} and ``method``;
        ``None`` when neither changed outline could be scored.
    note : str or None
        What could not be scored and why (an erosion that empties the mask, a failure).
    """
    from sonorad.imaging.perturb import perturb_mask

    if isinstance(pixels, bool) or int(pixels) != pixels or pixels < 1:
        raise ValueError(f"pixels must be a whole number >= 1, got {pixels!r}")
    pixels = int(pixels)
    mask = np.asarray(mask, dtype=bool)
    probabilities, areas, notes = {}, {"original": int(mask.sum())}, []
    for kind, key in (("erode", "eroded"), ("dilate", "dilated")):
        changed = perturb_mask(mask, kind, pixels)
        areas[key] = int(changed.sum())
        probabilities[key] = None
        if areas[key] == 0:
            notes.append(f"eroding the outline by {pixels} pixel(s) leaves nothing of it (the lesion is thinner "
                         f"than {2 * pixels + 1} pixels), so the eroded outline was not scored")
            continue
        try:
            probabilities[key] = float(score_mask(changed))
        except Exception as exc:  # noqa: BLE001 - the case's probability stands; say what failed
            notes.append(f"the {key} outline ({areas[key]} pixels) could not be scored: {exc}")
    scored = [p for p in probabilities.values() if p is not None]
    note = "; ".join(notes) or None
    if not scored:
        return None, note
    every = [float(probability), *scored]
    return {"low": min(every), "high": max(every), "pixels": pixels, "probabilities": probabilities,
            "areas_px": areas,
            "method": (f"the chosen model's probability with the outline eroded and dilated by {pixels} pixel(s) "
                       "(a disk, as the feature reproducibility check perturbs it), the same image and values; "
                       "the range is the lowest and highest of the original, eroded and dilated outlines")}, note
