"""Study file (YAML) -> typed, validated :class:`StudyConfig`.

A study is data: one YAML file names the cohort table, the seed, which label value is positive,
the clinical and ultrasound variables with their types, and how the cases are split into training,
internal and external validation. :func:`load_study` reads it; :meth:`StudyConfig.from_dict`
validates an already-parsed mapping. Every mistake found is reported at once in a single
:class:`~sonorad.errors.ConfigError` whose lines name the key path (``variables.birads.order``), the
bad value and the allowed choices. The ``features`` and ``models`` sections are kept as plain dicts
for the modules that define them.

The keys and their rules are declared once in :mod:`sonorad.study.schema`; the file format is
documented key by key in ``docs/study-file.md``; ``studies/example.yaml`` is a commented example.

Examples
--------
>>> cfg = StudyConfig.from_dict({
...     "name": "demo",
...     "label": {"positive": "malignant"},
...     "variables": {"age": "numeric", "birads": {"type": "ordinal", "order": [2, 3, 4, 5]}},
...     "split": {"by": "patient", "test_fraction": 0.3},
... })
>>> cfg.variables["birads"].order
('2', '3', '4', '5')
>>> cfg.split.test_fraction
0.3
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonorad.errors import ConfigError, Problem
from sonorad.study.schema import check_study
from sonorad.variables import VARIABLE_ROLES, VariableSpec

__all__ = ["LabelSpec", "MaskSpec", "CenterSplit", "PatientSplit", "StudyConfig"]


@dataclass(frozen=True)
class LabelSpec:
    """Which column holds the outcome and which of its two values is positive.

    Attributes
    ----------
    column : str
        Cohort-table column with the outcome (default ``"label"``).
    positive : str
        The value meaning positive (diseased, malignant, metastatic), in canonical text form
        (see :func:`sonorad.variables.canonical_value`); the other value of the column is negative.
    description : str or None
        The positive outcome in words (``"cervical lymph node metastasis"``), for the calculator.
    """

    column: str = "label"
    positive: str = "1"
    description: str | None = None


@dataclass(frozen=True)
class MaskSpec:
    """How lesion masks become ROIs, for the whole cohort (the ``masks`` section).

    Attributes
    ----------
    label : int or None
        The label of the lesion in label-map masks (a ``mask_label`` column of cases.csv overrides
        it per case); ``None``: masks are binary, and a label map is an error naming its labels.
    lesions : str or None
        ``union`` (join disjoint regions into one ROI), ``largest`` (keep the largest region) or
        ``per-lesion`` (each region its own case, ``<case_id>-lesion<k>``); ``None``: join them with
        a warning naming the case.
    segmenter : Path or None
        A box-prompted segmenter folder: a case with a ``box`` and no ``mask`` gets its mask from it
        before extraction; ``None``: every case needs a mask.
    """

    label: int | None = None
    lesions: str | None = None
    segmenter: Path | None = None


@dataclass(frozen=True)
class CenterSplit:
    """Split by center: training centers, external-validation centers, optional internal hold-out.

    Attributes
    ----------
    train : tuple of str
        Centers whose cases train the models.
    external : tuple of str
        Centers held out for external validation.
    internal_fraction : float or None
        Fraction of the training centers' patients held out as an internal validation set
        (patient-grouped, stratified by center and label); ``None`` for no internal set.
    seed : int or None
        Seed of the internal hold-out; ``None`` uses the study seed.
    """

    train: tuple[str, ...]
    external: tuple[str, ...]
    internal_fraction: float | None = None
    seed: int | None = None
    by: str = field(default="center", init=False)


@dataclass(frozen=True)
class PatientSplit:
    """Random patient-grouped split into training and internal test sets.

    Attributes
    ----------
    test_fraction : float
        Fraction of patients held out (labelled ``internal``), stratified by center and label.
    seed : int or None
        Seed of the split; ``None`` uses the study seed.
    """

    test_fraction: float
    seed: int | None = None
    by: str = field(default="patient", init=False)


@dataclass(frozen=True)
class StudyConfig:
    """A validated study file.

    Attributes
    ----------
    name : str
        Short study name, used in reports and output folders.
    description : str or None
        Free text.
    cohort : Path or None
        The cohort table (``cases.csv``), absolute when the study came from a file.
    seed : int
        The one seed every random choice derives from.
    label : LabelSpec
        Outcome column and positive value.
    variables : dict of str -> VariableSpec
        Declared clinical / ultrasound columns, in file order.
    masks : MaskSpec
        Mask label and disjoint-lesion policy.
    split : CenterSplit or PatientSplit or None
        How cases are assigned to train / internal / external; ``None`` puts every case in train.
    features, models, evaluation : dict
        Sections owned by the feature, model and study-runner modules, kept as plain (copied)
        dicts; :mod:`sonorad.runner` checks their keys.
    source : Path or None
        The study file, when loaded from one.
    """

    name: str
    description: str | None = None
    cohort: Path | None = None
    seed: int = 0
    label: LabelSpec = field(default_factory=LabelSpec)
    variables: dict[str, VariableSpec] = field(default_factory=dict)
    masks: MaskSpec = field(default_factory=MaskSpec)
    split: CenterSplit | PatientSplit | None = None
    features: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    source: Path | None = None

    @property
    def split_seed(self) -> int:
        """Seed of the split: ``split.seed`` when given, else the study seed."""
        if self.split is not None and self.split.seed is not None:
            return self.split.seed
        return self.seed

    def variables_with_role(self, role: str) -> list[str]:
        """Names of the declared variables with the given role (``clinical`` or ``ultrasound``)."""
        if role not in VARIABLE_ROLES:
            raise ValueError(f"role must be one of {', '.join(VARIABLE_ROLES)}; got {role!r}")
        return [name for name, spec in self.variables.items() if spec.role == role]

    @classmethod
    def from_dict(cls, data: Mapping, source: str | Path | None = None) -> StudyConfig:
        """Validate a parsed study mapping.

        Parameters
        ----------
        data : mapping
            The parsed YAML document.
        source : str or Path, optional
            The file the mapping came from. A relative ``cohort`` path is resolved against its
            folder, and error messages name it. Without a source a relative path is kept as given.

        Returns
        -------
        StudyConfig

        Raises
        ------
        ConfigError
            Listing every problem found, each naming the key path, the bad value and the choices.
            The problems are also available as ``error.problems`` (``Problem.column`` = key path).
        """
        source = Path(source) if source is not None else None
        values, problems = check_study(data, source)
        if problems:
            raise _config_error(problems, source)
        return _build(values, source)

    def to_dict(self) -> dict:
        """Return the study as a plain mapping that :meth:`from_dict` accepts (round trip)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            out["description"] = self.description
        if self.cohort is not None:
            out["cohort"] = str(self.cohort)
        out["seed"] = self.seed
        out["label"] = {"column": self.label.column, "positive": self.label.positive}
        if self.label.description is not None:
            out["label"]["description"] = self.label.description
        out["variables"] = {}
        for name, spec in self.variables.items():
            entry: dict[str, Any] = {"type": spec.type}
            for f in dataclasses.fields(spec):
                value = getattr(spec, f.name)
                if f.name not in ("name", "type") and value != f.default:
                    entry[f.name] = list(value) if isinstance(value, tuple) else value
            out["variables"][name] = entry
        masks = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self.masks).items()
                 if v is not None}
        if masks:
            out["masks"] = masks
        if isinstance(self.split, CenterSplit):
            split: dict[str, Any] = {"by": "center", "train": list(self.split.train),
                                     "external": list(self.split.external)}
            if self.split.internal_fraction is not None:
                split["internal_fraction"] = self.split.internal_fraction
        elif isinstance(self.split, PatientSplit):
            split = {"by": "patient", "test_fraction": self.split.test_fraction}
        else:
            split = None
        if split is not None:
            if self.split.seed is not None:
                split["seed"] = self.split.seed
            out["split"] = split
        if self.features:
            out["features"] = copy.deepcopy(self.features)
        if self.models:
            out["models"] = copy.deepcopy(self.models)
        if self.evaluation:
            out["evaluation"] = copy.deepcopy(self.evaluation)
        return out


