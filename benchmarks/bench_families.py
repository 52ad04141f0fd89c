"""Time the study-1 family builder on a study-1-shaped synthetic cohort.

The cohort (generated in memory by ``make_score_fusion_cohort`` in ``tests/designs/builders.py``) has
214 patients in 4 centers (72 + 72 training, 35 + 35 external), 1000 radiomics-like and 1280
deep-like columns (5 informative each), 2 clinical and 3 US variables. The builder fits the
Rad-score and DL-score (with out-of-fold training scores), the stage-2 LASSO and every zoo
model on centers C1-C2, then predicts centers C3-C4. Prints the wall time of fit and of the
external prediction, the selected predictors, and each model's training CV AUC and external AUC.

Usage::

    .venv/bin/python benchmarks/bench_families.py                 # default settings
    .venv/bin/python benchmarks/bench_families.py --center-shift 1.0 --harmonize
        # plant per-center offsets in every imaging feature and turn ComBat on, to compare the
        # external AUCs with and without harmonisation
    .venv/bin/python benchmarks/bench_families.py --design study2
        # the study-2 builder (US, Radiomics, DL, RadiomicsDL, Combined x every zoo model)

Recorded result, ``.venv/bin/python benchmarks/bench_families.py`` on the 2-core project machine
shared with other jobs at the time (load average about 3, so times are pessimistic): 12 zoo
models, fit 52.1 s, external prediction 0.15 s, total 52.3 s (target: under 2 minutes). Details
and the ComBat comparison are in docs/modeling.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _cohort_module():
    spec = importlib.util.spec_from_file_location("cohort_for_bench", REPO / "tests" / "designs" / "builders.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> dict:
    from sklearn.metrics import roc_auc_score

    from sonorad.designs.score_fusion import ScoreFusionEngine
    from sonorad.models import available_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--center-shift", type=float, default=0.0)
    parser.add_argument("--harmonize", action="store_true")
    parser.add_argument("--models", nargs="*", default=None, help="zoo models (default: all)")
    parser.add_argument("--design", choices=["study1", "study2"], default="study1")
    args = parser.parse_args(argv)
    if args.design == "study2":
        return _study2(args)

    data = _cohort_module()
    tables, y, patients, centers = data.make_score_fusion_cohort(center_shift=args.center_shift, seed=args.seed)
    train = centers.isin(data.TRAIN_CENTERS)
    tr = {k: v[train] for k, v in tables.items()}
    ex = {k: v[~train] for k, v in tables.items()}
    family = ScoreFusionEngine(models=args.models, clinical_variables=data.CLINICAL, us_variables=data.US,
                               harmonize=args.harmonize, random_state=args.seed)
    t0 = time.perf_counter()
    family.fit(tr, y[train], groups=patients[train], centers=centers[train])
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba = family.predict_proba(ex, centers=centers[~train])
    t_predict = time.perf_counter() - t0

    models = args.models or available_models()
    print(f"cohort: {len(y)} patients, train {int(train.sum())} (C1-C2), external {int((~train).sum())} (C3-C4); "
          f"{tables['radiomics'].shape[1]} radiomics + {tables['deep'].shape[1]} deep columns; "
          f"center_shift={args.center_shift}, harmonize={args.harmonize}")
    print(f"models fitted: {len(models)}; fit {t_fit:.1f} s, external prediction {t_predict:.2f} s, "
          f"total {t_fit + t_predict:.1f} s")
    print(f"Rad-score features: {len(family.rad_score_.features_)}, DL-score features: {len(family.dl_score_.features_)}")
    print(f"stage-2 selected predictors: {family.selected_features_}")
    yex = y[~train]
    print(f"{'model':22s} {'train CV AUC':>12s} {'external AUC':>12s}")
    for column in proba.columns:
        cv = family.cv_auc_.get(column, float("nan"))
        print(f"{column:22s} {cv:12.3f} {roc_auc_score(yex, proba[column]):12.3f}")
    return {"fit_s": t_fit, "predict_s": t_predict, "n_models": len(models)}


def _study2(args) -> dict:
    """The study-2 builder (5 families x zoo) on the same cohort, US variables only as clinical input."""
    from sklearn.metrics import roc_auc_score

    from sonorad.designs.feature_families import FeatureFamiliesEngine
    from sonorad.models import available_models

    data = _cohort_module()
    tables, y, patients, centers = data.make_score_fusion_cohort(center_shift=args.center_shift, seed=args.seed)
    train = centers.isin(data.TRAIN_CENTERS)
    keys = ("radiomics", "deep", "us")
    tr = {k: tables[k][train] for k in keys}
    ex = {k: tables[k][~train] for k in keys}
    family = FeatureFamiliesEngine(models=args.models, us_variables=data.US, harmonize=args.harmonize,
                                   random_state=args.seed)
    t0 = time.perf_counter()
    family.fit(tr, y[train], groups=patients[train], centers=centers[train])
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba = family.predict_proba(ex, centers=centers[~train], best_only=True)
    t_predict = time.perf_counter() - t0
    models = args.models or available_models()
    print(f"study 2: {len(family.families)} families x {len(models)} models; fit {t_fit:.1f} s, "
          f"external prediction {t_predict:.2f} s")
    for fam in family.families:
        best = family.best_model_[fam]
        print(f"{fam:14s} best {best:20s} train CV AUC {family.cv_auc_.loc[best, fam]:.3f} "
              f"external AUC {roc_auc_score(y[~train], proba[fam]):.3f} "
              f"({len(family.selected_features_[fam])} predictors)")
    return {"fit_s": t_fit, "predict_s": t_predict, "n_models": len(models)}


if __name__ == "__main__":
    main()
