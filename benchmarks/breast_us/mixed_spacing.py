"""A cohort built as a new user would build one: mixed pixel spacing across centers.

    python benchmarks/breast_us/mixed_spacing.py [--skip-run]

Training: 240 BUS-BRA images from two scanners (GE-Logiq7, Toshiba-Aplio300: 120 images each, drawn
by patient with seed 0). External: 120 BrEaST images (seed 0), whose ``spacing_mm`` is filled from the
spreadsheet's ``pixel_size_cm`` as the data README invites for PNG exports; BUS-BRA records no pixel
size. Predictor: coarse BI-RADS; Rad-score + DL-score (frozen EfficientNet-Lite0); the study-1 design
with three zoo models and 3-fold patient-grouped CV.

Steps, each timed, written to ``benchmarks/_work/breast_us/mixed_spacing/summary.json``:

1. ``sonorad validate --study`` with no ``features.spacing``: expected to refuse the spacing mix,
   naming the centers (the case the spacing rule exists for);
2. the same with ``features.spacing: resample``: BUS-BRA has no pixel size, so there is nothing to
   resample it from; expected to refuse, naming ``spacing_mm``;
3. ``features.spacing: pixels``: validate, then ``sonorad run``; external AUCs of the Rad-score,
   DL-score and the chosen model from ``tables/metrics.csv``.

The section for RESULTS.md is written to ``benchmarks/breast_us/mixed_spacing.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "benchmarks" / "_work" / "breast_us" / "mixed_spacing"
SCANNERS = ["GE-Logiq7", "Toshiba-Aplio300"]
#: This benchmark's section of RESULTS.md (run_all.py --collate includes it).
SECTION = Path(__file__).resolve().parent / "mixed_spacing.md"


def _absolute(folder: Path, table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for column in ("image", "mask"):
        table[column] = [str(folder / p) for p in table[column]]
    return table


def _by_patient(table: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """About ``n`` images, whole patients drawn at random (a patient's images stay together)."""
    patients = table["patient_id"].drop_duplicates().to_numpy()
    rng.shuffle(patients)
    taken, count = [], 0
    sizes = table.groupby("patient_id").size()
    for pid in patients:
        if count >= n:
            break
        taken.append(pid)
        count += int(sizes[pid])
    return table[table["patient_id"].isin(taken)]


def build_cohort(seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    bus = _absolute(DATA / "bus_bra", pd.read_csv(DATA / "bus_bra" / "cases.csv", dtype={"birads": str}))
    breast = _absolute(DATA / "breast_lesions_usg",
                       pd.read_csv(DATA / "breast_lesions_usg" / "cases.csv", dtype={"birads": str}))
    train = pd.concat([_by_patient(bus[bus["center"] == s], 120, rng) for s in SCANNERS])
    train = train.assign(spacing_mm="")
    breast = breast[breast["pixel_size_cm"].notna()]
    external = breast.iloc[np.sort(rng.choice(len(breast), size=120, replace=False))]
    external = external.assign(spacing_mm=[f"{10 * float(v):.6g}" for v in external["pixel_size_cm"]])
    cohort = pd.concat([train, external], ignore_index=True)
    cohort["birads"] = [str(b)[0] if str(b)[:1] in "2345" else "" for b in cohort["birads"]]
    columns = ["case_id", "patient_id", "center", "image", "mask", "label", "birads", "spacing_mm"]
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "cases.csv"
    cohort[columns].to_csv(path, index=False)
    return path


def study(cases: Path, spacing: str | None) -> Path:
    features = {"radiomics": True, "deep": ["efficientnet_lite0"], "jobs": 2,
                "cache": str(ROOT / "benchmarks" / "_work" / "cache")}
    if spacing is not None:
        features["spacing"] = spacing
    doc = {"name": f"mixed_spacing_{spacing or 'unset'}", "cohort": str(cases), "seed": 0,
           "label": {"column": "label", "positive": 1},
           "variables": {"birads": {"type": "ordinal", "order": [2, 3, 4, 5], "role": "ultrasound",
                                    "description": "BI-RADS category (coarse)"}},
           "split": {"by": "center", "train": SCANNERS, "external": ["PL-Warsaw"]},
           "features": features,
           "models": {"design": "study1", "models": ["logistic_regression", "svm", "random_forest"]},
           "evaluation": {"cv_folds": 3, "bootstrap": 0, "gradcam": 0}}
    path = WORK / f"study_{spacing or 'unset'}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sonorad(*args: str, timeout: float) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sonorad", *args], capture_output=True, text=True,
                          timeout=timeout)
    out = (done.stdout + done.stderr).strip().splitlines()
    return {"command": "sonorad " + " ".join(args), "exit": done.returncode,
            "seconds": round(time.perf_counter() - start, 1), "output_tail": out[-12:]}


def external_aucs(run_dir: Path) -> dict:
    m = pd.read_csv(run_dir / "tables" / "metrics.csv")
    chosen = json.loads((run_dir / "model" / "manifest.json").read_text()).get("chosen")
    e = m[m["cohort"] == "external"].set_index("model")
    cv = m[m["cohort"] == "training_cv"].set_index("model")
    out = {"chosen": chosen}
    for name in ["rad_score", "dl_score", chosen]:
        if name in e.index:
            r = e.loc[name]
            out[name] = {"external_auc": round(float(r["auc"]), 3),
                         "external_ci": [round(float(r["auc_low"]), 3), round(float(r["auc_high"]), 3)],
                         "training_cv_auc": round(float(cv.loc[name, "auc"]), 3) if name in cv.index else None}
    return out


