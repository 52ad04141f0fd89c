"""Model families of the two seed studies, as one configurable builder each.

Both builders take a dict of feature tables indexed by ``case_id``::

    tables = {"radiomics": ..., "deep": ..., "clinical": ..., "us": ...}

labels ``y`` (Series indexed by case_id, 0/1), patient ids ``groups`` and, when ComBat is on,
``centers``; they fit on the training cohort only and predict probabilities for any cohort.

Study 1 (:class:`Study1Family`)
    1. Rad-score from radiomics, DL-score from deep features (:class:`sonorad.scores.RadScore`:
       z-score -> univariate -> correlation -> LASSO), each optionally after ComBat.
    2. The training cohort's scores fed to stage 2 are **out-of-fold**: each training case's
       score comes from a score model fitted on the other folds (patient-grouped, stratified),
       so stage 2 learns how the scores behave on unseen cases; the scores are then refitted on
       the whole training cohort to score new cohorts. (As in stacking, a stage-2 validation
       case may have helped fit the score of a stage-2 training case; its own score never saw
       its label.)
    3. Stage 2, one Pipeline per zoo model: encode clinical + US variables, keep the two
       scores -> LASSO selection (internally z-scored, predictors passed in their own units)
       -> zoo model. Selection sits inside the Pipeline, so the grouped CV that tunes every
       model re-selects in every fold; its CV AUC (``cv_auc_``) is honest.

Study 2 (:class:`Study2Family`)
    Families ``us`` (encoded US variables), ``radiomics``, ``dl``, ``radiomics_dl`` (fused
    radiomics + deep columns) and ``combined`` (radiomics_dl selection + US variables), each a
    Pipeline ``[select] -> zoo model`` for every zoo model, tuned by grouped CV; the best model
    of each family is the one with the highest training CV AUC.

Selection steps are identical across models and hyperparameters, so the Pipelines cache their
fitted selection (``joblib.Memory`` in a temporary folder during ``fit``) and each fold's
selection is computed once.
"""

from __future__ import annotations

import inspect
import tempfile

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from sonorad.errors import ConfigError

__all__ = ["FeatureBlocks", "Study1Family", "Study2Family", "build_family", "STUDY2_FAMILIES"]

STUDY2_FAMILIES = ("us", "radiomics", "dl", "radiomics_dl", "combined")
_SELECTION_DEFAULTS = {"icc": None, "icc_threshold": 0.75, "icc_missing": "keep", "test": "mannwhitney",
                       "alpha": 0.05, "fdr": False, "max_univariate": None,
                       "correlation": "spearman", "correlation_threshold": 0.9, "method": "logistic",
                       "rule": "min", "n_lambdas": 30, "cv": 10}


class FeatureBlocks(TransformerMixin, BaseEstimator):
    """Apply one transformer per block of columns and concatenate the outputs (a DataFrame).

    Like ``ColumnTransformer`` but it routes fit parameters to the blocks by name
    (``<block>__<param>``, e.g. ``imaging__lasso__groups``), so a LASSO inside a block gets the
    patient ids of the rows it is fitted on.

    Parameters
    ----------
    blocks : list of (name, transformer or "passthrough", list of columns)
    """

    def __init__(self, blocks=None):
        self.blocks = blocks

    def fit(self, X, y=None, **fit_params):
        if not isinstance(X, pd.DataFrame):
            raise TypeError("FeatureBlocks needs a DataFrame.")
        self.transformers_ = []
        for name, transformer, columns in self.blocks:
            absent = [c for c in columns if c not in X.columns]
            if absent:
                raise ValueError(f"Block {name!r}: columns {absent[:5]} are missing. Fix: add them to the table.")
            params = {k.split("__", 1)[1]: v for k, v in fit_params.items() if k.startswith(f"{name}__")}
            if transformer == "passthrough":
                self.transformers_.append((name, "passthrough", list(columns)))
                continue
            fitted = clone(transformer)
            if hasattr(fitted, "set_output"):
                fitted.set_output(transform="pandas")
            fitted.fit(X[list(columns)], y, **params)
            self.transformers_.append((name, fitted, list(columns)))
        self.feature_names_out_ = np.asarray(self._transform(X).columns, dtype=object)
        return self

    def _transform(self, X):
        parts = []
        for name, transformer, columns in self.transformers_:
            part = X[columns].astype(float) if transformer == "passthrough" else transformer.transform(X[columns])
            if not isinstance(part, pd.DataFrame):
                part = pd.DataFrame(np.asarray(part), index=X.index,
                                    columns=transformer.get_feature_names_out())
            parts.append(part)
        out = pd.concat(parts, axis=1)
        if out.columns.duplicated().any():
            dup = list(out.columns[out.columns.duplicated()])
            raise ValueError(f"Blocks produce duplicate columns {dup[:5]}. Fix: rename them in one table.")
        return out

    def transform(self, X):
        check_is_fitted(self, "transformers_")
        return self._transform(X)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


