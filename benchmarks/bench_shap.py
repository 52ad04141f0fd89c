"""SHAP on every zoo model: time to explain a 200-case synthetic cohort.

Usage::

    python benchmarks/bench_shap.py [--n-cases 200] [--n-features 10] [--seed 0]

Fits every model of ``sonorad.models`` (or, when that module is not importable, an equivalent
set of scikit-learn / XGBoost / LightGBM classifiers) on a synthetic cohort with
``n-features`` selected features, explains all cases with
:func:`sonorad.explain.explain_model` and prints one line per model plus the total. Only
the explanation is timed (fitting is not), and the first permutation-explained model includes
shap's one-off numba compilation. Target: under 60 s in total on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd


def _cohort(n: int, p: int, seed: int):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"feature_{i:02d}" for i in range(p)],
                     index=[f"case{i:04d}" for i in range(n)])
    lp = 1.2 * X.iloc[:, 0] - 0.8 * X.iloc[:, 1] + 0.5 * X.iloc[:, 2] * X.iloc[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    return X, y


def _models(seed: int) -> dict:
    try:
        from sonorad.models import available_models, get_model

        return {name: get_model(name, random_state=seed) for name in available_models()}
    except ImportError:
        import lightgbm
        import xgboost
        from sklearn.ensemble import (AdaBoostClassifier, ExtraTreesClassifier,
                                      GradientBoostingClassifier, RandomForestClassifier)
        from sklearn.linear_model import LogisticRegression
        from sklearn.naive_bayes import GaussianNB
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        def scaled(m):
            return make_pipeline(StandardScaler(), m)

        return {
            "logistic_regression": scaled(LogisticRegression(max_iter=5000)),
            "svm": scaled(SVC(probability=True, random_state=seed)),
            "knn": scaled(KNeighborsClassifier()),
            "random_forest": RandomForestClassifier(random_state=seed),
            "extra_trees": ExtraTreesClassifier(random_state=seed),
            "xgboost": xgboost.XGBClassifier(random_state=seed),
            "lightgbm": lightgbm.LGBMClassifier(random_state=seed, verbose=-1),
            "mlp": scaled(MLPClassifier(max_iter=2000, random_state=seed)),
            "adaboost": AdaBoostClassifier(random_state=seed),
            "gradient_boosting": GradientBoostingClassifier(random_state=seed),
            "naive_bayes": GaussianNB(),
        }


def main(argv=None) -> float:
    import warnings

    from sonorad.explain import explain_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-cases", type=int, default=200)
    ap.add_argument("--n-features", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    X, y = _cohort(args.n_cases, args.n_features, args.seed)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.n_cases} cases x {args.n_features} features")
    total = 0.0
    for name, model in _models(args.seed).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
            t0 = time.perf_counter()
            r = explain_model(model, X, background=X, random_state=args.seed, model_name=name)
            dt = time.perf_counter() - t0
        total += dt
        top = ", ".join(r.importance().index[:3])
        print(f"{name:22s} {r.explainer:12s} {r.output:12s} {dt:7.2f} s   top: {top}")
    print(f"TOTAL {total:.1f} s")
    return total


if __name__ == "__main__":
    main()
