"""The validated cohort: :func:`load_cohort` reads, checks and splits a table into a :class:`Cohort`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sonorad.cohort.checks import validate_cases
from sonorad.cohort.reading import label_values, read_cases
from sonorad.cohort.splitting import SPLIT_PARTS, assign_splits
from sonorad.errors import CohortError, ConfigError, Problem
from sonorad.study import CenterSplit, LabelSpec, StudyConfig

__all__ = ["Cohort", "load_cohort"]


@dataclass(frozen=True, eq=False)
class Cohort:
    """A validated cohort table with its outcome and split.

    Attributes
    ----------
    table : pandas.DataFrame
        The cases (as :func:`read_cases` returns them), indexed by ``case_id``.
    study : StudyConfig or None
        The study the table was validated against.
    warnings : tuple of Problem
        Problems that do not block (single-class centers, missing variable values).
    parts : pandas.Series, optional
        ``train`` / ``internal`` / ``external`` per case, indexed by ``case_id``; computed from the
        study's split when not given. Read it with :meth:`split_labels`.
    source : Path or None
        The CSV the table was read from.
    """

    table: pd.DataFrame
    study: StudyConfig | None = None
    warnings: tuple[Problem, ...] = ()
    parts: pd.Series = field(default=None, repr=False)
    source: Path | None = None

    def __post_init__(self):
        if self.parts is None:
            y = (label_values(self.table, self.label) == self.label.positive).astype(int)
            object.__setattr__(self, "parts", assign_splits(self.table, self.study, y))

    @property
    def label(self) -> LabelSpec:
        """The outcome column and positive value in use."""
        return self.study.label if self.study is not None else LabelSpec()

    @property
    def y(self) -> pd.Series:
        """The outcome as 0/1 integers (1 = the positive label value), indexed by ``case_id``."""
        values = label_values(self.table, self.label)
        return (values == self.label.positive).astype(int).rename("y")

    @property
    def groups(self) -> pd.Series:
        """Patient id per case, for grouped cross-validation (``groups=cohort.groups``)."""
        return self.table["patient_id"].rename("patient_id")

    def split_labels(self) -> pd.Series:
        """The part of each case: ``train``, ``internal`` or ``external``, indexed by ``case_id``.

        Deterministic given the study seed (or ``split.seed``) and the patient ids, whatever the row
        order; patient-grouped: every image of a patient is in the same part. Without a split in the
        study every case is ``train``.
        """
        return self.parts.copy()

    def subset(self, part: str | Iterable[str]) -> Cohort:
        """The cases of one part (or several), as a :class:`Cohort` keeping the original split.

        Parameters
        ----------
        part : str or iterable of str
            ``"train"``, ``"internal"``, ``"external"``, or a list of them.
        """
        wanted = [part] if isinstance(part, str) else list(part)
        unknown = [p for p in wanted if p not in SPLIT_PARTS]
        if unknown or not wanted:
            raise ValueError(f"part must be one of {', '.join(SPLIT_PARTS)} (or a list of them); got {part!r}")
        keep = self.parts.isin(wanted).to_numpy()
        return Cohort(table=self.table[keep], study=self.study, warnings=self.warnings,
                      parts=self.parts[keep], source=self.source)

    def summary(self) -> str:
        """A readable multi-line description: cases, patients, centers and class counts per part."""
        table, y = self.table, self.y
        label = self.label
        title = f"Cohort {self.source}" if self.source is not None else "Cohort"
        if self.study is not None:
            title += f" (study {self.study.name!r})"
        lines = [
            title,
            f"  {len(table)} cases, {table['patient_id'].nunique()} patients, {table['center'].nunique()} centers",
            f"  label column {label.column!r}, positive = {label.positive!r}: {int(y.sum())} positive, "
            f"{int(len(y) - y.sum())} negative ({100 * y.mean():.1f}% positive)",
            f"  split: {self._split_text()}",
            "",
        ]
        lines += self._counts_table().to_string(index=False).splitlines()
        if self.warnings:
            lines += ["", f"{len(self.warnings)} warning(s):"] + [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)

    def _counts_table(self) -> pd.DataFrame:
        """Cases, patients and class counts per part and center, with a total row per part."""
        frame = pd.DataFrame({"part": self.parts.to_numpy(), "center": self.table["center"].to_numpy(),
                              "patient": self.table["patient_id"].to_numpy(), "y": self.y.to_numpy()})
        rows = []
        for part in SPLIT_PARTS:
            in_part = frame[frame["part"] == part]
            groups = [(c, g) for c, g in in_part.groupby("center", sort=True)]
            if len(groups) > 1:
                groups.append(("(all)", in_part))
            for center, g in groups:
                n_pos = int(g["y"].sum())
                rows.append({"part": part, "center": center, "cases": len(g), "patients": g["patient"].nunique(),
                             "positive": n_pos, "negative": len(g) - n_pos})
        return pd.DataFrame(rows, columns=["part", "center", "cases", "patients", "positive", "negative"])

    def _split_text(self) -> str:
        split = self.study.split if self.study is not None else None
        if split is None:
            return "none declared (every case is train)"
        seed = self.study.split_seed
        if isinstance(split, CenterSplit):
            text = f"by center; train = {', '.join(split.train)}; external = {', '.join(split.external)}"
            if split.internal_fraction is not None:
                text += f"; internal = {split.internal_fraction:g} of the training patients (seed {seed})"
            return text
        return f"by patient; internal test = {split.test_fraction:g} of the patients (seed {seed})"


def load_cohort(csv_path: str | Path | None = None, study: StudyConfig | None = None,
                check_files: bool = True) -> Cohort:
    """Read, validate and split a cohort table.

    Parameters
    ----------
    csv_path : str or Path, optional
        The cohort table; defaults to the study's ``cohort``.
    study : StudyConfig, optional
        Label column and positive value, declared variables and split (see :mod:`sonorad.study`).
    check_files : bool, optional
        Check that the image and mask files exist and look like images (default True).

    Returns
    -------
    Cohort

    Raises
    ------
    CohortError
        Listing every error-level problem (see :func:`validate_cases`), each by case id.
    ConfigError
        When neither ``csv_path`` nor ``study.cohort`` is given.

    Examples
    --------
    >>> cohort = load_cohort("cases.csv", study=load_study("study.yaml"))   # doctest: +SKIP
    >>> train = cohort.subset("train")                                        # doctest: +SKIP
    >>> X, y, groups = train.table[["age"]], train.y, train.groups            # doctest: +SKIP
    """
    if csv_path is None:
        if study is None or study.cohort is None:
            raise ConfigError("load_cohort needs csv_path, or a study whose `cohort` key names the cases table")
        csv_path = study.cohort
    label = study.label if study is not None else LabelSpec()
    table = read_cases(csv_path, label_column=label.column)
    problems = validate_cases(table, study=study, check_files=check_files)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise CohortError(errors, source=str(csv_path))
    warnings = tuple(p for p in problems if p.severity != "error")
    y = (label_values(table, label) == label.positive).astype(int)
    parts = assign_splits(table, study, y)
    return Cohort(table=table, study=study, warnings=warnings, parts=parts, source=Path(csv_path))

