"""Read what fitted families learned: selection funnels, LASSO paths, clinical odds-ratio tables.

Pure functions over fitted estimators; they return DataFrames for the report and ``tables/``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

__all__ = ["selection_funnel", "family_funnels", "lasso_paths", "score_coefficients", "clinical_tables"]

_STEP_NAMES = {"combat": "ComBat harmonization", "zscore": "z-score", "icc": "ICC filter",
               "univariate": "univariate filter", "correlation": "redundancy filter", "lasso": "LASSO"}


def _describe(name: str, step) -> str:
    label = _STEP_NAMES.get(name, name)
    if name == "icc":
        return f"{label} (ICC >= {step.threshold})"
    if name == "univariate":
        test = {"mannwhitney": "Mann-Whitney U", "ttest": "t-test"}.get(step.test, step.test)
        return f"{label} ({test} p < {step.alpha}{', FDR' if step.fdr else ''})"
    if name == "correlation":
        return f"{label} ({step.method} |r| < {step.threshold})"
    if name == "lasso":
        return f"{label} ({getattr(step, 'rule', 'min')} rule, {getattr(step, 'cv', 10)}-fold CV)"
    return label


def selection_funnel(steps, n_input: int, signature: str) -> pd.DataFrame:
    """Features left after each fitted step: ``signature, step, n_features``.

    ``steps`` is a list of ``(name, fitted estimator)``; a step with ``get_support`` reduces the
    count, the others (z-score, ComBat) keep it.
    """
    rows = [{"signature": signature, "step": "extracted", "n_features": int(n_input)}]
    n = n_input
    for name, step in steps:
        if hasattr(step, "get_support"):
            n = int(np.sum(step.get_support()))
        rows.append({"signature": signature, "step": _describe(name, step), "n_features": n})
    return pd.DataFrame(rows)


def _score_steps(pipeline: Pipeline):
    score = pipeline[-1]
    steps = [(n, s) for n, s in pipeline.steps[:-1]] + list(score.selection_.steps)
    return steps + [("lasso", score.lasso_)], score.n_features_in_


def family_funnels(family) -> pd.DataFrame:
    """Selection funnel of every signature of a fitted study-1 or study-2 family."""
    frames = []
    if hasattr(family, "score_pipelines_"):
        for kind, pipe in family.score_pipelines_.items():
            steps, n = _score_steps(pipe)
            frames.append(selection_funnel(steps, n, {"rad_score": "Rad-score", "dl_score": "DL-score"}[kind]))
        first = next(iter(family.pipelines_.values()))
        n2 = len(first.named_steps["encode"].get_feature_names_out())
        frames.append(selection_funnel([("lasso", first.named_steps["lasso"])], n2,
                                       "stage 2: clinical + ultrasound + scores"))
    else:
        for fam, pipes in family.pipelines_.items():
            select = next(iter(pipes.values())).named_steps["select"]
            for block, transformer, columns in select.transformers_:
                if isinstance(transformer, Pipeline):
                    n = len([c for c in columns if c != "__center__"])
                    frames.append(selection_funnel(transformer.steps, n, f"{fam}: {block}"))
                else:
                    n = len(transformer.get_feature_names_out()) if transformer != "passthrough" else len(columns)
                    frames.append(pd.DataFrame([{"signature": f"{fam}: {block}", "step": "encoded variables",
                                                 "n_features": n}]))
    return pd.concat(frames, ignore_index=True)


def lasso_paths(family) -> dict[str, pd.DataFrame]:
    """``{signature: LassoSelector.path_frame()}`` of every LASSO of a fitted family."""
    out = {}
    if hasattr(family, "score_pipelines_"):
        for kind, pipe in family.score_pipelines_.items():
            out[{"rad_score": "Rad-score", "dl_score": "DL-score"}[kind]] = pipe[-1].lasso_.path_frame()
        first = next(iter(family.pipelines_.values()))
        out["stage 2"] = first.named_steps["lasso"].path_frame()
    else:
        for fam, pipes in family.pipelines_.items():
            select = next(iter(pipes.values())).named_steps["select"]
            for block, transformer, _ in select.transformers_:
                if isinstance(transformer, Pipeline) and "lasso" in transformer.named_steps:
                    out[fam] = transformer.named_steps["lasso"].path_frame()
    return out


def score_coefficients(family) -> pd.DataFrame:
    """Coefficients of the Rad-score / DL-score formulas: ``score, feature, coefficient, mean, sd``."""
    rows = []
    for kind, pipe in getattr(family, "score_pipelines_", {}).items():
        score = pipe[-1]
        rows.append({"score": kind, "feature": "(intercept)", "coefficient": score.intercept_,
                     "mean": np.nan, "sd": np.nan})
        for f, c, m, s in zip(score.features_, score.coef_, score.mean_, score.sd_):
            rows.append({"score": kind, "feature": f, "coefficient": c, "mean": m, "sd": s})
    return pd.DataFrame(rows, columns=["score", "feature", "coefficient", "mean", "sd"])


def clinical_tables(variables: dict, train_table: pd.DataFrame, y: pd.Series,
                    scores: pd.DataFrame | None = None, selected: list[str] | None = None):
    """Univariable and multivariable logistic regression (OR, 95% CI, p) on the training cohort.

    The declared variables are encoded as the models see them (fitted on training); the study-1
    scores enter as their out-of-fold values, so a score's odds ratio is not inflated by its own
    fit. The multivariable model uses the predictors the stage-2 LASSO kept when given (the
    published tables' convention), else every predictor.

    Returns ``(univariable, multivariable, notes)``; a table is ``None`` when its model cannot be
    fitted (the reason is in ``notes``).
    """
    from sonorad.clinical import ClinicalEncoder, multivariable_logistic, univariable_logistic

    notes = []
    parts = []
    if variables:
        encoder = ClinicalEncoder.from_study(variables)
        parts.append(encoder.fit_transform(train_table[list(variables)]))
    if scores is not None and len(scores.columns):
        parts.append(scores)
    if not parts:
        return None, None, ["no clinical or ultrasound variable is declared"]
    X = pd.concat(parts, axis=1).loc[y.index]
    X = X.loc[:, X.std() > 0]
    uni = multi = None
    try:
        uni = univariable_logistic(X, y).to_frame()
    except ValueError as exc:
        notes.append(f"univariable table not computed: {exc}")
    chosen = [c for c in (selected or []) if c in X.columns] or list(X.columns)
    try:
        multi = multivariable_logistic(X[chosen], y).to_frame()
    except ValueError as exc:
        notes.append(f"multivariable table not computed: {exc}")
    return uni, multi, notes
