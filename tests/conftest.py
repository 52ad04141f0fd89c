"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SONORAD_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def shared_data() -> Path:
    """The real cohorts in ../shared/data; tests that need them are skipped when absent."""
    if not (SHARED_DATA / "bus_bra" / "cases.csv").exists():
        pytest.skip(f"real cohorts not found at {SHARED_DATA}")
    return SHARED_DATA


# -- a small real model bundle ----------------------------------------------------------------
#: PyRadiomics parameters of the small bundle: original image only, first-order + shape (fast).
SMALL_BUNDLE_PARAMS = {
    "setting": {"binWidth": 5, "force2D": False, "label": 1, "minimumROIDimensions": 2, "minimumROISize": 16,
                "correctMask": False, "additionalInfo": False, "preCrop": False, "normalize": False},
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": [], "shape2D": []},
}
SMALL_BUNDLE_VARIABLES = {
    "age": {"type": "numeric", "role": "clinical", "description": "age at surgery (years)"},
    "tumor_edge": {"type": "binary", "role": "ultrasound", "description": "ill-defined tumour edge (1/0)"},
    "calcification": {"type": "binary", "role": "ultrasound", "description": "calcification on ultrasound (1/0)"},
    "noise_cat1": {"type": "categorical", "levels": ["a", "b", "c"], "description": "a noise category"},
}


def _feature_blocks():
    import importlib

    for module in ("sonorad.designs", "sonorad.families", "sonorad.designs._common"):
        try:
            return getattr(importlib.import_module(module), "FeatureBlocks")
        except (ImportError, AttributeError):
            continue
    raise ImportError("FeatureBlocks not found")


