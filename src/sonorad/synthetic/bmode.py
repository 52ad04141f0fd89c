"""B-mode rendering of a synthetic lesion on a center's scanner.

Tissue layers, the lesion (echo level, texture, margin blur, posterior feature, calcifications)
and Rayleigh speckle blurred by the center's point-spread function, attenuated, gained,
log-compressed and quantized to 8 bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sonorad.synthetic.lesions import (
    LesionShape,
    LesionTraits,
    _contour_window,
    _place_lesion,
    _second_reader,
    _sigmoid,
    _signed_distance,
    lesion_mask,
)
from sonorad.synthetic.scenarios import CenterProfile

__all__ = ["SyntheticCase", "render_case"]


@dataclass
class SyntheticCase:
    """One rendered image with its lesion mask(s).

    Attributes
    ----------
    image : numpy.ndarray of uint8, shape (H, W)
        B-mode image, 8-bit gray.
    mask : numpy.ndarray of bool, shape (H, W)
        Union of the lesion masks.
    lesion_masks : list of numpy.ndarray of bool
        One mask per lesion (the first is the index lesion).
    mask2 : numpy.ndarray of bool or None
        A second reader's mask of the index lesion, when requested.
    traits : LesionTraits
        The traits the lesion was rendered from.
    center : str
        Center profile used.
    n_calcifications : int
        Micro-calcifications actually drawn in the index lesion.
    """

    image: np.ndarray
    mask: np.ndarray
    lesion_masks: list[np.ndarray]
    mask2: np.ndarray | None
    traits: LesionTraits
    center: str
    n_calcifications: int


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, unit-variance random field with correlation length about ``scale`` pixels.

    White noise on a grid of step ``scale / 2`` is Gaussian-smoothed there and upsampled
    bilinearly: cheap, and smooth at the pixel scale.
    """
    from scipy import ndimage

    h, w = shape
    step = max(float(scale) / 2.0, 1.0)
    ch, cw = int(math.ceil(h / step)) + 2, int(math.ceil(w / step)) + 2
    coarse = ndimage.gaussian_filter(rng.standard_normal((ch, cw)), 1.0, mode="wrap")
    fine = ndimage.zoom(coarse, (step, step), order=1, mode="nearest", grid_mode=False, prefilter=False)[:h, :w]
    fine = fine - fine.mean()
    sd = fine.std()
    return fine / sd if sd > 0 else fine


def _tissue_reflectivity(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Smooth layered tissue echogenicity (amplitude), with a dark gel band and a bright skin line."""
    h, w = shape
    depth = np.arange(h, dtype=np.float64)[:, None] / h
    lateral = np.arange(w, dtype=np.float64)[None, :] / w
    band = rng.uniform(0.04, 0.07)
    n_layers = int(rng.integers(2, 5))
    bounds = np.sort(rng.uniform(band + 0.08, 0.95, n_layers))
    levels = rng.uniform(0.7, 1.25, n_layers + 1)
    refl = np.full((h, w), levels[0])
    for j, b in enumerate(bounds):
        wave = 0.025 * np.sin(2 * np.pi * (rng.uniform(0.5, 1.5) * lateral + rng.uniform()))
        edge = _sigmoid((depth - b - wave) * h / 2.0)
        refl = refl * (1 - edge) + levels[j + 1] * edge
        # Fascia: a thin bright interface at each layer boundary.
        refl += 0.9 * np.exp(-0.5 * ((depth - b - wave) * h / 1.2) ** 2)
    refl *= np.exp(0.22 * _smooth_field(rng, shape, max(h, w) / 8.0))
    refl[np.broadcast_to(depth < band, (h, w))] = 0.03
    skin = np.abs(depth - band) * h < 1.5
    refl[np.broadcast_to(skin, (h, w))] = 2.5
    return refl


def _gauss_sumsq(sigma: float) -> float:
    """Sum of squared weights of scipy's normalized 1-D Gaussian kernel (truncate 4)."""
    if sigma <= 0:
        return 1.0
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    return float(np.sum(k**2))


def _posterior(refl, inside, window, contour: LesionShape, strength: float) -> None:
    """Multiply the tissue below a lesion by ``1 + strength * shadow`` (in place).

    The shadow is the lesion's column footprint carried down the image, softened laterally and
    fading with depth: enhancement for ``strength > 0``, shadowing for ``strength < 0``.
    """
    from scipy import ndimage

    h, w = refl.shape
    sigma = 0.08 * contour.radius + 1.0
    spread = int(math.ceil(4.0 * sigma))
    r0 = window[0].start
    c0, c1 = max(window[1].start - spread, 0), min(window[1].stop + spread, w)
    footprint = np.zeros((h - r0, c1 - c0))
    footprint[: inside.shape[0], window[1].start - c0: window[1].stop - c0] = inside
    below = np.maximum.accumulate(footprint, axis=0) - footprint
    rows = np.arange(r0, h, dtype=np.float64)[:, None]
    bottom = contour.center[0] + contour.extent() * 0.5
    fade = np.exp(-np.clip(rows - bottom, 0.0, None) / (3.0 * contour.radius))
    below = ndimage.gaussian_filter1d(below, sigma, axis=1) * fade
    refl[r0:, c0:c1] *= 1.0 + strength * below


def _add_lesion(refl, contour: LesionShape, traits: LesionTraits, rng, *, calcifications: bool):
    """Paint one lesion into the reflectivity map (in place); return its exact mask and calcifications drawn."""
    shape = refl.shape
    window = _contour_window(contour, shape, 6.0 * traits.margin_blur + 2.0)
    dist = _signed_distance(contour, window)
    mask = np.zeros(shape, dtype=bool)
    mask[window] = dist >= 0.0
    # The echo changes from tissue to lesion over the margin-blur width, centered on the contour.
    inside = _sigmoid(dist / max(traits.margin_blur, 0.25) * 1.7)
    texture = np.exp(traits.heterogeneity * _smooth_field(rng, dist.shape, max(contour.radius / 4.0, 2.0)))
    lesion = traits.echo_level * float(np.median(refl[mask])) * texture
    _posterior(refl, inside, window, contour, traits.posterior)
    refl[window] = refl[window] * (1.0 - inside) + lesion * inside
    if not calcifications:
        return mask, 0
    n_calc = int(rng.poisson(traits.calcification_rate))
    # Calcifications sit away from the contour so they stay inside the mask after blurring.
    core = np.argwhere(dist >= 2.0)
    if n_calc == 0 or len(core) == 0:
        return mask, 0
    picks = core[rng.choice(len(core), size=min(n_calc, len(core)), replace=False)]
    refl[picks[:, 0] + window[0].start, picks[:, 1] + window[1].start] += rng.uniform(6.0, 12.0, len(picks))
    return mask, len(picks)


def _bmode(refl: np.ndarray, profile: CenterProfile, rng: np.random.Generator) -> np.ndarray:
    """Scan a reflectivity map with a center's scanner: speckle, PSF, attenuation, gain, log compression."""
    from scipy import ndimage

    h, w = refl.shape
    sa, sl = profile.psf_sigma
    scat = rng.standard_normal((2, h, w), dtype=np.float32) * (refl / math.sqrt(2.0)).astype(np.float32)
    real = ndimage.gaussian_filter(scat[0], (sa, sl))
    imag = ndimage.gaussian_filter(scat[1], (sa, sl))
    # Normalized so that the mean squared envelope equals the squared reflectivity.
    env = np.hypot(real, imag) / math.sqrt(_gauss_sumsq(sa) * _gauss_sumsq(sl))
    depth = np.arange(h, dtype=np.float32)[:, None] / h
    env *= np.exp(-profile.attenuation * depth)
    db = 20.0 * np.log10(env + 1e-6) + profile.gain_db
    # Scan conversion / display interpolation softens the deepest speckle nulls.
    db = ndimage.gaussian_filter(db, 0.6)
    ref_db = 20.0
    gray = (db - (ref_db - profile.dynamic_range_db)) / profile.dynamic_range_db * 255.0
    gray += profile.noise * rng.standard_normal((h, w), dtype=np.float32)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)


