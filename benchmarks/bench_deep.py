"""Speed of deep features on real BUS-BRA lesion crops: frozen extraction images/s and fine-tuning s/epoch.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_deep.py --limit 64
    .venv/bin/python benchmarks/bench_deep.py --limit 400 --backbones all --finetune-limit 200 --epochs 2 \\
        --out benchmarks/results/deep_speed.json

Crops are read once (``load_roi`` + ``crop_to_roi``, margin 0.1) and timed separately, so the
images/s figures are the network's: resize to the backbone's input, normalise, forward in batches.
Speed does not depend on the weight values, so backbones whose ImageNet weights are not in the
torch cache run with random weights (reported in the ``weights`` column). Fine-tuning is timed on
the first ``--finetune-limit`` crops with their labels, including the inner validation pass.
Cases are a random sample (``--seed``) of the cohort. ``--cv-auc`` adds a sanity check that the
frozen features carry the label: grouped 5-fold AUC of PCA(32) + logistic regression.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("SONORAD_SHARED_DATA", REPO.parent / "shared" / "data")) / "bus_bra"


def load_crops(data: Path, limit: int, seed: int = 0):
    import pandas as pd

    from sonorad.deep.inputs import case_crop

    table = pd.read_csv(data / "cases.csv")
    # a random sample: the file is ordered by scanner, and every scanner should be represented
    table = table.sample(min(limit, len(table)), random_state=seed)
    table["image"] = [str(data / p) for p in table["image"]]
    table["mask"] = [str(data / p) for p in table["mask"]]
    start = time.perf_counter()
    crops = [case_crop(row, str(row["case_id"])) for _, row in table.iterrows()]
    return crops, table["label"].to_numpy(), table["patient_id"].astype(str).to_numpy(), time.perf_counter() - start


def backbone_with_weights(name: str, weights: str):
    from sonorad.deep.backbones import load_backbone
    from sonorad.errors import ConfigError

    if weights == "random":
        return load_backbone(name, None)
    try:
        return load_backbone(name, "default")
    except ConfigError:
        return load_backbone(name, None)  # same architecture, same speed


def bench_frozen(name: str, crops, batch_size: int, weights: str, device, y=None, groups=None) -> dict:
    from sonorad.deep.extractor import embed_crops

    net = backbone_with_weights(name, weights)
    embed_crops(net, crops[: min(len(crops), batch_size)], batch_size=batch_size, device=device)  # warm-up
    start = time.perf_counter()
    emb = embed_crops(net, crops, batch_size=batch_size, device=device)
    seconds = time.perf_counter() - start
    row = {
        "backbone": name, "weights": net.weights_id, "input_size": net.spec.input_size,
        "n_images": len(crops), "batch_size": batch_size, "seconds": round(seconds, 3),
        "images_per_s": round(len(crops) / seconds, 2), "feature_dim": emb.shape[1],
    }
    if y is not None:
        row["cv_auc_pca32_logistic"] = round(frozen_cv_auc(emb, y, groups), 3)
    return row


def frozen_cv_auc(emb, y, groups, seed: int = 0) -> float:
    """Grouped 5-fold AUC of StandardScaler + PCA(32) + logistic regression on frozen embeddings.

    Frozen ImageNet embeddings use no labels, so computing them once for all cases leaks nothing;
    the scaler, PCA and model are fitted inside each training fold.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), PCA(32, random_state=seed), LogisticRegression(C=0.1, max_iter=2000))
    cv = StratifiedGroupKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(pipe, emb, y, groups=groups, cv=cv, scoring="roc_auc").mean())


def bench_finetune(name: str, crops, y, groups, epochs: int, batch_size: int, weights: str, device) -> dict:
    from sonorad.deep.finetune import finetune

    w = "default" if weights != "random" else None
    try:
        result = finetune(name, crops, y, groups=groups, weights=w, epochs=epochs, patience=epochs,
                          batch_size=batch_size, random_state=0, device=device)
    except Exception as exc:  # noqa: BLE001 - e.g. torchvision weights not cached: retry with random weights
        if w is None:
            raise
        print(f"  {name}: {exc}; timing with random weights", file=sys.stderr)
        result = finetune(name, crops, y, groups=groups, weights=None, epochs=epochs, patience=epochs,
                          batch_size=batch_size, random_state=0, device=device)
    return {
        "backbone": name, "weights": result.model.weights_id, "n_train": len(result.train_index),
        "n_val": len(result.val_index), "epochs": len(result.history), "batch_size": batch_size,
        "seconds_per_epoch": round(result.seconds_per_epoch, 2),
        "epoch_seconds": [round(s, 2) for s in result.history["seconds"]],
    }


def main(argv=None) -> int:
    from sonorad.deep.backbones import available_backbones

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BUS-BRA folder with cases.csv")
    p.add_argument("--limit", type=int, default=200, help="number of cases for frozen extraction")
    p.add_argument("--backbones", default="efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,resnet18",
                   help="comma-separated backbones, or 'all'")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weights", choices=["default", "random"], default="default")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--finetune-backbone", default="efficientnet_lite0", help="'' to skip fine-tuning")
    p.add_argument("--finetune-limit", type=int, default=100)
    p.add_argument("--finetune-batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--cv-auc", action="store_true",
                   help="also report the grouped 5-fold AUC of PCA(32) + logistic regression on the frozen features")
    p.add_argument("--seed", type=int, default=0, help="seed of the case sample")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    names = available_backbones() if args.backbones == "all" else [b.strip() for b in args.backbones.split(",") if b.strip()]
    names = [n for n in names if n != "small_cnn" or args.backbones != "all"]
    crops, y, groups, read_s = load_crops(args.data, max(args.limit, args.finetune_limit), args.seed)
    env = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "python": platform.python_version(),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "device": args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
           "crop_read_images_per_s": round(len(crops) / read_s, 2)}
    print(json.dumps(env))
    frozen = []
    for name in names:
        labels = (y[: args.limit], groups[: args.limit]) if args.cv_auc else (None, None)
        frozen.append(bench_frozen(name, crops[: args.limit], args.batch_size, args.weights, args.device, *labels))
        print(json.dumps(frozen[-1]))
    tuned = None
    if args.finetune_backbone:
        n = args.finetune_limit
        tuned = bench_finetune(args.finetune_backbone, crops[:n], y[:n], groups[:n], args.epochs,
                               args.finetune_batch_size, args.weights, args.device)
        print(json.dumps(tuned))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"environment": env, "frozen": frozen, "finetune": tuned}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
