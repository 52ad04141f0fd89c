"""Interval of a cross-validated AUC with Nadeau & Bengio's corrected resampled variance.

The K fold models of a cross-validation share most of their training cases, so their test AUCs are
positively correlated and the naive variance of their mean, ``S^2 / K``, is too small. Nadeau &
Bengio (2003) correct it to

    Var(mean fold AUC) ~ (1 / (J K) + n_test / n_train) x S^2

with ``S^2`` the sample variance of the ``J x K`` per-fold AUCs (``J`` repetitions of ``K``-fold
cross-validation; ``J = 1`` for one), ``n_test / n_train`` the test-to-training size ratio of a fold
(about ``1 / (K - 1)``), and a Student t quantile with ``J K - 1`` degrees of freedom (as in
Bouckaert & Frank's corrected repeated cross-validation test).

References
----------
Nadeau C, Bengio Y (2003). Inference for the generalization error. Machine Learning 52:239-281.
Bouckaert RR, Frank E (2004). Evaluating the replicability of significance tests for comparing
learning algorithms. PAKDD 2004, LNCS 3056:3-12.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._results import ResultMixin
from ._validate import check_labels, check_level, check_scores

__all__ = ["CvAucInterval", "corrected_cv_auc_interval", "cv_auc_interval"]

REFERENCE = "Nadeau C, Bengio Y (2003). Inference for the generalization error. Machine Learning 52:239-281."
METHOD = "mean fold AUC, corrected resampled t (Nadeau-Bengio)"


@dataclass(frozen=True, repr=False)
class CvAucInterval(ResultMixin):
    """Mean per-fold AUC with its corrected resampled t interval.

    Attributes
    ----------
    estimate, low, high : float
        Mean of the per-fold AUCs and the interval bounds (clipped to [0, 1], as the DeLong interval).
    level : float
        Confidence level of the interval.
    se : float
        ``sqrt((1 / n_folds + test_train_ratio) x S^2)``.
    fold_sd : float
        ``S``, the sample SD of the per-fold AUCs.
    test_train_ratio : float
        Mean over the folds of ``n_test / n_train``.
    n_folds : int
        Per-fold AUCs used (``J x K`` for ``J`` repetitions of ``K``-fold cross-validation).
    df : int
        Degrees of freedom of the t quantile, ``n_folds - 1``.
    skipped_folds : tuple of int
        Folds without an AUC (one class only in their test cases), by position.
    method, reference : str
    """

    estimate: float
    low: float
    high: float
    level: float
    se: float
    fold_sd: float
    test_train_ratio: float
    n_folds: int
    df: int
    skipped_folds: tuple = ()
    method: str = METHOD
    reference: str = REFERENCE
    title = "Cross-validated AUC"

    @property
    def auc(self) -> float:
        return self.estimate

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"statistic": "AUC (mean over folds)", "estimate": self.estimate, "low": self.low,
                              "high": self.high, "level": self.level, "se": self.se, "fold_sd": self.fold_sd,
                              "test_train_ratio": self.test_train_ratio, "n_folds": self.n_folds,
                              "df": self.df, "method": self.method}]).set_index("statistic")


def corrected_cv_auc_interval(fold_aucs, n_train, n_test, *, level: float = 0.95,
                              skipped_folds=()) -> CvAucInterval:
    """Corrected resampled t interval of the mean of per-fold AUCs (Nadeau & Bengio 2003).

    Parameters
    ----------
    fold_aucs : array-like of float
        Test AUC of every fold (of every repetition, for repeated cross-validation), at least two.
    n_train, n_test : int or array-like of int
        Training and test size of each fold (cases or images, the units the AUC counts), either one
        number for all folds or one per fold; the correction uses the mean of ``n_test / n_train``.
    level : float
        Confidence level.
    skipped_folds : sequence of int
        Folds left out of ``fold_aucs`` (recorded in the result only).

    Examples
    --------
    >>> r = corrected_cv_auc_interval([0.6, 0.7, 0.65, 0.55, 0.75], n_train=32, n_test=8)
    >>> round(r.estimate, 3), round(r.low, 4), round(r.high, 4)
    (0.65, 0.5028, 0.7972)
    """
    level = check_level(level)
    aucs = np.asarray(fold_aucs, dtype=float).ravel()
    if aucs.size < 2:
        raise ValueError(f"The corrected cross-validation interval needs the AUCs of at least 2 folds; got "
                         f"{aucs.size}. Use more folds, or folds whose test cases hold both classes.")
    if not np.all(np.isfinite(aucs)) or aucs.min() < 0 or aucs.max() > 1:
        raise ValueError(f"Per-fold AUCs must be finite numbers between 0 and 1; got {aucs.tolist()}.")
    n_train = np.broadcast_to(np.asarray(n_train, dtype=float), aucs.shape)
    n_test = np.broadcast_to(np.asarray(n_test, dtype=float), aucs.shape)
    if np.any(~np.isfinite(n_train)) or np.any(n_train <= 0) or np.any(~np.isfinite(n_test)) or np.any(n_test <= 0):
        raise ValueError(f"Fold sizes must be positive: n_train={n_train.tolist()}, n_test={n_test.tolist()}.")
    ratio = float(np.mean(n_test / n_train))
    k = aucs.size
    mean = float(aucs.mean())
    s2 = float(aucs.var(ddof=1))
    se = float(np.sqrt((1.0 / k + ratio) * s2))
    t = float(stats.t.ppf((1 + level) / 2, k - 1))
    return CvAucInterval(estimate=mean, low=max(0.0, mean - t * se), high=min(1.0, mean + t * se), level=level,
                         se=se, fold_sd=float(np.sqrt(s2)), test_train_ratio=ratio, n_folds=k, df=k - 1,
                         skipped_folds=tuple(int(f) for f in skipped_folds))


def cv_auc_interval(y_true, y_score, folds, *, level: float = 0.95) -> CvAucInterval:
    """:func:`corrected_cv_auc_interval` from out-of-fold scores and each unit's test fold.

    ``folds`` labels the fold in which each unit (case, image) was predicted; with repeated
    cross-validation give every (repetition, fold) pair its own label. A fold's training size is
    the number of units outside it. A fold whose test units hold one class has no AUC: it is left
    out and listed in ``skipped_folds``.
    """
    from .roc import auc_score

    y = check_labels(y_true)
    p = check_scores(y_score, len(y))
    folds = np.asarray(folds)
    if folds.shape != y.shape:
        raise ValueError(f"folds has {folds.size} entries but there are {len(y)} labels; give one fold per unit.")
    aucs, n_train, n_test, skipped = [], [], [], []
    for i, f in enumerate(pd.unique(folds)):
        test = folds == f
        if y[test].min() == y[test].max():
            skipped.append(i)
            continue
        aucs.append(auc_score(y[test], p[test]))
        n_test.append(int(test.sum()))
        n_train.append(int((~test).sum()))
    return corrected_cv_auc_interval(aucs, n_train, n_test, level=level, skipped_folds=skipped)
