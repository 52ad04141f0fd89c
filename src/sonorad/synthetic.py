"""Deterministic synthetic multicenter ultrasound cohorts with a known signal strength.

A cohort is written as real files: 8-bit gray PNG images, binary PNG lesion masks (0/255) and a
``cases.csv`` that follows the cohort-table contract (``case_id, patient_id, center, image, mask,
label`` plus ``split`` and the design's clinical / ultrasound variables). A second file,
``truth.csv``, records the hidden generative quantities per case (latent risk scores and lesion
traits) for checks and benchmarks; it is not a cohort table and must never be used as features.

How the label enters
--------------------
Labels are assigned first (a fixed number of positives per center, shuffled). Each patient then
gets latent risk scores, one per modality::

    z_imaging  = signal * imaging_effect  * (label - 0.5) + N(0, 1)
    z_clinical = signal * clinical_effect * (label - 0.5) + N(0, 1)

Lesion traits (contour irregularity and spiculation, margin blur, echo level, heterogeneity,
posterior shadowing / enhancement, micro-calcifications, size, aspect) are noisy functions of
``z_imaging``; the clinical variables are noisy functions of ``z_clinical`` (and, for the radiologist's
image-based descriptors, of the lesion traits). With ``signal=0`` every center has the same
prevalence and nothing that is generated depends on the label.

Everything random is drawn from ``numpy.random.SeedSequence`` children of ``seed``, keyed by the
patient and image index, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sonorad.errors import ConfigError

__all__ = [
    "CenterProfile",
    "CohortTable",
    "DESIGNS",
    "Design",
    "LesionShape",
    "LesionTraits",
    "SyntheticCase",
    "lesion_mask",
    "lesion_traits",
    "make_cohort",
    "render_case",
    "simulate_case",
    "simulate_table",
]


# --------------------------------------------------------------------------------------------
# Designs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CenterProfile:
    """One hospital / scanner: its cohort size and how its scanner renders images.

    Attributes
    ----------
    name : str
        Center name written to the ``center`` column.
    split : str
        ``"train"`` or ``"external"`` (held-out validation centers, the study file's vocabulary);
        written to the ``split`` column.
    n_patients : int
        Patients at the design's default size.
    n_positive : int
        Positive patients at the default size with ``signal=1`` (the prevalence moves towards the
        design's overall prevalence as ``signal`` goes to 0).
    gain_db : float
        Receiver gain offset in dB (brighter or darker images).
    psf_sigma : tuple of float
        Axial and lateral standard deviation (pixels) of the point-spread function: the resolution
        cell, hence the speckle grain size and edge blur.
    noise : float
        Standard deviation of additive electronic noise, in gray levels.
    size_scale : float
        Image size relative to ``image_size`` (centers export different matrix sizes).
    dynamic_range_db : float
        Log-compression dynamic range in dB (contrast).
    attenuation : float
        Depth attenuation left after time-gain compensation (nepers over the image depth).
    """

    name: str
    split: str
    n_patients: int
    n_positive: int
    gain_db: float = 0.0
    psf_sigma: tuple[float, float] = (1.0, 1.8)
    noise: float = 3.0
    size_scale: float = 1.0
    dynamic_range_db: float = 50.0
    attenuation: float = 0.6


@dataclass(frozen=True)
class Design:
    """Shape of a seed study: centers, split, label meaning and variables.

    Attributes
    ----------
    name : str
        Key in :data:`DESIGNS`.
    description : str
        One-line summary.
    label_meaning : tuple of str
        What label 0 and label 1 mean.
    centers : tuple of CenterProfile
        Centers at the default size, in order.
    imaging_effect : float
        Shift (in SD units) of the imaging latent score between classes at ``signal=1``.
    clinical_effect : float
        Same for the clinical latent score.
    variables : dict
        Extra ``cases.csv`` columns: name -> description.
    """

    name: str
    description: str
    label_meaning: tuple[str, str]
    centers: tuple[CenterProfile, ...]
    imaging_effect: float
    clinical_effect: float
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def n_patients(self) -> int:
        """Patients at the default size."""
        return sum(c.n_patients for c in self.centers)

    @property
    def n_positive(self) -> int:
        """Positive patients at the default size with ``signal=1``."""
        return sum(c.n_positive for c in self.centers)


_CLNM_CENTERS = (
    CenterProfile("C1", "train", 80, 26, gain_db=0.0, psf_sigma=(0.8, 1.4), noise=2.0, size_scale=1.0,
                  dynamic_range_db=50.0, attenuation=0.5),
    CenterProfile("C2", "train", 64, 16, gain_db=3.0, psf_sigma=(1.0, 1.9), noise=3.5, size_scale=0.9,
                  dynamic_range_db=55.0, attenuation=0.7),
    CenterProfile("C3", "external", 38, 12, gain_db=-3.0, psf_sigma=(1.3, 2.4), noise=5.0, size_scale=1.1,
                  dynamic_range_db=45.0, attenuation=0.8),
    CenterProfile("C4", "external", 32, 7, gain_db=1.5, psf_sigma=(0.9, 1.6), noise=2.5, size_scale=0.95,
                  dynamic_range_db=60.0, attenuation=0.4),
)

_PRIMARY_SECONDARY_CENTERS = (
    CenterProfile("C1", "train", 36, 16, gain_db=0.0, psf_sigma=(0.8, 1.5), noise=2.0, size_scale=1.0,
                  dynamic_range_db=50.0, attenuation=0.5),
    CenterProfile("C2", "train", 32, 17, gain_db=-2.0, psf_sigma=(1.1, 2.0), noise=4.0, size_scale=0.9,
                  dynamic_range_db=48.0, attenuation=0.7),
    CenterProfile("C3", "external", 38, 21, gain_db=2.5, psf_sigma=(1.2, 2.2), noise=3.0, size_scale=1.1,
                  dynamic_range_db=55.0, attenuation=0.6),
    CenterProfile("C4", "external", 34, 18, gain_db=-1.0, psf_sigma=(0.9, 1.7), noise=5.0, size_scale=0.95,
                  dynamic_range_db=60.0, attenuation=0.4),
)

DESIGNS: dict[str, Design] = {
    "clnm": Design(
        name="clnm",
        description=(
            "Study 1: cervical lymph node metastasis in salivary gland carcinoma; 214 patients, "
            "train C1+C2 (144), external test C3+C4 (70, 19 positive)"
        ),
        label_meaning=("no CLNM", "CLNM"),
        centers=_CLNM_CENTERS,
        imaging_effect=1.8,
        clinical_effect=1.6,
        variables={
            "age": "age in years (numeric); older with higher clinical risk",
            "tumor_edge": "radiologist: tumour edge ill-defined (1) or well-defined (0); follows the lesion margin",
            "calcification": "radiologist: calcification seen (1/0); follows the lesion's micro-calcifications",
            "us_lymph_node": "radiologist: ultrasound-reported cervical lymph node positive (1/0); clinical risk",
            "noise_num1": "pure noise, numeric",
            "noise_num2": "pure noise, numeric (log-normal)",
            "noise_cat1": "pure noise, categorical with levels a, b, c",
        },
    ),
    "primary_secondary": Design(
        name="primary_secondary",
        description=(
            "Study 2: primary (0) vs secondary (1) salivary gland malignancy; 140 patients (68/72), "
            "train C1+C2 (68), test C3+C4 (72); ultrasound descriptors carry little signal"
        ),
        label_meaning=("primary", "secondary"),
        centers=_PRIMARY_SECONDARY_CENTERS,
        imaging_effect=1.6,
        clinical_effect=0.3,
        variables={
            "age": "age in years (numeric); weak signal",
            "sex": "F or M; no signal",
            "shape": "radiologist: oval, round or irregular; weak signal",
            "margin": "radiologist: circumscribed, indistinct or spiculated; weak signal",
            "echogenicity": "radiologist, ordinal: 1 anechoic, 2 hypoechoic, 3 isoechoic, 4 hyperechoic; weak signal",
            "vascularity": "radiologist, ordinal Adler grade 0-3; weak signal",
            "noise_num1": "pure noise, numeric",
            "noise_cat1": "pure noise, categorical with levels a, b, c",
        },
    ),
}

_SPLITS = ("train", "external")


# --------------------------------------------------------------------------------------------
# Lesion traits and contour
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LesionTraits:
    """Patient-level lesion appearance, each a deterministic function of the imaging risk.

    Attributes
    ----------
    radius_frac : float
        Mean lesion radius as a fraction of the image's smaller side.
    axis_ratio : float
        Width / height of the underlying ellipse (> 1: wider than tall, the benign pattern).
    lobulation : float
        Total amplitude of the low radial harmonics (k = 2..5): lobulated contour.
    spiculation : float
        Total amplitude of the high radial harmonics (k = 9..24): spiculated contour.
    margin_blur : float
        Width in pixels of the echo transition at the contour (ill-defined margin when large).
    echo_level : float
        Lesion reflectivity relative to the surrounding tissue (< 1: hypoechoic).
    heterogeneity : float
        Standard deviation (log scale) of the internal echo texture.
    posterior : float
        Posterior acoustic feature: > 0 enhancement, < 0 shadowing (fraction of echo added).
    calcification_rate : float
        Expected number of micro-calcifications per image.
    risk : float
        The imaging latent score the traits were drawn from.
    """

    radius_frac: float
    axis_ratio: float
    lobulation: float
    spiculation: float
    margin_blur: float
    echo_level: float
    heterogeneity: float
    posterior: float
    calcification_rate: float
    risk: float


def _sigmoid(x):
    from scipy.special import expit

    return expit(x)


def lesion_traits(risk: float, rng: np.random.Generator) -> LesionTraits:
    """Draw lesion traits from an imaging latent risk score.

    Each trait is ``0.8 * risk + 0.6 * noise`` mapped to its physical range, so every trait alone
    is a weaker marker than the risk score and the image as a whole carries most of it.

    Parameters
    ----------
    risk : float
        Imaging latent score (about N(0, 1) in a negative-rich population; higher = more likely positive).
    rng : numpy.random.Generator
        Source of the trait-specific noise.

    Returns
    -------
    LesionTraits

    Examples
    --------
    >>> t = lesion_traits(2.0, np.random.default_rng(0))
    >>> t.echo_level < 1.0
    True
    """
    t = 0.8 * float(risk) + 0.6 * rng.standard_normal(9)
    return LesionTraits(
        radius_frac=float(0.10 + 0.06 * _sigmoid(t[0])),
        axis_ratio=float(np.exp(0.35 - 0.25 * t[1])),
        lobulation=float(0.03 + 0.20 * _sigmoid(1.6 * (t[2] - 0.3))),
        spiculation=float(0.004 + 0.07 * _sigmoid(1.8 * (t[3] - 0.8))),
        margin_blur=float(0.5 + 4.0 * _sigmoid(1.5 * (t[4] - 0.3))),
        echo_level=float(np.clip(0.36 * np.exp(-0.40 * t[5]), 0.05, 1.5)),
        heterogeneity=float(0.08 + 0.45 * _sigmoid(1.5 * (t[6] - 0.3))),
        posterior=float(0.6 * np.tanh(-0.8 * (t[7] - 0.2))),
        calcification_rate=float(np.exp(-1.6 + 1.1 * t[8])),
        risk=float(risk),
    )


@dataclass(frozen=True)
class LesionShape:
    """A lesion contour in pixel coordinates: a radially modulated, rotated ellipse.

    The boundary is ``rho(theta) = radius * (1 + sum_k amp_k cos(k theta + phase_k))`` in the
    ellipse's normalized frame (semi-axes ``radius * sqrt(axis_ratio)`` along ``angle`` and
    ``radius / sqrt(axis_ratio)`` across it).
    """

    center: tuple[float, float]
    radius: float
    axis_ratio: float
    angle: float
    harmonics: tuple[int, ...]
    amplitudes: tuple[float, ...]
    phases: tuple[float, ...]

    def extent(self) -> float:
        """Upper bound of the distance from the center to the contour, in pixels."""
        stretch = math.sqrt(max(self.axis_ratio, 1.0 / self.axis_ratio))
        return self.radius * stretch * (1.0 + float(np.sum(np.abs(self.amplitudes))))


def _contour_shape(traits: LesionTraits, center, radius, angle, rng) -> LesionShape:
    low = np.arange(2, 6)
    high = np.arange(9, 25)
    w_low = rng.uniform(0.3, 1.0, low.size)
    w_high = rng.uniform(0.2, 1.0, high.size)
    amps = np.concatenate(
        [traits.lobulation * w_low / w_low.sum(), traits.spiculation * w_high / w_high.sum() * 3.0]
    )
    # The radius must stay positive everywhere: cap the summed modulation.
    total = amps.sum()
    if total > 0.7:
        amps *= 0.7 / total
    phases = rng.uniform(0.0, 2.0 * np.pi, amps.size)
    return LesionShape(
        center=(float(center[0]), float(center[1])),
        radius=float(radius),
        axis_ratio=float(traits.axis_ratio),
        angle=float(angle),
        harmonics=tuple(int(k) for k in np.concatenate([low, high])),
        amplitudes=tuple(float(a) for a in amps),
        phases=tuple(float(p) for p in phases),
    )


def _contour_window(shape: LesionShape, image_shape: tuple[int, int], pad: float) -> tuple[slice, slice]:
    """Rows and columns of the contour's bounding box grown by ``pad`` pixels, clipped to the image."""
    h, w = image_shape
    reach = shape.extent() + pad + 1.0
    r0 = min(max(int(math.floor(shape.center[0] - reach)), 0), h)
    r1 = max(min(int(math.ceil(shape.center[0] + reach)) + 1, h), r0)
    c0 = min(max(int(math.floor(shape.center[1] - reach)), 0), w)
    c1 = max(min(int(math.ceil(shape.center[1] + reach)) + 1, w), c0)
    return slice(r0, r1), slice(c0, c1)


def _signed_distance(shape: LesionShape, window: tuple[slice, slice]) -> np.ndarray:
    """Approximate signed distance (pixels, > 0 inside) to the contour over an image window."""
    rows = np.arange(window[0].start, window[0].stop, dtype=np.float64)[:, None] - shape.center[0]
    cols = np.arange(window[1].start, window[1].stop, dtype=np.float64)[None, :] - shape.center[1]
    ca, sa = math.cos(shape.angle), math.sin(shape.angle)
    s = math.sqrt(shape.axis_ratio)
    # Normalized ellipse frame as a complex number: |z| is the radial coordinate, arg z the angle.
    z = ((cols * ca + rows * sa) / s + 1j * ((rows * ca - cols * sa) * s)) / shape.radius
    rho = np.abs(z)
    unit = np.divide(z, rho, out=np.ones_like(z), where=rho > 0)
    boundary = np.ones(z.shape)
    power, k_now = np.ones_like(unit), 0
    for k, a, p in sorted(zip(shape.harmonics, shape.amplitudes, shape.phases)):
        power = power * unit ** (k - k_now)
        k_now = k
        # Re(e^{i p} e^{i k theta}) = cos(k theta + p), without a cos per harmonic.
        boundary += a * (math.cos(p) * power.real - math.sin(p) * power.imag)
    return (boundary - rho) * shape.radius


def lesion_mask(shape: LesionShape, image_shape: tuple[int, int]) -> np.ndarray:
    """Exact lesion region of a contour: the pixels whose centers lie on or inside it.

    Parameters
    ----------
    shape : LesionShape
        The contour.
    image_shape : tuple of int
        ``(rows, cols)`` of the image.

    Returns
    -------
    numpy.ndarray of bool, shape ``image_shape``

    Examples
    --------
    >>> s = LesionShape((20.0, 20.0), 8.0, 1.0, 0.0, (), (), ())
    >>> int(lesion_mask(s, (40, 40)).sum()) in range(190, 215)
    True
    """
    mask = np.zeros(tuple(image_shape), dtype=bool)
    window = _contour_window(shape, tuple(image_shape), 0.0)
    mask[window] = _signed_distance(shape, window) >= 0.0
    return mask


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


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


def _place_lesion(traits, image_shape, rng, avoid=None, scale=1.0):
    """Choose a lesion position and size that keeps the whole contour inside the image."""
    h, w = image_shape
    radius = traits.radius_frac * min(h, w) * scale
    angle = rng.normal(0.0, 0.25)
    shape = _contour_shape(traits, (0.0, 0.0), radius, angle, rng)
    ext = shape.extent()
    # Shrink when the contour could not fit (small images, extreme traits).
    limit = 0.42 * min(h, w)
    if ext > limit:
        radius *= limit / ext
        shape = replace(shape, radius=radius)
        ext = shape.extent()
    top = 0.12 * h + ext
    for _ in range(20):
        cy = rng.uniform(top, h - 2.0 - ext) if h - 2.0 - ext > top else (top + h - 2.0 - ext) / 2.0
        cx = rng.uniform(ext + 2.0, w - 2.0 - ext) if w - 4.0 > 2 * ext else w / 2.0
        if avoid is None:
            break
        ay, ax, aext = avoid
        if math.hypot(cy - ay, cx - ax) > aext + ext + 4.0:
            break
    else:
        return None
    return replace(shape, center=(float(cy), float(cx)))


def _second_reader(shape: LesionShape, rng: np.random.Generator) -> LesionShape:
    """Another reader's outline: slightly shifted, scaled and re-traced with low-order wobble."""
    extra_k = (2, 3, 4)
    extra_a = tuple(float(a) for a in rng.uniform(0.0, 0.025, 3))
    extra_p = tuple(float(p) for p in rng.uniform(0.0, 2 * np.pi, 3))
    return replace(
        shape,
        center=(shape.center[0] + rng.normal(0, 1.0), shape.center[1] + rng.normal(0, 1.0)),
        radius=shape.radius * (1.0 + rng.normal(0.0, 0.04)),
        harmonics=shape.harmonics + extra_k,
        amplitudes=shape.amplitudes + extra_a,
        phases=shape.phases + extra_p,
    )


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


# --------------------------------------------------------------------------------------------
# Cohort table
# --------------------------------------------------------------------------------------------


@dataclass
class CohortTable:
    """A simulated cohort before rendering.

    Attributes
    ----------
    cases : pandas.DataFrame
        One row per image: ``case_id, patient_id, center, split, label`` and the design's variables
        (no ``image`` / ``mask`` yet).
    truth : pandas.DataFrame
        Hidden generative quantities per case (indexed like ``cases``): ``z_imaging``,
        ``z_clinical`` and every :class:`LesionTraits` field. Never use as features.
    design : Design
        The design simulated (with the centers actually used).
    seed : int
    signal : float
    """

    cases: pd.DataFrame
    truth: pd.DataFrame
    design: Design
    seed: int
    signal: float

    def traits(self, case_id: str) -> LesionTraits:
        """The lesion traits of one case."""
        row = self.truth.loc[case_id]
        return LesionTraits(**{f: float(row[f]) for f in LesionTraits.__dataclass_fields__})


def _check_design(design: str) -> Design:
    if design not in DESIGNS:
        raise ConfigError(
            f"design {design!r} is unknown; choose one of {', '.join(sorted(DESIGNS))}"
        )
    return DESIGNS[design]


def _check_signal(signal) -> float:
    try:
        value = float(signal)
    except (TypeError, ValueError):
        raise ConfigError(f"signal must be a number >= 0, got {signal!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"signal must be a finite number >= 0 (0 = no signal, 1 = the design's), got {signal!r}")
    return value


def _select_centers(base: Design, centers) -> tuple[CenterProfile, ...]:
    if centers is None:
        return base.centers
    if isinstance(centers, (str, CenterProfile)):
        centers = [centers]
    known = {c.name: c for c in base.centers}
    chosen = []
    for c in centers:
        if isinstance(c, CenterProfile):
            if c.split not in _SPLITS:
                raise ConfigError(f"center {c.name!r}: split must be one of {_SPLITS}, got {c.split!r}")
            if c.n_patients < 2 or not 1 <= c.n_positive <= c.n_patients - 1:
                raise ConfigError(
                    f"center {c.name!r}: needs n_patients >= 2 and 1 <= n_positive < n_patients "
                    f"(got {c.n_patients}, {c.n_positive})"
                )
            chosen.append(c)
        elif c in known:
            chosen.append(known[c])
        else:
            raise ConfigError(
                f"centers: {c!r} is not a center of design {base.name!r}; use names from "
                f"{sorted(known)} or CenterProfile objects"
            )
    names = [c.name for c in chosen]
    if len(set(names)) != len(names) or not chosen:
        raise ConfigError(f"centers must be a non-empty list of distinct centers, got {names}")
    return tuple(chosen)


def _center_sizes(centers: Sequence[CenterProfile], n_patients: int | None) -> list[int]:
    base = [c.n_patients for c in centers]
    if n_patients is None:
        return base
    if isinstance(n_patients, bool) or not isinstance(n_patients, (int, np.integer)):
        raise ConfigError(f"n_patients must be an integer, got {n_patients!r}")
    if n_patients < 2 * len(centers):
        raise ConfigError(
            f"n_patients={n_patients} is too small: every one of the {len(centers)} centers needs at least "
            f"one positive and one negative patient; use n_patients >= {2 * len(centers)}"
        )
    # Largest-remainder apportionment keeps the design's center proportions.
    total = sum(base)
    quota = [n_patients * b / total for b in base]
    sizes = [max(int(math.floor(q)), 2) for q in quota]
    order = sorted(range(len(base)), key=lambda i: (quota[i] - math.floor(quota[i]), -i), reverse=True)
    i = 0
    while sum(sizes) < n_patients:
        sizes[order[i % len(order)]] += 1
        i += 1
    while sum(sizes) > n_patients:
        j = max(range(len(sizes)), key=lambda k: sizes[k])
        sizes[j] -= 1
    return sizes


def _center_positives(centers, sizes, signal) -> list[int]:
    """Positives per center; prevalence differences between centers shrink to none at signal 0."""
    overall = sum(c.n_positive for c in centers) / sum(c.n_patients for c in centers)
    mix = min(signal, 1.0)
    out = []
    for c, n in zip(centers, sizes):
        prev = overall + mix * (c.n_positive / c.n_patients - overall)
        out.append(int(min(max(round(n * prev), 1), n - 1)))
    return out


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), *key]))