# -- shared plumbing --------------------------------------------------------------------------
def _as_series(values, index, what):
    if values is None:
        return None
    if isinstance(values, pd.Series):
        missing = index.difference(values.index)
        if len(missing):
            raise ValueError(f"{what} is missing for case(s) {list(missing[:5])}. Fix: give one value per case.")
        return values.loc[index]
    values = np.asarray(values)
    if len(values) != len(index):
        raise ValueError(f"{what} has {len(values)} values for {len(index)} cases. Fix: align it on case_id.")
    return pd.Series(values, index=index)


def _labels(y, tables):
    if isinstance(y, pd.Series):
        index = y.index
    else:
        first = next(iter(tables.values()))
        index = first.index
        y = pd.Series(np.asarray(y), index=index)
    if y.isna().any():
        raise ValueError(f"Label missing for case(s) {list(y.index[y.isna()][:5])}. Fix: drop or label them.")
    if set(np.unique(y)) - {0, 1}:
        raise ValueError(f"Labels must be 0/1; got {sorted(np.unique(y))[:5]}. Fix: encode the positive class as 1.")
    return y.astype(int)


def _rows(tables, name, index):
    if name not in tables or tables[name] is None:
        raise ValueError(f"The {name!r} table is required here. Fix: pass tables[{name!r}].")
    table = tables[name]
    missing = pd.Index(index).difference(table.index)
    if len(missing):
        raise ValueError(
            f"Table {name!r} has no row for case(s) {list(missing[:5])}"
            f"{' and more' if len(missing) > 5 else ''}. Fix: extract features for them or drop them."
        )
    return table.loc[index]


def _with_center(frame, centers, column="center"):
    out = frame.copy()
    out[column] = np.asarray(centers)
    return out


def _zoo_models(models):
    from sonorad.models import available_models

    names = available_models() if models is None else list(models)
    unknown = [m for m in names if m not in available_models()]
    if unknown:
        raise ConfigError(f"Unknown model(s) {unknown}. Choose among: {', '.join(available_models())}.")
    return names


def _fit_zoo(front_steps, X, y, groups, fit_params, *, models, cv, n_iter, class_weight, resample,
             random_state, memory, n_jobs=None):
    """Tune ``Pipeline(front_steps + [("model", zoo model)])`` for every model; return fitted + CV AUC."""
    from sonorad.models import get_model, search_space, tune_pipeline

    pipelines, cv_auc, params = {}, {}, {}
    for name in models:
        model = get_model(name, random_state=random_state, class_weight=class_weight, resample=resample)
        pipe = Pipeline([*[(n, clone(s)) for n, s in front_steps], ("model", model)], memory=memory)
        search = tune_pipeline(pipe, search_space(name, model, prefix="model__"), X, y, groups, cv=cv,
                               random_state=random_state, n_iter=n_iter, fit_params=fit_params,
                               n_jobs=n_jobs)
        best = search.best_estimator_
        best.set_params(memory=None)
        pipelines[name] = best
        cv_auc[name] = float(search.best_score_)
        params[name] = search.best_params_
    return pipelines, pd.Series(cv_auc, name="cv_auc"), params


