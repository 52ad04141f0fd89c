"""Synthetic cohorts: the cohort table, single in-memory cases and whole cohorts written as files.

Everything random is drawn from ``numpy.random.SeedSequence`` children of ``seed``, keyed by the
scenario, the step and the case index, so the same seed gives byte-identical files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sonorad.errors import ConfigError
from sonorad.synthetic.bmode import SyntheticCase, render_case
from sonorad.synthetic.lesions import LesionTraits, lesion_traits
from sonorad.synthetic.scenarios import (
    CenterProfile,
    Scenario,
    _VARIABLE_MAKERS,
    _center_positives,
    _center_sizes,
    _check_scenario,
    _check_signal,
    _scenario_key,
    _select_centers,
)

__all__ = ["CohortTable", "make_cohort", "simulate_case", "simulate_table"]


@dataclass
class CohortTable:
    """A simulated cohort before rendering.

    Attributes
    ----------
    cases : pandas.DataFrame
        One row per image: ``case_id, patient_id, center, split, label`` and the scenario's variables
        (no ``image`` / ``mask`` yet).
    truth : pandas.DataFrame
        Hidden generative quantities per case (indexed like ``cases``): ``z_imaging``,
        ``z_clinical`` and every :class:`LesionTraits` field. Never use as features.
    scenario : Scenario
        The scenario simulated (with the centers actually used).
    seed : int
    signal : float
    """

    cases: pd.DataFrame
    truth: pd.DataFrame
    scenario: Scenario
    seed: int
    signal: float

    def traits(self, case_id: str) -> LesionTraits:
        """The lesion traits of one case."""
        row = self.truth.loc[case_id]
        return LesionTraits(**{f: float(row[f]) for f in LesionTraits.__dataclass_fields__})


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), *key]))


def simulate_table(
    scenario: str = "clnm",
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
    scenario : {"clnm", "primary_secondary"}
        Cohort shape (see :data:`SCENARIOS`).
    seed : int
        Seed of every random choice.
    signal : float
        Strength of the label's effect on images and variables; 0 makes the label independent of
        everything generated, 1 is the scenario's strength, larger values separate more.
    n_patients : int, optional
        Total patients; split over the centers in the scenario's proportions. Default: the scenario's.
    centers : sequence of str or CenterProfile, optional
        A subset of the scenario's center names, or custom center profiles. Default: all of the scenario's.
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
    base = _check_scenario(scenario)
    signal = _check_signal(signal)
    if isinstance(images_per_patient, bool) or not isinstance(images_per_patient, (int, np.integer)) \
            or images_per_patient < 1:
        raise ConfigError(f"images_per_patient must be an integer >= 1, got {images_per_patient!r}")
    chosen = _select_centers(base, centers)
    sizes = _center_sizes(chosen, n_patients)
    positives = _center_positives(chosen, sizes, signal)
    used = replace(base, centers=tuple(replace(c, n_patients=n, n_positive=p)
                                       for c, n, p in zip(chosen, sizes, positives)))

    key = _scenario_key(base.name)
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
    return CohortTable(cases=cases, truth=truth_df, scenario=used, seed=int(seed), signal=signal)


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
    scenario: str = "clnm",
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
    scenario : str
        Scenario whose imaging effect and centers are used.
    signal : float
        Signal strength (0: the image does not depend on ``label``).
    seed : int
        Seed of every random choice.
    center : str or CenterProfile
        A center name of the scenario, or a custom profile.
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
    base = _check_scenario(scenario)
    signal = _check_signal(signal)
    if label not in (0, 1):
        raise ConfigError(f"label must be 0 or 1, got {label!r}")
    profile = _select_centers(base, [center])[0]
    rng = _rng(seed, _scenario_key(base.name), 3)
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
    scenario: str = "clnm",
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
    scenario : {"clnm", "primary_secondary"}
        Cohort shape of seed study 1 or 2 (see :data:`SCENARIOS`).
    seed : int
        Seed of every random choice.
    signal : float
        Label effect strength: 0 = labels independent of images and variables, 1 = the scenario's.
    n_patients : int, optional
        Total patients (default: the scenario's, 214 or 140).
    image_size : tuple of int
        ``(rows, cols)`` of a center with ``size_scale`` 1; other centers scale it.
    centers : sequence of str or CenterProfile, optional
        Subset of the scenario's centers or custom profiles.
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
    table = simulate_table(scenario, seed=seed, signal=signal, n_patients=n_patients, centers=centers,
                           images_per_patient=images_per_patient)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    if second_reader:
        (out / "masks2").mkdir(parents=True, exist_ok=True)

    profiles = {c.name: c for c in table.scenario.centers}
    key = _scenario_key(table.scenario.name)
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