def _design_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def _clnm_variables(label_free_rng, z_clin, traits: list[LesionTraits]) -> dict[str, np.ndarray]:
    rng = label_free_rng
    n = z_clin.size
    margin = np.array([(t.margin_blur - 2.5) / 1.2 + (t.spiculation - 0.03) / 0.025 * 0.5 for t in traits])
    calc = np.array([math.log(t.calcification_rate) for t in traits])
    return {
        "age": np.clip(np.rint(52.0 + 4.0 * z_clin + rng.normal(0.0, 11.0, n)), 18, 90).astype(int),
        "tumor_edge": (rng.uniform(size=n) < _sigmoid(1.6 * margin - 0.3)).astype(int),
        "calcification": (rng.uniform(size=n) < _sigmoid(2.0 * (calc + 0.9))).astype(int),
        "us_lymph_node": (rng.uniform(size=n) < _sigmoid(1.5 * z_clin - 1.2)).astype(int),
        "noise_num1": np.round(rng.normal(0.0, 1.0, n), 3),
        "noise_num2": np.round(rng.lognormal(1.0, 0.5, n), 3),
        "noise_cat1": rng.choice(np.array(["a", "b", "c"]), size=n),
    }


def _ordinal(score: np.ndarray, cuts: Sequence[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(cuts), score)


def _primary_secondary_variables(label_free_rng, z_clin, traits) -> dict[str, np.ndarray]:
    rng = label_free_rng
    n = z_clin.size
    # Radiologist descriptors are driven by the weak clinical latent, not by the rendered lesion:
    # in the seed study they were no better than chance on the test set.
    def noisy():
        return 0.5 * z_clin + rng.normal(0.0, 1.0, n)

    return {
        "age": np.clip(np.rint(60.0 + 3.0 * z_clin + rng.normal(0.0, 12.0, n)), 18, 92).astype(int),
        "sex": rng.choice(np.array(["F", "M"]), size=n),
        "shape": np.array(["oval", "round", "irregular"])[_ordinal(noisy(), (-0.3, 0.6))],
        "margin": np.array(["circumscribed", "indistinct", "spiculated"])[_ordinal(noisy(), (0.0, 1.0))],
        "echogenicity": 1 + _ordinal(-noisy(), (-1.6, 0.9, 1.8)),
        "vascularity": _ordinal(noisy(), (-0.8, 0.2, 1.0)),
        "noise_num1": np.round(rng.normal(0.0, 1.0, n), 3),
        "noise_cat1": rng.choice(np.array(["a", "b", "c"]), size=n),
    }


_VARIABLE_MAKERS = {"clnm": _clnm_variables, "primary_secondary": _primary_secondary_variables}


def simulate_table(
    design: str = "clnm",
    *,
    seed: int = 0,
    signal: float = 1.0,
    n_patients: int | None = None,
    centers: Sequence[str | CenterProfile] | None = None,
    images_per_patient: int = 1,
) -> CohortTable:
    """Simulate a cohort's table (labels, variables, lesion traits) without rendering images.

    This is exactly the table :func:`make_cohort` writes for the same arguments, so it is the cheap
    way to check sizes, splits and the label's association with variables and traits.

    Parameters
    ----------
    design : {"clnm", "primary_secondary"}
        Cohort shape (see :data:`DESIGNS`).
    seed : int
        Seed of every random choice.
    signal : float
        Strength of the label's effect on images and variables; 0 makes the label independent of
        everything generated, 1 is the design's strength, larger values separate more.
    n_patients : int, optional
        Total patients; split over the centers in the design's proportions. Default: the design's.
    centers : sequence of str or CenterProfile, optional
        A subset of the design's center names, or custom center profiles. Default: all of the design's.
    images_per_patient : int
        Images (views) per patient; views of one patient share the lesion traits.

    Returns
    -------
    CohortTable

    Examples
    --------
    >>> t = simulate_table("clnm", seed=0)
    >>> t.cases.groupby("split").size().to_dict()
    {'external': 70, 'train': 144}
    """
    base = _check_design(design)
    signal = _check_signal(signal)
    if isinstance(images_per_patient, bool) or not isinstance(images_per_patient, (int, np.integer)) \
            or images_per_patient < 1:
        raise ConfigError(f"images_per_patient must be an integer >= 1, got {images_per_patient!r}")
    chosen = _select_centers(base, centers)
    sizes = _center_sizes(chosen, n_patients)
    positives = _center_positives(chosen, sizes, signal)
    used = replace(base, centers=tuple(replace(c, n_patients=n, n_positive=p)
                                       for c, n, p in zip(chosen, sizes, positives)))

    key = _design_key(base.name)
    rng = _rng(seed, key, 0)
    patient_rows = []
    labels = []
    for c, n, p in zip(chosen, sizes, positives):
        lab = np.zeros(n, dtype=int)
        lab[:p] = 1
        rng.shuffle(lab)
        labels.append(lab)
        for j in range(n):
            patient_rows.append((f"{c.name}-{j + 1:03d}", c.name, c.split))
    labels = np.concatenate(labels)
    n_total = labels.size

    # Latent scores: the label only enters through `signal`.
    shift = labels - 0.5
    z_img = signal * base.imaging_effect * shift + rng.standard_normal(n_total)
    z_clin = signal * base.clinical_effect * shift + rng.standard_normal(n_total)
    trait_rng = _rng(seed, key, 1)
    traits = [lesion_traits(z, trait_rng) for z in z_img]
    variables = _VARIABLE_MAKERS[base.name](_rng(seed, key, 2), z_clin, traits)

    rows, truth = [], []
    for i, (pid, center, split) in enumerate(patient_rows):
        for k in range(images_per_patient):
            case_id = f"{pid}-{k + 1}"
            row = {"case_id": case_id, "patient_id": pid, "center": center, "split": split,
                   "label": int(labels[i])}
            row.update({name: values[i].item() for name, values in variables.items()})
            rows.append(row)
            truth.append({"case_id": case_id, "z_imaging": float(z_img[i]), "z_clinical": float(z_clin[i]),
                          **asdict(traits[i])})
    cases = pd.DataFrame(rows)
    truth_df = pd.DataFrame(truth).set_index("case_id", drop=False)
    cases.index = pd.Index(cases["case_id"], name=None)
    truth_df.index.name = None
    return CohortTable(cases=cases, truth=truth_df, design=used, seed=int(seed), signal=signal)


# --------------------------------------------------------------------------------------------
# Single cases and whole cohorts
# --------------------------------------------------------------------------------------------


def _check_image_size(image_size) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ConfigError(f"image_size must be (rows, cols), got {image_size!r}") from None
    if h < 48 or w < 48:
        raise ConfigError(f"image_size must be at least (48, 48) so a lesion fits with speckle around it, got {image_size!r}")
    return h, w


def simulate_case(
    label: int = 1,
    *,
    design: str = "clnm",
    signal: float = 1.0,
    seed: int = 0,
    center: str | CenterProfile = "C1",
    image_size: tuple[int, int] = (256, 320),
    second_lesion: bool = False,
    second_reader: bool = False,
) -> SyntheticCase:
    """Simulate one image and mask in memory, for tests and examples.

    Parameters
    ----------
    label : {0, 1}
        Class of the case.
    design : str
        Design whose imaging effect and centers are used.
    signal : float
        Signal strength (0: the image does not depend on ``label``).
    seed : int
        Seed of every random choice.
    center : str or CenterProfile
        A center name of the design, or a custom profile.
    image_size : tuple of int
        ``(rows, cols)`` before the center's size scale.
    second_lesion, second_reader : bool
        See :func:`render_case`.

    Returns
    -------
    SyntheticCase

    Examples
    --------
    >>> case = simulate_case(1, seed=3, image_size=(96, 120))
    >>> case.image.dtype.name, case.mask.shape == case.image.shape, bool(case.mask.any())
    ('uint8', True, True)
    """
    base = _check_design(design)
    signal = _check_signal(signal)
    if label not in (0, 1):
        raise ConfigError(f"label must be 0 or 1, got {label!r}")
    profile = _select_centers(base, [center])[0]
    rng = _rng(seed, _design_key(base.name), 3)
    risk = signal * base.imaging_effect * (label - 0.5) + rng.standard_normal()
    traits = lesion_traits(risk, rng)
    return render_case(traits, profile, _check_image_size(image_size), rng,
                       second_lesion=second_lesion, second_reader=second_reader)


def _write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array, mode="L").save(path, format="PNG", optimize=False, compress_level=3)


