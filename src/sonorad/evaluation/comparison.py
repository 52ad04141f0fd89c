"""The chosen model against a reference model: DeLong, NRI, IDI and, for nested logistic models, LR test.

The comparison reviewers ask for: does the imaging model add anything to the clinical and
ultrasound variables? :func:`compare_with_reference` gathers the paired DeLong test of the AUCs
(:func:`~sonorad.evaluation.roc.delong_test`), the continuous NRI and the IDI of the chosen model
over the reference (:mod:`~sonorad.evaluation.reclassification`) and, when both are logistic
regressions and the reference's predictors are among the chosen model's, the likelihood-ratio
test (:func:`~sonorad.evaluation.nested.likelihood_ratio_test`), and says in one plain sentence
whether the chosen model is better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._results import ResultMixin
from ._validate import check_level

__all__ = ["ReferenceComparison", "compare_with_reference"]


@dataclass(frozen=True, repr=False)
class ReferenceComparison(ResultMixin):
    """The chosen model compared with a reference model on one cohort.

    Attributes
    ----------
    model, reference : str
        Names of the two models.
    cohort : str
        The cohort compared on (e.g. ``external``).
    delong : DeLongTestResult
        Paired DeLong test, ``auc_a`` = the model, ``auc_b`` = the reference.
    nri, idi : ReclassificationResult or None
        Continuous NRI and IDI of the model over the reference (``None`` when not computable; see
        ``notes``).
    likelihood_ratio : LikelihoodRatioResult or None
        Only for nested logistic regressions (fitted on the training cohort).
    better : bool
        Whether the model's AUC is higher than the reference's at the level's significance
        (two-sided DeLong p < 1 - level).
    summary : str
        One plain-words sentence.
    notes : tuple of str
        Statistics not computed and why.
    level : float
    """

    model: str
    reference: str
    cohort: str
    delong: object
    nri: object
    idi: object
    likelihood_ratio: object
    better: bool
    summary: str
    notes: tuple = ()
    level: float = 0.95
    title = "Comparison with the reference model"

    def to_frame(self) -> pd.DataFrame:
        """One row per statistic: ``statistic, estimate, low, high, p_value, method``."""
        rows = []
        d = self.delong
        rows.append({"statistic": "AUC difference (DeLong)", "estimate": d.difference, "low": d.low,
                     "high": d.high, "p_value": d.p_value, "method": d.method})
        for name, r in (("NRI (continuous)", self.nri), ("IDI", self.idi)):
            if r is not None:
                rows.append({"statistic": name, "estimate": r.estimate, "low": r.low, "high": r.high,
                             "p_value": r.p_value, "method": r.method})
        if self.likelihood_ratio is not None:
            lr = self.likelihood_ratio
            rows.append({"statistic": f"LR chi-squared ({lr.df} df)", "estimate": lr.statistic, "low": np.nan,
                         "high": np.nan, "p_value": lr.p_value, "method": lr.method})
        out = pd.DataFrame(rows)
        out.insert(0, "reference", self.reference)
        out.insert(0, "model", self.model)
        out.insert(0, "cohort", self.cohort)
        return out

    def __repr__(self) -> str:
        return f"ReferenceComparison({self.model} vs {self.reference} on {self.cohort}: {self.summary})"


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def compare_with_reference(y_true, proba_model, proba_reference, *, model: str, reference: str,
                           cohort: str = "", level: float = 0.95, cluster=None, likelihood_ratio=None,
                           model_role: str = "the chosen model",
                           reference_role: str = "the clinical reference") -> ReferenceComparison:
    """Compare a model's predicted risks with a reference model's on the same cases.

    Parameters
    ----------
    y_true : array-like of 0/1
    proba_model, proba_reference : array-like in [0, 1]
        P(positive) of the model and of the reference for the same cases.
    model, reference, cohort : str
        Names for the tables and the sentence.
    model_role, reference_role : str
        What the two models are, in the sentence.
    level : float
        Confidence level; the model is *better* when the two-sided DeLong p-value is below ``1 - level``
        and its AUC is the higher.
    cluster : array-like, optional
        Patient id of every case (DeLong clustered by patient, :func:`~sonorad.evaluation.delong_test`).
    likelihood_ratio : LikelihoodRatioResult, optional
        The likelihood-ratio test of the two models when they are nested logistic regressions.

    Returns
    -------
    ReferenceComparison
        Its ``summary`` says, when the model is not better, "the chosen model is not better than
        the clinical reference (AUC x vs y, DeLong p = z)".
    """
    from .reclassification import idi, nri
    from .roc import delong_test

    level = check_level(level)
    delong = delong_test(y_true, proba_model, proba_reference, level=level, cluster=cluster)
    notes, results = [], {}
    for name, fn in (("NRI", nri), ("IDI", idi)):
        try:
            results[name] = fn(y_true, proba_reference, proba_model, level=level)
        except ValueError as exc:
            results[name] = None
            notes.append(f"{name} not computed: {exc}")
    better = bool(delong.p_value < 1 - level and delong.auc_a > delong.auc_b)
    aucs = f"AUC {delong.auc_a:.3f} vs {delong.auc_b:.3f}, DeLong p {_p(delong.p_value)}"
    where = f" on the {cohort} cohort" if cohort else ""
    verb = "discriminates better than" if better else "is not better than"
    summary = f"{model_role} ({model}) {verb} {reference_role} ({reference}){where} ({aucs})."
    summary = summary[0].upper() + summary[1:]
    return ReferenceComparison(model=model, reference=reference, cohort=cohort, delong=delong, nri=results["NRI"],
                               idi=results["IDI"], likelihood_ratio=likelihood_ratio, better=better,
                               summary=summary, notes=tuple(notes), level=level)
