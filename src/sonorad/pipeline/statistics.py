"""Every statistic of a study, computed from per-case probabilities and labels.

Pure functions: they take the probabilities of each cohort (DataFrames indexed by case_id, one
column per model) and the labels, and return tables. They read no file and draw nothing, so anyone
can recompute them from ``tables/predictions.csv``.

Cohorts are named ``training`` (apparent: the final models on their own training cases),
``training_cv`` (out-of-fold: each training case predicted by the whole pipeline refitted without
its patient's fold), ``internal`` and ``external``.

Patients, not images: given the patient id of every case (``groups``), each AUC interval and DeLong
test is computed with Obuchowski's (1997) clustered variance wherever a patient has several cases in
the cohort evaluated; with one case per patient nothing changes (the DeLong numbers, to the bit).
This is automatic, not a setting: images of one patient are not independent, and with one image per
patient both estimators are the same.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["COHORT_ORDER", "primary_cohort", "long_predictions", "youden_cutoffs", "metrics_table",
           "clustering_note",
           "delong_tables", "calibration_table", "decision_curve_table", "center_tables", "roc_bands",
           "VALIDATION_COHORTS"]

#: Order in which cohorts appear in tables and reports.
COHORT_ORDER = ("training", "training_cv", "internal", "external")
#: Cohorts that are validation samples (per-center results are computed on these).
VALIDATION_COHORTS = ("internal", "external")


def primary_cohort(probabilities: dict) -> str:
    """The cohort a study is judged on: external, else internal, else training CV, else training."""
    for name in ("external", "internal", "training_cv", "training"):
        if name in probabilities and len(probabilities[name]):
            return name
    raise ValueError("no cohort has predictions")


def long_predictions(probabilities: dict[str, pd.DataFrame], labels: pd.Series) -> pd.DataFrame:
    """``case_id, cohort, model, label, probability``: one row per case x model, in cohort order."""
    parts = []
    for cohort in [c for c in COHORT_ORDER if c in probabilities] + [c for c in probabilities
                                                                      if c not in COHORT_ORDER]:
        frame = probabilities[cohort]
        long = frame.rename_axis("case_id").reset_index().melt(
            id_vars="case_id", var_name="model", value_name="probability")
        long.insert(1, "cohort", cohort)
        long.insert(3, "label", labels.reindex(long["case_id"]).to_numpy())
        parts.append(long)
    return pd.concat(parts, ignore_index=True)


def youden_cutoffs(probabilities: dict[str, pd.DataFrame], y: pd.Series) -> pd.DataFrame:
    """The Youden cut-off of every model, fitted on the training cohort only.

    The cut-off is chosen on the out-of-fold training predictions when the model has them (an
    apparent fit overstates separation and pushes the cut-off to the training extremes), else on
    the apparent training predictions. Returns ``model, threshold, source``.
    """
    from sonorad.evaluation import YoudenThreshold

    rows = []
    apparent = probabilities["training"]
    cv = probabilities.get("training_cv")
    for model in apparent.columns:
        if cv is not None and model in cv.columns and cv[model].notna().all():
            p, source = cv[model], "training_cv"
        else:
            p, source = apparent[model], "training"
        cut = YoudenThreshold().fit(y.loc[p.index].to_numpy(), p.to_numpy())
        rows.append({"model": model, "threshold": cut.threshold_, "source": source, "_cut": cut})
    return pd.DataFrame(rows).set_index("model")


def _patients(groups: pd.Series | None, index) -> np.ndarray | None:
    """The patient id of each case of ``index`` (None without ``groups``)."""
    if groups is None:
        return None
    missing = pd.Index(index).difference(groups.index)
    if len(missing):
        raise ValueError(f"no patient id for case(s) {list(missing[:5])}; groups must cover every case evaluated.")
    return groups.loc[index].astype(str).to_numpy()


def clustering_note(probabilities: dict[str, pd.DataFrame], groups: pd.Series | None) -> str | None:
    """A sentence for the run's notes when some patient has several cases in an evaluated cohort."""
    if groups is None:
        return None
    counts = []
    for cohort in [c for c in COHORT_ORDER if c in probabilities]:
        patients = _patients(groups, probabilities[cohort].index)
        if len(set(patients)) < len(patients):
            counts.append(f"{cohort} {len(patients)} images of {len(set(patients))} patients")
    if not counts:
        return None
    return ("AUC confidence intervals and DeLong tests account for several images per patient "
            "(Obuchowski's clustered ROC variance, 1997): " + "; ".join(counts))


