"""Synthetic lesions: traits drawn from the imaging risk, contour shapes and their masks.

Every trait (size, aspect, lobulation, spiculation, margin blur, echo level, heterogeneity,
posterior feature, micro-calcifications) is a noisy function of the imaging latent score; the
contour is a radially modulated, rotated ellipse whose harmonics follow the traits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["LesionShape", "LesionTraits", "lesion_mask", "lesion_traits"]


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
