"""Preliminary real-data check: train on BUS-BRA (Brazil), validate externally on BrEaST (Poland).

A first measurement with the library API, ahead of the full benchmark (study files, every family
with the full zoo, fine-tuned CNN baseline, leave-one-scanner-out, ComBat). Benign (0) vs malignant (1).

Usage::

    sonorad extract ../shared/data/bus_bra/cases.csv --out benchmarks/_work/bus_bra --deep efficientnet_lite0 --jobs 2
    sonorad extract ../shared/data/breast_lesions_usg/cases.csv --out benchmarks/_work/breast_lesions_usg \\
        --deep efficientnet_lite0 --jobs 2
    python benchmarks/breast_us/preliminary.py [--models logistic_regression random_forest ...]

Every model is fitted on BUS-BRA only; BrEaST is touched only to predict.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "benchmarks" / "_work"
BIRADS_COARSE = {"1": 1, "2": 2, "3": 3, "4": 4, "4a": 4, "4b": 4, "4c": 4, "5": 5}
BIRADS_FINE = {"1": 1, "2": 2, "3": 3, "4a": 4.1, "4b": 4.2, "4c": 4.3, "5": 5}


def load(name: str):
    cases = pd.read_csv(DATA / name / "cases.csv", dtype={"case_id": str, "patient_id": str, "birads": str})
    cases = cases.set_index("case_id")
    radiomics = pd.read_parquet(WORK / name / "radiomics.parquet")
    deep = pd.read_parquet(WORK / name / "deep_efficientnet_lite0.parquet")
    ids = cases.index.intersection(radiomics.index).intersection(deep.index)
    cases = cases.loc[ids]
    us = pd.DataFrame({"birads": cases["birads"].map(BIRADS_COARSE).astype(float)}, index=ids)
    return cases, {"radiomics": radiomics.loc[ids], "deep": deep.loc[ids], "us": us}


def main() -> None:
    from sonorad.evaluation import delong_test, roc_auc_ci
    from sonorad.designs.score_fusion import ScoreFusionEngine
    from sonorad.scores import RadScore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["logistic_regression", "svm", "random_forest",
                                                        "xgboost", "lightgbm", "mlp"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train_cases, train = load("bus_bra")
    test_cases, test = load("breast_lesions_usg")
    y_tr, y_te = train_cases["label"].astype(int), test_cases["label"].astype(int)
    groups = train_cases["patient_id"]
    print(f"training BUS-BRA: {len(y_tr)} images, {groups.nunique()} patients, {y_tr.mean():.1%} malignant")
    print(f"external BrEaST:  {len(y_te)} lesions, {y_te.mean():.1%} malignant")

    results: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}

    def fit_score(name, columns_of, table, **params):
        t0 = time.perf_counter()
        X_tr = train[table][columns_of(train[table])]
        score = RadScore(random_state=args.seed, **params).fit(X_tr, y_tr, groups=groups.to_numpy())
        results[name] = score.predict_proba(test[table][X_tr.columns])[:, 1]
        timings[name] = time.perf_counter() - t0
        print(f"{name}: {len(score.features_)} features kept ({timings[name]:.0f} s)", flush=True)
        return score

    results["BI-RADS (2/3/4/5)"] = test["us"]["birads"].to_numpy()
    results["BI-RADS fine (4a/4b/4c), reference only"] = test_cases["birads"].map(BIRADS_FINE).to_numpy()
    fit_score("baseline: original features + LASSO-LR", lambda t: [c for c in t if c.startswith("original_")],
              "radiomics")
    fit_score("Radiomics score (all filters)", lambda t: list(t), "radiomics")
    fit_score("DL score (EfficientNet-Lite0 frozen)", lambda t: list(t), "deep")

    t0 = time.perf_counter()
    family = ScoreFusionEngine(models=args.models, us_variables={"birads": "numeric"}, random_state=args.seed)
    family.fit({k: train[k] for k in ("radiomics", "deep", "us")}, y_tr, groups=groups)
    proba = family.predict_proba({k: test[k] for k in ("radiomics", "deep", "us")})
    timings["combined"] = time.perf_counter() - t0
    print(f"combined family (BI-RADS + Rad-score + DL-score): kept {family.selected_features_} "
          f"({timings['combined']:.0f} s)", flush=True)
    for model in args.models:
        results[f"Combined: {model}"] = proba[model].to_numpy()

    rows = []
    y = y_te.to_numpy()
    for name, score in results.items():
        auc = roc_auc_ci(y, score)
        rows.append({"model": name, "auc": auc.auc, "low": auc.low, "high": auc.high})
    table = pd.DataFrame(rows).set_index("model")
    print("\nExternal AUC on BrEaST (DeLong 95% CI):")
    print(table.round(3).to_string())
    best = table.drop(index=[i for i in table.index if "reference only" in i]).auc.idxmax()
    for other in ("baseline: original features + LASSO-LR", "BI-RADS (2/3/4/5)"):
        test_result = delong_test(y, results[best], results[other])
        print(f"DeLong {best} vs {other}: difference {test_result.difference:+.3f}, p = {test_result.p_value:.4f}")


if __name__ == "__main__":
    main()
