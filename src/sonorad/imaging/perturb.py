"""Small, realistic changes of a lesion mask, standing in for a second reader's contour.

When a cohort has one mask per lesion, feature reproducibility (ICC) is measured between the
original mask and perturbed ones (Zwanenburg et al., Sci Rep 2019): erosion and dilation by 1-2
pixels and shifts by 1-2 pixels in a random direction. Everything is deterministic from a seed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KINDS", "disk", "perturb_mask", "perturbed_masks"]

KINDS = ("erode", "dilate", "shift")


def disk(radius: int) -> np.ndarray:
    """Boolean disk structuring element of the given radius (``r**2 + c**2 <= radius**2``)."""
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2


def _shift(mask: np.ndarray, dr: int, dc: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    src_r, dst_r = slice(max(0, -dr), min(h, h - dr)), slice(max(0, dr), min(h, h + dr))
    src_c, dst_c = slice(max(0, -dc), min(w, w - dc)), slice(max(0, dc), min(w, w + dc))
    out[dst_r, dst_c] = mask[src_r, src_c]
    return out


def _as_rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_mask(mask) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2D (rows, cols), got shape {mask.shape}")
    return mask.astype(bool)


def perturb_mask(mask, kind: str, amount: int, rng=None) -> np.ndarray:
    """Erode, dilate or shift a mask by ``amount`` pixels.

    Parameters
    ----------
    mask : numpy.ndarray
        2D boolean mask.
    kind : {"erode", "dilate", "shift"}
        Erosion / dilation use a disk of radius ``amount``; erosion treats the outside of the image
        as lesion, so a contour that stops at the image border is not eaten from there. ``shift``
        moves the mask by ``amount`` pixels in a direction drawn from ``rng`` (uniform angle, offsets
        rounded to whole pixels); pixels moved past the border are lost.
    amount : int
        Pixels, >= 0 (0 returns a copy).
    rng : numpy.random.Generator or int, optional
        Source of the shift direction (unused for erosion and dilation).

    Returns
    -------
    numpy.ndarray
        Boolean mask, same shape; may be empty (see :func:`perturbed_masks` for a safe version).

    Examples
    --------
    >>> m = np.zeros((7, 7), bool); m[2:5, 2:5] = True
    >>> int(perturb_mask(m, "dilate", 1).sum()), int(perturb_mask(m, "erode", 1).sum())
    (21, 1)
    """
    from scipy import ndimage

    mask = _check_mask(mask)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(amount, bool) or int(amount) != amount or amount < 0:
        raise ValueError(f"amount must be a whole number of pixels >= 0, got {amount!r}")
    amount = int(amount)
    if amount == 0:
        return mask.copy()
    if kind == "erode":
        return ndimage.binary_erosion(mask, structure=disk(amount), border_value=1)
    if kind == "dilate":
        return ndimage.binary_dilation(mask, structure=disk(amount))
    angle = _as_rng(rng).uniform(0.0, 2.0 * np.pi)
    dr, dc = int(round(amount * np.sin(angle))), int(round(amount * np.cos(angle)))
    return _shift(mask, dr, dc)


def perturbed_masks(mask, seed, n: int = 6, max_amount: int = 2, min_pixels: int = 2) -> list[np.ndarray]:
    """Perturbed versions of a mask for ICC reproducibility, deterministic from ``seed``.

    The kinds cycle erode, dilate, shift; each amount is drawn from 1..``max_amount`` and each shift
    direction from the same generator. When a perturbation leaves fewer than ``min_pixels`` pixels
    (a thin lesion eroded away, a border lesion shifted out), the amount is reduced until it does not;
    amount 0 is the original mask.

    Parameters
    ----------
    mask : numpy.ndarray
        2D boolean mask with at least one lesion pixel.
    seed : int or numpy.random.Generator
        Controls every random choice.
    n : int, default 6
        Number of perturbed masks.
    max_amount : int, default 2
        Largest erosion / dilation radius and shift length in pixels.
    min_pixels : int, default 2
        Smallest acceptable perturbed ROI (capped at the original mask's size).

    Returns
    -------
    list of numpy.ndarray
        ``n`` boolean masks, none empty.
    """
    mask = _check_mask(mask)
    size = int(mask.sum())
    if size == 0:
        raise ValueError("mask is empty: nothing to perturb")
    if n < 0 or max_amount < 1:
        raise ValueError(f"n must be >= 0 and max_amount >= 1, got n={n}, max_amount={max_amount}")
    floor = min(min_pixels, size)
    rng = _as_rng(seed)
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        amount = int(rng.integers(1, max_amount + 1))
        # One generator per mask, so a fallback retry does not shift the draws of later masks.
        shift_rng = np.random.default_rng(rng.integers(2**63))
        state = shift_rng.bit_generator.state
        for a in range(amount, -1, -1):
            shift_rng.bit_generator.state = state  # same direction at every fallback amount
            candidate = perturb_mask(mask, kind, a, shift_rng)
            if candidate.sum() >= floor:
                break
        out.append(candidate)
    return out
