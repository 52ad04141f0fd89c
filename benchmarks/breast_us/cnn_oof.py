"""Fine-tuned EfficientNet-Lite0 logits on BUS-BRA (out of fold, leave-one-scanner-out) and BrEaST, for stacking.

    python benchmarks/breast_us/cnn_oof.py                              # after run_all.py
    python benchmarks/breast_us/cnn_oof.py --augment scanner_shift --split folds all loso
    python benchmarks/breast_us/cnn_oof.py --split loso                 # then generalization.py --set cnn / cnn_shift
    python benchmarks/breast_us/cnn_oof.py --augment scanner_shift --split folds all loso --dl-score

The study-2 run (``bus_bra_to_breast_study2.yaml``, ``models.cnn: {backbones: [efficientnet_lite0],
epochs: 10}``) fine-tunes Lite0 on all of BUS-BRA and scores BrEaST with it. A stack needs the
CNN's training-cohort values out of fold: here the same :class:`~sonorad.deep.finetune.CNNClassifier`
(same settings and seed, ``augment`` as given) is fine-tuned on part of BUS-BRA and scores the rest.

``--split``, one or more of:

- ``folds``: two of three patient-grouped folds (those of ``generalization.py``'s out-of-fold
  scores) score the third: ``cnn_oof[_<augment>].csv`` (case_id, fold, logit);
- ``loso``: three scanners score the fourth: ``cnn_loso[_<augment>].csv`` (case_id, scanner, logit);
- ``all``: all of BUS-BRA scores BrEaST: ``cnn_breast[_<augment>].csv`` (case_id, logit). With
  the default augmentation this is the study-2 run's CNN, so it is needed only for the others.

``--dl-score`` also fits a DL-score (:class:`~sonorad.scores.DLScore`, its defaults) on the pooled
features of each fine-tuned trunk: fitted on that fine-tune's own training rows, it scores the
held-out rows (``dlft_oof``, ``dlft_loso``, ``dlft_breast`` with the same suffix; column ``score``).
The embeddings are kept beside them (``cnn_embeddings/<split>_<part>[_<augment>].parquet``). A
split whose logit file already exists is fine-tuned again (the fine-tune is deterministic on the
CPU): the new logits are compared with the stored ones, and the stored file is kept.

Files go to ``benchmarks/_work/breast_us/``; a split whose files exist is skipped (delete them to
redo it). No BrEaST label is used.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
WORK = HERE.parents[0] / "_work" / "breast_us"
SEED = 0
FOLDS = 3
SPLITS = ("folds", "loso", "all")


def suffix(augment) -> str:
    """The file-name suffix of an augmentation: none for the standard one (the historical names)."""
    return "" if augment is True else f"_{augment}"


def output(split: str, augment, kind: str = "cnn") -> Path:
    """The file of one split (``kind`` "cnn": logits, "dlft": DL-scores of the fine-tuned features)."""
    return WORK / (f"{kind}_" + {"folds": "oof", "loso": "loso", "all": "breast"}[split] + f"{suffix(augment)}.csv")


def dl_score(model, fitted: pd.DataFrame, y, groups, scored: pd.DataFrame, path: Path):
    """DL-score of ``scored`` from the fine-tuned trunk's pooled features, fitted on ``fitted``."""
    from sonorad.deep.extractor import embed_crops
    from sonorad.deep.inputs import collect_crops
    from sonorad.scores import DLScore

    def embed(frame):
        crops = collect_crops(frame, margin=model.margin, mask_background=model.mask_background)
        values = embed_crops(model.model_, crops, batch_size=32, input_size=model.input_size)
        return pd.DataFrame(values, index=frame.index, columns=[f"finetuned_lite0_{i}" for i in range(values.shape[1])])

    train_features, scored_features = embed(fitted), embed(scored)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat([train_features, scored_features[~scored_features.index.isin(train_features.index)]]).to_parquet(path)
    score = DLScore(random_state=SEED).fit(train_features, y, groups=groups)
    return score.decision_function(scored_features), len(score.features_)


