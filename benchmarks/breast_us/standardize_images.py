"""Image standardization before features: gray levels relative to the tissue around the lesion.

    python benchmarks/breast_us/standardize_images.py [--ring 0.25]

The two cohorts differ before any feature is computed: BUS-BRA images are 8-bit crops around the
lesion, BrEaST images are full-screen exports (frames, text, colour overlays) from other scanners
with other gain and dynamic-range settings. PyRadiomics' own ``normalize`` z-scores the *whole*
image, so here it would standardize by the screen layout as much as by the tissue. A radiologist
judges echogenicity relative to the surrounding tissue instead; this script does the same for
every case, using that case's own pixels only (no other case, no label, so nothing is learnt and
nothing leaks):

- the ring: pixels outside the lesion mask within ``ring`` x the lesion's equivalent diameter of
  it (at least 5 pixels), inside the image;
- every pixel becomes ``128 + 32 * (gray - ring median) / ring IQR-SD`` (IQR-SD = interquartile
  range / 1.349, robust to speckle and to shadowing), clipped to 0-255 and written as an 8-bit PNG,
  so sonorad's default parameter file (bin width 5) keeps its meaning: one ring SD is 32 gray levels.

Writes ``benchmarks/_work/breast_us/standardized/`` (images, masks, ``cases.csv`` with the same
columns as ``external/cases.csv``). Extract its features with::

    sonorad extract benchmarks/_work/breast_us/standardized/cases.csv \\
        --out benchmarks/_work/breast_us/features_standardized --jobs 2 \\
        --cache benchmarks/_work/cache --quiet

then ``python benchmarks/breast_us/generalization.py --set standardized``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

HERE = Path(__file__).resolve().parent
WORK = HERE.parents[0] / "_work" / "breast_us"


def standardize(gray: np.ndarray, mask: np.ndarray, ring: float) -> tuple[np.ndarray, dict]:
    """The 8-bit image relative to the lesion's surrounding ring, and the ring's statistics."""
    lesion = mask.astype(bool)
    diameter = 2.0 * np.sqrt(lesion.sum() / np.pi)
    width = max(5.0, ring * diameter)
    outside = ndimage.distance_transform_edt(~lesion)
    band = (~lesion) & (outside <= width)
    values = gray[band].astype(float)
    if values.size < 50:
        raise ValueError(f"only {values.size} ring pixels around the lesion")
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    sd = (q3 - q1) / 1.349
    if sd <= 0:
        sd = float(values.std()) or 1.0
    out = np.clip(np.rint(128.0 + 32.0 * (gray.astype(float) - median) / sd), 0, 255).astype(np.uint8)
    return out, {"ring_pixels": int(values.size), "ring_median": float(median), "ring_sd": float(sd)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ring", type=float, default=0.25, help="ring width / lesion equivalent diameter")
    args = parser.parse_args()
    from sonorad.imaging import load_roi

    cases = pd.read_csv(WORK / "external" / "cases.csv", dtype={"case_id": str, "patient_id": str})
    out = WORK / "standardized"
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows, stats, t0 = [], [], time.perf_counter()
    for case in cases.itertuples(index=False):
        image, mask = load_roi(case.image, case.mask, case_id=case.case_id)
        gray, info = standardize(np.asarray(image.pixels), mask, args.ring)
        image_path, mask_path = out / "images" / f"{case.case_id}.png", out / "masks" / f"{case.case_id}.png"
        Image.fromarray(gray).save(image_path)
        Image.fromarray((mask.astype(bool) * 255).astype(np.uint8)).save(mask_path)
        rows.append({**case._asdict(), "image": str(image_path), "mask": str(mask_path)})
        stats.append({"case_id": case.case_id, "center": case.center, **info})
    pd.DataFrame(rows).to_csv(out / "cases.csv", index=False)
    frame = pd.DataFrame(stats)
    frame.to_csv(out / "ring_stats.csv", index=False)
    print(frame.groupby("center")[["ring_median", "ring_sd"]].median().round(1).to_string())
    print(f"{len(rows)} cases in {time.perf_counter() - t0:.0f} s; written {out / 'cases.csv'}")


if __name__ == "__main__":
    main()
