"""Building blocks shared by the designs: column routing, zoo tuning and imaging selection.

Every design fits on the training cohort only. Selection steps sit inside the Pipelines that the
grouped cross-validation tunes, so every fold re-selects and the tuning CV AUC is honest. Selection
steps are identical across models and hyperparameters, so the Pipelines cache their fitted selection
(``joblib.Memory`` in a temporary folder during ``fit``) and each fold's selection is computed once.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from sonorad.errors import ConfigError
from sonorad.keys import Checker, Key, word

__all__ = ["FeatureBlocks", "SELECTION_DEFAULTS", "selection_section", "selection_steps"]

#: Keys of an imaging selection section (``rad_score``, ``dl_score``, ``selection``) and their defaults.
SELECTION_DEFAULTS = {"icc": None, "icc_threshold": 0.75, "icc_missing": "keep", "test": "mannwhitney",
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
    memory : str, joblib.Memory or None
        Cache each block's fitted transformer, keyed by the transformer, its rows and columns and
        its fit parameters (as ``Pipeline(memory=...)`` caches its steps). Two FeatureBlocks with
        one identical block (the feature-families RadiomicsDL and Combined families share their imaging
        selection) then fit it once per set of rows.
    """

    def __init__(self, blocks=None, memory=None):
        self.blocks = blocks
        self.memory = memory

    def fit(self, X, y=None, **fit_params):
        if not isinstance(X, pd.DataFrame):
            raise TypeError("FeatureBlocks needs a DataFrame.")
        from sklearn.utils.validation import check_memory

        fit_block = check_memory(self.memory).cache(_fit_block)
        self.transformers_ = []
        for name, transformer, columns in self.blocks:
            absent = [c for c in columns if c not in X.columns]
            if absent:
                raise ValueError(f"Block {name!r}: columns {absent[:5]} are missing. Fix: add them to the table.")
            params = {k.split("__", 1)[1]: v for k, v in fit_params.items() if k.startswith(f"{name}__")}
            if transformer == "passthrough":
                self.transformers_.append((name, "passthrough", list(columns)))
                continue
            fitted = fit_block(clone(transformer), X[list(columns)], y, **params)
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


def _fit_block(transformer, X, y, **params):
    if hasattr(transformer, "set_output"):
        transformer.set_output(transform="pandas")
    return transformer.fit(X, y, **params)


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
    """Tune ``Pipeline(front_steps + [("model", zoo model)])`` for every model.

    Returns ``(pipelines, tuning-CV AUC, best parameters, fold AUCs)``: the tuning-CV AUC of a model is
    the mean AUC over the tuning folds of its best candidate; the fold AUCs (rows: folds, columns:
    models) are that candidate's AUC in each fold, for the one-standard-error rule
    (:func:`sonorad.designs.choice.choose_model`).
    """
    from sonorad.models import get_model, search_space, tune_pipeline

    pipelines, cv_auc, params, folds = {}, {}, {}, {}
    for name in models:
        model = get_model(name, random_state=random_state, class_weight=class_weight, resample=resample)
        pipe = Pipeline([*[(n, clone(s)) for n, s in front_steps], ("model", model)], memory=memory)
        with warnings.catch_warnings():  # scikit-learn hands the filters on to its joblib workers
            if name == "mlp":  # its 300-iteration cap is deliberate early stopping (sonorad.models._mlp)
                warnings.simplefilter("ignore", ConvergenceWarning)
            search = tune_pipeline(pipe, search_space(name, model, prefix="model__"), X, y, groups, cv=cv,
                                   random_state=random_state, n_iter=n_iter, fit_params=fit_params,
                                   n_jobs=n_jobs)
        best = search.best_estimator_
        best.set_params(memory=None)
        for _, step in best.steps:
            if isinstance(step, FeatureBlocks):
                step.set_params(memory=None)
        pipelines[name] = best
        cv_auc[name] = float(search.best_score_)
        params[name] = search.best_params_
        folds[name] = _fold_scores(search)
    return pipelines, pd.Series(cv_auc, name="cv_auc"), params, pd.DataFrame(folds)


def _fold_scores(search) -> np.ndarray:
    """The best candidate's AUC in every tuning fold of a fitted grid / randomised search."""
    results, best = search.cv_results_, search.best_index_
    keys = sorted((k for k in results if k.startswith("split") and k.endswith("_test_score")),
                  key=lambda k: int(k[len("split"):-len("_test_score")]))
    return np.array([float(results[k][best]) for k in keys])


def _imaging_selection(cfg, random_state, harmonize, harmonize_options, center_column="center"):
    from sonorad.harmonize import ComBatHarmonizer
    from sonorad.selection import CorrelationFilter, ICCFilter, LassoSelector, UnivariateFilter, ZScore

    cfg = {**SELECTION_DEFAULTS, **(cfg or {})}
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


def selection_section(name: str) -> Key:
    """The declaration of an imaging selection section called ``name`` (its keys: :data:`SELECTION_DEFAULTS`)."""
    settings = ", ".join(f"`{key}` ({word(value)})" for key, value in SELECTION_DEFAULTS.items())
    return Key(name, "mapping", "imaging feature selection (z-score -> univariate test -> redundancy filter -> "
               f"LASSO); keys (default): {settings}", nullable=True,
               keys=tuple(Key(key, "any", default_doc=f"`{word(value)}`") for key, value in SELECTION_DEFAULTS.items()))


def _check_selection_keys(cfg, what):
    """Raise :class:`ConfigError` naming every problem of a selection section given to an engine directly."""
    checker = Checker()
    checker.check(selection_section(what), cfg, what)
    if checker.problems:
        raise ConfigError("; ".join(f"{p.column}: {p.message}" for p in checker.problems))




def selection_steps(cfg: dict | None) -> list[str]:
    """The imaging selection steps of one selection section, as sentences for the methods text."""
    sel = {**SELECTION_DEFAULTS, **(cfg or {})}
    steps = ["z-score with training means and SDs"]
    if sel["icc"] is not None:
        steps.append(f"ICC(3,1) >= {sel['icc_threshold']}")
    if sel["alpha"] is not None:
        test = {"mannwhitney": "Mann-Whitney U test", "ttest": "t-test"}.get(sel["test"], sel["test"])
        steps.append(f"{test} (p < {sel['alpha']}{', Benjamini-Hochberg FDR' if sel['fdr'] else ''}"
                     + (f", at most {sel['max_univariate']} features" if sel["max_univariate"] else "") + ")")
    if sel["correlation_threshold"] is not None:
        steps.append(f"{sel['correlation'].capitalize()} redundancy filter (|r| < {sel['correlation_threshold']}, "
                     "keeping the member of each pair more related to the outcome)")
    method = "logistic regression" if sel["method"] == "logistic" else "linear regression"
    steps.append(f"LASSO {method} with {sel['cv']}-fold patient-grouped cross-validation "
                 f"({'one-standard-error' if sel['rule'] == '1se' else 'minimum-error'} rule)")
    return steps
