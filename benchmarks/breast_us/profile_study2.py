"""Where the study-2 fit spends its time, on the real benchmark's training cohort (BUS-BRA).

    python benchmarks/breast_us/profile_study2.py [--jobs N] [--out profile.csv]
    python benchmarks/breast_us/profile_study2.py --lasso-paths [--out paths.csv]

One fit of the study-2 design is: for every imaging family, the selection (z-score, univariate
filter, redundancy filter, LASSO) once per tuning fold and once on all training cases; for every
family x zoo model, a grid search over the model's parameters by patient-grouped CV. This script
times the two parts separately on the features of ``bus_bra_to_breast_study2.yaml`` (read from
the shared feature cache; run the study or ``sonorad extract`` first):

- each selection step of each imaging family, fitted once on all training cases;
- each family x model grid search on the columns that selection kept (the selection itself is
  not refitted here, so this is the model part of the cost only).

Multiply the selection row by (tuning folds + 1) to get its share of one fit, and one fit by
(1 + cross-validation folds x about 2/3) to get its share of a run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def training_inputs(study_file: Path):
    """The training cohort's model input table, labels, patients and feature columns of a study file."""
    from sonorad.pipeline import stages
    from sonorad.runner.config import run_config
    from sonorad.study import load_study

    study = load_study(study_file)
    cfg = run_config(study)
    cohort, failures = stages.validate(study)
    table = stages.with_mask_settings(cohort.table, study)
    features = stages.extract(table, cfg, cache=Path(cfg.cache), progress=False, say=lambda *_: None)
    failures = pd.concat([failures, features.failures], ignore_index=True)
    ids = stages.included(cohort, failures)
    parts = cohort.split_labels().loc[ids]
    columns = stages.feature_columns(features, study, cfg)
    rows = stages.cohort_ids(parts)["training"]
    X = stages.model_inputs(cohort.table, features, columns, rows, cfg)
    return study, cfg, X, cohort.y.loc[X.index], cohort.groups.loc[X.index].astype(str), columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default=str(HERE / "bus_bra_to_breast_study2.yaml"))
    parser.add_argument("--jobs", type=int, default=1, help="n_jobs of each grid search")
    parser.add_argument("--out", default=None, help="write the timings as CSV here")
    parser.add_argument("--mlp-iterations", default=None,
                        help="comma-separated L-BFGS caps: also tune the MLP at each (e.g. 3000,300)")
    parser.add_argument("--lasso-paths", action="store_true",
                        help="only time each imaging family's LASSO path on all training cases, lambda by lambda")
    args = parser.parse_args()
    if args.lasso_paths:
        lasso_paths(Path(args.study), args.out)
        return

    from sklearn.pipeline import Pipeline

    from sonorad.models import get_model, search_space, tune_pipeline

    study, cfg, X, y, groups, columns = training_inputs(Path(args.study))
    from sonorad.pipeline import stages

    design = stages.make_design(study, cfg)
    engine = design.build_engine(columns)
    tables = columns.tables(X)
    centers = X["center"].astype(str)
    rows = []
    for family in engine.families:
        Xf = engine._input(family, tables, X.index, centers)
        front, _ = engine._front(family, tables)
        select = front[0][1]
        t0 = time.perf_counter()
        params = {"imaging__lasso__groups": groups.to_numpy()} if family != "us" else {}
        selected = select.fit(Xf, y.to_numpy(), **params).transform(Xf)
        total = time.perf_counter() - t0
        for block, transformer, _ in select.transformers_:
            if isinstance(transformer, Pipeline):
                for step, est in transformer.steps:
                    rows.append({"family": family, "part": f"selection: {step}",
                                 "seconds": getattr(est, "_profile_s", float("nan"))})
        rows.append({"family": family, "part": "selection (all steps, once)", "seconds": round(total, 2),
                     "n_features": selected.shape[1]})
        print(f"{family}: selection {total:.1f} s, {selected.shape[1]} features kept", flush=True)
        for name in engine.models or __import__("sonorad.models", fromlist=["x"]).available_models():
            model = get_model(name, random_state=engine.random_state)
            t0 = time.perf_counter()
            search = tune_pipeline(model, search_space(name, model), selected, y.to_numpy(), groups.to_numpy(),
                                   cv=engine.cv, random_state=engine.random_state, n_jobs=args.jobs)
            seconds = time.perf_counter() - t0
            rows.append({"family": family, "part": f"tuning: {name}", "seconds": round(seconds, 2),
                         "candidates": len(search.cv_results_["params"]),
                         "cv_auc": round(float(search.best_score_), 4)})
            print(f"  {name}: {seconds:.1f} s ({len(search.cv_results_['params'])} candidates)", flush=True)
        for cap in ([int(v) for v in args.mlp_iterations.split(",")] if args.mlp_iterations else []):
            model = get_model("mlp", random_state=engine.random_state).set_params(clf__max_iter=cap)
            t0 = time.perf_counter()
            search = tune_pipeline(model, search_space("mlp", model), selected, y.to_numpy(), groups.to_numpy(),
                                   cv=engine.cv, random_state=engine.random_state, n_jobs=args.jobs)
            rows.append({"family": family, "part": f"tuning: mlp, max_iter={cap}",
                         "seconds": round(time.perf_counter() - t0, 2),
                         "candidates": len(search.cv_results_["params"]), "cv_auc": round(float(search.best_score_), 4),
                         "best": str(search.best_params_)})
            print(f"  mlp at {cap} iterations: {rows[-1]['seconds']} s, CV AUC {rows[-1]['cv_auc']}", flush=True)
    frame = pd.DataFrame(rows)
    frame = frame[frame["seconds"].notna()]
    print(frame.to_string(index=False))
    if args.out:
        frame.to_csv(args.out, index=False)