def _imaging_selection(cfg, random_state, harmonize, harmonize_options, center_column="center"):
    from sonorad.harmonize import ComBatHarmonizer
    from sonorad.selection import CorrelationFilter, ICCFilter, LassoSelector, UnivariateFilter, ZScore

    cfg = {**_SELECTION_DEFAULTS, **(cfg or {})}
    steps = []
    if harmonize:
        steps.append(("combat", ComBatHarmonizer(center_column=center_column, **(harmonize_options or {}))))
    steps.append(("zscore", ZScore()))
    if cfg["icc"] is not None:
        steps.append(("icc", ICCFilter(cfg["icc"], threshold=cfg["icc_threshold"], missing=cfg["icc_missing"])))
    if cfg["alpha"] is not None:
        steps.append(("univariate", UnivariateFilter(test=cfg["test"], alpha=cfg["alpha"], fdr=cfg["fdr"],
                                                     max_features=cfg["max_univariate"])))
    if cfg["correlation_threshold"] is not None:
        steps.append(("correlation", CorrelationFilter(method=cfg["correlation"],
                                                       threshold=cfg["correlation_threshold"])))
    steps.append(("lasso", LassoSelector(method=cfg["method"], rule=cfg["rule"], n_lambdas=cfg["n_lambdas"],
                                         cv=cfg["cv"], random_state=random_state)))
    return Pipeline(steps).set_output(transform="pandas")


def _check_selection_keys(cfg, what):
    if cfg is None:
        return
    unknown = set(cfg) - set(_SELECTION_DEFAULTS)
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_SELECTION_DEFAULTS)}.")