def metrics_table(probabilities: dict[str, pd.DataFrame], y: pd.Series, cutoffs: pd.DataFrame, *,
                  level: float = 0.95, seed: int = 0, cv_auc: pd.Series | None = None,
                  groups: pd.Series | None = None, cv_folds: pd.Series | None = None) -> pd.DataFrame:
    """One row per cohort x model: AUC with DeLong CI and threshold metrics with Wilson CIs.

    Each row is :func:`sonorad.evaluation.metrics.performance_metrics` of the model's probabilities
    on the cohort at its training cut-off (the row a bundle's labelled predictions also report).

    Columns: ``cohort, model, n, positives, auc, auc_low, auc_high, threshold, threshold_source,
    accuracy, sensitivity, specificity, ppv, npv, f1`` (each with ``_low`` / ``_high``),
    ``precision`` (= PPV), ``recall`` (= sensitivity), ``tp, fp, tn, fn`` and ``train_cv_auc``
    (the model's tuning-CV AUC, ``DesignResult.cv_auc``, when known; not the whole-pipeline
    training-CV AUC of the ``training_cv`` rows). With ``groups`` (patient id
    per case), the AUC interval of a cohort where a patient has several cases is Obuchowski's.
    With ``cv_folds`` (the training-CV fold of each case), the AUC interval of the ``training_cv``
    rows is the pooled out-of-fold AUC +/- the corrected resampled t half-width of Nadeau & Bengio
    (2003) from the per-fold AUCs (:func:`sonorad.evaluation.cv_interval.cv_auc_interval`): fold
    models share training cases, and DeLong's interval on pooled out-of-fold predictions covered 0.5
    in only 79-83% of permuted-label runs (``benchmarks/cv_interval_coverage.md``). ``auc_ci_method``
    names the interval of every row.
    """
    from sonorad.evaluation.metrics import performance_metrics

    rows = []
    for cohort in [c for c in COHORT_ORDER if c in probabilities]:
        frame = probabilities[cohort]
        for model in frame.columns:
            p = frame[model].dropna()
            if not len(p):
                continue
            metrics = performance_metrics(y.loc[p.index].to_numpy(), p.to_numpy(), cutoffs.loc[model, "_cut"],
                                          level=level, random_state=seed, cluster=_patients(groups, p.index))
            row = {"cohort": cohort, "model": model}
            for key, value in metrics.items():
                row[key] = value
                if key == "threshold":
                    row["threshold_source"] = cutoffs.loc[model, "source"]
            row["auc_ci_method"] = _auc_ci_method(groups, p.index)
            if cohort == "training_cv" and cv_folds is not None:
                _corrected_cv_interval(row, y.loc[p.index], p, cv_folds, level)
            rows.append(row)
    table = pd.DataFrame(rows)
    table["precision"] = table["ppv"]
    table["recall"] = table["sensitivity"]
    if cv_auc is not None:
        table["train_cv_auc"] = table["model"].map(cv_auc)
    return table


def _auc_ci_method(groups: pd.Series | None, index) -> str:
    patients = _patients(groups, index)
    clustered = patients is not None and len(set(patients)) < len(patients)
    return "Obuchowski (clustered by patient)" if clustered else "DeLong"


def _corrected_cv_interval(row: dict, y: pd.Series, p: pd.Series, cv_folds: pd.Series, level: float) -> None:
    """Replace a training-CV row's AUC interval by the corrected resampled t interval (in place)."""
    from scipy import stats

    from sonorad.evaluation.cv_interval import cv_auc_interval

    try:
        r = cv_auc_interval(y.to_numpy(), p.to_numpy(), cv_folds.loc[p.index].to_numpy(), level=level)
    except ValueError as exc:
        row["auc_ci_method"] += f" (the fold-corrected interval is not computable: {exc})"
        return
    half = float(stats.t.ppf(0.5 + level / 2, r.df) * r.se)
    if np.isfinite(row["auc"]) and np.isfinite(half):
        row["auc_low"], row["auc_high"] = max(0.0, row["auc"] - half), min(1.0, row["auc"] + half)
        row["auc_ci_method"] = f"corrected resampled t over {r.n_folds} folds (Nadeau & Bengio 2003)"