def lasso_paths(study_file: Path, out: str | None) -> None:
    """One LASSO path per imaging family on all training cases, on one core: seconds and fraction of
    deviance explained at each lambda. A selection fits this path 11 times (10 CV folds and all
    rows), and one fit of the design runs 6 selections per family (5 tuning folds and all rows)."""
    import numpy as np
    from sklearn.pipeline import Pipeline

    from sonorad.pipeline import stages

    study, cfg, X, y, groups, columns = training_inputs(study_file)
    engine = stages.make_design(study, cfg).build_engine(columns)
    tables, centers = columns.tables(X), X["center"].astype(str)
    rows = []
    for family in engine.families:
        if family == "us":
            continue
        Xf = engine._input(family, tables, X.index, centers)
        select = engine._front(family, tables)[0][0][1]
        for _, steps, block in select.blocks:
            if not isinstance(steps, Pipeline):
                continue
            Z = np.asarray(Pipeline(steps.steps[:-1]).fit_transform(Xf[list(block)], y.to_numpy()), float)
            lasso, yf = steps.steps[-1][1], y.to_numpy().astype(float)

            def deviance(eta):
                return float(np.sum(2 * (np.logaddexp(0, eta) - yf * eta)))

            null = deviance(np.full(len(yf), np.log(yf.mean() / (1 - yf.mean()))))
            for k, lam in enumerate(lasso._grid(Z, yf)):
                t0 = time.perf_counter()
                coef, b0 = lasso._fit_one(Z, yf, lam)
                seconds = time.perf_counter() - t0
                rows.append({"family": family, "lambda_index": k, "lambda": lam, "seconds": round(seconds, 3),
                             "n_nonzero": int(np.count_nonzero(coef)), "n_columns": Z.shape[1],
                             "deviance_explained": round(1 - deviance(Z @ coef + b0) / null, 4)})
        path = [r for r in rows if r["family"] == family]
        print(f"{family}: {path[0]['n_columns']} columns into the LASSO, path {sum(r['seconds'] for r in path):.2f} s "
              f"(last 10 lambdas {sum(r['seconds'] for r in path[-10:]):.2f} s), deviance explained at the "
              f"smallest lambda {path[-1]['deviance_explained']}", flush=True)
    if out:
        pd.DataFrame(rows).to_csv(out, index=False)


def _time_steps() -> None:
    """Record each selection step's fit time on the estimator (``_profile_s``)."""
    from sonorad import selection

    for cls in (selection.ZScore, selection.UnivariateFilter, selection.CorrelationFilter, selection.LassoSelector):
        fit = cls.fit

        def timed(self, *a, _fit=fit, **k):
            t0 = time.perf_counter()
            out = _fit(self, *a, **k)
            self._profile_s = round(time.perf_counter() - t0, 2)
            return out

        cls.fit = timed


if __name__ == "__main__":
    _time_steps()
    main()
