"""The design contract: feature tables and declared variables in, named fitted models out.

A *design* (one module of :mod:`sonorad.designs`) fits on the training cohort only and returns a
:class:`DesignResult` of the same shape whatever the design: fitted models keyed by name, their
families, tuning CV AUCs, the model chosen per family, selected features, selection funnels and
LASSO paths. Every fitted model is a scikit-learn estimator whose ``predict_proba`` takes one
DataFrame, the **model input table** (:func:`model_input_table`): PyRadiomics features, frozen deep
features of the DL backbones, the declared variables with their raw values and ``center``. Each
model picks its own columns, so the run, the model bundle and the web calculator score a case the
same way without knowing which design made the model. The :class:`~sonorad.designs.design.Design`
class that fits one is in :mod:`sonorad.designs.design`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["FeatureColumns", "DesignResult", "ColumnModel", "ScoreStack", "model_input_table", "backbone_of"]

def backbone_of(column) -> str | None:
    """The backbone of a frozen deep feature column ``<backbone>_<i>`` (``None`` for any other name).

    >>> backbone_of("efficientnet_lite1_17"), backbone_of("original_shape2D_Elongation")
    ('efficientnet_lite1', None)
    """
    name, _, index = str(column).rpartition("_")
    return name if name and index.isdigit() else None


@dataclass(frozen=True)
class FeatureColumns:
    """Which columns of the model input table belong to which feature table.

    Attributes
    ----------
    radiomics, deep : tuple of str
        PyRadiomics feature names; frozen deep features (``<backbone>_<i>``) of the DL backbones.
    clinical, us : tuple of str
        Declared variables (``us``: role ``ultrasound``; ``clinical``: every other role).
    backbones : tuple of str
        The DL backbones whose features make up ``deep``, in order (empty: not recorded, one table).
    """

    radiomics: tuple[str, ...] = ()
    deep: tuple[str, ...] = ()
    clinical: tuple[str, ...] = ()
    us: tuple[str, ...] = ()
    backbones: tuple[str, ...] = ()

    def tables(self, X: pd.DataFrame) -> dict[str, pd.DataFrame | None]:
        """The per-table view of a model input table (``None`` for an absent table)."""
        return {name: (X[list(cols)] if cols else None)
                for name, cols in (("radiomics", self.radiomics), ("deep", self.deep),
                                   ("clinical", self.clinical), ("us", self.us))}

    @property
    def variables(self) -> tuple[str, ...]:
        return self.clinical + self.us


def model_input_table(index, *, radiomics: pd.DataFrame | None = None, deep: pd.DataFrame | None = None,
                      variables: pd.DataFrame | None = None, centers=None) -> pd.DataFrame:
    """One row per case: radiomics, deep features, declared variables (raw values) and ``center``.

    Parameters
    ----------
    index : sequence of case ids, the rows (and their order) of the table.
    radiomics, deep : DataFrame or None, indexed by case_id.
    variables : DataFrame or None
        The declared variables' columns of the cases table, indexed by case_id.
    centers : Series or None
        Center of every case (indexed by case_id); ``"unknown"`` when not given.

    Raises
    ------
    ValueError
        A case without a row in a table, or a column name used by two tables.
    """
    index = pd.Index(index, name="case_id")
    parts = []
    for name, frame in (("radiomics", radiomics), ("deep", deep), ("variables", variables)):
        if frame is None:
            continue
        missing = index.difference(frame.index)
        if len(missing):
            raise ValueError(f"the {name} table has no row for case(s) {list(missing[:5])}. "
                             "Fix: extract features for them or leave them out.")
        parts.append(frame.loc[index])
    center = (pd.Series("unknown", index=index) if centers is None
              else pd.Series(centers).astype(str).reindex(index))
    parts.append(center.rename("center").to_frame())
    out = pd.concat(parts, axis=1)
    if out.columns.duplicated().any():
        dup = list(out.columns[out.columns.duplicated()])[:5]
        raise ValueError(f"column(s) {dup} appear in two tables. Fix: rename the variable(s) in the cases table.")
    out.index.name = "case_id"
    return out


class ColumnModel(ClassifierMixin, BaseEstimator):
    """An estimator applied to some columns of the model input table.

    Parameters
    ----------
    estimator : estimator with ``predict_proba`` (a Pipeline of sonorad steps and a zoo model).
    columns : sequence of str
        Columns of the model input table the estimator reads, in its order.
    rename : dict or None
        Column renames before the estimator (e.g. ``{"center": "__center__"}`` for ComBat).
    """

    def __init__(self, estimator=None, columns=(), rename=None):
        self.estimator = estimator
        self.columns = columns
        self.rename = rename

    @classmethod
    def fitted(cls, estimator, columns, rename=None) -> ColumnModel:
        """Wrap an estimator that its design has already fitted."""
        model = cls(estimator=estimator, columns=tuple(columns), rename=rename)
        model.estimator_ = estimator
        model.classes_ = getattr(estimator, "classes_", np.array([0, 1]))
        return model

    def model_input(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"the model input table lacks column(s) {missing[:5]}"
                             f"{' and more' if len(missing) > 5 else ''}. Fix: extract the same features "
                             "and give the same variables as the training cohort.")
        out = X[list(self.columns)]
        return out.rename(columns=self.rename) if self.rename else out

    def fit(self, X, y, **fit_params):
        self.estimator_ = clone(self.estimator).fit(self.model_input(X), y, **fit_params)
        self.classes_ = getattr(self.estimator_, "classes_", np.array([0, 1]))
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(self.model_input(X))

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(self.model_input(X))

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def final_input(self, X) -> tuple[object, pd.DataFrame]:
        """``(estimator, its input)``: what SHAP and the nomogram explain."""
        check_is_fitted(self, "estimator_")
        return self.estimator_, self.model_input(X)


class ScoreStack(ClassifierMixin, BaseEstimator):
    """Scores (Rad-score, DL-score) as predictors of a second-stage model, over the model input table.

    ``predict_proba(X)`` computes each score's linear predictor from its own columns, puts the
    scores beside the declared variables and applies the second-stage model. Fitting is done by
    the design (the second stage learns from *out-of-fold* training scores, which a single
    ``fit`` cannot give), so a ScoreStack is built from fitted parts with :meth:`fitted`.

    Parameters
    ----------
    scores : list of (name, ColumnModel)
        Fitted score models; their ``decision_function`` is the score.
    variables : sequence of str
        Declared variables passed to the second stage (raw values; it encodes them itself).
    final : fitted estimator over ``variables + score names``.
    """

    def __init__(self, scores=(), variables=(), final=None):
        self.scores = scores
        self.variables = variables
        self.final = final

    @classmethod
    def fitted(cls, scores, variables, final) -> ScoreStack:
        model = cls(scores=list(scores), variables=tuple(variables), final=final)
        model.classes_ = getattr(final, "classes_", np.array([0, 1]))
        return model

    def fit(self, X, y=None):
        raise NotImplementedError("a ScoreStack is fitted by its design (out-of-fold scores feed the second "
                                  "stage); use the design's fit")

    def score_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({name: model.decision_function(X) for name, model in self.scores}, index=X.index)

    def final_input(self, X: pd.DataFrame) -> tuple[object, pd.DataFrame]:
        missing = [c for c in self.variables if c not in X.columns]
        if missing:
            raise ValueError(f"the model input table lacks variable(s) {missing[:5]}. Fix: give every declared "
                             "variable.")
        return self.final, pd.concat([X[list(self.variables)], self.score_frame(X)], axis=1)

    def predict_proba(self, X) -> np.ndarray:
        final, frame = self.final_input(X)
        return final.predict_proba(frame)

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


@dataclass(frozen=True)
class DesignResult:
    """What a fitted design learned, the same shape for every design.

    Attributes
    ----------
    design : str
    models : dict of str -> estimator
        Every fitted model (``predict_proba`` over the model input table), keyed by name.
    families : dict of str -> tuple of str
        Family -> the names of its models.
    chosen : dict of str -> str
        Family -> its model chosen by the one-standard-error rule on the tuning-CV AUCs
        (:mod:`sonorad.designs.choice`; the family itself for single-model families).
    primary : str
        The pre-declared model of the study: the chosen model of the design's primary family.
    highlight : tuple of str
        Models drawn in figures by default (the chosen ones and the design's baselines).
    cv_auc : Series
        **Tuning-CV AUC** of every tuned model (index: model name): the mean AUC over the design's
        patient-grouped tuning folds of the model's best hyperparameter candidate, with selection
        refitted in each fold. Not the *whole-pipeline training-CV AUC* (the run's ``training_cv``
        cohort, where the whole design, the choice included, is refitted in every fold).
    selected_features : dict of str -> list of str
        Family -> predictors its selection kept on the whole training cohort.
    funnel : DataFrame
        ``signature, step, n_features``: features left after each selection step.
    lasso_paths : dict of str -> DataFrame
        Signature -> :meth:`sonorad.selection.LassoSelector.path_frame`.
    coefficients : DataFrame
        Score formulas' coefficients (``score, feature, coefficient, mean, sd``).
    formulas : dict of str -> str
        Printable score formulas.
    training_scores : DataFrame or None
        Out-of-fold training scores fed to a second stage (for odds-ratio tables), else ``None``.
    nomogram_model : str or None
        A logistic model whose nomogram the study draws.
    multivariable_predictors : tuple of str or None
        Predictors of the published multivariable odds-ratio table (a second-stage selection's);
        ``None``: every declared variable.
    methods : tuple of str
        Sentences on the selection and the models, for the methods text.
    choices : dict of str -> ModelChoice or None
        Family -> how its model was chosen (:class:`sonorad.designs.choice.ModelChoice`: the models
        tied within one standard error of the best tuning-CV AUC, the standard error, the rule);
        families of one model have none.
    reference : str or None
        The clinical reference model (a logistic regression on the declared variables alone,
        :mod:`sonorad.designs.reference`), one of ``models``; ``None`` without declared variables.
    """

    design: str
    models: dict
    families: dict
    chosen: dict
    primary: str
    highlight: tuple
    cv_auc: pd.Series
    selected_features: dict
    funnel: pd.DataFrame
    lasso_paths: dict = field(default_factory=dict)
    coefficients: pd.DataFrame = field(default_factory=pd.DataFrame)
    formulas: dict = field(default_factory=dict)
    training_scores: pd.DataFrame | None = None
    nomogram_model: str | None = None
    multivariable_predictors: tuple | None = None
    methods: tuple = ()
    choices: dict | None = None
    reference: str | None = None

    def predict_proba(self, X: pd.DataFrame, models=None) -> pd.DataFrame:
        """P(positive) of every case (rows of the model input table ``X``) by every model (columns)."""
        names = list(self.models) if models is None else list(models)
        return pd.DataFrame({n: self.models[n].predict_proba(X)[:, 1] for n in names}, index=X.index)
