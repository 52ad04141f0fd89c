"""The choice of one model among tuned models whose tuning-CV AUCs are within noise of each other.

The *tuning-CV AUC* of a model is the mean AUC, over the patient-grouped tuning folds, of its best
hyperparameter candidate (what the grid search maximised). It is not the *whole-pipeline
training-CV AUC* of the run's ``training_cv`` cohort, where selection, scores, tuning and the
choice itself are refitted in every fold.

Rule (the one-standard-error rule of Breiman et al. 1984, applied to the model zoo): among the
models whose tuning-CV AUC is at least the best tuning-CV AUC minus one standard error of the best
model's fold AUCs (their SD / sqrt(number of folds)), choose the simplest, by
:data:`SIMPLICITY_ORDER`. Models outside that order (none of the zoo's) rank after it, by AUC.

>>> import pandas as pd
>>> auc = pd.Series({"logistic_regression": 0.944, "mlp": 0.948, "xgboost": 0.900})
>>> folds = pd.DataFrame({"logistic_regression": [0.93, 0.95, 0.95], "mlp": [0.92, 0.96, 0.964],
...                       "xgboost": [0.9, 0.9, 0.9]})
>>> choice = choose_model(auc, folds)
>>> choice.chosen, choice.best, choice.tied
('logistic_regression', 'mlp', ('logistic_regression', 'mlp'))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SIMPLICITY_ORDER", "TIE_RULE", "ModelChoice", "choose_model", "zoo_name"]

#: Zoo models (names of :data:`sonorad.models.MODEL_ZOO`) from the simplest to the most complex: the
#: order that breaks a tie of tuning-CV AUCs. Linear and probabilistic models first, then single
#: trees and instance-based models, kernels, bagged and boosted ensembles, the neural network last.
SIMPLICITY_ORDER = ("logistic_regression", "naive_bayes", "decision_tree", "knn", "svm", "random_forest",
                    "extra_trees", "gradient_boosting", "adaboost", "lightgbm", "xgboost", "mlp")

#: The rule, in the words of the methods text and the report.
TIE_RULE = ("one-standard-error rule: among the models whose tuning-CV AUC is within one standard error "
            "(of the best model's fold AUCs) of the best, the simplest is chosen, in the order "
            + " < ".join(SIMPLICITY_ORDER))


def zoo_name(model: str) -> str:
    """The zoo name of a model name (``"combined/svm"`` -> ``"svm"``)."""
    return str(model).rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ModelChoice:
    """Which model a family chose, and why.

    Attributes
    ----------
    chosen : str
        The chosen model.
    best : str
        The model with the highest tuning-CV AUC.
    tied : tuple of str
        Models within one standard error of the best (the best included), simplest first.
    se : float
        Standard error of the best model's tuning-CV AUC (SD of its fold AUCs / sqrt(folds));
        NaN when the fold AUCs are not known (the best model is then chosen).
    tuning_cv_auc : Series
        Tuning-CV AUC of every candidate model.
    rule : str
        The rule, in words (:data:`TIE_RULE`).
    """

    chosen: str
    best: str
    tied: tuple
    se: float
    tuning_cv_auc: pd.Series
    rule: str = TIE_RULE

    @property
    def is_tie(self) -> bool:
        """Whether more than one model was within one standard error of the best."""
        return len(self.tied) > 1

    def sentence(self) -> str:
        """One sentence for the report: the tie, the rule and the choice."""
        auc = self.tuning_cv_auc
        if not np.isfinite(self.se):
            return (f"{self.chosen} was chosen by the highest tuning-CV AUC ({auc[self.chosen]:.3f}); the fold "
                    "AUCs needed for the one-standard-error rule were not available")
        if not self.is_tie:
            return (f"{self.chosen} was chosen: its tuning-CV AUC ({auc[self.chosen]:.3f}) is the highest, and no "
                    f"other model is within one standard error ({self.se:.3f}) of it")
        others = ", ".join(f"{m} {auc[m]:.3f}" for m in self.tied)
        return (f"{len(self.tied)} models are within one standard error ({self.se:.3f}) of the best tuning-CV AUC "
                f"({self.best}, {auc[self.best]:.3f}): {others}; by the {TIE_RULE.split(':')[0]} the simplest, "
                f"{self.chosen}, was chosen")

    def to_frame(self) -> pd.DataFrame:
        """One row per candidate: ``model, tuning_cv_auc, within_1se, chosen``."""
        auc = self.tuning_cv_auc
        return pd.DataFrame({"model": list(auc.index), "tuning_cv_auc": auc.to_numpy(dtype=float),
                             "within_1se": [m in self.tied for m in auc.index],
                             "chosen": [m == self.chosen for m in auc.index]})


def _rank(model: str, auc: float) -> tuple:
    name = zoo_name(model)
    position = SIMPLICITY_ORDER.index(name) if name in SIMPLICITY_ORDER else len(SIMPLICITY_ORDER)
    return position, -auc


def choose_model(tuning_cv_auc: pd.Series, fold_auc: pd.DataFrame | None = None) -> ModelChoice:
    """Choose among tuned models by the one-standard-error rule and :data:`SIMPLICITY_ORDER`.

    Parameters
    ----------
    tuning_cv_auc : Series
        Tuning-CV AUC (mean over the tuning folds) of every model, indexed by model name
        (a zoo name, or ``family/zoo name``).
    fold_auc : DataFrame or None
        One row per tuning fold, one column per model: the fold AUCs of each model's best
        candidate. ``None`` (or the best model missing from it): the best model is chosen.

    Returns
    -------
    ModelChoice
    """
    auc = pd.Series(tuning_cv_auc, dtype=float).dropna()
    if auc.empty:
        raise ValueError("no model has a tuning-CV AUC to choose by")
    best = str(auc.idxmax())
    se = np.nan
    if fold_auc is not None and best in fold_auc.columns:
        folds = pd.to_numeric(fold_auc[best], errors="coerce").dropna().to_numpy(dtype=float)
        if len(folds) >= 2:
            se = float(np.std(folds, ddof=1) / np.sqrt(len(folds)))
    if not np.isfinite(se):
        return ModelChoice(chosen=best, best=best, tied=(best,), se=se, tuning_cv_auc=auc)
    # a hair of tolerance, so that a model equal to the limit in exact arithmetic is not lost to rounding
    within = auc[auc >= auc[best] - se - 1e-12]
    tied = tuple(sorted(map(str, within.index), key=lambda m: _rank(m, within[m])))
    return ModelChoice(chosen=tied[0], best=best, tied=tied, se=se, tuning_cv_auc=auc)
