"""The design class: the ``models:`` section of a study file -> a fitted :class:`DesignResult`.

A design module of :mod:`sonorad.designs` subclasses :class:`Design`; the result's shape, the model
input table and the column-reading models are the contract of :mod:`sonorad.designs.base`.
"""

from __future__ import annotations

from typing import ClassVar

import pandas as pd

from sonorad.defaults import RUNNER_MODEL_KEYS
from sonorad.designs.base import DesignResult, FeatureColumns
from sonorad.keys import Key, lazy

__all__ = ["Design", "SHARED_KEYS"]

#: Keys that mean the same in every design that has them.
SHARED_KEYS = (
    Key("models", "names", "zoo models to fit", nullable=True, single=False, default_doc="the whole zoo",
        choices=lazy("sonorad.models:available_models"), noun="model", expect="a list of model names"),
    Key("cv", "integer", "patient-grouped, stratified folds for tuning (and the out-of-fold scores)", minimum=2,
        nullable=True, default_doc="`5`"),
    Key("n_iter", "integer", "randomised-search size per model", minimum=2, nullable=True,
        default_doc="full grid"),
    Key("class_weight", "any", "`balanced`: native class weights, or balanced sample weights / oversampling",
        nullable=True),
    Key("resample", "any", "`oversample` or `undersample` inside each training fold", nullable=True),
    Key("harmonize", "any", "ComBat on the imaging features (training centers fitted, labels never read)",
        nullable=True, default_doc="`false`"),
    Key("harmonize_options", "any", "`ComBatHarmonizer` options: `unseen`, `eb`, `parametric`, `mean_only`, "
        "`min_unseen`", nullable=True),
    Key("clinical_variables", "any", "filled from `variables:` (role other than `ultrasound`)", nullable=True,
        default_doc="from `variables:`"),
    Key("us_variables", "any", "filled from `variables:` (role `ultrasound`)", nullable=True,
        default_doc="from `variables:`"),
    Key("categories", "any", "level order of the categorical variables, filled from `variables:`", nullable=True,
        default_doc="from `variables:`"),
    Key("random_state", "any", "seed of the design", nullable=True, default_doc="the study `seed`"),
    Key("n_jobs", "any", "parallel tuning searches", nullable=True),
)



class Design:
    """Base class of a design: the ``models:`` section of a study file -> a fitted :class:`DesignResult`.

    A subclass sets ``name`` (the value of ``models.design``), ``engine`` (the estimator class that
    fits the families, whose constructor parameters are the section's keys), ``declared`` (the
    declarations of the keys only it reads), ``selection_keys``
    (keys that hold an imaging selection section), ``icc_key`` (the selection section that gets
    the ICC filter) and implements :meth:`result`.
    """

    name: ClassVar[str]
    #: older names of the design that ``models.design`` still accepts
    aliases: ClassVar[tuple[str, ...]] = ()
    #: declarations of the design's own keys (see :meth:`keys`)
    declared: ClassVar[tuple[Key, ...]] = ()
    title: ClassVar[str] = ""
    engine: ClassVar[type]
    selection_keys: ClassVar[tuple[str, ...]] = ()
    icc_key: ClassVar[str | None] = None
    #: engine parameters a study file may not set (fixed by the design)
    fixed: ClassVar[dict] = {}
    #: engine parameters set from the feature columns, not by the study file (``dl_backbones``)
    derived: ClassVar[tuple[str, ...]] = ()

    def __init__(self, section: dict | None = None, *, variables=None, seed: int | None = None,
                 icc: pd.Series | None = None, icc_threshold: float | None = None):
        self.section = {k: v for k, v in (section or {}).items() if k not in ("design", *RUNNER_MODEL_KEYS)}
        self.variables = variables
        self.seed = seed
        if icc is not None and self.icc_key is not None:
            sub = dict(self.section.get(self.icc_key) or {})
            sub.setdefault("icc", icc)
            if icc_threshold is not None:
                sub.setdefault("icc_threshold", icc_threshold)
            self.section[self.icc_key] = sub

    # -- the schema of the section ------------------------------------------------------------
    @classmethod
    def parameters(cls) -> list[str]:
        """The keys a study file may set: the engine's parameters less the fixed and derived ones."""
        import inspect

        return [p for p in inspect.signature(cls.engine).parameters if p not in cls.fixed and p not in cls.derived]

    @classmethod
    def keys(cls) -> tuple[Key, ...]:
        """The declarations of this design's ``models:`` keys (:mod:`sonorad.study.schema` checks them).

        One per :meth:`parameters`, in the engine's order: the design's own ``declared`` keys, the
        keys every design shares (zoo models, tuning) and its selection sections; any other engine
        parameter is accepted as it is given.
        """
        from sonorad.designs._common import selection_section

        own = {k.name: k for k in (*SHARED_KEYS, *cls.declared)}
        for name in cls.selection_keys:
            own.setdefault(name, selection_section(name))
        return tuple(own.get(p, Key(p, "any", nullable=True)) for p in cls.parameters())

    @classmethod
    def section_problems(cls, section: dict) -> list:
        """Every problem of ``section`` (a ``models:`` section naming this design) under :meth:`keys`.

        The runner's own keys (:data:`~sonorad.defaults.RUNNER_MODEL_KEYS`) and ``design`` are
        left to the study-file schema, which checks the whole section before a run starts.
        """
        from sonorad.keys import Checker

        own = {k: v for k, v in section.items() if k not in ("design", *RUNNER_MODEL_KEYS)}
        checker = Checker()
        checker.check(Key("models", "mapping", keys=cls.keys()), own, "models")
        return checker.problems

    # -- fitting ------------------------------------------------------------------------------
    def build_engine(self, columns: FeatureColumns):
        """The unfitted engine with the section's settings, the seed and the declared variables."""
        params = {**self.section, **self.fixed}
        if self.seed is not None:
            params.setdefault("random_state", self.seed)
        allowed = set(self.parameters()) | set(self.fixed)
        if "dl_backbones" in self.derived:
            params["dl_backbones"] = list(columns.backbones) or None
        if self.variables is not None:
            levels = {n: list(v.order if v.type == "ordinal" else v.levels)
                      for n, v in self.variables.items() if (v.order if v.type == "ordinal" else v.levels)}
            typed = {"us_variables": {n: self.variables[n].type for n in columns.us} or None,
                     "clinical_variables": {n: self.variables[n].type for n in columns.clinical} or None,
                     "categories": levels or None}
            for key, value in typed.items():
                if key in allowed:
                    params.setdefault(key, value)
        return self.engine(**params)

    def fit(self, X: pd.DataFrame, y: pd.Series, groups=None, *, columns: FeatureColumns) -> DesignResult:
        """Fit on the training cohort's model input table ``X`` (labels ``y``, patient ids ``groups``).

        With declared variables the result also holds the clinical reference model
        (:mod:`sonorad.designs.reference`), fitted on the same rows and tuned in the same folds.
        """
        from sonorad.designs.reference import with_reference

        engine = self.build_engine(columns)
        engine.fit(columns.tables(X), y, groups=groups, centers=X["center"].astype(str))
        return with_reference(self.result(engine, columns), engine, X, y, groups, columns, self.variables)

    def result(self, engine, columns: FeatureColumns) -> DesignResult:  # pragma: no cover - abstract
        raise NotImplementedError
