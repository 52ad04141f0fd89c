"""Leave-one-scanner-out inside BUS-BRA, and the effect of ComBat on the external AUC.

Uses the feature tables of the study-1 run of ``run_all.py``
(``benchmarks/_work/breast_us/results/study1/features/``) and its cohort table; writes
``benchmarks/_work/breast_us/loso.csv`` and ``combat.csv`` for RESULTS.md.

- Leave-one-scanner-out: for each BUS-BRA scanner, the Rad-score and the DL-score are fitted on
  the other three scanners (patient-grouped inner folds) and scored on the held-out scanner.
- ComBat: the same scores fitted on all of BUS-BRA with and without a ComBat step (batch = scanner,
  fitted on BUS-BRA only; the Polish cohort is an unseen center whose location and scale are
  estimated from its own features, never its labels), scored on BrEaST.

Usage::

    python benchmarks/breast_us/loso_combat.py
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from sklearn.pipeline import Pipeline

from sonorad.evaluation import delong_test, roc_auc_ci
from sonorad.harmonize import ComBatHarmonizer
from sonorad.scores import DLScore, RadScore

WORK = Path(__file__).resolve().parents[1] / "_work" / "breast_us"
FEATURES = WORK / "results" / "study1" / "features"
SEED = 0


def load(training: bool):
    cases = pd.read_csv(WORK / "external" / "cases.csv", dtype={"case_id": str, "patient_id": str})
    cases = cases.set_index("case_id")
    cases = cases[(cases["center"] != "PL-Warsaw") == training]
    tables = {"radiomics": pd.read_parquet(FEATURES / "radiomics.parquet"),
              "deep": pd.read_parquet(FEATURES / "deep_efficientnet_lite0.parquet")}
    ids = cases.index.intersection(tables["radiomics"].index).intersection(tables["deep"].index)
    return cases.loc[ids], {k: v.loc[ids] for k, v in tables.items()}


def score_model(kind, combat=False):
    score = (RadScore if kind == "radiomics" else DLScore)(random_state=SEED)
    steps = [("combat", ComBatHarmonizer())] if combat else []
    return Pipeline(steps + [("score", score)])


def with_center(X, cases):
    return X.assign(center=cases.loc[X.index, "center"].to_numpy())


def main():
    train_cases, train = load(training=True)
    test_cases, test = load(training=False)
    y_tr = train_cases["label"].astype(int)
    y_te = test_cases["label"].astype(int).to_numpy()

    print("Leave-one-scanner-out inside BUS-BRA (AUC with DeLong 95% CI on the held-out scanner):")
    rows = []
    for scanner in sorted(train_cases["center"].unique()):
        held = (train_cases["center"] == scanner).to_numpy()
        for kind in ("radiomics", "deep"):
            t0 = time.perf_counter()
            X = train[kind]
            model = score_model(kind).fit(X[~held], y_tr[~held], score__groups=train_cases["patient_id"][~held].to_numpy())
            p = model.predict_proba(X[held])[:, 1]
            auc = roc_auc_ci(y_tr[held].to_numpy(), p)
            rows.append({"held-out scanner": scanner, "n": int(held.sum()), "malignant": int(y_tr[held].sum()),
                         "score": "Rad-score" if kind == "radiomics" else "DL-score",
                         "auc": auc.auc, "low": auc.low, "high": auc.high, "seconds": time.perf_counter() - t0})
            print(f"  {scanner:18s} {rows[-1]['score']:9s} n={rows[-1]['n']:4d} AUC {auc.auc:.3f} "
                  f"({auc.low:.3f}-{auc.high:.3f})", flush=True)
    loso = pd.DataFrame(rows)
    loso.to_csv(WORK / "loso.csv", index=False)

    print("\nComBat (batch = scanner, fitted on BUS-BRA; BrEaST as an unseen center), external AUC on BrEaST:")
    groups = train_cases["patient_id"].to_numpy()
    combat = []
    for kind in ("radiomics", "deep"):
        name = "Rad-score" if kind == "radiomics" else "DL-score"
        plain = score_model(kind).fit(train[kind], y_tr, score__groups=groups)
        harmonized = score_model(kind, combat=True).fit(with_center(train[kind], train_cases), y_tr,
                                                        score__groups=groups)
        p0 = plain.predict_proba(test[kind])[:, 1]
        p1 = harmonized.predict_proba(with_center(test[kind], test_cases))[:, 1]
        a0, a1 = roc_auc_ci(y_te, p0), roc_auc_ci(y_te, p1)
        d = delong_test(y_te, p1, p0)
        print(f"  {name:9s} without {a0.auc:.3f} ({a0.low:.3f}-{a0.high:.3f})  with ComBat {a1.auc:.3f} "
              f"({a1.low:.3f}-{a1.high:.3f})  DeLong difference {d.difference:+.3f}, p = {d.p_value:.3g}", flush=True)
        combat.append({"score": name, "auc_plain": a0.auc, "low_plain": a0.low, "high_plain": a0.high,
                       "auc_combat": a1.auc, "low_combat": a1.low, "high_combat": a1.high,
                       "difference": d.difference, "p_value": d.p_value})
    pd.DataFrame(combat).to_csv(WORK / "combat.csv", index=False)
    return loso


if __name__ == "__main__":
    main()
