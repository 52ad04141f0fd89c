"""``sonorad demo``: the study-1 design end to end on the built-in synthetic cohort.

Writes a synthetic multicenter cohort of the first seed study's shape (214 patients, 4 centers;
training centers C1-C2, external validation C3-C4) and runs the study file
``studies/clnm_salivary.yaml`` on it with :func:`sonorad.runner.run_study`: PyRadiomics and frozen
EfficientNet-Lite0 features, Rad-score and DL-score, LASSO over clinical + ultrasound variables +
both scores, every zoo model, a cross-validation of the whole pipeline on the training centers,
every statistic on the external centers, figures and ``report.html``.

Output folder layout::

    cohort/        the synthetic cohort (images, masks, cases.csv)
    study.yaml     the study file as run
    features/ models/ model/ tables/ figures/ report.html result.joblib run.log   (see docs/running-a-study.md)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DEMO_BACKBONE = "efficientnet_lite0"


def demo_study(cohort_csv: str, seed: int, jobs: int = 2) -> dict:
    """The study file of the synthetic study-1 cohort (``studies/clnm_salivary.yaml``), as a mapping."""
    return {
        "name": "demo_clnm_synthetic",
        "description": "Synthetic stand-in for study 1 (CLNM in salivary gland carcinoma)",
        "cohort": cohort_csv,
        "seed": seed,
        "label": {"column": "label", "positive": 1, "description": "cervical lymph node metastasis"},
        "variables": {
            "age": {"type": "numeric", "role": "clinical", "description": "age at surgery (years)"},
            "tumor_edge": {"type": "binary", "role": "ultrasound",
                           "description": "ill-defined tumour edge (1) vs well-defined (0)"},
            "calcification": {"type": "binary", "role": "ultrasound",
                              "description": "calcification on ultrasound (1/0)"},
            "us_lymph_node": {"type": "binary", "role": "ultrasound",
                              "description": "ultrasound-reported suspicious cervical node (1/0)"},
        },
        "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]},
        "features": {"radiomics": True, "deep": [DEMO_BACKBONE], "jobs": jobs},
        "models": {"design": "score_fusion", "cv": 5},
        "evaluation": {"cv_folds": 5, "shap": True, "nomogram": True, "gradcam": 8},
    }


def run_demo(out: Path, *, seed: int = 0, jobs: int = 2, progress: bool = True,
             n_patients: int | None = None, models: list[str] | None = None, cv_folds: int | None = None,
             report: bool = True) -> pd.DataFrame:
    """Run the demo into ``out`` and return the metrics table (``tables/metrics.csv``).

    ``n_patients`` (default: the seed study's 214), ``models`` (default: the whole zoo) and
    ``cv_folds`` exist to make small, fast runs for tests.
    """
    import yaml

    from sonorad.runner import run_study
    from sonorad.study import StudyConfig
    from sonorad.synthetic import make_cohort

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"writing the synthetic study-1 cohort to {out / 'cohort'}", flush=True)
    make_cohort(out / "cohort", scenario="clnm", seed=seed, n_patients=n_patients)
    mapping = demo_study("cohort/cases.csv", seed, jobs)
    if models is not None:
        mapping["models"]["models"] = list(models)
    if cv_folds is not None:
        mapping["evaluation"]["cv_folds"] = cv_folds
    source = out / "study.yaml"
    source.write_text(yaml.safe_dump(mapping, sort_keys=False))
    study = StudyConfig.from_dict(mapping, source=source)
    return run_study(study, out, jobs=jobs, progress=progress, report=report).evaluation.metrics