def _build(values: dict, source: Path | None) -> StudyConfig:
    """The typed study from the values :func:`~sonorad.study.schema.check_study` passed."""
    label = LabelSpec(**values["label"]) if "label" in values else LabelSpec()
    variables = {name: VariableSpec(name=name, **spec) for name, spec in values.get("variables", {}).items()}
    masks = MaskSpec(**values["masks"]) if "masks" in values else MaskSpec()
    split = values.get("split")
    if split is not None:
        split = dict(split)
        kind = CenterSplit if split.pop("by") == "center" else PatientSplit
        split = kind(**split)
    return StudyConfig(name=values["name"], description=values.get("description"), cohort=values.get("cohort"),
                       seed=values["seed"], label=label, variables=variables, masks=masks, split=split,
                       features=values.get("features", {}), models=values.get("models", {}),
                       evaluation=values.get("evaluation", {}), source=source)


def _config_error(problems: list[Problem], source: Path | None) -> ConfigError:
    where = str(source) if source is not None else "study"
    lines = [f"{where}: {len(problems)} problem(s) in the study file:"]
    for p in problems:
        lines.append(f"  - {p.column}: {p.message}" + (f" Fix: {p.fix}" if p.fix else ""))
    error = ConfigError("\n".join(lines))
    error.problems = list(problems)
    return error
