"""Out-of-fold probabilities of the fine-tuned EfficientNet-Lite0 on BUS-BRA, for stacking.

    python benchmarks/breast_us/cnn_oof.py      # after run_all.py; then generalization.py --set cnn

The study-2 run (``bus_bra_to_breast_study2.yaml``, ``models.cnn: {backbones: [efficientnet_lite0],
epochs: 10}``) fine-tunes Lite0 on all of BUS-BRA and scores BrEaST with it. A stack needs the
CNN's training-cohort values out of fold: here the same :class:`~sonorad.deep.finetune.CNNClassifier`
(same settings and seed) is fine-tuned on two of three patient-grouped folds of BUS-BRA and scores
the third, with the folds of ``generalization.py``'s out-of-fold scores. Writes
``benchmarks/_work/breast_us/cnn_oof.csv`` (case_id, fold, logit). No BrEaST case is used.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
WORK = HERE.parents[0] / "_work" / "breast_us"
SEED = 0
FOLDS = 3


def main() -> None:
    from sonorad.deep.finetune import CNNClassifier
    from sonorad.selection import make_grouped_cv

    cases = pd.read_csv(WORK / "external" / "cases.csv", dtype={"case_id": str, "patient_id": str})
    cases = cases.set_index("case_id", drop=False)
    train = cases[cases["center"] != "PL-Warsaw"]
    rad = pd.read_parquet(WORK / "results" / "study1" / "features" / "radiomics.parquet")
    train = train.loc[train.index.intersection(rad.index)]  # the rows generalization.py uses, in its order
    y = train["label"].astype(int).to_numpy()
    groups = train["patient_id"].astype(str).to_numpy()
    rows = []
    t0 = time.perf_counter()
    for k, (tr, te) in enumerate(make_grouped_cv(FOLDS, y, groups, random_state=SEED)):
        model = CNNClassifier(backbone="efficientnet_lite0", epochs=10, random_state=SEED)
        model.fit(train.iloc[tr], y[tr], groups=groups[tr])
        logit = model.decision_function(train.iloc[te])
        rows += [{"case_id": c, "fold": k, "logit": float(v)} for c, v in zip(train.index[te], logit)]
        print(f"fold {k + 1}/{FOLDS}: {len(tr)} training cases, {time.perf_counter() - t0:.0f} s", flush=True)
    pd.DataFrame(rows).to_csv(WORK / "cnn_oof.csv", index=False)
    print(f"written {WORK / 'cnn_oof.csv'} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