def render_case(
    traits: LesionTraits,
    profile: CenterProfile,
    image_size: tuple[int, int],
    rng: np.random.Generator,
    *,
    second_lesion: bool = False,
    second_reader: bool = False,
) -> SyntheticCase:
    """Render one B-mode image of a lesion with the given traits on a center's scanner.

    The echo amplitude is modeled as ``|PSF * (A . n)|``: complex Gaussian scatterers ``n`` weighted
    by the amplitude reflectivity ``A`` (tissue layers, lesion, posterior effect, calcifications) and
    blurred by the center's Gaussian point-spread function, which gives Rayleigh speckle whose grain
    follows the scanner resolution. The envelope is attenuated with depth, amplified by the center
    gain, log-compressed to the center's dynamic range, given electronic noise and quantized to 8 bits.

    Parameters
    ----------
    traits : LesionTraits
        Lesion appearance (see :func:`lesion_traits`).
    profile : CenterProfile
        Scanner settings (gain, PSF, noise, size scale, dynamic range, attenuation).
    image_size : tuple of int
        ``(rows, cols)`` before the center's ``size_scale``.
    rng : numpy.random.Generator
        Source of every random choice of this image.
    second_lesion : bool
        Add a smaller satellite lesion (its own mask in ``lesion_masks``) when it fits.
    second_reader : bool
        Also return a second reader's outline of the index lesion in ``mask2``.

    Returns
    -------
    SyntheticCase
    """
    h = max(int(round(image_size[0] * profile.size_scale / 2.0)) * 2, 32)
    w = max(int(round(image_size[1] * profile.size_scale / 2.0)) * 2, 32)
    shape = (h, w)

    refl = _tissue_reflectivity(rng, shape)
    contours = [_place_lesion(traits, shape, rng)]
    if second_lesion:
        first = contours[0]
        satellite = _place_lesion(traits, shape, rng, avoid=(*first.center, first.extent()), scale=0.5)
        if satellite is not None:
            contours.append(satellite)

    masks, n_calc = [], 0
    for i, contour in enumerate(contours):
        mask, drawn = _add_lesion(refl, contour, traits, rng, calcifications=(i == 0))
        masks.append(mask)
        n_calc += drawn
    image = _bmode(refl, profile, rng)

    mask2 = lesion_mask(_second_reader(contours[0], rng), shape) if second_reader else None
    union = np.logical_or.reduce(masks) if len(masks) > 1 else masks[0].copy()
    return SyntheticCase(
        image=image,
        mask=union,
        lesion_masks=masks,
        mask2=mask2,
        traits=traits,
        center=profile.name,
        n_calcifications=n_calc,
    )