def build_small_bundle(root: Path, *, exclude=(), n_patients: int = 40):
    """Write a synthetic cohort and a real bundle of four models fitted on its training centers.

    Models: ``rad_clin/logistic_regression`` (the chosen one) and ``rad_clin/random_forest``
    (FeatureBlocks: Rad-score + encoded variables -> zoo model), ``radiomics/knn`` (ColumnTransformer
    -> k-NN) and ``stack/logistic_regression`` (a design's ScoreStack: Rad-score, then a second stage).

    Returns a SimpleNamespace: ``path`` (the bundle folder), ``cases_csv`` (the whole cohort, with
    labels), ``table`` (read_cases of it), ``train_ids`` / ``external_ids``, ``training_input``
    (the training model input table), ``external_input``, ``models`` (the fitted estimators),
    ``chosen``, ``cutoffs``, ``variables``, ``params``, ``labels``, ``cache`` (the feature cache
    holding every case's radiomics features: pass it to ``Bundle.predict`` to skip re-extraction).
    """
    from types import SimpleNamespace

    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from sonorad.bundle import roi_table, write_bundle
    from sonorad.clinical import ClinicalEncoder
    from sonorad.cohort import read_cases
    from sonorad.evaluation.thresholds import YoudenThreshold
    from sonorad.features.extract import extract_radiomics
    from sonorad.models import get_model
    from sonorad.scores import RadScore
    from sonorad.study import StudyConfig
    from sonorad.synthetic import make_cohort

    FeatureBlocks = _feature_blocks()
    csv = make_cohort(root / "cohort", scenario="clnm", seed=0, n_patients=n_patients, image_size=(96, 120))
    table = read_cases(csv)
    study_map = {"name": "small_bundle", "seed": 0, "label": {"column": "label", "positive": 1},
                 "variables": SMALL_BUNDLE_VARIABLES,
                 "split": {"by": "center", "train": ["C1", "C2"], "external": ["C3", "C4"]}}
    study = StudyConfig.from_dict(study_map)
    cache = root / "feature_cache"
    radiomics, failures = extract_radiomics(table, params=SMALL_BUNDLE_PARAMS, cache=cache, progress=False)
    assert failures.empty, failures
    var_cols = list(SMALL_BUNDLE_VARIABLES)
    model_input = pd.concat([radiomics, table[var_cols], table[["center"]]], axis=1)
    train_ids = list(table.index[table["center"].isin(["C1", "C2"])])
    external_ids = list(table.index[~table["center"].isin(["C1", "C2"])])
    X, y = model_input.loc[train_ids], table.loc[train_ids, "label"].to_numpy()
    rad_cols = list(radiomics.columns)
    encoder = ClinicalEncoder({"age": "continuous", "tumor_edge": "binary", "calcification": "binary",
                               "noise_cat1": "categorical"}, {"noise_cat1": ["a", "b", "c"]})
    front = FeatureBlocks([("rad", RadScore(cv=5), rad_cols), ("clin", encoder, var_cols)])
    models = {
        "rad_clin/logistic_regression": Pipeline([("encode", front), ("model", get_model("logistic_regression"))]),
        "rad_clin/random_forest": Pipeline([("encode", front), ("model", get_model("random_forest"))]),
        "radiomics/knn": Pipeline([("select", ColumnTransformer([("rad", "passthrough", rad_cols)])),
                                   ("model", get_model("knn"))]),
    }
    for model in models.values():
        model.fit(X, y)
    # the shape of a two-stage design's model (sonorad.designs.base): a Rad-score over its columns,
    # then a second stage over the declared variables and the score
    from sonorad.designs.base import ColumnModel, ScoreStack

    score = ColumnModel.fitted(RadScore(cv=5).fit(X[rad_cols], y), rad_cols)
    stage2_input = pd.concat([X[var_cols], pd.DataFrame({"rad_score": score.decision_function(X)}, index=X.index)],
                             axis=1)
    stage2 = Pipeline([("encode", FeatureBlocks([("clin", encoder, var_cols), ("scores", "passthrough", ["rad_score"])])),
                       ("model", get_model("logistic_regression"))]).fit(stage2_input, y)
    models["stack/logistic_regression"] = ScoreStack.fitted([("rad_score", score)], var_cols, stage2)
    cutoffs = {name: float(YoudenThreshold().fit(y, model.predict_proba(X)[:, 1]).threshold_)
               for name, model in models.items()}
    rois = roi_table(table.loc[train_ids])
    card = {"intended_use": "Test bundle on a synthetic cohort; not for clinical use.",
            "cohorts": [{"cohort": "training", "n": len(train_ids), "events": int(y.sum())}],
            "external_auc": {"auc": 0.5, "low": 0.3, "high": 0.7, "cohort": "synthetic external"},
            "calibration": {"intercept": 0.0, "slope": 1.0}}
    path = write_bundle(root / "model", models=models, chosen="rad_clin/logistic_regression", cutoffs=cutoffs,
                        features={"radiomics_params": SMALL_BUNDLE_PARAMS, "deep": None},
                        variables=study.variables, training_input=X,
                        training_rois=rois, card=card, study=study_map,
                        exclude=exclude)
    return SimpleNamespace(path=path, cases_csv=csv, table=table, train_ids=train_ids, external_ids=external_ids,
                           training_input=X, external_input=model_input.loc[external_ids], models=models,
                           chosen="rad_clin/logistic_regression", cutoffs=cutoffs, variables=study.variables,
                           params=SMALL_BUNDLE_PARAMS, labels=table["label"], cache=cache)


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory):
    """A small real model bundle (synthetic cohort, original-only PyRadiomics, four models).

    See :func:`build_small_bundle` for the fields; ``small_bundle.path`` is the bundle folder.
    Read-only: tests that modify a bundle copy ``small_bundle.path`` first.
    """
    return build_small_bundle(tmp_path_factory.mktemp("small_bundle"))


@pytest.fixture(scope="session")
def bundle_builder():
    """:func:`build_small_bundle` itself, for tests that need a bundle of their own (``exclude=``...)."""
    return build_small_bundle


@pytest.fixture(scope="session")
def feature_blocks_class():
    """sonorad's FeatureBlocks class, wherever the designs package keeps it."""
    return _feature_blocks()


