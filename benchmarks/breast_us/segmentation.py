"""Box-prompted lesion segmentation: train on BUS-BRA's masks, evaluate on BrEaST with jittered boxes.

    python benchmarks/breast_us/segmentation.py train [--minutes 35] [--threads 1]
    python benchmarks/breast_us/segmentation.py evaluate
    python benchmarks/breast_us/segmentation.py icc [--jobs 2]
    python benchmarks/breast_us/segmentation.py auc [--jobs 2]      # after cohorts.py
    python benchmarks/breast_us/segmentation.py adapt               # site adaptation with N local masks

``train``: ``train_segmenter`` on every BUS-BRA case (930 images, 526 patients; a patient-grouped 15 %
validation split picks the epoch), CPU, bounded in time; the segmenter is saved under
``benchmarks/_work/breast_us/segmentation/segmenter`` with its metadata (training seconds, load).

``evaluate``: on every BrEaST case (252 lesions, full-screen, another country) the box is the mask's
tight box with each edge moved uniformly by up to 10 % of the box's width / height (seed 0), clipped
to the image. Each method's mask is compared with the hand-drawn one: the segmenter, the box itself,
the ellipse inscribed in the box, GrabCut initialised with the box (OpenCV) and the random walker
seeded from the box (scikit-image). Dice and HD95
(pixels) per case go to ``per_case.csv``; median and IQR, and the paired Wilcoxon signed-rank test of
each method's Dice against the ellipse's, to ``benchmarks/breast_us/segmentation_results.json``.
Inference time per image (crop, network, paste back, flags; one thread) is the median over cases.

``icc``: the segmenter's masks from the same jittered boxes (``segment_cases``) against the manual
masks, ICC(3,1) per PyRadiomics feature (``sonorad icc`` with ``mask2``); updates the results file.

``auc``: the real-data study-1 design (``bus_bra_to_breast_study1.yaml``, bootstrap left out) run twice
with ``sonorad run``: BrEaST with its manual masks, then with the same jittered boxes and no masks,
the study naming the segmenter under ``masks.segmenter``. The chosen model's (training-CV AUC)
external AUC with each mask set, and the paired DeLong test on the cases both runs scored.

``adapt``: the segmenter fine-tuned on the masks of 25, 50 and 100 BrEaST patients and evaluated on
the BrEaST patients never used for it (how many local masks a new site needs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "benchmarks" / "_work" / "breast_us" / "segmentation"
RESULTS = ROOT / "benchmarks" / "breast_us" / "segmentation_results.json"
JITTER = 0.10
SEED = 0


def _load():
    return os.getloadavg()


def train(args) -> None:
    from sonorad.cohort import read_cases
    from sonorad.segment.data import load_training_cases
    from sonorad.segment.io import save_segmenter
    from sonorad.segment.train import train_segmenter

    table = read_cases(DATA / "bus_bra" / "cases.csv")
    t0 = time.monotonic()
    cases = load_training_cases(table, progress=True)
    read_seconds = time.monotonic() - t0
    load_before = _load()
    segmenter = train_segmenter(cases, image_size=args.size, epochs=args.epochs, max_minutes=args.minutes,
                                threads=args.threads, seed=SEED, centers=table["center"], device="cpu")
    segmenter.meta["benchmark"] = {"read_seconds": round(read_seconds, 1), "load_average_before": load_before,
                                   "load_average_after": _load(), "cpu_count": os.cpu_count()}
    out = save_segmenter(segmenter, WORK / "segmenter")
    print(f"saved {out}; validation Dice median {segmenter.meta['validation']['dice_median']:.3f}; "
          f"training {segmenter.meta['training']['seconds']:.0f} s; load {load_before} -> {_load()}")


def _breast_cases():
    """(case_id, gray image, manual mask) of every BrEaST case, with the reason for any left out."""
    from sonorad.cohort import read_cases
    from sonorad.errors import CaseError
    from sonorad.imaging import load_roi

    table = read_cases(DATA / "breast_lesions_usg" / "cases.csv")
    cases, skipped = [], []
    for _, row in table.iterrows():
        try:
            image, mask = load_roi(row["image"], row["mask"], case_id=row["case_id"], lesions="union")
        except CaseError as err:
            skipped.append({"case_id": row["case_id"], "reason": str(err)})
            continue
        cases.append((row["case_id"], image.pixels, mask))
    return cases, skipped


def _summary(values) -> dict:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if not len(v):
        return {"median": None, "q1": None, "q3": None, "n": 0}
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"median": round(float(med), 4), "q1": round(float(q1), 4), "q3": round(float(q3), 4), "n": int(len(v))}


def evaluate(args) -> None:
    import pandas as pd
    import torch

    from sonorad.errors import CaseError
    from sonorad.segment.baselines import BASELINES
    from sonorad.imaging.boxes import box_from_mask, check_box, jitter_box
    from sonorad.segment.io import load_segmenter
    from sonorad.segment.metrics import dice_score, hd95
    from sonorad.segment.predict import propose_mask

    torch.set_num_threads(args.threads)
    segmenter = load_segmenter(args.model or WORK / "segmenter")
    cases, skipped = _breast_cases()
    cases = cases[: args.limit] if args.limit else cases
    rng = np.random.default_rng(SEED)
    rows, load_before = [], _load()
    for k, (case_id, pixels, manual) in enumerate(cases, start=1):
        exact = box_from_mask(manual)
        jittered = jitter_box(exact, rng, JITTER, manual.shape)
        for boxes, box in (("jittered", jittered), ("exact", exact)):
            try:
                check_box(box, manual.shape, case_id)
            except CaseError as err:
                rows.append({"case_id": case_id, "boxes": boxes, "method": "all", "error": str(err)})
                continue
            t0 = time.perf_counter()
            proposal = propose_mask(segmenter, pixels, box, case_id=case_id)
            seconds = time.perf_counter() - t0
            rows.append({"case_id": case_id, "boxes": boxes, "method": "segmenter", "seconds": seconds,
                         "dice": dice_score(proposal.mask, manual), "hd95": hd95(proposal.mask, manual),
                         "confidence": proposal.confidence, "flags": ";".join(proposal.flags)})
            from sonorad.segment.predict import as_gray

            gray = as_gray(pixels)
            for name, baseline in BASELINES.items():
                t0 = time.perf_counter()
                mask = baseline(gray, box)
                rows.append({"case_id": case_id, "boxes": boxes, "method": name,
                             "seconds": time.perf_counter() - t0,
                             "dice": dice_score(mask, manual), "hd95": hd95(mask, manual)})
        if k % 25 == 0 or k == len(cases):
            print(f"evaluated {k}/{len(cases)} cases", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.limit:  # a dry run: results go to the work folder, never to the committed file
        table.to_csv(WORK / "dry_run_per_case.csv", index=False)
        _write_results(table, segmenter, skipped, load_before, WORK / "dry_run_results.json")
        return
    table.to_csv(WORK / "per_case.csv", index=False)
    _write_results(table, segmenter, skipped, load_before, RESULTS)


def _stats(table, boxes: str) -> dict:
    from scipy.stats import wilcoxon

    part = table[(table["boxes"] == boxes) & (table["method"] != "all")]
    wide = part.pivot(index="case_id", columns="method", values="dice")
    out = {}
    for method in ("segmenter", "box", "ellipse", "grabcut", "random_walker"):
        rows = part[part["method"] == method]
        entry = {"dice": _summary(rows["dice"]), "hd95_px": _summary(rows["hd95"]),
                 "empty_masks": int(rows["hd95"].isna().sum())}
        if method != "ellipse":
            both = wide[[method, "ellipse"]].dropna()
            diff = both[method] - both["ellipse"]
            test = wilcoxon(both[method], both["ellipse"])
            entry["vs_ellipse"] = {"median_dice_difference": round(float(diff.median()), 4),
                                   "wilcoxon_p": float(test.pvalue), "n_pairs": int(len(both)),
                                   "better_in": int((diff > 0).sum()), "worse_in": int((diff < 0).sum())}
        out[method] = entry
    seg = part[part["method"] == "segmenter"]
    flags = seg["flags"].fillna("").str.split(";").explode()
    out["segmenter"]["flag_counts"] = {str(k): int(v) for k, v in flags[flags != ""].value_counts().items()}
    out["segmenter"]["flagged_cases"] = int((seg["flags"].fillna("") != "").sum())
    out["segmenter"]["confidence_median"] = round(float(seg["confidence"].median()), 4)
    out["segmenter"]["seconds_per_image"] = {"median": round(float(seg["seconds"].median()), 4),
                                             "p90": round(float(seg["seconds"].quantile(0.9)), 4)}
    return out


def _write_results(table, segmenter, skipped, load_before, path: Path) -> None:
    jittered, exact = _stats(table, "jittered"), _stats(table, "exact")
    training = segmenter.meta["training"]
    bench = segmenter.meta.get("benchmark", {})
    dice = jittered["segmenter"]["dice"]["median"]
    p = jittered["segmenter"]["vs_ellipse"]["wilcoxon_p"]
    infer = jittered["segmenter"]["seconds_per_image"]["median"]
    full_study = "not measured: needs the full study run (PyRadiomics on both mask sets and the study-1 design)"
    results = {
        "breast_dice_median": dice,
        "box_baseline_dice_median": jittered["box"]["dice"]["median"],
        "ellipse_baseline_dice_median": jittered["ellipse"]["dice"]["median"],
        "classical_dice_median": jittered["random_walker"]["dice"]["median"],
        "wilcoxon_p_vs_ellipse": p,
        "feature_icc_median": None,
        "breast_auc_auto_masks": None,
        "breast_auc_manual_masks": None,
        "delong_p_auto_vs_manual": None,
        "not_measured": {k: full_study for k in ("feature_icc_median", "breast_auc_auto_masks",
                                                 "breast_auc_manual_masks", "delong_p_auto_vs_manual")},
        "classical_method": ("random walker (scikit-image), seeded with the half-size inscribed ellipse as lesion "
                             "and the crop outside the box as background; GrabCut (OpenCV, box-initialised, "
                             "5 iterations) is reported too, under jittered_boxes.grabcut"),
        "boxes": f"each edge of the mask's tight box moved uniformly by up to {JITTER:.0%} of the box's width/height "
                 f"(numpy default_rng({SEED}), cases in file order), clipped to the image",
        "jittered_boxes": jittered,
        "exact_boxes": exact,
        "n_cases": int(table["case_id"].nunique()),
        "cases_left_out": skipped,
        "training": {"seconds": training["seconds"], "epochs_run": training["epochs_run"],
                     "best_epoch": training["best_epoch"], "threads": training["threads"],
                     "device": training["device"], "image_size": segmenter.image_size,
                     "validation_dice_median_bus_bra": segmenter.meta["validation"]["dice_median"],
                     "load_average_during": [bench.get("load_average_before"), bench.get("load_average_after")],
                     "cpu_count": bench.get("cpu_count")},
        "evaluation_load_average": [load_before, _load()],
        "goals": {
            "dice_ge_0.90_and_above_ellipse_p_lt_0.05": bool(dice is not None and dice >= 0.90 and p < 0.05
                                                              and jittered["segmenter"]["vs_ellipse"]
                                                              ["median_dice_difference"] > 0),
            "inference_le_0.3_s_per_image": bool(infer <= 0.3),
            "training_le_60_min_on_2_cores": bool(training["seconds"] <= 3600),
            "feature_icc_median_ge_0.90": None,
            "auc_auto_not_delong_worse": None,
        },
    }
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in list(results)[:9]}, indent=2))


def _jittered_boxes(cases) -> dict:
    """The evaluation's jittered box of each case (same draws, same order as :func:`evaluate`)."""
    from sonorad.imaging.boxes import box_from_mask, jitter_box

    rng = np.random.default_rng(SEED)
    return {case_id: jitter_box(box_from_mask(manual), rng, JITTER, manual.shape) for case_id, _, manual in cases}