def _first_problem(step: dict) -> str:
    lines = [line.strip() for line in step["output_tail"] if line.strip().startswith("- [")]
    return (lines[0][2:] if lines else step["output_tail"][-1]).replace("|", "/")


def section(summary: dict) -> str:
    """The RESULTS.md section of this benchmark, from ``summary.json`` and the run's tables."""
    cases = pd.read_csv(ROOT / summary["cohort"], dtype=str, keep_default_na=False)
    train = cases[cases["center"] != "PL-Warsaw"]
    ext = cases[cases["center"] == "PL-Warsaw"]
    mm = pd.to_numeric(ext["spacing_mm"])
    out = ["## A cohort with mixed pixel spacing (built as a new user would)", "",
           "`python benchmarks/breast_us/mixed_spacing.py` (this section: `--collate`). Training: "
           f"{len(train)} BUS-BRA images of {train['patient_id'].nunique()} patients from two scanners "
           f"({', '.join(SCANNERS)}; whole patients drawn with seed 0); external: {len(ext)} BrEaST lesions "
           f"(seed 0) with `spacing_mm` filled from the spreadsheet's `pixel_size_cm` ({mm.min():.3g}-{mm.max():.3g} "
           f"mm, median {mm.median():.3g}), as the data README invites for PNG exports. BUS-BRA records no pixel "
           "size. Predictor: coarse BI-RADS; study-1 design (Rad-score + DL-score of frozen EfficientNet-Lite0 + "
           "BI-RADS) with logistic regression, SVM and random forest; 3-fold patient-grouped training CV. "
           f"Load average when measured: {summary.get('load', 'not recorded')}.", "",
           "| step | `features.spacing` | exit | first finding | time (s) |", "|---|---|---|---|---|"]
    for key, setting in (("validate_unset", "not set"), ("validate_resample", "resample"),
                         ("validate_pixels", "pixels"), ("run_pixels", "pixels")):
        step = summary.get(key)
        if step is None:
            continue
        finding = _first_problem(step) if step["exit"] else "accepted"
        out.append(f"| `sonorad {key.split('_')[0]}` | {setting} | {step['exit']} | {finding} | {step['seconds']} |")
    out += ["", "The `resample` run cannot be made on this cohort: BUS-BRA publishes no pixel size, so there is "
            "nothing to resample its images from, and `validate` refuses rather than guess. Without a spacing "
            "decision the cohort does not reach extraction. With the rule chosen (`pixels`: every image at "
            "1 x 1, BrEaST's spacing ignored):", ""]
    run = WORK / "run_pixels"
    if (run / "tables" / "metrics.csv").exists():
        m = pd.read_csv(run / "tables" / "metrics.csv")
        cv = m[m["cohort"] == "training_cv"].set_index("model")["auc"]
        chosen = summary["run_pixels"].get("aucs", {}).get("chosen")
        out += [f"| model | external AUC (95% CI), {len(ext)} lesions | training-CV AUC (whole pipeline) |",
                "|---|---|---|"]
        for r in m[m["cohort"] == "external"].itertuples():
            name = r.model + (" (chosen)" if r.model == chosen else "")
            cv_text = f"{cv[r.model]:.3f}" if r.model in cv.index else "n/a"
            out.append(f"| {name} | {r.auc:.3f} ({r.auc_low:.3f}-{r.auc_high:.3f}) | {cv_text} |")
        ref = run / "tables" / "reference_comparison.csv"
        if ref.exists():
            d = pd.read_csv(ref)
            d = d[d["statistic"].str.startswith("AUC difference")]
            if len(d):
                r = d.iloc[0]
                out += ["", f"{r['model']} against {r['reference']} on the external cohort: AUC difference "
                            f"{r['estimate']:.3f} ({r['low']:.3f}-{r['high']:.3f}), DeLong p = {r['p_value']:.3g}."]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-run", action="store_true", help="validate only")
    parser.add_argument("--collate", action="store_true", help="only rewrite the section from finished steps")
    args = parser.parse_args(argv)
    if args.collate:
        SECTION.write_text(section(json.loads((WORK / "summary.json").read_text())))
        print(f"written {SECTION}")
        return 0
    cases = build_cohort()
    summary = {"cohort": str(cases.relative_to(ROOT)), "load": " / ".join(f"{v:.1f}" for v in os.getloadavg())}
    for spacing in (None, "resample", "pixels"):
        summary[f"validate_{spacing or 'unset'}"] = sonorad("validate", str(cases), "--study",
                                                            str(study(cases, spacing)), timeout=600)
    if not args.skip_run:
        out = WORK / "run_pixels"
        summary["run_pixels"] = sonorad("run", str(study(cases, "pixels")), "--out", str(out), timeout=7200)
        if summary["run_pixels"]["exit"] == 0:
            summary["run_pixels"]["aucs"] = external_aucs(out)
    (WORK / "summary.json").write_text(json.dumps(summary, indent=1))
    SECTION.write_text(section(summary))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