# -- a finished run's result, built in memory ---------------------------------------------------
def build_study_result(out: Path, reference: bool = False):
    """A :class:`~sonorad.pipeline.result.StudyResult` of 40 synthetic cases, without any fitting.

    24 training and 16 external cases, two models (``lr``, the chosen one, separates the classes;
    ``rad_score`` is noise), every statistic computed by :func:`sonorad.pipeline.stages.evaluate`,
    one excluded case, no explanation, no per-center or bootstrap results. ``out`` is its run folder.
    ``reference=True``: ``rad_score`` is the design's reference model and the result holds the
    comparison of ``lr`` with it on the external cohort (no likelihood-ratio test: ``lr`` is no
    fitted logistic regression here).
    """
    import numpy as np
    import pandas as pd

    from sonorad.designs import DesignResult
    from sonorad.pipeline.explanations import Explanations
    from sonorad.pipeline.result import StudyResult
    from sonorad.pipeline.stages import evaluate
    from sonorad.study import StudyConfig

    rng = np.random.default_rng(0)
    ids = pd.Index([f"c{i:02d}" for i in range(40)], name="case_id")
    y = pd.Series(np.tile([0, 1], 20), index=ids, name="label")
    parts = pd.Series(np.where(np.arange(40) < 24, "train", "external"), index=ids)
    probabilities = {}
    for cohort, part in (("training", "train"), ("external", "external")):
        idx = ids[parts == part]
        probabilities[cohort] = pd.DataFrame({
            "lr": np.clip(0.3 + 0.4 * y[idx] + rng.normal(0, 0.15, len(idx)), 0.01, 0.99),
            "rad_score": rng.uniform(0.05, 0.95, len(idx))}, index=idx)
    cv_auc = pd.Series({"lr": 0.71})
    evaluation = evaluate(probabilities, y, cv_auc=cv_auc, highlight=("lr", "rad_score"), level=0.95, seed=0)
    design = DesignResult(
        design="score_fusion", models={"lr": "a fitted model"}, families={"lr": ("lr",)}, chosen={"lr": "lr"},
        primary="lr", highlight=("lr", "rad_score"), cv_auc=cv_auc, selected_features={"lr": ["rad_score", "age"]},
        funnel=pd.DataFrame({"signature": ["Rad-score"] * 2, "step": ["extracted", "LASSO"], "n_features": [10, 2]}),
        lasso_paths={"Rad-score": pd.DataFrame({"lambda": [0.1, 0.01], "n_nonzero": [1, 2]})})
    comparison = None
    if reference:
        from dataclasses import replace

        from sonorad.evaluation.comparison import compare_with_reference

        design = replace(design, reference="rad_score")
        ext = probabilities["external"]
        comparison = compare_with_reference(
            y.loc[ext.index].to_numpy(), ext["lr"], ext["rad_score"], model="lr", reference="rad_score",
            cohort="external")
        comparison = replace(comparison, notes=(*comparison.notes,
                                                "likelihood-ratio test not computed: lr is not a logistic regression"))
    failures = pd.DataFrame([{"case_id": "c99", "stage": "validate", "error": "image missing",
                              "fix": "restore the file"}])
    study = StudyConfig.from_dict({"name": "tiny", "label": {"positive": 1}})
    return StudyResult(study=study, config=None, out=Path(out), parts=parts, y=y, failures=failures,
                       flow={"included": 40, "excluded": 1}, feature_summary={"radiomics": 10}, design=design,
                       cnns=(), training_cv_folds=0, probabilities=probabilities, evaluation=evaluation,
                       odds_ratios=(None, None), explanations=Explanations(), reference=comparison,
                       notes=("a note",),
                       timings={"fit": 1.5})


@pytest.fixture
def study_result(tmp_path):
    """:func:`build_study_result` with ``tmp_path`` as its run folder."""
    return build_study_result(tmp_path)


@pytest.fixture
def study_result_with_reference(tmp_path):
    """:func:`build_study_result` with the comparison with a reference model (``reference=True``)."""
    return build_study_result(tmp_path, reference=True)
