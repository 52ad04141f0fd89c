"""``sonorad demo``: the study-1 design end to end on the built-in synthetic cohort.

Writes a synthetic multicenter cohort (214 patients, 4 centers; training centers C1-C2,
external validation C3-C4), extracts PyRadiomics and frozen EfficientNet-Lite0 features, fits the
study-1 family (Rad-score, DL-score, LASSO over clinical + ultrasound variables + both scores, every
zoo model) on the training centers only, and evaluates every model on the external centers:
AUC with DeLong 95% CI and threshold metrics at the training cohort's Youden cut-off.

Output folder layout::

    cohort/              the synthetic cohort (images, masks, cases.csv)
    study.yaml           the study file describing it
    features/            radiomics.parquet, deep_efficientnet_lite0.parquet, failures.csv, .cache/
    tables/predictions.csv   case_id, cohort, model, probability (one row per case x model)
    tables/metrics.csv       one row per cohort x model
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import yaml

DEMO_BACKBONE = "efficientnet_lite0"


def demo_study(cohort_csv: str, seed: int) -> dict:
    """The study file of the synthetic study-1 cohort, as a plain mapping."""
    return {
        "name": "demo_clnm_synthetic",
        "description": "Synthetic stand-in for study 1 (CLNM in salivary gland carcinoma)",
        "cohort": cohort_csv,
        "seed": seed,
        "label": {"column": "label", "positive": 1},
        "variables": {
            "age": {"type": "numeric", "role": "clinical"},
            "tumor_edge": {"type": "binary", "role": "ultrasound"},
            "calcification": {"type": "binary", "role": "ultrasound"},
            "us_lymph_node": {"type": "binary", "role": "ultrasound"},
        },
        "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]},
        "models": {"design": "study1", "cv": 5},
    }


def _say(message: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.1f} s] {message}", flush=True)


def training_probabilities(family, y_train: pd.Series) -> pd.DataFrame:
    """Training-cohort probabilities consistent with how stage 2 was fitted (out-of-fold scores)."""
    from scipy.special import expit

    # each score's own probability, from its out-of-fold log-odds
    out = {kind: expit(family.oof_scores_[kind].to_numpy()) for kind in family.oof_scores_.columns}
    for name, pipe in family.pipelines_.items():
        out[name] = pipe.predict_proba(family.stage2_training_)[:, 1]
    return pd.DataFrame(out, index=y_train.index)


def evaluate_models(y_train: pd.Series, p_train: pd.DataFrame, y_ext: pd.Series,
                    p_ext: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One row per cohort x model: AUC with DeLong 95% CI and metrics at the training Youden cut-off."""
    from sonorad.evaluation import YoudenThreshold, roc_auc_ci, threshold_metrics

    rows = []
    for model in p_ext.columns:
        cut = YoudenThreshold().fit(y_train.to_numpy(), p_train[model].to_numpy())
        for cohort, y, p in (("training", y_train, p_train), ("external", y_ext, p_ext)):
            auc = roc_auc_ci(y.to_numpy(), p[model].to_numpy(), method="delong")
            tm = threshold_metrics(y.to_numpy(), p[model].to_numpy(), cut, random_state=seed).metrics
            rows.append({
                "cohort": cohort, "model": model, "n": len(y), "positives": int(y.sum()),
                "auc": auc.auc, "auc_low": auc.low, "auc_high": auc.high, "threshold": cut.threshold_,
                **tm["estimate"].to_dict(),
            })
    frame = pd.DataFrame(rows)
    frame["precision"] = frame["ppv"]
    frame["recall"] = frame["sensitivity"]
    return frame


def long_predictions(probabilities: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """case_id, cohort, model, probability: one row per case x model."""
    parts = []
    for cohort, frame in probabilities.items():
        long = frame.rename_axis("case_id").reset_index().melt(
            id_vars="case_id", var_name="model", value_name="probability")
        long.insert(1, "cohort", cohort)
        parts.append(long)
    return pd.concat(parts, ignore_index=True)


def run_demo(out: Path, *, seed: int = 0, jobs: int = 2, progress: bool = True,
             n_patients: int | None = None, models: list[str] | None = None) -> pd.DataFrame:
    """Run the demo into ``out`` and return the metrics table.

    ``n_patients`` (default: the seed study's 214) and ``models`` (default: the whole zoo) exist to
    make small, fast runs for tests.
    """
    from sonorad.cohort import load_cohort
    from sonorad.families import build_family
    from sonorad.features.extract import extract_to_dir
    from sonorad.study import StudyConfig
    from sonorad.synthetic import make_cohort

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _say(f"writing the synthetic study-1 cohort to {out / 'cohort'}", t0)
    cases_csv = make_cohort(out / "cohort", design="clnm", seed=seed, n_patients=n_patients)

    mapping = demo_study("cohort/cases.csv", seed)
    if models is not None:
        mapping["models"]["models"] = list(models)
    (out / "study.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False))
    study = StudyConfig.from_dict(mapping, source=str(out / "study.yaml"))
    cohort = load_cohort(cases_csv, study=study)
    print(cohort.summary(), flush=True)

    _say(f"extracting PyRadiomics and {DEMO_BACKBONE} features (cached; --jobs {jobs})", t0)
    summary = extract_to_dir(cases_csv, out / "features", backbones=[DEMO_BACKBONE], jobs=jobs, progress=progress)
    print(summary, flush=True)
    radiomics = pd.read_parquet(out / "features" / "radiomics.parquet")
    deep = pd.read_parquet(out / "features" / f"deep_{DEMO_BACKBONE}.parquet")

    parts = cohort.split_labels()
    y = cohort.y
    table = cohort.table
    clinical = table[["age"]].astype(float)
    us = table[["tumor_edge", "calcification", "us_lymph_node"]]

    def tables(ids):
        return {"radiomics": radiomics.loc[ids], "deep": deep.loc[ids],
                "clinical": clinical.loc[ids], "us": us.loc[ids]}

    train_ids = parts.index[parts == "train"]
    ext_ids = parts.index[parts == "external"]
    _say(f"fitting the study-1 family on {len(train_ids)} training cases (every zoo model)", t0)
    family = build_family(mapping["models"], variables=study.variables, seed=seed)
    family.fit(tables(train_ids), y.loc[train_ids], groups=cohort.groups.loc[train_ids])
    print(family.rad_score_.formula(), flush=True)
    print(family.dl_score_.formula(), flush=True)
    print(f"stage-2 LASSO kept: {', '.join(family.selected_features_)}", flush=True)

    _say(f"predicting the {len(ext_ids)} external cases", t0)
    p_train = training_probabilities(family, y.loc[train_ids])
    p_ext = family.predict_proba(tables(ext_ids))
    metrics = evaluate_models(y.loc[train_ids], p_train, y.loc[ext_ids], p_ext, seed)

    tables_dir = out / "tables"
    tables_dir.mkdir(exist_ok=True)
    long_predictions({"training": p_train, "external": p_ext}).to_csv(tables_dir / "predictions.csv", index=False)
    metrics.to_csv(tables_dir / "metrics.csv", index=False)
    shown = metrics[metrics["cohort"] == "external"].set_index("model")[
        ["auc", "auc_low", "auc_high", "accuracy", "precision", "recall", "f1"]]
    shown = shown.join(family.cv_auc_.rename("train_cv_auc"))
    print("\nExternal validation (centers C3-C4), cut-off = training Youden:")
    print(shown.sort_values("auc", ascending=False).round(3).to_string())
    _say(f"done: {tables_dir / 'metrics.csv'} and {tables_dir / 'predictions.csv'}", t0)
    return metrics
