"""Study designs: the ``models:`` section of a study file -> named, fitted models.

Each module of this package holds one design (a :class:`~sonorad.designs.design.Design` subclass
with a ``name``); a new design is one new module, found here without further registration.
Every design returns a :class:`~sonorad.designs.base.DesignResult` of the same shape, so the
runner, the report and the model bundle never ask which design ran. A design declares the keys it
reads (:meth:`~sonorad.designs.design.Design.keys`); they are checked with the rest of the study file
(:mod:`sonorad.study.schema`). A study file without ``models.design`` gets
:data:`~sonorad.defaults.DEFAULT_DESIGN`.

>>> sorted(available_designs())
['feature_families', 'radiomics_nomogram', 'score_fusion']
>>> get_design("study1").name  # the old name of a design is still accepted
'score_fusion'
"""

from __future__ import annotations

import importlib
import pkgutil

from sonorad.designs.base import ColumnModel, DesignResult, FeatureColumns, ScoreStack, model_input_table
from sonorad.designs.design import Design
from sonorad.errors import ConfigError
from sonorad.defaults import DEFAULT_DESIGN

__all__ = ["DEFAULT_DESIGN", "available_designs", "accepted_design_names", "get_design", "build_design",
           "Design", "DesignResult", "FeatureColumns", "ColumnModel", "ScoreStack",
           "model_input_table"]

_REGISTRY: dict[str, type[Design]] = {}
_ALIASES: dict[str, str] = {}


def _discover() -> dict[str, type[Design]]:
    if not _REGISTRY:
        for info in pkgutil.iter_modules(__path__):
            if info.name.startswith("_") or info.name in ("base", "design", "choice", "reference", "funnel"):
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            for obj in vars(module).values():
                if (isinstance(obj, type) and issubclass(obj, Design) and obj.__module__ == module.__name__
                        and getattr(obj, "name", None)):
                    _REGISTRY[obj.name] = obj
                    _ALIASES.update({alias: obj.name for alias in obj.__dict__.get("aliases", ())})
    return _REGISTRY


def available_designs() -> list[str]:
    """Names of the designs (``models.design``)."""
    return list(_discover())


def accepted_design_names() -> list[str]:
    """Every name ``models.design`` accepts: the designs' names and their old names."""
    return [*_discover(), *_ALIASES]


def get_design(name: str) -> type[Design]:
    """The design called ``name`` (or by an old name of it, e.g. ``study1``)."""
    designs = _discover()
    name = _ALIASES.get(name, name)
    if name not in designs:
        raise ConfigError(f"models.design: unknown design {name!r}; allowed designs: {', '.join(designs)}.")
    return designs[name]


def build_design(section: dict | None, *, variables=None, seed: int | None = None, icc=None,
                 icc_threshold: float | None = None) -> Design:
    """The design named by ``section["design"]`` (default :data:`DEFAULT_DESIGN`), configured by the section.

    Raises
    ------
    ConfigError
        Listing every problem of the section.
    """
    section = dict(section or {})
    cls = get_design(section.get("design", DEFAULT_DESIGN))
    problems = cls.section_problems(section)
    if problems:
        raise ConfigError("models: " + "; ".join(f"{p.column}: {p.message}" for p in problems))
    return cls(section, variables=variables, seed=seed, icc=icc, icc_threshold=icc_threshold)
