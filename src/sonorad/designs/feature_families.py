"""Feature-families design: US, Radiomics, DL, RadiomicsDL and
Combined families, every zoo model in each.

Families ``us`` (encoded US variables), ``radiomics``, ``dl``, ``radiomics_dl`` (fused radiomics +
deep columns) and ``combined`` (radiomics_dl selection + US variables), each a Pipeline
``[select] -> zoo model`` for every zoo model, tuned by grouped CV; the chosen model of each
family is picked by the one-standard-error rule on the tuning-CV AUCs (:mod:`sonorad.designs.choice`),
and the primary model is the chosen model of the family with the highest tuning-CV AUC. Models are
named ``family/model``.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from sonorad.designs._common import (FeatureBlocks, _as_series, _check_selection_keys, _fit_zoo,
                                     _imaging_selection, _labels, _rows, _with_center, _zoo_models,
                                     selection_steps)
from sonorad.designs.base import ColumnModel, DesignResult, FeatureColumns
from sonorad.designs.design import Design
from sonorad.designs.choice import TIE_RULE, choose_model
from sonorad.errors import ConfigError
from sonorad.keys import Key

__all__ = ["FeatureFamiliesEngine", "FeatureFamiliesDesign", "FAMILIES"]

FAMILIES = ("us", "radiomics", "dl", "radiomics_dl", "combined")


class FeatureFamiliesEngine(BaseEstimator):
    """Feature-families design: US, Radiomics, DL, RadiomicsDL and Combined families x every zoo model.

    Parameters
    ----------
    families : sequence of str, default=all of ``FAMILIES``
    models : list of str or None
        Zoo models (``None``: all).
    selection : dict or None
        Imaging selection parameters (as ``ScoreFusionEngine.rad_score``), shared by the imaging families.
    us_variables, categories : dict or None
        US variable types and levels (:class:`~sonorad.clinical.ClinicalEncoder`).
    cv, n_iter, class_weight, resample, harmonize, harmonize_options, random_state, n_jobs :
        As in :class:`ScoreFusionEngine`.

    Attributes
    ----------
    pipelines_ : dict
        ``{family: {model: fitted Pipeline}}``; each Pipeline is ``select`` -> ``model``.
    cv_auc_ : DataFrame
        Tuning-CV AUC, rows = models, columns = families.
    fold_auc_ : dict
        Family -> the best candidates' AUC in each tuning fold (rows: folds, columns: models).
    choice_ : dict
        Family -> its :class:`~sonorad.designs.choice.ModelChoice` (one-standard-error rule).
    best_model_ : dict
        Family -> its chosen model.
    selected_features_ : dict
        Family -> predictors kept by its selection (fitted on the whole training cohort).
    """

    def __init__(self, families=FAMILIES, models=None, selection=None, us_variables=None,
                 categories=None, cv: int = 5, n_iter: int | None = None, class_weight: str | None = None,
                 resample: str | None = None, harmonize: bool = False, harmonize_options=None,
                 random_state: int = 0, n_jobs: int | None = None):
        self.families = families
        self.models = models
        self.selection = selection
        self.us_variables = us_variables
        self.categories = categories
        self.cv = cv
        self.n_iter = n_iter
        self.class_weight = class_weight
        self.resample = resample
        self.harmonize = harmonize
        self.harmonize_options = harmonize_options
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _input(self, family, tables, index, centers):
        parts = []
        if family in ("radiomics", "radiomics_dl", "combined"):
            parts.append(_rows(tables, "radiomics", index))
        if family in ("dl", "radiomics_dl", "combined"):
            parts.append(_rows(tables, "deep", index))
        if family in ("us", "combined"):
            us = _rows(tables, "us", index)
            parts.append(us[list(self.us_variables)] if self.us_variables is not None else us)
        X = pd.concat(parts, axis=1)
        if X.columns.duplicated().any():
            raise ValueError(f"Columns {list(X.columns[X.columns.duplicated()])[:5]} appear in two tables. "
                             "Fix: rename them.")
        if self.harmonize and family != "us":
            if centers is None:
                raise ValueError("harmonize=True needs the center of every case. Fix: pass centers=.")
            X = _with_center(X, centers, "__center__")
        return X

    def _front(self, family, tables, memory=None):
        from sonorad.clinical import ClinicalEncoder

        _check_selection_keys(self.selection, "selection")
        us_cols = (list(self.us_variables) if self.us_variables is not None
                   else list(tables["us"].columns) if tables.get("us") is not None else [])
        encoder = ClinicalEncoder(variables=self.us_variables, categories=self.categories)
        if family == "us":
            return [("select", FeatureBlocks([("us", encoder, us_cols)], memory=memory))], {}
        imaging = _imaging_selection(self.selection, self.random_state, self.harmonize, self.harmonize_options,
                                     center_column="__center__")
        cols = []
        if family in ("radiomics", "radiomics_dl", "combined"):
            cols += list(tables["radiomics"].columns)
        if family in ("dl", "radiomics_dl", "combined"):
            cols += list(tables["deep"].columns)
        if self.harmonize:
            cols.append("__center__")
        blocks = [("imaging", imaging, cols)]
        if family == "combined":
            blocks.append(("us", encoder, us_cols))
        return [("select", FeatureBlocks(blocks, memory=memory))], {"select__imaging__lasso__groups": None}

    def fit(self, tables: dict, y, groups=None, centers=None):
        """Fit every family x model on the training cohort (see :meth:`ScoreFusionEngine.fit`)."""
        y = _labels(y, tables)
        index = y.index
        groups = _as_series(groups, index, "groups")
        g = None if groups is None else groups.to_numpy()
        centers = _as_series(centers, index, "centers")
        models = _zoo_models(self.models)
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise ConfigError(f"Unknown family(ies) {unknown}; choose among {FAMILIES}.")
        self.pipelines_, aucs, self.best_params_, self.selected_features_, self.fold_auc_ = {}, {}, {}, {}, {}
        with tempfile.TemporaryDirectory(prefix="sonorad-cache-") as cache:
            for family in self.families:
                X = self._input(family, tables, index, centers)
                front, fit_params = self._front(family, tables, memory=cache)
                fit_params = {k: g for k in fit_params}
                pipes, auc, params, folds = _fit_zoo(front, X, y.to_numpy(), g, fit_params, models=models, cv=self.cv,
                                              n_iter=self.n_iter, class_weight=self.class_weight,
                                              resample=self.resample, random_state=self.random_state,
                                              memory=cache, n_jobs=self.n_jobs)
                self.pipelines_[family], aucs[family], self.best_params_[family] = pipes, auc, params
                self.fold_auc_[family] = folds
                first = pipes[models[0]].named_steps["select"]
                self.selected_features_[family] = list(first.get_feature_names_out())
        self.cv_auc_ = pd.DataFrame(aucs)
        self.choice_ = {f: choose_model(self.cv_auc_[f], self.fold_auc_[f]) for f in self.families}
        self.best_model_ = {f: c.chosen for f, c in self.choice_.items()}
        return self

    def model_input(self, family: str, tables: dict, centers=None) -> pd.DataFrame:
        """The input table of one family's Pipelines (for SHAP and inspection)."""
        index = next(t.index for t in tables.values() if t is not None)
        return self._input(family, tables, index, _as_series(centers, index, "centers"))

    def predict_proba(self, tables: dict, centers=None, *, best_only: bool = False) -> pd.DataFrame:
        """P(positive) per case; columns ``(family, model)`` (or one column per family's best model)."""
        check_is_fitted(self, "pipelines_")
        index = next(t.index for t in tables.values() if t is not None)
        centers = _as_series(centers, index, "centers")
        out = {}
        for family, pipes in self.pipelines_.items():
            X = self._input(family, tables, index, centers)
            chosen = [self.best_model_[family]] if best_only else list(pipes)
            for name in chosen:
                out[family if best_only else (family, name)] = pipes[name].predict_proba(X)[:, 1]
        frame = pd.DataFrame(out, index=index)
        if not best_only:
            frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["family", "model"])
        return frame

    # -- what the fitted family learned ----------------------------------------------------------
    def _selects(self):
        for fam, pipes in self.pipelines_.items():
            yield fam, next(iter(pipes.values())).named_steps["select"]

    def funnel(self) -> pd.DataFrame:
        """Selection funnel of every block of every family."""
        from sonorad.designs.funnel import selection_funnel

        check_is_fitted(self, "pipelines_")
        frames = []
        for fam, select in self._selects():
            for block, transformer, columns in select.transformers_:
                if isinstance(transformer, Pipeline):
                    n = len([c for c in columns if c != "__center__"])
                    frames.append(selection_funnel(transformer.steps, n, f"{fam}: {block}"))
                else:
                    n = len(transformer.get_feature_names_out()) if transformer != "passthrough" else len(columns)
                    frames.append(pd.DataFrame([{"signature": f"{fam}: {block}", "step": "encoded variables",
                                                 "n_features": n}]))
        return pd.concat(frames, ignore_index=True)

    def lasso_paths(self) -> dict[str, pd.DataFrame]:
        check_is_fitted(self, "pipelines_")
        out = {}
        for fam, select in self._selects():
            for _, transformer, _ in select.transformers_:
                if isinstance(transformer, Pipeline) and "lasso" in transformer.named_steps:
                    out[fam] = transformer.named_steps["lasso"].path_frame()
        return out


