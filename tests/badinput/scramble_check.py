"""Scramble check: `sonorad run` on a synthetic cohort whose labels are randomly permuted.

Under permuted labels no model can learn anything, so every run must complete and the training
cross-validation AUC (whole pipeline, out of fold) must scatter around 0.5; small-sample CV is
biased below 0.5 under the null, and a mean above 0.55 points to a leak.

Usage (from the repository root; about 3 minutes per permutation on one core)::

    PYTHONPATH=src python tests/badinput/scramble_check.py OUT [--perms 5] [--n-patients 60]

Writes OUT/cohort (``sonorad synth --design clnm --seed 0``), OUT/cohort/cases_perm<k>.csv (labels
permuted with ``numpy.random.default_rng(k)``), OUT/study.yaml (original-image radiomics only; the
zoo models logistic_regression, svm, random_forest, naive_bayes; 5 training-CV folds) and one run
folder OUT/perm<k> per permutation, then prints one line per run and the mean training-CV AUC.
A run whose statistics stage fails still has its out-of-fold predictions
(``models/training_cv_predictions.joblib``); its AUC is computed from them and the failure reported.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

MODELS = ["logistic_regression", "svm", "random_forest", "naive_bayes"]


def prepare(out: Path, n_perms: int, n_patients: int) -> Path:
    from sonorad.features.radiomics import load_params
    from sonorad.synthetic import make_cohort

    csv = out / "cohort" / "cases.csv"
    if not csv.exists():
        make_cohort(out / "cohort", scenario="clnm", seed=0, n_patients=n_patients)
    table = pd.read_csv(csv)
    for k in range(1, n_perms + 1):
        permuted = table.assign(label=np.random.default_rng(k).permutation(table["label"].to_numpy()))
        permuted.to_csv(out / "cohort" / f"cases_perm{k}.csv", index=False)
    params = load_params()
    params["imageType"] = {"Original": {}}
    (out / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    study = {
        "name": "scramble", "cohort": "cohort/cases.csv", "seed": 0,
        "label": {"column": "label", "positive": 1},
        "variables": {"age": {"type": "numeric", "role": "clinical"},
                      "tumor_edge": {"type": "binary", "role": "ultrasound"},
                      "calcification": {"type": "binary", "role": "ultrasound"},
                      "us_lymph_node": {"type": "binary", "role": "ultrasound"}},
        "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]},
        "features": {"radiomics": True, "params": "params.yaml", "deep": [], "jobs": 1, "cache": "cache"},
        "models": {"design": "study1", "cv": 5, "models": MODELS},
        "evaluation": {"cv_folds": 5, "shap": False, "nomogram": False, "gradcam": 0},
    }
    path = out / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def training_cv_auc(run: Path, labels: pd.Series) -> pd.Series:
    """Out-of-fold training AUC per model, from tables/metrics.csv or the saved CV predictions."""
    metrics = run / "tables" / "metrics.csv"
    if metrics.exists():
        m = pd.read_csv(metrics)
        return m[m["cohort"] == "training_cv"].set_index("model")["auc"]
    import joblib
    from sklearn.metrics import roc_auc_score

    oof = joblib.load(run / "models" / "training_cv_predictions.joblib")  # written by this run: trusted
    oof = oof[0] if isinstance(oof, tuple) else oof  # (predictions, n_folds)
    y = labels.loc[oof.index]
    return pd.Series({c: roc_auc_score(y, oof[c]) for c in oof.columns if oof[c].notna().all()})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--perms", type=int, default=5)
    parser.add_argument("--n-patients", type=int, default=60)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    study = prepare(args.out, args.perms, args.n_patients)
    rows = []
    for k in range(1, args.perms + 1):
        cases = args.out / "cohort" / f"cases_perm{k}.csv"
        run = args.out / f"perm{k}"
        done = subprocess.run([sys.executable, "-m", "sonorad", "run", str(study), "--cohort", str(cases),
                               "--out", str(run), "--no-report", "--quiet"], capture_output=True, text=True)
        error = done.stderr.strip().splitlines()[-2] if done.returncode else ""
        table = pd.read_csv(cases).set_index("case_id")
        labels = (table["label"].astype(str) == "1").astype(int)
        try:
            aucs = training_cv_auc(run, labels)
        except FileNotFoundError:
            aucs = pd.Series(dtype=float)
        rows.append({"perm": k, "exit": done.returncode, **aucs.round(3).to_dict(), "error": error[:160]})
        print(rows[-1], flush=True)
    result = pd.DataFrame(rows)
    zoo = [c for c in MODELS if c in result.columns]
    print(result.to_string(index=False))
    print(f"runs completed: {int((result['exit'] == 0).sum())} of {len(result)}; mean training-CV AUC over "
          f"runs and zoo models: {np.nanmean(result[zoo].to_numpy(dtype=float)):.3f}"
          + (f"; Rad-score: {result['rad_score'].mean():.3f}" if "rad_score" in result else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