def delong_tables(probabilities: pd.DataFrame, y: pd.Series, *, level: float = 0.95,
                  groups: pd.Series | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paired DeLong tests between every pair of models on one cohort.

    With ``groups`` (patient id per case) and a patient with several cases, each test is
    Obuchowski's clustered analogue of DeLong's paired test.

    Returns
    -------
    tests : DataFrame
        One row per pair: ``model_a, model_b, auc_a, auc_b, difference, diff_low, diff_high, z, p_value``.
    matrix : DataFrame
        Square table of p-values (models x models), NaN on the diagonal.
    """
    from sonorad.evaluation import delong_test

    frame = probabilities.dropna(axis=1, how="any")
    labels = y.loc[frame.index].to_numpy()
    patients = _patients(groups, frame.index)
    models = list(frame.columns)
    matrix = pd.DataFrame(np.nan, index=models, columns=models)
    rows = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            t = delong_test(labels, frame[a].to_numpy(), frame[b].to_numpy(), level=level, cluster=patients)
            matrix.loc[a, b] = matrix.loc[b, a] = t.p_value
            rows.append({"model_a": a, "model_b": b, "auc_a": t.auc_a, "auc_b": t.auc_b,
                         "difference": t.difference, "diff_low": t.low, "diff_high": t.high,
                         "z": t.z, "p_value": t.p_value})
    return pd.DataFrame(rows), matrix


def calibration_table(probabilities: dict[str, pd.DataFrame], y: pd.Series, models=None, *,
                      level: float = 0.95) -> tuple[pd.DataFrame, dict]:
    """The rms::val.prob set (calibration-in-the-large, intercept, slope, Brier, E-statistics, Spiegelhalter,
    Dxy, R2) and Hosmer-Lemeshow per cohort x model; a statistic that cannot be computed is NaN with
    the reason in ``not_computable``.

    Returns the table and the :class:`~sonorad.evaluation.CalibrationResult` objects keyed by
    ``(cohort, model)`` for plotting.
    """
    from sonorad.evaluation import calibration

    rows, results = [], {}
    for cohort in [c for c in COHORT_ORDER if c in probabilities]:
        frame = probabilities[cohort]
        for model in (models if models is not None else frame.columns):
            if model not in frame.columns:
                continue
            p = frame[model].dropna()
            labels = y.loc[p.index].to_numpy()
            if not 0 < labels.sum() < len(labels):
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                r = calibration(labels, p.to_numpy(), level=level, name=model)
            separated = any("separation" in str(w.message).lower() for w in caught)
            results[(cohort, model)] = r
            # the full rms::val.prob set: calibration-in-the-large and the joint-fit intercept, slope,
            # Brier, Emax/E90/Eavg, Spiegelhalter, Dxy, R2, Hosmer-Lemeshow with its grouping
            rows.append({"cohort": cohort, "model": model, **r.statistics.to_row(),
                         # perfect separation: the intercept/slope fit does not converge to finite values
                         "perfect_separation": separated})
    return pd.DataFrame(rows), results


def decision_curve_table(probabilities: pd.DataFrame, y: pd.Series, models) -> tuple[pd.DataFrame, object]:
    """Net benefit of ``models``, treat-all and treat-none on one cohort (long table and result)."""
    from sonorad.evaluation import decision_curve

    frame = probabilities[[m for m in models if m in probabilities.columns]].dropna()
    result = decision_curve(y.loc[frame.index].to_numpy(), {m: frame[m].to_numpy() for m in frame.columns})
    return result.to_frame(), result


def center_tables(probabilities: dict[str, pd.DataFrame], y: pd.Series, centers: pd.Series,
                  thresholds: pd.Series | None = None, models=None, *, level: float = 0.95,
                  groups: pd.Series | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every metric per center and pooled, and the AUC heterogeneity test, on each validation cohort.

    For every validation cohort (internal, external) and model, each center of that cohort is
    evaluated on its own and all of its centers together (``center == "pooled"``) by
    :func:`sonorad.evaluation.performance_by_center`: AUC (DeLong CI), the rms::val.prob set,
    Hosmer-Lemeshow and, at the model's training cut-off (``thresholds``), sensitivity,
    specificity, PPV, NPV and accuracy. A center with one outcome class keeps its n and Brier
    score; what it lacks is named in ``not_computable``. With ``groups`` (patient id per case), AUC
    intervals and the heterogeneity weights use Obuchowski's clustered variance where a patient has
    several cases.

    Returns
    -------
    by_center : DataFrame
        ``cohort, model, center, n, n_events, ...`` (the columns of ``performance_by_center``).
    heterogeneity : DataFrame
        One row per cohort x model: Cochran's Q, df, p, I², tau², the inverse-variance pooled AUC
        with its CI, the centers used and those left out (with why), ``computable`` and ``reason``.
    """
    from sonorad.evaluation import performance_by_center

    rows, het = [], []
    for cohort in [c for c in VALIDATION_COHORTS if c in probabilities]:
        frame = probabilities[cohort]
        for model in (models if models is not None else frame.columns):
            if model not in frame.columns:
                continue
            p = frame[model].dropna()
            if not len(p):
                continue
            cut = None if thresholds is None or model not in thresholds.index else float(thresholds[model])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # separation within a small center: reported as NaN
                r = performance_by_center(y.loc[p.index].to_numpy(), p.to_numpy(),
                                          centers.loc[p.index].astype(str).to_numpy(), threshold=cut,
                                          level=level, name=model, cluster=_patients(groups, p.index))
            t = r.table.copy()
            t.insert(0, "model", model)
            t.insert(0, "cohort", cohort)
            rows.append(t)
            h = r.heterogeneity.to_frame().reset_index(drop=True)
            h.insert(0, "model", model)
            h.insert(0, "cohort", cohort)
            h["centers_used"] = ", ".join(r.heterogeneity.centers)
            het.append(h)
    by_center = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    heterogeneity = pd.concat(het, ignore_index=True) if het else pd.DataFrame()
    return by_center, heterogeneity


def roc_bands(probabilities: dict[str, pd.DataFrame], y: pd.Series, models, *, level: float = 0.95,
              seed: int = 0, n_boot: int = 500, points: int = 101) -> pd.DataFrame:
    """Pointwise confidence band of sensitivity at each specificity, for drawing ROC curves.

    Stratified bootstrap of cases (positives and negatives resampled separately, as pROC's
    ``ci.se(boot.stratified = TRUE)``): at ``points`` specificities from 0 to 1 the sensitivity of
    every resample's empirical ROC curve is read off, and the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles are the band. ``n_boot`` resamples (pROC's default is 2000).

    Returns ``cohort, model, fpr, tpr_low, tpr_high``.
    """
    from sklearn.metrics import roc_curve

    fpr_grid = np.linspace(0.0, 1.0, points)
    q = [(1 - level) / 2, (1 + level) / 2]
    parts = []
    for k, cohort in enumerate([c for c in COHORT_ORDER if c in probabilities]):
        frame = probabilities[cohort]
        for j, model in enumerate(m for m in models if m in frame.columns):
            p = frame[model].dropna()
            labels = y.loc[p.index].to_numpy()
            if not 0 < labels.sum() < len(labels):
                continue
            scores = p.to_numpy()
            pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, j)))
            tprs = np.empty((n_boot, points))
            for b in range(n_boot):
                rows = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
                fpr, tpr, _ = roc_curve(labels[rows], scores[rows])
                tprs[b] = np.interp(fpr_grid, fpr, tpr)
            low, high = np.quantile(tprs, q, axis=0)
            parts.append(pd.DataFrame({"cohort": cohort, "model": model, "fpr": fpr_grid,
                                       "tpr_low": low, "tpr_high": high}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["cohort", "model", "fpr", "tpr_low", "tpr_high"])