# -- study 1 ----------------------------------------------------------------------------------
class Study1Family(BaseEstimator):
    """Study-1 design: Rad-score + DL-score, LASSO over clinical + US + scores, every zoo model.

    Parameters
    ----------
    models : list of str or None
        Zoo models to fit (``None``: all of :func:`sonorad.models.available_models`).
    rad_score, dl_score : dict or None
        Parameters of the two :class:`~sonorad.scores.RadScore` (keys: icc, icc_threshold,
        icc_missing, test, alpha, fdr, max_univariate, correlation, correlation_threshold,
        method, rule, n_lambdas, cv).
    final_selection : dict or None
        ``LassoSelector`` parameters of stage 2 (method, rule, n_lambdas, cv, scoring).
    clinical_variables, us_variables : dict or None
        ``{column: type}`` for the :class:`~sonorad.clinical.ClinicalEncoder` of each table
        (``None``: types inferred).
    categories : dict or None
        Level order of categorical / binary variables.
    cv : int, default=5
        Folds of the out-of-fold scores and of model tuning.
    n_iter : int or None
        Randomised search size per model (``None``: full grid).
    class_weight, resample :
        Class-imbalance options of :func:`sonorad.models.get_model`.
    harmonize : bool, default=False
        ComBat (fitted on training centers) before each score.
    harmonize_options : dict or None
        :class:`~sonorad.harmonize.ComBatHarmonizer` parameters.
    random_state : int, default=0
        The one seed of every fold, solver and model.
    n_jobs : int or None
        Parallel CV fits of the model searches (results do not depend on it).

    Attributes
    ----------
    rad_score_, dl_score_ : RadScore
        Scores refitted on the whole training cohort (``formula()``, ``lasso_.path_frame()``).
    score_pipelines_ : dict
        ``{"rad_score": Pipeline, "dl_score": Pipeline}`` (with ComBat when on).
    oof_scores_ : DataFrame
        Out-of-fold training scores fed to stage 2.
    stage2_training_ : DataFrame
        The stage-2 input of the training cohort (raw clinical/US columns + OOF scores).
    pipelines_ : dict
        Model name -> fitted stage-2 Pipeline (``encode``, ``lasso``, ``model``).
    selected_features_ : list of str
        Predictors kept by the stage-2 LASSO.
    cv_auc_ : Series
        Training CV AUC of every model (selection inside the CV).
    best_params_ : dict
    best_model_ : str
    """

    def __init__(self, models=None, rad_score=None, dl_score=None, final_selection=None,
                 clinical_variables=None, us_variables=None, categories=None, cv: int = 5,
                 n_iter: int | None = None, class_weight: str | None = None, resample: str | None = None,
                 harmonize: bool = False, harmonize_options=None, random_state: int = 0,
                 n_jobs: int | None = None):
        self.models = models
        self.rad_score = rad_score
        self.dl_score = dl_score
        self.final_selection = final_selection
        self.clinical_variables = clinical_variables
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

    _SCORES = (("rad_score", "radiomics"), ("dl_score", "deep"))

    def _score_pipeline(self, kind):
        from sonorad.harmonize import ComBatHarmonizer
        from sonorad.scores import DLScore, RadScore

        cfg = self.rad_score if kind == "rad_score" else self.dl_score
        _check_selection_keys(cfg, kind)
        cls = RadScore if kind == "rad_score" else DLScore
        steps = []
        if self.harmonize:
            steps.append(("combat", ComBatHarmonizer(**(self.harmonize_options or {}))))
        steps.append(("score", cls(**{**(cfg or {}), "random_state": self.random_state})))
        return Pipeline(steps)

    def _score_input(self, tables, kind_table, index, centers):
        X = _rows(tables, kind_table, index)
        if self.harmonize:
            if centers is None:
                raise ValueError("harmonize=True needs the center of every case. Fix: pass centers=.")
            X = _with_center(X, centers)
        return X

    def _present_scores(self, tables):
        return [(k, t) for k, t in self._SCORES if tables.get(t) is not None]

    def _stage2_blocks(self, tables, index):
        from sonorad.clinical import ClinicalEncoder

        blocks = []
        for name, variables in (("clinical", self.clinical_variables), ("us", self.us_variables)):
            if tables.get(name) is None:
                continue
            frame = _rows(tables, name, index)
            columns = list(variables) if variables is not None else list(frame.columns)
            blocks.append((name, ClinicalEncoder(variables=variables, categories=self.categories), columns))
        return blocks

    def _stage2_frame(self, tables, index, scores):
        parts = []
        for name, variables in (("clinical", self.clinical_variables), ("us", self.us_variables)):
            if tables.get(name) is not None:
                frame = _rows(tables, name, index)
                # only the declared columns, so one cases table can serve as both "clinical" and "us"
                parts.append(frame[list(variables)] if variables is not None else frame)
        parts.append(scores)
        frame = pd.concat(parts, axis=1)
        if frame.columns.duplicated().any():
            raise ValueError(f"Columns {list(frame.columns[frame.columns.duplicated()])} appear in two tables. "
                             "Fix: rename them.")
        return frame

    def fit(self, tables: dict, y, groups=None, centers=None):
        """Fit every step on the training cohort.

        Parameters
        ----------
        tables : dict of DataFrame
            ``radiomics``, ``deep``, ``clinical``, ``us`` (any subset with at least one), indexed by case_id.
        y : Series (indexed by case_id) or array aligned with the first table
            0/1 labels.
        groups : Series or array or None
            Patient ids (``None``: one patient per case).
        centers : Series or array or None
            Centers, needed when ``harmonize=True``.
        """
        from sonorad.selection import LassoSelector, make_grouped_cv

        y = _labels(y, tables)
        index = y.index
        groups = _as_series(groups, index, "groups")
        g = None if groups is None else groups.to_numpy()
        centers = _as_series(centers, index, "centers")
        models = _zoo_models(self.models)
        folds = make_grouped_cv(self.cv, y.to_numpy(), g, random_state=self.random_state)

        self.score_pipelines_, oof = {}, {}
        for kind, table in self._present_scores(tables):
            X = self._score_input(tables, table, index, centers)
            pipe = self._score_pipeline(kind)
            values = np.empty(len(index))
            for tr, te in folds:
                fold = clone(pipe).fit(X.iloc[tr], y.iloc[tr], score__groups=None if g is None else g[tr])
                values[te] = fold.decision_function(X.iloc[te])
            oof[kind] = values
            self.score_pipelines_[kind] = pipe.fit(X, y, score__groups=g)
        self.rad_score_ = self.score_pipelines_["rad_score"][-1] if "rad_score" in self.score_pipelines_ else None
        self.dl_score_ = self.score_pipelines_["dl_score"][-1] if "dl_score" in self.score_pipelines_ else None
        self.oof_scores_ = pd.DataFrame(oof, index=index)

        blocks = self._stage2_blocks(tables, index)
        if len(self.oof_scores_.columns):
            blocks.append(("scores", "passthrough", list(self.oof_scores_.columns)))
        if not blocks:
            raise ValueError("No input table given. Fix: pass at least one of radiomics, deep, clinical, us.")
        self.stage2_training_ = self._stage2_frame(tables, index, self.oof_scores_)
        final = {"cv": 10, "n_lambdas": 30, **(self.final_selection or {})}
        front = [("encode", FeatureBlocks(blocks)),
                 ("lasso", LassoSelector(standardize=True, random_state=self.random_state, **final))]
        with tempfile.TemporaryDirectory(prefix="sonorad-cache-") as cache:
            self.pipelines_, self.cv_auc_, self.best_params_ = _fit_zoo(
                front, self.stage2_training_, y.to_numpy(), g, {"lasso__groups": g}, models=models,
                cv=self.cv, n_iter=self.n_iter, class_weight=self.class_weight, resample=self.resample,
                random_state=self.random_state, memory=cache, n_jobs=self.n_jobs)
        first = self.pipelines_[models[0]]
        self.selected_features_ = list(first.named_steps["lasso"].get_feature_names_out())
        self.best_model_ = str(self.cv_auc_.idxmax())
        return self

    def scores(self, tables: dict, centers=None) -> pd.DataFrame:
        """Rad-score / DL-score values (log-odds) of every case of ``tables``, from the full-training fits."""
        check_is_fitted(self, "pipelines_")
        index = self._index(tables)
        centers = _as_series(centers, index, "centers")
        out = {}
        for kind, table in self._present_scores(tables):
            if kind not in self.score_pipelines_:
                continue
            X = self._score_input(tables, table, index, centers)
            out[kind] = self.score_pipelines_[kind].decision_function(X)
        return pd.DataFrame(out, index=index)

    def _index(self, tables):
        for name in ("radiomics", "deep", "clinical", "us"):
            if tables.get(name) is not None:
                return tables[name].index
        raise ValueError("No table given. Fix: pass the same tables as for fit.")

    def stage2_features(self, tables: dict, centers=None) -> pd.DataFrame:
        """Stage-2 input (raw clinical/US columns + scores) of any cohort."""
        index = self._index(tables)
        return self._stage2_frame(tables, index, self.scores(tables, centers))

    def predict_proba(self, tables: dict, centers=None) -> pd.DataFrame:
        """P(positive) of every case: one column per zoo model, plus ``rad_score`` / ``dl_score``.

        The score columns are the logistic transform of each score (their own probability), so
        every column can be evaluated the same way.
        """
        features = self.stage2_features(tables, centers)
        out = {}
        for kind in self.score_pipelines_:
            out[kind] = self.score_pipelines_[kind].predict_proba(
                self._score_input(tables, dict(self._SCORES)[kind], features.index,
                                  _as_series(centers, features.index, "centers")))[:, 1]
        for name, pipe in self.pipelines_.items():
            out[name] = pipe.predict_proba(features)[:, 1]
        return pd.DataFrame(out, index=features.index)


