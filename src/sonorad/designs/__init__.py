"""Study designs: the ``models:`` section of a study file -> named, fitted models.

Each module of this package holds one design (a :class:`~sonorad.designs.base.Design` subclass
with a ``name``); a new design is one new module, found here without further registration.
Every design returns a :class:`~sonorad.designs.base.DesignResult` of the same shape, so the
runner, the report and the model bundle never ask which design ran.

>>> sorted(available_designs())
['radiomics_nomogram', 'study1', 'study2']
"""

from __future__ import annotations

import importlib
import pkgutil

from sonorad.designs.base import ColumnModel, Design, DesignResult, FeatureColumns, ScoreStack, model_input_table
from sonorad.errors import ConfigError, Problem

__all__ = ["available_designs", "get_design", "build_design", "check_models_section", "Design", "DesignResult",
           "FeatureColumns", "ColumnModel", "ScoreStack", "model_input_table"]

_REGISTRY: dict[str, type[Design]] = {}


def _discover() -> dict[str, type[Design]]:
    if not _REGISTRY:
        for info in pkgutil.iter_modules(__path__):
            if info.name.startswith("_") or info.name in ("base", "inspect"):
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            for obj in vars(module).values():
                if (isinstance(obj, type) and issubclass(obj, Design) and obj.__module__ == module.__name__
                        and getattr(obj, "name", None)):
                    _REGISTRY[obj.name] = obj
    return _REGISTRY


def available_designs() -> list[str]:
    """Names accepted by ``models.design``."""
    return list(_discover())


def get_design(name: str) -> type[Design]:
    designs = _discover()
    if name not in designs:
        raise ConfigError(f"models.design = {name!r}; choose among {', '.join(designs)}.")
    return designs[name]


def check_models_section(section: dict) -> list[Problem]:
    """Every problem of a ``models:`` section (design name, keys, model names, selection keys)."""
    name = section.get("design", "study1")
    if name not in _discover():
        return [Problem(f"unknown design {name!r}; choose among {', '.join(available_designs())}",
                        "correct its spelling", column="models.design")]
    return get_design(name).check(section)


def build_design(section: dict | None, *, variables=None, seed: int | None = None, icc=None,
                 icc_threshold: float | None = None) -> Design:
    """The design named by ``section["design"]`` (default ``study1``), configured by the rest of the section.

    Raises
    ------
    ConfigError
        Listing every problem of the section.
    """
    section = dict(section or {})
    problems = check_models_section(section)
    if problems:
        raise ConfigError("models: " + "; ".join(f"{p.column}: {p.message}" for p in problems))
    cls = get_design(section.get("design", "study1"))
    return cls(section, variables=variables, seed=seed, icc=icc, icc_threshold=icc_threshold)