def parts(split: str, train: pd.DataFrame, test: pd.DataFrame, y, groups):
    """``(name, fit positions in train, rows to score)`` of a split."""
    from sonorad.selection import make_grouped_cv

    if split == "folds":
        for k, (tr, te) in enumerate(make_grouped_cv(FOLDS, y, groups, random_state=SEED)):
            yield k, tr, train.iloc[te]
    elif split == "loso":
        for scanner in sorted(train["center"].unique()):
            yield scanner, np.flatnonzero(train["center"].to_numpy() != scanner), train[train["center"] == scanner]
    else:
        yield "all", np.arange(len(train)), test


def main() -> None:
    from sonorad.deep.finetune import CNNClassifier

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--augment", default="true", choices=("true", "scanner_shift"),
                        help="models.cnn.augment of the fine-tunes (default true: the study-2 run's)")
    parser.add_argument("--split", nargs="+", default=["folds"], choices=SPLITS)
    parser.add_argument("--dl-score", action="store_true",
                        help="also fit a DL-score on each fine-tuned trunk's pooled features")
    args = parser.parse_args()
    augment = True if args.augment == "true" else args.augment

    cases = pd.read_csv(WORK / "external" / "cases.csv", dtype={"case_id": str, "patient_id": str})
    cases = cases.set_index("case_id", drop=False)
    rad = pd.read_parquet(WORK / "results" / "study1" / "features" / "radiomics.parquet")
    cases = cases.loc[cases.index.intersection(rad.index)]  # the rows generalization.py uses, in its order
    train, test = cases[cases["center"] != "PL-Warsaw"], cases[cases["center"] == "PL-Warsaw"]
    y = train["label"].astype(int).to_numpy()
    groups = train["patient_id"].astype(str).to_numpy()
    key = {"folds": "fold", "loso": "scanner", "all": None}
    for split in args.split:
        path = output(split, augment)
        dl_path = output(split, augment, "dlft") if args.dl_score else None
        if path.exists() and (dl_path is None or dl_path.exists()):
            print(f"{path.name} exists: skipped")
            continue
        rows, dl_rows, t0 = [], [], time.perf_counter()
        for name, fit, scored in parts(split, train, test, y, groups):
            model = CNNClassifier(backbone="efficientnet_lite0", epochs=10, augment=augment, random_state=SEED)
            model.fit(train.iloc[fit], y[fit], groups=groups[fit])
            logit = model.decision_function(scored)
            where = {key[split]: name} if key[split] else {}
            rows += [{"case_id": c, **where, "logit": float(v)} for c, v in zip(scored.index, logit)]
            print(f"{split} {name}: {len(fit)} training cases, best epoch {model.best_epoch_}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            if dl_path is not None:
                score, n = dl_score(model, train.iloc[fit], y[fit], groups[fit], scored,
                                    WORK / "cnn_embeddings" / f"{split}_{name}{suffix(augment)}.parquet")
                dl_rows += [{"case_id": c, **where, "score": float(v)} for c, v in zip(scored.index, score)]
                print(f"  DL-score on the fine-tuned features: {n} features, {time.perf_counter() - t0:.0f} s",
                      flush=True)
        if dl_path is not None:
            pd.DataFrame(dl_rows).to_csv(dl_path, index=False)
            print(f"written {dl_path}", flush=True)
        new = pd.DataFrame(rows)
        if path.exists():
            stored = pd.read_csv(path, dtype={"case_id": str})
            gap = np.abs(stored["logit"].to_numpy() - new["logit"].to_numpy()).max()
            print(f"{path.name} kept; largest difference of the new logits from it: {gap:.3g}", flush=True)
        else:
            new.to_csv(path, index=False)
            print(f"written {path} in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
