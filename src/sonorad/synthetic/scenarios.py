"""Synthetic cohort scenarios: centers, their scanners and the clinical variables each scenario writes.

A :class:`Scenario` is the shape of a seed study (centers, split, label meaning, effect sizes and
extra ``cases.csv`` columns); :data:`SCENARIOS` holds the built-in ones. The helpers here check a
scenario's arguments, apportion patients and positives over centers, and draw the clinical /
radiologist variables from the clinical latent score and the lesion traits.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sonorad.errors import ConfigError
from sonorad.synthetic.lesions import LesionTraits, _sigmoid

__all__ = ["CenterProfile", "SCENARIOS", "Scenario"]


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
        Patients at the scenario's default size.
    n_positive : int
        Positive patients at the default size with ``signal=1`` (the prevalence moves towards the
        scenario's overall prevalence as ``signal`` goes to 0).
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
class Scenario:
    """Shape of a seed study: centers, split, label meaning and variables.

    Attributes
    ----------
    name : str
        Key in :data:`SCENARIOS`.
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

SCENARIOS: dict[str, Scenario] = {
    "clnm": Scenario(
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
    "primary_secondary": Scenario(
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


def _check_scenario(scenario: str) -> Scenario:
    if scenario not in SCENARIOS:
        raise ConfigError(
            f"scenario {scenario!r} is unknown; choose one of {', '.join(sorted(SCENARIOS))}"
        )
    return SCENARIOS[scenario]


def _check_signal(signal) -> float:
    try:
        value = float(signal)
    except (TypeError, ValueError):
        raise ConfigError(f"signal must be a number >= 0, got {signal!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"signal must be a finite number >= 0 (0 = no signal, 1 = the scenario's), got {signal!r}")
    return value


def _select_centers(base: Scenario, centers) -> tuple[CenterProfile, ...]:
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
                f"centers: {c!r} is not a center of scenario {base.name!r}; use names from "
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
    # Largest-remainder apportionment keeps the scenario's center proportions.
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


def _scenario_key(name: str) -> int:
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
