"""Test-time augmentation and context crops for the frozen EfficientNet-Lite0 features.

    python benchmarks/breast_us/tta_features.py        # then: generalization.py --set tta

Writes, for every case of ``external/cases.csv`` (BUS-BRA and BrEaST), two alternative Lite0
feature tables under ``benchmarks/_work/breast_us/features_tta/``, each a plain average of
embeddings (nothing is learnt, so it is inductive):

- ``deep_lite0_flip.parquet``: the mean of the embeddings of the lesion crop (sonorad's default,
  margin 0.1) and of its left-right mirror image;
- ``deep_lite0_context.parquet``: the mean of the embeddings of the crop with margin 0.1 and of a
  wider crop with margin 0.3 (more surrounding tissue).

Column names are those of sonorad's Lite0 features, so a DL-score fits on them unchanged. It
also checks that the margin-0.1 embeddings equal the run's Lite0 features.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
WORK = HERE.parents[0] / "_work" / "breast_us"
OUT = WORK / "features_tta"
BATCH = 32


def main() -> None:
    from sonorad.deep.backbones import load_backbone
    from sonorad.deep.extractor import embed_crops
    from sonorad.deep.inputs import case_crop

    cases = pd.read_csv(WORK / "external" / "cases.csv", dtype={"case_id": str}).set_index("case_id", drop=False)
    plain = pd.read_parquet(WORK / "results" / "study1" / "features" / "deep_efficientnet_lite0.parquet")
    cases = cases.loc[cases.index.intersection(plain.index)]
    net = load_backbone("efficientnet_lite0")
    columns = list(plain.columns)
    t0 = time.perf_counter()
    parts = {"m01": [], "m01_flip": [], "m03": []}
    ids = list(cases.index)
    for start in range(0, len(ids), 128):
        chunk = cases.loc[ids[start:start + 128]]
        narrow = [case_crop(row, cid, margin=0.1) for cid, row in chunk.iterrows()]
        wide = [case_crop(row, cid, margin=0.3) for cid, row in chunk.iterrows()]
        parts["m01"].append(embed_crops(net, narrow, batch_size=BATCH))
        parts["m01_flip"].append(embed_crops(net, [np.ascontiguousarray(c[:, ::-1]) for c in narrow], batch_size=BATCH))
        parts["m03"].append(embed_crops(net, wide, batch_size=BATCH))
        print(f"{min(start + 128, len(ids))}/{len(ids)} cases, {time.perf_counter() - t0:.0f} s", flush=True)
    emb = {k: np.vstack(v) for k, v in parts.items()}
    gap = float(np.max(np.abs(emb["m01"] - plain.loc[ids].to_numpy())))
    print(f"margin-0.1 embeddings vs the run's Lite0 features: max |difference| {gap:.2e}")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, values in (("flip", (emb["m01"] + emb["m01_flip"]) / 2), ("context", (emb["m01"] + emb["m03"]) / 2)):
        pd.DataFrame(values, index=pd.Index(ids, name="case_id"), columns=columns).to_parquet(
            OUT / f"deep_lite0_{name}.parquet")
    print(f"written {OUT} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
