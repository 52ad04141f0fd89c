"""Coverage of the training-CV AUC 95% interval when the labels carry no information.

A small synthetic cohort (``--cases`` patients, one image each, ``--features`` Gaussian features,
40% positives) has its labels permuted ``--permutations`` times. For every permutation the run's
own code path computes the training-CV AUC and its interval: patient-grouped, outcome-stratified
folds (:func:`sonorad.pipeline.stages.cross_validate`, ``--folds`` folds), the whole model refitted
in each fold, then the metrics table of the out-of-fold predictions
(:func:`sonorad.pipeline.statistics.metrics_table`). The true AUC is 0.5 under permuted labels, so a
95% interval should contain 0.5 in about 95% of the permutations.

Next to the run's interval (``run: DeLong, pooled out-of-fold``) the same out-of-fold predictions
get three fold-aware alternatives: Obuchowski's clustered variance with the folds as clusters
(normal and Student t with K - 1 df), the influence-curve interval of the mean per-fold AUC (LeDell,
Petersen & van der Laan 2015, R ``cvAUC``), the mean per-fold AUC +/- t(K - 1) x SD / sqrt(K), and
the same with Nadeau & Bengio's (2003) corrected resampled variance, (1/K + n_test/n_train) x SD^2
(:func:`sonorad.evaluation.cv_interval.cv_auc_interval`).

The models are the run's cheapest: the Rad-score estimator (:class:`sonorad.scores.RadScore`: z-score,
Mann-Whitney filter, correlation filter, LASSO; with a shorter LASSO path and 5 inner folds to fit
the budget) and a logistic regression on the first five features. Only the model cost is reduced;
the folds and the interval are the run's.

``--bootstrap B`` adds a refit-based interval: the pooled out-of-fold AUC +/- z x its SD over B
bootstrap samples of patients, the whole cross-validation rerun in each (B x K more fits).

Run (about 10 minutes on a shared 2-core machine; results in ``cv_interval_coverage.md``)::

    python benchmarks/cv_interval_coverage.py --permutations 200 --out rows.csv
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


class _Models:
    """The fitted stand-in design: P(positive) of each model as a DataFrame (the design contract)."""

    def __init__(self, models: dict):
        self.models = models

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({name: model.predict_proba(X[cols])[:, 1] for name, (model, cols) in self.models.items()},
                            index=X.index)


class CheapDesign:
    """``fit(X, y, groups, columns)`` like a :class:`sonorad.designs.design.Design`, with two cheap models."""

    def __init__(self, seed: int = 0, models=("rad_score", "logistic_regression")):
        self.seed = seed
        self.models = models

    def fit(self, X, y, groups=None, *, columns=None):
        from sklearn.linear_model import LogisticRegression

        from sonorad.scores import RadScore

        features = [c for c in X.columns if c != "center"]
        fitted = {}
        if "rad_score" in self.models:
            rad = RadScore(n_lambdas=10, cv=5, random_state=self.seed).fit(X[features], y, groups=groups)
            fitted["rad_score"] = (rad, features)
        if "logistic_regression" in self.models:
            fitted["logistic_regression"] = (LogisticRegression(max_iter=1000).fit(X[features[:5]], y), features[:5])
        return _Models(fitted)


def cohort(cases: int, features: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    """Feature table (with a ``center`` column), the labels to permute, one patient per case."""
    rng = np.random.default_rng(seed)
    ids = [f"case{i:03d}" for i in range(cases)]
    X = pd.DataFrame(rng.normal(size=(cases, features)), index=ids,
                     columns=[f"original_firstorder_F{j}" for j in range(features)])
    X["center"] = "A"
    labels = np.zeros(cases, int)
    labels[: round(0.4 * cases)] = 1
    return X, labels, pd.Series(ids, index=ids)


def fold_intervals(y: np.ndarray, p: np.ndarray, fold: np.ndarray, level: float = 0.95) -> list[tuple]:
    """``(interval, estimate, low, high)`` of the fold-aware alternatives."""
    from scipy import stats

    from sonorad.evaluation import auc_score, roc_auc_ci
    from sonorad.evaluation.cv_interval import cv_auc_interval

    k = int(fold.max()) + 1
    z, t = stats.norm.ppf((1 + level) / 2), stats.t.ppf((1 + level) / 2, k - 1)
    c = roc_auc_ci(y, p, cluster=fold, level=level)
    out = [("folds as clusters (Obuchowski), normal", c.auc, c.low, c.high),
           ("folds as clusters (Obuchowski), t(K-1)", c.auc, c.auc - t * c.se, c.auc + t * c.se)]
    n, w1, w0 = len(y), len(y) / y.sum(), len(y) / (len(y) - y.sum())
    aucs, ic2 = [], []
    for v in range(k):
        yv, pv = y[fold == v], p[fold == v]
        if yv.min() == yv.max():
            continue
        a = auc_score(yv, pv)
        pos, neg = pv[yv == 1], pv[yv == 0]
        ic = [w1 * (np.mean((x > neg) + 0.5 * (x == neg)) - a) for x in pos]
        ic += [w0 * (np.mean((pos > x) + 0.5 * (pos == x)) - a) for x in neg]
        aucs.append(a)
        ic2.append(np.mean(np.square(ic)))
    mean, se = float(np.mean(aucs)), float(np.sqrt(np.mean(ic2) / n))
    out.append(("mean fold AUC, influence curve (cvAUC)", mean, mean - z * se, mean + z * se))
    spread = float(np.std(aucs, ddof=1) / np.sqrt(len(aucs)))
    tk = stats.t.ppf((1 + level) / 2, len(aucs) - 1)
    out.append(("mean fold AUC, t(K-1) x SD/sqrt(K)", mean, mean - tk * spread, mean + tk * spread))
    nb = cv_auc_interval(y, p, fold, level=level)
    out.append(("mean fold AUC, corrected t (Nadeau-Bengio)", nb.estimate, nb.low, nb.high))
    return out


def bootstrap_interval(design, X, y, groups, *, folds: int, seed: int, n_boot: int, level: float = 0.95) -> dict:
    """Pooled out-of-fold AUC +/- z x SD of the same AUC over ``n_boot`` bootstrap samples of patients,
    the whole cross-validation rerun in each (a patient drawn twice stays in one fold)."""
    from scipy import stats

    from sonorad.evaluation import auc_score
    from sonorad.pipeline import stages

    rng = np.random.default_rng([seed, 7])
    patients = pd.unique(groups)
    aucs = []
    for _ in range(n_boot):
        drawn = rng.choice(patients, len(patients), replace=True)
        picks = [np.flatnonzero(groups.to_numpy() == p) for p in drawn]
        rows = np.concatenate(picks)
        yb = y.iloc[rows]
        if yb.min() == yb.max():
            continue
        # each draw is its own patient (copies of a patient stay together in one fold)
        draw = np.repeat(np.arange(len(drawn)), [len(r) for r in picks])
        ids = [f"{i}#{d}" for i, d in zip(X.index[rows], draw)]
        patient_b = [f"{g}#{d}" for g, d in zip(groups.iloc[rows], draw)]
        Xb = X.iloc[rows].set_axis(ids)
        oof, _ = stages.cross_validate(design, Xb, yb.set_axis(ids), pd.Series(patient_b, index=ids), None,
                                       folds=folds, seed=seed)
        aucs.append({m: auc_score(yb.to_numpy(), oof[m].to_numpy()) for m in oof.columns})
    sd = pd.DataFrame(aucs).std(ddof=1)
    return {m: float(sd[m]) * stats.norm.ppf((1 + level) / 2) for m in sd.index}


def one_permutation(X, labels, groups, *, folds: int, seed: int, k: int, models=None, n_boot: int = 0) -> pd.DataFrame:
    """Training-CV AUC and intervals of each model for permutation ``k`` (the run's code path)."""
    from sonorad.pipeline import stages
    from sonorad.pipeline import statistics as st
    from sonorad.selection import make_grouped_cv

    rng = np.random.default_rng([seed, k])
    y = pd.Series(rng.permutation(labels), index=X.index)
    design = CheapDesign(seed) if models is None else CheapDesign(seed, models)
    oof, n_folds = stages.cross_validate(design, X, y, groups, None, folds=folds, seed=seed + k)
    probs = {"training": oof, "training_cv": oof}
    table = st.metrics_table(probs, y, st.youden_cutoffs(probs, y), groups=groups)
    table = table[table["cohort"] == "training_cv"][["model", "auc", "auc_low", "auc_high"]].copy()
    table.insert(0, "interval", "run: DeLong, pooled out-of-fold")
    # the folds of stages.cross_validate, recomputed with the same call
    fold = np.empty(len(y), int)
    for f, (_, te) in enumerate(make_grouped_cv(folds, y.to_numpy(), groups.to_numpy(), random_state=seed + k)):
        fold[te] = f
    extra = [{"interval": name, "model": model, "auc": est, "auc_low": low, "auc_high": high}
             for model in oof.columns
             for name, est, low, high in fold_intervals(y.to_numpy(), oof[model].to_numpy(), fold)]
    if n_boot:
        half = bootstrap_interval(design, X, y, groups, folds=folds, seed=seed + k, n_boot=n_boot)
        for model in oof.columns:
            auc = float(table.loc[table["model"] == model, "auc"].iloc[0])
            extra.append({"interval": f"bootstrap of patients around the CV ({n_boot})", "model": model,
                          "auc": auc, "auc_low": auc - half[model], "auc_high": auc + half[model]})
    table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    table.insert(0, "permutation", k)
    table["folds"] = n_folds
    return table


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    covered = (rows["auc_low"] <= 0.5) & (rows["auc_high"] >= 0.5)
    rows = rows.assign(covered=covered, below=rows["auc_high"] < 0.5, above=rows["auc_low"] > 0.5,
                       width=rows["auc_high"] - rows["auc_low"])
    out = rows.groupby(["model", "interval"], sort=False).agg(
        permutations=("covered", "size"), coverage=("covered", "mean"), excludes_below=("below", "mean"),
        excludes_above=("above", "mean"), mean_auc=("auc", "mean"), sd_auc=("auc", "std"),
        mean_width=("width", "mean"))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=["rad_score", "logistic_regression"],
                        choices=["rad_score", "logistic_regression"])
    parser.add_argument("--bootstrap", type=int, default=0,
                        help="also the interval from this many bootstrap samples of patients, CV rerun in each")
    parser.add_argument("--out", type=Path, default=None, help="write the per-permutation rows as CSV here")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    X, labels, groups = cohort(args.cases, args.features, args.seed)
    start = time.perf_counter()
    parts = []
    for k in range(args.permutations):
        parts.append(one_permutation(X, labels, groups, folds=args.folds, seed=args.seed, k=k, models=args.models,
                                     n_boot=args.bootstrap))
        if (k + 1) % 25 == 0:
            print(f"{k + 1}/{args.permutations} permutations, {time.perf_counter() - start:.0f} s", flush=True)
    rows = pd.concat(parts, ignore_index=True)
    if args.out is not None:
        rows.to_csv(args.out, index=False)
    print(f"{args.cases} cases, {args.features} features, {args.folds} folds, {args.permutations} permutations, "
          f"{time.perf_counter() - start:.0f} s")
    print(summarise(rows).to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
