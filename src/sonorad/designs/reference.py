"""The clinical reference model: a logistic regression on the declared variables alone.

What reviewers ask of every imaging model: does it add anything to the clinical and ultrasound
variables? Every design with declared variables also fits ``clinical_reference``, the zoo's logistic
regression on those variables only, encoded as the design encodes them (one
:class:`~sonorad.clinical.ClinicalEncoder` per role, the design's types and level orders), fitted
on the training cohort only and tuned in the same patient-grouped folds as the design's models (its
tuning-CV AUC is comparable with theirs). It is never the chosen model; it is the comparator of
:func:`sonorad.evaluation.comparison.compare_with_reference`.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from sklearn.pipeline import Pipeline

from sonorad.designs._common import FeatureBlocks, _as_series, _fit_zoo, _labels
from sonorad.designs.base import ColumnModel, DesignResult, FeatureColumns, ScoreStack

__all__ = ["REFERENCE", "reference_blocks", "fit_reference", "with_reference", "logistic_predictors"]

#: Name of the clinical reference model in a :class:`~sonorad.designs.base.DesignResult`.
REFERENCE = "clinical_reference"


def _types(engine, role: str, names, variables) -> dict | None:
    declared = getattr(engine, f"{role}_variables", None)
    if declared is not None:
        return dict(declared)
    if variables:
        return {n: variables[n].type for n in names if n in variables} or None
    return None


def _categories(engine, variables) -> dict | None:
    if getattr(engine, "categories", None) is not None:
        return engine.categories
    if not variables:
        return None
    levels = {n: list(v.order if v.type == "ordinal" else v.levels)
              for n, v in variables.items() if (v.order if v.type == "ordinal" else v.levels)}
    return levels or None


def reference_blocks(engine, columns: FeatureColumns, variables=None) -> list:
    """``(role, ClinicalEncoder, columns)`` per role with declared variables, as the design encodes them.

    ``engine`` is the design's fitted (or configured) engine: its ``clinical_variables`` /
    ``us_variables`` / ``categories`` when it has them, else the study's ``variables``
    (:class:`~sonorad.variables.VariableSpec` by name).
    """
    from sonorad.clinical import ClinicalEncoder

    categories = _categories(engine, variables)
    blocks = []
    for role, names in (("clinical", columns.clinical), ("us", columns.us)):
        if not names:
            continue
        types = _types(engine, role, names, variables)
        cols = [n for n in names if types is None or n in types]
        if cols:
            blocks.append((role, ClinicalEncoder(variables=types, categories=categories), cols))
    return blocks


def fit_reference(engine, X: pd.DataFrame, y, groups, columns: FeatureColumns, variables=None):
    """Fit the reference logistic regression on the training rows ``X`` (the model input table).

    Returns ``(model, tuning-CV AUC, fold AUCs)`` or ``None`` when no variable is declared. The
    folds are the design's tuning folds (same number, seed and patient groups).
    """
    blocks = reference_blocks(engine, columns, variables)
    if not blocks:
        return None
    cols = [c for _, _, block in blocks for c in block]
    y = _labels(y, {"X": X})
    groups = _as_series(groups, y.index, "groups")
    g = None if groups is None else groups.to_numpy()
    pipes, auc, _, folds = _fit_zoo(
        [("encode", FeatureBlocks(blocks))], X.loc[y.index, cols], y.to_numpy(), g, {},
        models=["logistic_regression"], cv=getattr(engine, "cv", 5), n_iter=getattr(engine, "n_iter", None),
        class_weight=getattr(engine, "class_weight", None), resample=getattr(engine, "resample", None),
        random_state=getattr(engine, "random_state", 0), memory=None, n_jobs=getattr(engine, "n_jobs", None))
    return ColumnModel.fitted(pipes["logistic_regression"], cols), float(auc.iloc[0]), folds


def with_reference(result: DesignResult, engine, X: pd.DataFrame, y, groups, columns: FeatureColumns,
                   variables=None) -> DesignResult:
    """``result`` with the clinical reference model added (unchanged without declared variables).

    The reference is a model of its own family, drawn in the figures (``highlight``), with its
    tuning-CV AUC beside the others'; it is never a family's chosen model.
    """
    if REFERENCE in result.models:
        raise ValueError(f"the design already has a model called {REFERENCE!r}")
    fitted = fit_reference(engine, X, y, groups, columns, variables)
    if fitted is None:
        return result
    model, auc, _ = fitted
    names = ", ".join(model.columns)
    sentence = (f"a clinical reference model, logistic regression on the declared variables alone ({names}), was "
                "fitted and tuned in the same folds, as the comparator of the imaging models")
    return replace(result, models={**result.models, REFERENCE: model},
                   families={**result.families, REFERENCE: (REFERENCE,)},
                   highlight=tuple(dict.fromkeys([*result.highlight, REFERENCE])),
                   cv_auc=pd.concat([result.cv_auc, pd.Series({REFERENCE: auc})]).rename(result.cv_auc.name),
                   methods=(*result.methods, sentence), reference=REFERENCE)


def logistic_predictors(model, X: pd.DataFrame, scores: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """The predictors a logistic-regression model of a design enters (encoded, selected), or ``None``.

    For a model whose final estimator is the zoo's logistic regression (a
    :class:`~sonorad.designs.base.ColumnModel` or :class:`~sonorad.designs.base.ScoreStack` whose
    Pipeline ends in ``model`` = ``[scale] -> LogisticRegression``), the table of what that
    regression reads, by predictor name: what a likelihood-ratio test between nested logistic
    models compares (:func:`sonorad.evaluation.nested.likelihood_ratio_test`). ``None`` for any
    other model. ``scores``: the out-of-fold training scores (``DesignResult.training_scores``) that
    replace a :class:`~sonorad.designs.base.ScoreStack`'s refitted scores on training cases, as its
    second stage was fitted on them.
    """
    from sklearn.linear_model import LogisticRegression

    if not hasattr(model, "final_input"):
        return None
    final, frame = model.final_input(X)
    if isinstance(model, ScoreStack) and scores is not None:
        names = [name for name, _ in model.scores]
        if set(names) <= set(scores.columns) and X.index.isin(scores.index).all():
            frame = pd.concat([X[list(model.variables)], scores.loc[X.index, names]], axis=1)
    if not isinstance(final, Pipeline) or final.steps[-1][0] != "model":
        return None
    zoo = final.steps[-1][1]
    clf = zoo[-1] if isinstance(zoo, Pipeline) else zoo
    clf = getattr(clf, "estimator_", clf)
    if not isinstance(clf, LogisticRegression):
        return None
    out = final[:-1].transform(frame)
    return out if isinstance(out, pd.DataFrame) else pd.DataFrame(out, index=X.index,
                                                                  columns=final[:-1].get_feature_names_out())
