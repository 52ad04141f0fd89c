"""Splitting a cohort: patient-grouped, stratified and deterministic parts (train / internal / external).

A :class:`~sonorad.study.CenterSplit` sends whole centers to ``external`` and may hold out a
fraction of the training centers' patients as ``internal``; a :class:`~sonorad.study.PatientSplit`
holds out a fraction of all patients. Hold-outs are stratified by (center, outcome), allocated by
largest remainder, and drawn from the study seed over the sorted patient ids, so the split does not
depend on the row order. Every image of a patient lands in the same part.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sonorad.study import CenterSplit, PatientSplit, StudyConfig

__all__ = ["SPLIT_PARTS", "assign_splits"]

#: The parts a case can be assigned to.
SPLIT_PARTS = ("train", "internal", "external")


def _patient_table(table: pd.DataFrame, y: pd.Series) -> pd.DataFrame:
    """One row per patient: its (first) center and whether any of its lesions is positive."""
    frame = pd.DataFrame({"patient_id": table["patient_id"].to_numpy(), "center": table["center"].to_numpy(),
                          "y": y.to_numpy()})
    return frame.groupby("patient_id", sort=True).agg(center=("center", "min"), y=("y", "max")).reset_index()


def _allocate(sizes: pd.Series, fraction: float) -> pd.Series:
    """Largest-remainder allocation of ``round(fraction * total)`` held-out patients across strata."""
    total = int(sizes.sum())
    target = int(math.floor(fraction * total + 0.5))
    if total >= 2:
        target = min(max(target, 1), total - 1)
    quotas = sizes * fraction
    counts = np.floor(quotas).astype(int)
    order = (quotas - counts).sort_values(ascending=False, kind="stable").index
    for stratum in order[: max(target - int(counts.sum()), 0)]:
        counts[stratum] += 1
    return counts


def _hold_out(patients: pd.DataFrame, fraction: float, seed: int) -> set[str]:
    """Patients held out, stratified by (center, label); deterministic given the seed and the patient ids."""
    if patients.empty:
        return set()
    rng = np.random.default_rng(seed)
    strata = patients.groupby(["center", "y"], sort=True)["patient_id"]
    counts = _allocate(strata.size(), fraction)
    held: set[str] = set()
    for key, ids in strata:
        ids = np.sort(ids.to_numpy().astype(str))
        held.update(rng.permutation(ids)[: counts[key]].tolist())
    return held


def assign_splits(table: pd.DataFrame, study: StudyConfig | None, y: pd.Series) -> pd.Series:
    """The part of each case (``train``, ``internal`` or ``external``) under the study's split.

    Parameters
    ----------
    table : pandas.DataFrame
        The cases, with ``patient_id`` and ``center``.
    study : StudyConfig or None
        Gives the split and its seed; without a split every case is ``train``.
    y : pandas.Series
        The 0/1 outcome per case (stratifies the hold-outs).

    Returns
    -------
    pandas.Series
        Named ``split``, indexed like ``table``.
    """
    parts = pd.Series("train", index=table.index, name="split", dtype=object)
    split = study.split if study is not None else None
    if split is None:
        return parts
    patients = _patient_table(table, y)
    if isinstance(split, CenterSplit):
        parts[table["center"].isin(split.external).to_numpy()] = "external"
        if split.internal_fraction is not None:
            eligible = patients[patients["center"].isin(split.train)]
            held = _hold_out(eligible, split.internal_fraction, study.split_seed)
            parts[table["patient_id"].isin(held).to_numpy()] = "internal"
    elif isinstance(split, PatientSplit):
        held = _hold_out(patients, split.test_fraction, study.split_seed)
        parts[table["patient_id"].isin(held).to_numpy()] = "internal"
    return parts