def _write_case_files(out: Path, case_id: str, case: SyntheticCase) -> dict[str, str]:
    """Write one case's PNGs; return its ``image``, ``mask`` (and ``mask2``) paths relative to ``out``."""
    paths = {"image": f"images/{case_id}.png"}
    _write_png(out / paths["image"], case.image)
    mask_paths = []
    for j, m in enumerate(case.lesion_masks):
        rel = f"masks/{case_id}.png" if j == 0 else f"masks/{case_id}_{j + 1}.png"
        _write_png(out / rel, m.astype(np.uint8) * 255)
        mask_paths.append(rel)
    paths["mask"] = ";".join(mask_paths)
    if case.mask2 is not None:
        paths["mask2"] = f"masks2/{case_id}.png"
        _write_png(out / paths["mask2"], case.mask2.astype(np.uint8) * 255)
    return paths


def make_cohort(
    out_dir: str | Path,
    *,
    design: str = "clnm",
    seed: int = 0,
    signal: float = 1.0,
    n_patients: int | None = None,
    image_size: tuple[int, int] = (256, 320),
    centers: Sequence[str | CenterProfile] | None = None,
    images_per_patient: int = 1,
    second_lesion_rate: float = 0.0,
    second_reader: bool = False,
) -> Path:
    """Write a synthetic multicenter ultrasound cohort and return its ``cases.csv``.

    Writes ``out_dir/images/<case_id>.png`` (8-bit gray B-mode), ``out_dir/masks/<case_id>.png``
    (0/255 lesion mask; ``<case_id>_2.png`` for a satellite lesion, listed after ``;``),
    ``out_dir/masks2/<case_id>.png`` when ``second_reader``, ``out_dir/cases.csv`` (paths relative
    to it) and ``out_dir/truth.csv`` (hidden generative quantities; not for modeling). Existing
    files of the same names are overwritten. The same arguments give byte-identical files.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created if needed).
    design : {"clnm", "primary_secondary"}
        Cohort shape of seed study 1 or 2 (see :data:`DESIGNS`).
    seed : int
        Seed of every random choice.
    signal : float
        Label effect strength: 0 = labels independent of images and variables, 1 = the design's.
    n_patients : int, optional
        Total patients (default: the design's, 214 or 140).
    image_size : tuple of int
        ``(rows, cols)`` of a center with ``size_scale`` 1; other centers scale it.
    centers : sequence of str or CenterProfile, optional
        Subset of the design's centers or custom profiles.
    images_per_patient : int
        Views per patient (sharing ``patient_id`` and lesion traits).
    second_lesion_rate : float
        Probability in [0, 1] that an image also shows a smaller satellite lesion with its own mask.
    second_reader : bool
        Also write a second reader's mask of the index lesion (column ``mask2``), for ICC.

    Returns
    -------
    pathlib.Path
        The written ``cases.csv``.

    Examples
    --------
    >>> import tempfile
    >>> csv = make_cohort(tempfile.mkdtemp(), n_patients=8, image_size=(96, 120))
    >>> pd.read_csv(csv).shape[0]
    8
    """
    size = _check_image_size(image_size)
    try:
        rate = float(second_lesion_rate)
    except (TypeError, ValueError):
        rate = float("nan")
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"second_lesion_rate must be a probability in [0, 1], got {second_lesion_rate!r}")
    table = simulate_table(design, seed=seed, signal=signal, n_patients=n_patients, centers=centers,
                           images_per_patient=images_per_patient)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    if second_reader:
        (out / "masks2").mkdir(parents=True, exist_ok=True)

    profiles = {c.name: c for c in table.design.centers}
    key = _design_key(table.design.name)
    cases = table.cases.copy()
    paths, n_calc = [], []
    for i, case_id in enumerate(cases["case_id"]):
        rng = _rng(seed, key, 4, i)
        satellite = bool(rng.uniform() < rate)
        case = render_case(table.traits(case_id), profiles[cases.at[case_id, "center"]], size, rng,
                           second_lesion=satellite, second_reader=second_reader)
        paths.append(_write_case_files(out, case_id, case))
        n_calc.append(case.n_calcifications)

    for column, values in pd.DataFrame(paths, index=cases.index).items():
        cases[column] = values
    # Required columns first, in the contract's order, then mask2, split and the variables.
    first = ["case_id", "patient_id", "center", "image", "mask", "label"] + (["mask2"] if second_reader else [])
    cases = cases[first + [c for c in cases.columns if c not in first]]
    csv = out / "cases.csv"
    cases.to_csv(csv, index=False, lineterminator="\n")
    truth = table.truth.copy()
    truth["n_calcifications"] = n_calc
    truth.to_csv(out / "truth.csv", index=False, lineterminator="\n", float_format="%.6g")
    return csv