class FeatureFamiliesDesign(Design):
    """US, Radiomics, DL, RadiomicsDL and Combined families x the model zoo."""

    name = "feature_families"
    aliases = ("study2",)
    title = "US, Radiomics, DL, RadiomicsDL and Combined families (model zoo in each)"
    engine = FeatureFamiliesEngine
    selection_keys = ("selection",)
    icc_key = "selection"
    declared = (
        Key("families", "names", "any of `us, radiomics, dl, radiomics_dl, combined`", nullable=True,
            choices=FAMILIES, noun="family", plural="families", default_doc="all five"),
    )

    def _columns(self, family: str, engine: FeatureFamiliesEngine, columns: FeatureColumns) -> list[str]:
        cols = []
        if family in ("radiomics", "radiomics_dl", "combined"):
            cols += list(columns.radiomics)
        if family in ("dl", "radiomics_dl", "combined"):
            cols += list(columns.deep)
        if family in ("us", "combined"):
            cols += list(engine.us_variables) if engine.us_variables is not None else list(columns.us)
        if engine.harmonize and family != "us":
            cols.append("center")
        return cols

    def result(self, engine: FeatureFamiliesEngine, columns: FeatureColumns) -> DesignResult:
        models, families = {}, {}
        for fam, pipes in engine.pipelines_.items():
            cols = self._columns(fam, engine, columns)
            rename = {"center": "__center__"} if "center" in cols else None
            families[fam] = tuple(f"{fam}/{m}" for m in pipes)
            for m, pipe in pipes.items():
                models[f"{fam}/{m}"] = ColumnModel.fitted(pipe, cols, rename)
        cv = engine.cv_auc_
        cv_auc = pd.Series({f"{fam}/{m}": cv.loc[m, fam] for fam in cv.columns for m in cv.index}, name="cv_auc")
        chosen = {fam: f"{fam}/{m}" for fam, m in engine.best_model_.items()}
        primary = max(chosen.values(), key=lambda n: cv_auc.get(n, -1))
        steps = selection_steps(engine.selection)
        if len(cv.index) > 1:
            steps.append(f"the model of each family is chosen by the {TIE_RULE}; the primary model is the chosen "
                         "model of the family with the highest tuning-CV AUC")
        return DesignResult(
            design=self.name, models=models, families=families, chosen=chosen, primary=primary,
            highlight=tuple(chosen.values()), cv_auc=cv_auc, selected_features=dict(engine.selected_features_),
            funnel=engine.funnel(), lasso_paths=engine.lasso_paths(), methods=tuple(steps),
            choices={fam: replace(c, chosen=f"{fam}/{c.chosen}", best=f"{fam}/{c.best}",
                                  tied=tuple(f"{fam}/{m}" for m in c.tied),
                                  tuning_cv_auc=c.tuning_cv_auc.rename(lambda m: f"{fam}/{m}"))
                     for fam, c in engine.choice_.items()})