# -- study 2 ----------------------------------------------------------------------------------
class Study2Family(BaseEstimator):
    """Study-2 design: US, Radiomics, DL, RadiomicsDL and Combined families x every zoo model.

    Parameters
    ----------
    families : sequence of str, default=all of ``STUDY2_FAMILIES``
    models : list of str or None
        Zoo models (``None``: all).
    selection : dict or None
        Imaging selection parameters (as ``Study1Family.rad_score``), shared by the imaging families.
    us_variables, categories : dict or None
        US variable types and levels (:class:`~sonorad.clinical.ClinicalEncoder`).
    cv, n_iter, class_weight, resample, harmonize, harmonize_options, random_state, n_jobs :
        As in :class:`Study1Family`.

    Attributes
    ----------
    pipelines_ : dict
        ``{family: {model: fitted Pipeline}}``; each Pipeline is ``select`` -> ``model``.
    cv_auc_ : DataFrame
        Training CV AUC, rows = models, columns = families.
    best_model_ : dict
        Family -> model with the best training CV AUC.
    selected_features_ : dict
        Family -> predictors kept by its selection (fitted on the whole training cohort).
    """

    def __init__(self, families=STUDY2_FAMILIES, models=None, selection=None, us_variables=None,
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

    def _front(self, family, tables):
        from sonorad.clinical import ClinicalEncoder

        _check_selection_keys(self.selection, "selection")
        us_cols = (list(self.us_variables) if self.us_variables is not None
                   else list(tables["us"].columns) if tables.get("us") is not None else [])
        encoder = ClinicalEncoder(variables=self.us_variables, categories=self.categories)
        if family == "us":
            return [("select", FeatureBlocks([("us", encoder, us_cols)]))], {}
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
        return [("select", FeatureBlocks(blocks))], {"select__imaging__lasso__groups": None}

    def fit(self, tables: dict, y, groups=None, centers=None):
        """Fit every family x model on the training cohort (see :meth:`Study1Family.fit`)."""
        y = _labels(y, tables)
        index = y.index
        groups = _as_series(groups, index, "groups")
        g = None if groups is None else groups.to_numpy()
        centers = _as_series(centers, index, "centers")
        models = _zoo_models(self.models)
        unknown = [f for f in self.families if f not in STUDY2_FAMILIES]
        if unknown:
            raise ConfigError(f"Unknown family(ies) {unknown}; choose among {STUDY2_FAMILIES}.")
        self.pipelines_, aucs, self.best_params_, self.selected_features_ = {}, {}, {}, {}
        with tempfile.TemporaryDirectory(prefix="sonorad-cache-") as cache:
            for family in self.families:
                X = self._input(family, tables, index, centers)
                front, fit_params = self._front(family, tables)
                fit_params = {k: g for k in fit_params}
                pipes, auc, params = _fit_zoo(front, X, y.to_numpy(), g, fit_params, models=models, cv=self.cv,
                                              n_iter=self.n_iter, class_weight=self.class_weight,
                                              resample=self.resample, random_state=self.random_state,
                                              memory=cache, n_jobs=self.n_jobs)
                self.pipelines_[family], aucs[family], self.best_params_[family] = pipes, auc, params
                first = pipes[models[0]].named_steps["select"]
                self.selected_features_[family] = list(first.get_feature_names_out())
        self.cv_auc_ = pd.DataFrame(aucs)
        self.best_model_ = {f: str(self.cv_auc_[f].idxmax()) for f in self.families}
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


def build_family(section: dict | None, *, variables=None, seed: int | None = None):
    """Build a family builder from the ``models:`` section of a study file.

    Parameters
    ----------
    section : dict or None
        ``design`` (``"study1"``, default, or ``"study2"``) plus any constructor parameter of
        :class:`Study1Family` / :class:`Study2Family` (``models``, ``cv``, ``n_iter``,
        ``class_weight``, ``resample``, ``harmonize``, ``rad_score``, ``selection``, ...).
    variables : mapping of str -> sonorad.study.VariableSpec, optional
        ``StudyConfig.variables``: fills ``clinical_variables`` (role ``clinical`` or no role),
        ``us_variables`` (role ``ultrasound``) and ``categories`` (declared levels / order) unless
        the section sets them.
    seed : int, optional
        The study seed, used as ``random_state`` unless the section sets one.

    Returns
    -------
    Study1Family or Study2Family
        Unfitted.

    Examples
    --------
    >>> build_family({"design": "study2", "models": ["logistic_regression", "svm"], "cv": 5}).cv
    5
    """
    section = dict(section or {})
    design = section.pop("design", "study1")
    classes = {"study1": Study1Family, "study2": Study2Family}
    if design not in classes:
        raise ConfigError(f"models.design = {design!r}; choose 'study1' or 'study2'.")
    cls = classes[design]
    allowed = set(inspect.signature(cls).parameters)
    unknown = set(section) - allowed
    if unknown:
        raise ConfigError(f"models: unknown key(s) {sorted(unknown)} for design {design!r}; "
                          f"allowed: {sorted(allowed | {'design'})}.")
    if seed is not None:
        section.setdefault("random_state", seed)
    if variables is not None:
        def typed(role_ok):
            return {n: v.type for n, v in variables.items() if role_ok(v.role)} or None

        levels = {n: list(v.order if v.type == "ordinal" else v.levels)
                  for n, v in variables.items() if (v.order if v.type == "ordinal" else v.levels)}
        section.setdefault("us_variables", typed(lambda r: r == "ultrasound"))
        if "clinical_variables" in allowed:
            section.setdefault("clinical_variables", typed(lambda r: r != "ultrasound"))
        section.setdefault("categories", levels or None)
    return cls(**section)
