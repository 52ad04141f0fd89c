"""Study file (YAML) -> typed, validated :class:`StudyConfig`.

A study is data: one YAML file names the cohort table, the seed, which label value is positive,
the clinical and ultrasound variables with their types, and how the cases are split into training,
internal and external validation. :func:`load_study` reads it; :meth:`StudyConfig.from_dict`
validates an already-parsed mapping. Every mistake found is reported at once in a single
:class:`~sonorad.errors.ConfigError` whose lines name the key path (``variables.birads.order``), the
bad value and the allowed choices. The ``features`` and ``models`` sections are kept as plain dicts
for the modules that define them.

The file format is documented key by key in ``docs/study-file.md``; ``studies/example.yaml`` is a
commented example.

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
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonorad.errors import ConfigError, Problem

__all__ = [
    "TOP_LEVEL_KEYS",
    "VARIABLE_TYPES",
    "VARIABLE_ROLES",
    "RESERVED_COLUMNS",
    "UNSEEN_POLICIES",
    "LESION_POLICIES",
    "OTHER_LEVEL",
    "LabelSpec",
    "VariableSpec",
    "MaskSpec",
    "CenterSplit",
    "PatientSplit",
    "StudyConfig",
    "load_study",
    "canonical_value",
]

#: Keys allowed at the top level of a study file.
TOP_LEVEL_KEYS = ("name", "description", "cohort", "seed", "label", "variables", "masks", "split", "features",
                  "models", "evaluation")
#: Types a declared variable may have.
VARIABLE_TYPES = ("numeric", "binary", "categorical", "ordinal")
#: Roles a declared variable may have.
VARIABLE_ROLES = ("clinical", "ultrasound")
#: Cohort-table columns with a fixed meaning; a variable cannot take one of these names.
RESERVED_COLUMNS = ("case_id", "patient_id", "center", "image", "mask", "mask2", "frame", "spacing_mm", "mask_label",
                    "label")
#: What to do at prediction time with a categorical value training never saw (``variables.X.unseen``).
UNSEEN_POLICIES = ("error", "other")
#: How a mask with several disjoint regions becomes ROIs (``masks.lesions``).
LESION_POLICIES = ("union", "largest", "per-lesion")
#: The level an unseen value becomes under ``unseen: other``.
OTHER_LEVEL = "other"

_LABEL_KEYS = ("column", "positive")
_VARIABLE_KEYS = ("type", "levels", "order", "role", "description", "range", "unseen")
_MASK_KEYS = ("label", "lesions")
_SPLIT_BY = ("center", "patient")
_CENTER_SPLIT_KEYS = ("by", "train", "external", "internal_fraction", "seed")
_PATIENT_SPLIT_KEYS = ("by", "test_fraction", "seed")
_BINARY_DEFAULT_LEVELS = ("0", "1")


def canonical_value(value: Any) -> str | None:
    """Return the text form under which a table value or a declared level is compared.

    Levels and labels are compared as text so that a YAML ``2``, a CSV ``2`` and a pandas ``2.0``
    (an integer column with missing values) are the same level. Missing values give ``None``.

    Parameters
    ----------
    value : object
        A cell of the cohort table or a level from the study file.

    Returns
    -------
    str or None
        Stripped text; numbers with an integer value are written without a decimal part.

    Examples
    --------
    >>> canonical_value(2.0), canonical_value(" 4a "), canonical_value("3"), canonical_value(float("nan"))
    ('2', '4a', '3', None)
    """
    if value is None or type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing markers
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)) or type(value).__module__ == "numpy":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value).strip()
        if math.isnan(number):
            return None
        if number.is_integer():
            return str(int(number))
        return repr(number)
    text = str(value).strip()
    if text == "" or text.lower() in ("nan", "na", "n/a"):
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() else repr(number)


@dataclass(frozen=True)
class LabelSpec:
    """Which column holds the outcome and which of its two values is positive.

    Attributes
    ----------
    column : str
        Cohort-table column with the outcome (default ``"label"``).
    positive : str
        The value meaning positive (diseased, malignant, metastatic), in canonical text form
        (see :func:`canonical_value`); the other value of the column is negative.
    """

    column: str = "label"
    positive: str = "1"


@dataclass(frozen=True)
class VariableSpec:
    """A clinical or ultrasound variable declared in the study file.

    Attributes
    ----------
    name : str
        The cohort-table column.
    type : str
        One of ``numeric``, ``binary``, ``categorical``, ``ordinal``.
    levels : tuple of str or None
        Allowed values of a categorical or binary variable (canonical text). For a binary variable
        the second level is the one coded 1; without declared levels a binary variable holds 0/1.
        ``None`` for a categorical variable means any value is accepted.
    order : tuple of str or None
        Ordered levels of an ordinal variable, lowest first (ordinal only).
    role : str or None
        ``clinical`` or ``ultrasound`` (radiologist-scored), when declared.
    description : str or None
        Free text shown in reports.
    range : tuple of float or None
        ``[low, high]``: the plausible values of a numeric variable (both included); a value outside
        is a validation error naming the case. Without it a robust outlier rule warns
        (:mod:`sonorad.cohort`).
    unseen : str
        Categorical variables: what prediction does with a value the training cohort never held:
        ``"error"`` (default; the case is refused, naming it) or ``"other"`` (the value becomes the
        level ``other`` when training had one, else missing, imputed like a missing value; with a
        warning naming the case). See :func:`sonorad.cohort.apply_unseen_policy`.
    """

    name: str
    type: str
    levels: tuple[str, ...] | None = None
    order: tuple[str, ...] | None = None
    role: str | None = None
    description: str | None = None
    range: tuple[float, float] | None = None
    unseen: str = "error"

    @property
    def allowed_values(self) -> tuple[str, ...] | None:
        """The values the column may hold (canonical text), or ``None`` when any value is allowed."""
        if self.type == "ordinal":
            return self.order
        if self.type == "binary":
            return self.levels or _BINARY_DEFAULT_LEVELS
        if self.type == "categorical":
            return self.levels
        return None


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
    """

    label: int | None = None
    lesions: str | None = None


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
        builder = _Builder()
        config = builder.study(data, source)
        if builder.problems:
            raise _config_error(builder.problems, source)
        return config

    def to_dict(self) -> dict:
        """Return the study as a plain mapping that :meth:`from_dict` accepts (round trip)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            out["description"] = self.description
        if self.cohort is not None:
            out["cohort"] = str(self.cohort)
        out["seed"] = self.seed
        out["label"] = {"column": self.label.column, "positive": self.label.positive}
        out["variables"] = {}
        for name, spec in self.variables.items():
            entry: dict[str, Any] = {"type": spec.type}
            for key in ("levels", "order"):
                if getattr(spec, key) is not None:
                    entry[key] = list(getattr(spec, key))
            for key in ("role", "description"):
                if getattr(spec, key) is not None:
                    entry[key] = getattr(spec, key)
            if spec.range is not None:
                entry["range"] = list(spec.range)
            if spec.unseen != "error":
                entry["unseen"] = spec.unseen
            out["variables"][name] = entry
        masks = {k: getattr(self.masks, k) for k in _MASK_KEYS if getattr(self.masks, k) is not None}
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


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate a study file.

    Parameters
    ----------
    path : str or Path
        YAML study file. A relative ``cohort`` path inside it is relative to the file's folder.

    Returns
    -------
    StudyConfig

    Raises
    ------
    ConfigError
        When the file is missing, is not valid YAML (the message gives the line), is not a mapping,
        or holds invalid keys or values (every problem listed at once).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: study file not found. Fix: check the path (it is read relative to "
                          f"the current folder {Path.cwd()})")
    try:
        with path.open(encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=_study_loader())  # noqa: S506 (a SafeLoader subclass)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the study file ({exc}). Fix: save it as UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}\nFix: correct the syntax at the line shown "
                          "(indentation, a missing ':', an unclosed quote or bracket, a repeated key)") from None
    if data is None:
        data = {}
    return StudyConfig.from_dict(data, source=path)


# --- YAML loading ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _study_loader():
    """A SafeLoader with YAML 1.2 booleans (only true/false) that rejects duplicate keys.

    YAML 1.1 reads ``yes``, ``no``, ``on``, ``off`` as booleans, which silently turns the levels
    ``[no, yes]`` of a binary variable into ``[False, True]``; the study file keeps them as text.
    A repeated key would silently replace the first one; it is an error instead.
    """
    import re

    import yaml

    class StudyLoader(yaml.SafeLoader):
        pass

    StudyLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    StudyLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )

    def construct_mapping(loader, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StudyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StudyLoader


# --- validation -----------------------------------------------------------------------------------

def _config_error(problems: list[Problem], source: Path | None) -> ConfigError:
    where = str(source) if source is not None else "study"
    lines = [f"{where}: {len(problems)} problem(s) in the study file:"]
    for p in problems:
        lines.append(f"  - {p.column}: {p.message}" + (f" Fix: {p.fix}" if p.fix else ""))
    error = ConfigError("\n".join(lines))
    error.problems = list(problems)
    return error


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _join(key: str, child) -> str:
    return f"{key}.{child}" if key else str(child)


def _choices(options) -> str:
    return ", ".join(str(o) for o in options)


class _Builder:
    """Validates one study mapping section by section, collecting every problem."""

    def __init__(self):
        self.problems: list[Problem] = []

    def add(self, key: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(message=message, fix=fix, column=key))

    # generic checks

    def mapping(self, value, key: str, allowed: tuple[str, ...] | None) -> dict | None:
        if not isinstance(value, Mapping):
            self.add(key, f"must be a mapping (key: value lines), got {type(value).__name__} {_show(value)}",
                     f"write it as a mapping with keys among: {_choices(allowed)}" if allowed else "")
            return None
        bad_keys = [k for k in value if not isinstance(k, str)]
        for k in bad_keys:
            self.add(_join(key, k), f"keys must be text, got {type(k).__name__} {_show(k)}", "quote the key")
        out = {k: v for k, v in value.items() if isinstance(k, str)}
        if allowed is not None:
            for k in out:
                if k not in allowed:
                    self.add(_join(key, k), f"unknown key {k!r}; allowed keys: {_choices(allowed)}",
                             "remove it or correct its spelling")
        return out

    def text(self, value, key: str, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.add(key, "is required", f"add `{key}: ...`")
            return None
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.add(key, f"must be non-empty text, got {type(value).__name__} {_show(value)}")
        return None

    def integer(self, value, key: str, default: int | None) -> int | None:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.add(key, f"must be a non-negative integer, got {_show(value)}", f"e.g. `{key.split('.')[-1]}: 42`")
            return default
        return value

    def fraction(self, value, key: str, required: bool) -> float | None:
        if value is None:
            if required:
                self.add(key, "is required", f"add `{key.split('.')[-1]}: 0.3` (a fraction between 0 and 1)")
            return None
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or not 0 < value < 1):
            self.add(key, f"must be a fraction strictly between 0 and 1, got {_show(value)}", "e.g. 0.3 for 30%")
            return None
        return float(value)

    def value_list(self, value, key: str) -> tuple[str, ...] | None:
        """A non-empty list of distinct scalar values, returned in canonical text form."""
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            self.add(key, f"must be a non-empty list, got {_show(value)}",
                     f"write it as `{key.split('.')[-1]}: [a, b]`")
            return None
        out: list[str] = []
        ok = True
        for i, item in enumerate(value):
            canon = canonical_value(item) if isinstance(item, (str, int, float)) else None
            if canon is None:
                self.add(f"{key}[{i}]", f"must be a number or text, got {_show(item)}")
                ok = False
            elif canon in out:
                self.add(key, f"lists {canon!r} twice: {_show(list(value))}", "list each value once")
                ok = False
            else:
                out.append(canon)
        return tuple(out) if ok else None

    # sections

    def study(self, data, source: Path | None) -> StudyConfig | None:
        top = self.mapping(data, "", TOP_LEVEL_KEYS)
        if top is None:
            self.problems[-1] = Problem(
                message=f"the study file must be a mapping of keys, got {type(data).__name__}",
                fix=f"start the file with `name: my_study`; allowed top-level keys: {_choices(TOP_LEVEL_KEYS)}",
                column="(top level)",
            )
            return None
        name = self.text(top.get("name"), "name", required=True)
        description = self.text(top.get("description"), "description")
        cohort = self.cohort(top.get("cohort"), source)
        seed = self.integer(top.get("seed"), "seed", default=0)
        label = self.label(top.get("label"))
        variables = self.variables(top.get("variables"), label.column)
        masks = self.masks(top.get("masks"))
        split = self.split(top.get("split"))
        features = self.section(top.get("features"), "features")
        models = self.section(top.get("models"), "models")
        evaluation = self.section(top.get("evaluation"), "evaluation")
        if self.problems:
            return None
        return StudyConfig(name=name, description=description, cohort=cohort, seed=seed, label=label,
                           variables=variables, masks=masks, split=split, features=features, models=models,
                           evaluation=evaluation, source=source)

    def cohort(self, value, source: Path | None) -> Path | None:
        text = self.text(value, "cohort")
        if text is None:
            return None
        path = Path(text).expanduser()
        if not path.is_absolute() and source is not None:
            path = (source.resolve().parent / path)
        return path

    def label(self, value) -> LabelSpec:
        if value is None:
            return LabelSpec()
        section = self.mapping(value, "label", _LABEL_KEYS)
        if section is None:
            return LabelSpec()
        column = self.text(section.get("column"), "label.column") or "label"
        positive = section.get("positive", 1)
        canon = canonical_value(positive) if isinstance(positive, (str, int, float)) else None
        if canon is None:
            self.add("label.positive", f"must be the value meaning positive (a number or text), got {_show(positive)}",
                     "e.g. `positive: 1` or `positive: malignant`")
            canon = "1"
        return LabelSpec(column=column, positive=canon)

    def variables(self, value, label_column: str) -> dict[str, VariableSpec]:
        if value is None:
            return {}
        section = self.mapping(value, "variables", None)
        if section is None:
            return {}
        reserved = set(RESERVED_COLUMNS) | {label_column}
        out = {}
        for name, spec in section.items():
            key = f"variables.{name}"
            if name in reserved:
                self.add(key, f"{name!r} is a reserved cohort column, not a variable; reserved: "
                         f"{_choices(sorted(reserved))}", "remove it from variables")
                continue
            parsed = self.variable(name, spec, key)
            if parsed is not None:
                out[name] = parsed
        return out

    def variable(self, name: str, spec, key: str) -> VariableSpec | None:
        if isinstance(spec, str):
            spec = {"type": spec}
        section = self.mapping(spec, key, _VARIABLE_KEYS)
        if section is None:
            return None
        vtype = section.get("type")
        if vtype not in VARIABLE_TYPES:
            self.add(f"{key}.type", f"{'is required' if vtype is None else f'unknown type {_show(vtype)}'}; "
                     f"allowed types: {_choices(VARIABLE_TYPES)}",
                     "e.g. `type: numeric`, or the short form `" + name + ": numeric`")
            return None
        role = section.get("role")
        if role is not None and role not in VARIABLE_ROLES:
            self.add(f"{key}.role", f"unknown role {_show(role)}; allowed roles: {_choices(VARIABLE_ROLES)}")
            role = None
        description = self.text(section.get("description"), f"{key}.description")
        levels = order = None
        if "levels" in section:
            if vtype in ("categorical", "binary"):
                levels = self.value_list(section["levels"], f"{key}.levels")
                if vtype == "binary" and levels is not None and len(levels) != 2:
                    self.add(f"{key}.levels", f"a binary variable has exactly 2 levels, got {len(levels)}: "
                             f"{_show(list(section['levels']))}",
                             "list the negative level then the positive one, e.g. [no, yes], or use type: categorical")
            else:
                fix = "use `order: [...]` (lowest first)" if vtype == "ordinal" else "remove it"
                self.add(f"{key}.levels", f"is not allowed for {_article(vtype)} {vtype} variable; `levels` is for "
                         "categorical and binary variables", fix)
        if vtype == "ordinal":
            if "order" not in section:
                self.add(f"{key}.order", "is required for an ordinal variable",
                         "list its levels lowest first, e.g. `order: [2, 3, 4, 5]`")
            else:
                order = self.value_list(section["order"], f"{key}.order")
                if order is not None and len(order) < 2:
                    self.add(f"{key}.order", f"an ordinal variable needs at least 2 levels, got {list(order)}")
        elif "order" in section:
            self.add(f"{key}.order", f"is only allowed for an ordinal variable, not a {vtype} one",
                     "use `type: ordinal`, or `levels: [...]` for an unordered variable")
        value_range = self.value_range(section["range"], f"{key}.range", vtype) if "range" in section else None
        unseen = section.get("unseen", "error")
        if "unseen" in section and vtype != "categorical":
            self.add(f"{key}.unseen", f"is only allowed for a categorical variable, not a {vtype} one",
                     "remove it (binary and ordinal variables have fixed levels)")
            unseen = "error"
        elif unseen not in UNSEEN_POLICIES:
            self.add(f"{key}.unseen", f"unknown policy {_show(unseen)}; allowed: {_choices(UNSEEN_POLICIES)}",
                     "`unseen: error` refuses a case with a new value, `unseen: other` codes it as 'other'")
            unseen = "error"
        return VariableSpec(name=name, type=vtype, levels=levels, order=order, role=role, description=description,
                            range=value_range, unseen=unseen)

    def value_range(self, value, key: str, vtype: str) -> tuple[float, float] | None:
        if vtype != "numeric":
            self.add(key, f"is only allowed for a numeric variable, not a {vtype} one", "remove it")
            return None
        ok = (isinstance(value, (list, tuple)) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value))
        if not ok or value[0] >= value[1]:
            self.add(key, f"must be [low, high], two finite numbers with low < high, got {_show(value)}",
                     "e.g. `range: [18, 100]` for an age in years")
            return None
        return (float(value[0]), float(value[1]))

    def masks(self, value) -> MaskSpec:
        if value is None:
            return MaskSpec()
        section = self.mapping(value, "masks", _MASK_KEYS)
        if section is None:
            return MaskSpec()
        label = section.get("label")
        if label is not None and (isinstance(label, bool) or not isinstance(label, int) or label <= 0):
            self.add("masks.label", f"must be the lesion's label, a whole number > 0, got {_show(label)}",
                     "e.g. `label: 1`; the labels of a label-map mask are listed by `sonorad extract`")
            label = None
        lesions = section.get("lesions")
        if lesions is not None and lesions not in LESION_POLICIES:
            self.add("masks.lesions", f"unknown value {_show(lesions)}; allowed: {_choices(LESION_POLICIES)}",
                     "`union` joins disjoint regions, `largest` keeps the largest, `per-lesion` makes one case each")
            lesions = None
        return MaskSpec(label=label, lesions=lesions)

    def split(self, value) -> CenterSplit | PatientSplit | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.mapping(value, "split", None)
            return None
        by = value.get("by")
        if by not in _SPLIT_BY:
            self.add("split.by", f"{'is required' if by is None else f'unknown value {_show(by)}'}; "
                     f"allowed: {_choices(_SPLIT_BY)}",
                     "`by: center` (train / external centers) or `by: patient` (random patient-grouped split)")
            return None
        seed = self.integer(value.get("seed"), "split.seed", default=None)
        if by == "center":
            section = self.mapping(value, "split", _CENTER_SPLIT_KEYS)
            train = self.centers(section.get("train"), "split.train")
            external = self.centers(section.get("external"), "split.external")
            fraction = self.fraction(section.get("internal_fraction"), "split.internal_fraction", required=False)
            if train and external:
                for center in sorted(set(train) & set(external)):
                    self.add("split.external", f"center {center!r} is in both split.train and split.external",
                             "a center is either training or external validation; remove it from one list")
            if train is None or external is None:
                return None
            return CenterSplit(train=train, external=external, internal_fraction=fraction, seed=seed)
        section = self.mapping(value, "split", _PATIENT_SPLIT_KEYS)
        fraction = self.fraction(section.get("test_fraction"), "split.test_fraction", required=True)
        if fraction is None:
            return None
        return PatientSplit(test_fraction=fraction, seed=seed)

    def centers(self, value, key: str) -> tuple[str, ...] | None:
        if value is None:
            self.add(key, "is required for `by: center`", f"list the centers, e.g. `{key.split('.')[-1]}: [C1, C2]`")
            return None
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            self.add(key, f"must be a non-empty list of center names, got {_show(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (str, int)) or str(item).strip() == "":
                self.add(f"{key}[{i}]", f"must be a center name, got {_show(item)}")
                continue
            name = str(item).strip()
            if name in out:
                self.add(key, f"lists center {name!r} twice", "list each center once")
            else:
                out.append(name)
        return tuple(out) if len(out) == len(value) else None

    def section(self, value, key: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.add(key, f"must be a mapping, got {type(value).__name__} {_show(value)}")
            return {}
        return copy.deepcopy(dict(value))