def _area_agreement(pair) -> dict:
    """How the automatic masks (``mask``) differ from the manual ones (``mask2``) in area, per case."""
    from sonorad.imaging import load_roi

    ratio, extra, missed = [], [], []
    for _, row in pair.iterrows():
        _, auto = load_roi(row["image"], row["mask"], case_id=row["case_id"], lesions="union")
        _, manual = load_roi(row["image"], row["mask2"], case_id=row["case_id"], lesions="union")
        n = manual.sum()
        ratio.append(auto.sum() / n)
        extra.append((auto & ~manual).sum() / n)
        missed.append((manual & ~auto).sum() / n)
    return {"auto_over_manual_area": _summary(ratio),
            "share_of_cases_auto_smaller": round(float(np.mean(np.array(ratio) < 1)), 4),
            "auto_outside_manual_over_manual_area": _summary(extra),
            "manual_outside_auto_over_manual_area": _summary(missed)}


def icc(args) -> None:
    """ICC(3,1) of the PyRadiomics features between automatic (jittered boxes) and manual BrEaST masks."""
    import pandas as pd

    from sonorad.cohort import read_cases
    from sonorad.features.icc import icc_to_dir
    from sonorad.imaging.boxes import format_box
    from sonorad.segment.io import load_segmenter
    from sonorad.segment.predict import segment_cases

    cases, _ = _breast_cases()
    boxes = _jittered_boxes(cases)
    table = read_cases(DATA / "breast_lesions_usg" / "cases.csv")
    table = table[table["case_id"].isin(boxes)].copy()
    table["box"] = table["case_id"].map(lambda c: format_box(boxes[c]))
    out = WORK / "icc"
    result = segment_cases(load_segmenter(WORK / "segmenter"), table, out / "auto", boxes="box", progress=True)
    pair = result.cases.copy()
    pair["mask2"] = pair["mask_manual"]
    pair["mask"] = [str(out / "auto" / m) for m in pair["mask"]]
    pair = pair.drop(columns=["mask_manual", "box"])
    pair.to_csv(out / "pairs.csv", index=False)
    t0 = time.monotonic()
    print(icc_to_dir(out / "pairs.csv", out / "features", jobs=args.jobs, progress=True))
    values = pd.read_csv(out / "features" / "icc.csv")["icc"].dropna()
    summary = {"feature_icc_median": round(float(values.median()), 4),
               "share_features_icc_ge_0.75": round(float((values >= 0.75).mean()), 4),
               "n_features": int(len(values)), "n_cases": int(len(pair)), "seconds": round(time.monotonic() - t0, 1),
               "mask_area": _area_agreement(pair)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    results = json.loads(RESULTS.read_text())
    results["feature_icc_median"] = summary["feature_icc_median"]
    results["feature_icc"] = {**summary, "method": "ICC(3,1) per PyRadiomics feature (shipped 2D parameter "
                                                  "file) between the segmenter's masks from the jittered boxes "
                                                  "and the manual masks (sonorad icc, mask vs mask2)"}
    results["not_measured"].pop("feature_icc_median", None)
    results["goals"]["feature_icc_median_ge_0.90"] = bool(summary["feature_icc_median"] >= 0.90)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def _auc_studies(segmenter_dir: Path) -> dict:
    """The study-1 design twice, BrEaST with manual masks and with the segmenter's masks (jittered boxes).

    Both study files are the benchmark's ``bus_bra_to_breast_study1.yaml`` with its bootstrap left out
    (the comparison needs the external predictions only); the automatic one gives every BrEaST row its
    jittered box (the same boxes as :func:`evaluate`) and no mask, and names the segmenter under
    ``masks.segmenter``: the run proposes those masks itself (``pipeline/automatic_rois.py``).
    """
    import pandas as pd
    import yaml

    from sonorad.imaging.boxes import format_box

    external = ROOT / "benchmarks" / "_work" / "breast_us" / "external" / "cases.csv"
    if not external.exists():
        sys.exit(f"{external} is missing: run `python benchmarks/breast_us/cohorts.py` first")
    out = WORK / "auc"
    out.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load((ROOT / "benchmarks" / "breast_us" / "bus_bra_to_breast_study1.yaml").read_text())
    base["features"]["cache"] = str(ROOT / "benchmarks" / "_work" / "cache")
    base["evaluation"]["bootstrap"] = 0
    table = pd.read_csv(external, dtype={"case_id": str})
    cases, _ = _breast_cases()
    boxes = _jittered_boxes(cases)
    auto = table.copy()
    is_ext = auto["center"].eq("PL-Warsaw") & auto["case_id"].isin(boxes)
    auto["box"] = ""
    auto.loc[is_ext, "box"] = auto.loc[is_ext, "case_id"].map(lambda c: format_box(boxes[c]))
    auto.loc[is_ext, "mask"] = ""
    auto.to_csv(out / "cases_auto.csv", index=False)
    studies = {}
    for name, cohort in (("manual", external), ("auto", out / "cases_auto.csv")):
        study = {**base, "name": f"{base['name']}_{name}_masks", "cohort": str(cohort)}
        if name == "auto":
            study["masks"] = {**base.get("masks", {}), "segmenter": str(Path(segmenter_dir).resolve())}
        path = out / f"study_{name}.yaml"
        path.write_text(yaml.safe_dump(study, sort_keys=False))
        studies[name] = path
    return studies


def auc(args) -> None:
    """External AUC of the study-1 design with automatic against manual BrEaST masks (paired DeLong)."""
    import subprocess

    import pandas as pd

    from sonorad.evaluation import delong_test, roc_auc_ci

    studies = _auc_studies(args.model or WORK / "segmenter")
    runs = {}
    for name, study in studies.items():
        if name not in args.runs.split(","):
            continue
        run_dir = WORK / "auc" / f"run_{name}"
        if args.force or not (run_dir / "tables" / "predictions.csv").exists():
            manual_models = WORK / "auc" / "run_manual" / "models"
            if name == "auto" and manual_models.exists() and not (run_dir / "models").exists():
                # Same training cases, features and design: the runner's fit key matches, so the
                # automatic run resumes from the manual run's fitted design and training CV.
                shutil.copytree(manual_models, run_dir / "models")
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "sonorad", "run", str(study), "--out", str(run_dir),
                            "--jobs", str(args.jobs), "--no-report"], check=True)
            print(f"{name}: sonorad run took {time.monotonic() - t0:.0f} s", flush=True)
        runs[name] = run_dir / "tables"
    if len(runs) < 2:
        return
    metrics = pd.read_csv(runs["manual"] / "metrics.csv")
    stage2 = metrics[(metrics["cohort"] == "external") & metrics["train_cv_auc"].notna()]
    chosen = stage2.sort_values("train_cv_auc", ascending=False).iloc[0]["model"]
    auto_metrics = pd.read_csv(runs["auto"] / "metrics.csv")
    stage2_auto = auto_metrics[(auto_metrics["cohort"] == "external") & auto_metrics["train_cv_auc"].notna()]
    chosen_auto = stage2_auto.sort_values("train_cv_auc", ascending=False).iloc[0]["model"]

    def external(name, model):
        preds = pd.read_csv(runs[name] / "predictions.csv", dtype={"case_id": str})
        keep = (preds["cohort"] == "external") & (preds["model"] == model)
        return preds[keep].set_index("case_id")[["label", "probability"]]

    rows = {}
    for model in dict.fromkeys([chosen, "logistic_regression", "rad_score", "dl_score"]):
        manual, automatic = external("manual", model), external("auto", model)
        both = manual.index.intersection(automatic.index)
        y = manual.loc[both, "label"].astype(int).to_numpy()
        pm, pa = manual.loc[both, "probability"].to_numpy(), automatic.loc[both, "probability"].to_numpy()
        am, aa = roc_auc_ci(y, pm), roc_auc_ci(y, pa)
        full = roc_auc_ci(manual["label"].astype(int), manual["probability"])
        d = delong_test(y, pa, pm)
        rows[model] = {"n_paired": int(len(both)), "n_manual": int(len(manual)), "n_auto": int(len(automatic)),
                       "auc_manual": round(am.auc, 4), "auc_manual_ci": [round(am.low, 4), round(am.high, 4)],
                       "auc_auto": round(aa.auc, 4), "auc_auto_ci": [round(aa.low, 4), round(aa.high, 4)],
                       "auc_manual_all_cases": round(full.auc, 4),
                       "difference_auto_minus_manual": round(d.difference, 4), "delong_p": float(d.p_value)}
    rois = pd.read_csv(WORK / "auc" / "run_auto" / "tables" / "automatic_rois.csv")
    summary = {"chosen_model": chosen, "chosen_model_auto_run": chosen_auto,
               "same_training_cv_auc": bool(np.allclose(stage2.set_index("model")["train_cv_auc"].sort_index(),
                                                        stage2_auto.set_index("model")["train_cv_auc"].sort_index())),
               "automatic_rois": {k: int(v) for k, v in rois["status"].value_counts().items()},
               "excluded_cases": rois.loc[rois["status"] != "ok", ["case_id", "flags", "error"]]
                                     .fillna("").to_dict("records"),
               "models": rows,
               "method": "sonorad run of bus_bra_to_breast_study1.yaml (bootstrap left out) twice: BrEaST with its "
                         "manual masks, and with a box per case (the jittered boxes of `evaluate`) and "
                         "masks.segmenter (the second run resumes from the first's fitted design: same training "
                         "data, same fit key); model chosen by training-CV AUC; paired DeLong on the cases present in "
                         "both runs (a flagged proposal excludes its case)"}
    (WORK / "auc" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    results = json.loads(RESULTS.read_text())
    top = rows[chosen]
    results.update({"breast_auc_auto_masks": top["auc_auto"], "breast_auc_manual_masks": top["auc_manual"],
                    "delong_p_auto_vs_manual": top["delong_p"], "external_auc": summary})
    for key in ("breast_auc_auto_masks", "breast_auc_manual_masks", "delong_p_auto_vs_manual"):
        results["not_measured"].pop(key, None)
    not_worse = top["delong_p"] > 0.05 or top["difference_auto_minus_manual"] >= 0
    results["goals"]["auc_auto_not_delong_worse"] = bool(not_worse)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def adapt(args) -> None:
    """Site adaptation: the BUS-BRA segmenter fine-tuned on the masks of N BrEaST patients.

    The BrEaST patients are shuffled once (seed 0); the first N (each of ``--sizes``) adapt the
    segmenter (``train_segmenter(initial=...)``, its own patient-grouped validation split picks the
    epoch), and every model is evaluated on the same held-out cases: those of the patients after the
    largest N, never used for adaptation, with the jittered boxes of :func:`evaluate`.
    """
    import pandas as pd
    from scipy.stats import wilcoxon

    from sonorad.cohort import read_cases
    from sonorad.segment.data import SegmentationCase
    from sonorad.segment.io import load_segmenter
    from sonorad.segment.metrics import dice_score
    from sonorad.segment.predict import as_gray, propose_mask
    from sonorad.segment.train import train_segmenter

    base = load_segmenter(args.model or WORK / "segmenter")
    cases, _ = _breast_cases()
    boxes = _jittered_boxes(cases)
    patient = read_cases(DATA / "breast_lesions_usg" / "cases.csv").set_index("case_id")["patient_id"].astype(str)
    order = np.random.default_rng(SEED).permutation(sorted({patient[c] for c, _, _ in cases}))
    sizes = sorted(int(n) for n in args.sizes.split(","))
    held_out = [(c, px, m) for c, px, m in cases if patient[c] not in set(order[: sizes[-1]])]

    def held_out_dice(segmenter):
        return np.array([dice_score(propose_mask(segmenter, px, boxes[c], case_id=c).mask, m)
                         for c, px, m in held_out])

    base_dice = held_out_dice(base)
    rows = [{"n_patients": 0, "dice_median": round(float(np.median(base_dice)), 4),
             "dice_q1": round(float(np.percentile(base_dice, 25)), 4),
             "dice_q3": round(float(np.percentile(base_dice, 75)), 4)}]
    for n in sizes:
        chosen = set(order[:n])
        local = [SegmentationCase(c, patient[c], as_gray(px), m) for c, px, m in cases if patient[c] in chosen]
        t0 = time.monotonic()
        adapted = train_segmenter(local, initial=base, epochs=args.epochs, max_minutes=None, lr=args.lr,
                                  seed=SEED, threads=args.threads, device="cpu", progress=True)
        seconds = time.monotonic() - t0
        dice = held_out_dice(adapted)
        test = wilcoxon(dice, base_dice)
        rows.append({"n_patients": n, "dice_median": round(float(np.median(dice)), 4),
                     "dice_q1": round(float(np.percentile(dice, 25)), 4),
                     "dice_q3": round(float(np.percentile(dice, 75)), 4),
                     "median_difference_vs_unadapted": round(float(np.median(dice - base_dice)), 4),
                     "better_in": int((dice > base_dice).sum()), "worse_in": int((dice < base_dice).sum()),
                     "wilcoxon_p_vs_unadapted": float(test.pvalue), "adaptation_seconds": round(seconds, 1),
                     "best_epoch": adapted.meta["training"]["best_epoch"]})
        print(rows[-1], flush=True)
    summary = {"held_out_cases": len(held_out), "epochs": args.epochs, "lr": args.lr, "rows": rows,
               "method": "BrEaST patients shuffled once (numpy default_rng(0)); the first N adapt the BUS-BRA "
                         "segmenter (sonorad segment train --from, its own 15 % patient-grouped validation split "
                         "picks the epoch); every row is evaluated on the same held-out cases (the patients after "
                         "the largest N) with the jittered boxes of `evaluate`; paired Wilcoxon against the "
                         "unadapted segmenter on those cases"}
    pd.DataFrame(rows).to_csv(WORK / "adaptation.csv", index=False)
    results = json.loads(RESULTS.read_text())
    results["site_adaptation"] = summary
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("train")
    p.add_argument("--minutes", type=float, default=35.0)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=train)
    p = sub.add_parser("evaluate")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", help="segmenter folder (default: the one `train` wrote)")
    p.add_argument("--limit", type=int, help="first N cases only (a dry run; results are then not representative)")
    p.set_defaults(func=lambda a: evaluate(a))
    p = sub.add_parser("icc")
    p.add_argument("--jobs", type=int, default=2)
    p.set_defaults(func=icc)
    p = sub.add_parser("auc")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--model", help="segmenter folder (default: the one `train` wrote)")
    p.add_argument("--force", action="store_true", help="run the studies again even when their tables exist")
    p.add_argument("--runs", default="manual,auto", help="which runs to make (the comparison needs both)")
    p.set_defaults(func=auc)
    p = sub.add_parser("adapt")
    p.add_argument("--sizes", default="25,50,100", help="numbers of BrEaST patients to adapt with")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", help="segmenter folder (default: the one `train` wrote)")
    p.set_defaults(func=adapt)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
