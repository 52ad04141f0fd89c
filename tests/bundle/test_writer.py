"""write_bundle: every zoo model and sonorad estimator survives the round trip; no training data leaks."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from sonorad.bundle import BundleError, load_bundle, write_bundle
from sonorad.explain.shap import explain_parts
from sonorad.clinical import ClinicalEncoder
from sonorad.harmonize import ComBatHarmonizer
from sonorad.models import available_models, get_model
from sonorad.scores import DLScore, RadScore
from sonorad.selection import CorrelationFilter, ICCFilter, LassoSelector, MRMRSelector, UnivariateFilter, ZScore
from sonorad.study import StudyConfig

PARAMS = {"imageType": {"Original": {}}, "featureClass": {"firstorder": []}}
RAD = [f"original_firstorder_F{i}" for i in range(8)]
VARIABLES = StudyConfig.from_dict({
    "name": "zoo",
    "label": {"positive": 1},
    "variables": {"age": "numeric", "edge": {"type": "binary", "levels": ["smooth", "irregular"]},
                  "grade": {"type": "ordinal", "order": [1, 2, 3]}},
}).variables


def _table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = pd.DataFrame(rng.normal(size=(n, len(RAD))) + 0.8 * y[:, None] * (np.arange(len(RAD)) < 3), columns=RAD,
                     index=pd.Index([f"P{seed}-{i:03d}" for i in range(n)], name="case_id"))
    X["age"] = np.round(rng.normal(55, 10, n) + 5 * y)
    X.loc[X.index[::7], "age"] = np.nan
    X["edge"] = np.where(rng.uniform(size=n) < 0.3 + 0.4 * y, "irregular", "smooth")
    X["grade"] = rng.integers(1, 4, n)
    X["center"] = np.where(np.arange(n) % 2 == 0, "A", "B")
    return X, y


def _encoder():
    return ClinicalEncoder({"age": "continuous", "edge": "binary", "grade": "ordinal"},
                           {"edge": ["smooth", "irregular"], "grade": ["1", "2", "3"]})


def _sonorad_front(FeatureBlocks):
    icc_table = pd.DataFrame({"feature": RAD, "icc": np.linspace(0.6, 0.99, len(RAD))})
    rad = Pipeline([("combat", ComBatHarmonizer()), ("score", RadScore(cv=3, n_lambdas=8, icc=icc_table))])
    dl = Pipeline([("score", DLScore(cv=3, n_lambdas=8, alpha=None, icc=pd.Series(0.9, index=RAD[4:])))])
    return FeatureBlocks([("rad", rad, RAD[:4] + ["center"]), ("dl", dl, RAD[4:]), ("clin", _encoder(), ["age", "edge", "grade"])])


def _models(FeatureBlocks) -> dict:
    """Every zoo model once, and every sonorad estimator at least once."""
    models = {}
    for name in available_models():
        if name in ("logistic_regression", "xgboost", "knn"):  # behind every sonorad step
            front = _sonorad_front(FeatureBlocks)
            models[f"scores/{name}"] = Pipeline([("encode", front),
                                                 ("lasso", LassoSelector(standardize=True, cv=3, n_lambdas=8)),
                                                 ("model", get_model(name))])
        else:
            front = FeatureBlocks([("rad", "passthrough", RAD), ("clin", _encoder(), ["age", "edge", "grade"])])
            models[f"plain/{name}"] = Pipeline([("encode", front), ("model", get_model(name))])
    selection = Pipeline([("zscore", ZScore()), ("icc", ICCFilter({f: 0.9 for f in RAD})),
                          ("univariate", UnivariateFilter(alpha=0.5)), ("correlation", CorrelationFilter()),
                          ("mrmr", MRMRSelector(n_features=2))])
    models["selection/svm_balanced"] = Pipeline([
        ("select", ColumnTransformer([("rad", selection, RAD)]).set_output(transform="pandas")),
        ("model", get_model("svm", class_weight="balanced"))])
    models["selection/knn_oversampled"] = Pipeline([
        ("select", ColumnTransformer([("rad", "passthrough", RAD)])), ("model", get_model("knn", class_weight="balanced"))])
    models["selection/xgboost_undersampled"] = Pipeline([
        ("select", ColumnTransformer([("rad", "passthrough", RAD)])), ("model", get_model("xgboost", resample="undersample"))])
    return models


@pytest.fixture(scope="module")
def zoo_bundle(tmp_path_factory, feature_blocks_class):
    X, y = _table(90, 0)
    models = {name: m.fit(X, y) for name, m in _models(feature_blocks_class).items()}
    path = write_bundle(tmp_path_factory.mktemp("zoo") / "model", models=models, chosen="scores/logistic_regression",
                        cutoffs={n: 0.5 for n in models}, features={"radiomics_params": PARAMS, "deep": None},
                        variables=VARIABLES, training_input=X, training_rois=None, card={}, study={"seed": 0})
    return path, models, X


def test_every_zoo_model_and_sonorad_estimator_round_trips_exactly(zoo_bundle):
    path, models, _ = zoo_bundle
    bundle = load_bundle(path)
    assert bundle.models == list(models)
    new, _ = _table(40, 1)
    for name, model in models.items():
        expected = model.predict_proba(new)[:, 1]
        got = bundle.model(name).predict_proba(new)[:, 1]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, err_msg=name)


def test_models_are_skops_files_and_no_pickle(zoo_bundle):
    path, _, _ = zoo_bundle
    manifest = json.loads((path / "manifest.json").read_text())
    assert {e["kind"] for e in manifest["models"].values()} == {"skops"}
    assert not list(path.rglob("*.pkl")) and not list(path.rglob("*.joblib"))
    for entry in manifest["models"].values():
        assert zipfile.is_zipfile(path / entry["file"])


def test_card_names_the_models_that_keep_training_vectors(zoo_bundle):
    path, _, _ = zoo_bundle
    card = json.loads((path / "card.json").read_text())
    kept = set(card["bundle"]["models_keeping_training_vectors"])
    assert kept == {"plain/svm", "scores/knn", "selection/svm_balanced", "selection/knn_oversampled"}
    text = (path / "card.md").read_text()
    assert "keep training feature vectors" in text and "scores/knn" in text


def test_schema_has_types_levels_imputation_and_training_range(zoo_bundle):
    path, _, X = zoo_bundle
    schema = {v["name"]: v for v in load_bundle(path).schema()}
    assert schema["age"]["type"] == "numeric"
    assert schema["age"]["training_range"] == [X["age"].min(), X["age"].max()]
    assert schema["age"]["imputation"] == pytest.approx(X["age"].median())
    assert schema["edge"]["levels"] == ["smooth", "irregular"] and schema["grade"]["order"] == ["1", "2", "3"]
    assert schema["edge"]["imputation"] == X["edge"].mode()[0]
    assert "center" in schema  # a model harmonises by center (ComBat)
    json.dumps(load_bundle(path).schema())


# -- nothing of the training cohort but aggregates ---------------------------------------------
def _bundle_bytes(path) -> dict[str, bytes]:
    """Every file of a bundle, with zip archives (skops) opened so their members are searched too."""
    out = {}
    for file in path.rglob("*"):
        if not file.is_file():
            continue
        data = file.read_bytes()
        if zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as zf:
                for member in zf.namelist():
                    out[f"{file.name}:{member}"] = zf.read(member)
        else:
            out[file.relative_to(path).as_posix()] = data
    return out


def _numbers_in(name: str, data: bytes) -> set[float] | None:
    """The numbers a file holds: an .npy array's values, or the numbers written in a text file."""
    if name.endswith(".npy"):
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError:  # an object array (strings): no numbers
            return set()
        return set(array.astype(float).ravel().tolist()) if array.dtype.kind in "biuf" else set()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None  # other binary content: searched byte-wise
    return {float(t) for t in _NUMBER.findall(data)}


def _row_representations(models: dict, X: pd.DataFrame) -> list[pd.DataFrame]:
    """The training rows as every model step sees them: raw, then after each transform step."""
    numeric = X.select_dtypes("number")
    tables = [numeric]
    for model in models.values():
        display, scale, _, out = explain_parts(model, X)  # a design wrapper: its second stage's input
        tables.append(out.select_dtypes("number"))
        for step in display + scale:
            out = step.transform(out)
            tables.append(pd.DataFrame(np.asarray(out, dtype=float), index=X.index))
    return tables


_NUMBER = re.compile(rb"-?\d+\.\d+(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+")


def _row_hits(files: dict[str, bytes], tables: list[pd.DataFrame]) -> pd.Series:
    """Per training row: the largest number of its row-unique values found in one bundle file.

    Binary content is searched for the float64 bytes of each value, text for numbers equal to it.
    """
    numbers = {name: _numbers_in(name, data) for name, data in files.items()}
    hits = pd.Series(0, index=tables[0].index)
    for table in tables:
        values = table.to_numpy(dtype=float, copy=True)
        for j in range(values.shape[1]):
            col = values[:, j]
            unique = pd.Series(col).map(pd.Series(col).value_counts()) == 1
            values[~unique.to_numpy(), j] = np.nan  # a value shared by rows identifies none
        for i, cid in enumerate(table.index):
            # coarse numbers (pixel counts, ages, half pixels) also occur as counts and split points
            # of tree models: only values with more than two decimals identify a row
            row = [v for v in values[i] if np.isfinite(v) and round(v, 2) != v]
            if not row:
                continue
            best = max(sum((v in numbers[name]) if numbers[name] is not None else (struct.pack("<d", v) in data)
                               for v in row) for name, data in files.items())
            hits[cid] = max(hits[cid], best)
    return hits


def test_no_training_case_id_in_any_bundle_file(small_bundle):
    files = _bundle_bytes(small_bundle.path)
    table = small_bundle.table.loc[small_bundle.train_ids]
    for name, data in files.items():
        for cid in list(table["case_id"]) + list(table["patient_id"]):
            assert cid.encode() not in data, f"{cid} found in {name}"


def test_no_training_row_in_any_bundle_file_but_the_knn_model(small_bundle):
    files = {n: d for n, d in _bundle_bytes(small_bundle.path).items() if not n.startswith("radiomics_knn.skops")}
    kept = {n: m for n, m in small_bundle.models.items() if n != "radiomics/knn"}
    hits = _row_hits(files, _row_representations(kept, small_bundle.training_input))
    assert hits.max() == 0, hits.sort_values().tail()


def test_row_search_finds_the_training_vectors_knn_keeps(small_bundle):
    """The leak test can fail: k-NN keeps every training case's scaled predictors, and it finds them."""
    knn = {"radiomics/knn": small_bundle.models["radiomics/knn"]}
    hits = _row_hits(_bundle_bytes(small_bundle.path), _row_representations(knn, small_bundle.training_input))
    n_features = len([c for c in small_bundle.training_input.columns if c.startswith("original_")])
    assert (hits >= n_features // 2).all()


def test_shap_background_centroids_average_at_least_five_cases(small_bundle):
    explain = json.loads((small_bundle.path / "explain.json").read_text())["models"]
    for name, entry in explain.items():
        assert "error" not in entry, name
        assert min(entry["sizes"]) >= 5 and sum(entry["sizes"]) == len(small_bundle.train_ids)


# -- refusals ----------------------------------------------------------------------------------
def test_write_refuses_a_model_of_a_foreign_type(tmp_path, small_bundle):
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Foreign(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, X):
            return np.tile([0.5, 0.5], (len(X), 1))

    models = {"foreign": Foreign().fit(small_bundle.training_input, None)}
    with pytest.raises(BundleError, match="Foreign"):
        write_bundle(tmp_path / "model", models=models, chosen="foreign", cutoffs={}, features={
            "radiomics_params": small_bundle.params, "deep": None}, variables=small_bundle.variables,
            training_input=small_bundle.training_input, training_rois=None, card={}, study={})
    assert not (tmp_path / "model").exists()


def test_write_refuses_to_overwrite_a_folder_that_is_no_bundle(tmp_path, small_bundle):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not a sonorad bundle"):
        write_bundle(tmp_path / "model", models=small_bundle.models, chosen=small_bundle.chosen, cutoffs={},
                     features={"radiomics_params": small_bundle.params, "deep": None},
                     variables=small_bundle.variables, training_input=small_bundle.training_input,
                     training_rois=None, card={}, study={})
    assert (tmp_path / "model" / "notes.txt").read_text() == "mine"


def test_write_checks_chosen_and_exclude(tmp_path, small_bundle):
    common = dict(cutoffs={}, features={"radiomics_params": small_bundle.params, "deep": None},
                  variables=small_bundle.variables, training_input=small_bundle.training_input, training_rois=None,
                  card={}, study={})
    with pytest.raises(BundleError, match="excluded"):
        write_bundle(tmp_path / "a", models=small_bundle.models, chosen="radiomics/knn", exclude=["radiomics/knn"],
                     **common)
    with pytest.raises(BundleError, match="not among"):
        write_bundle(tmp_path / "b", models=small_bundle.models, chosen="nope", **common)


def test_rewriting_a_bundle_replaces_it(tmp_path, small_bundle):
    target = tmp_path / "model"
    shutil.copytree(small_bundle.path, target)
    common = dict(cutoffs={}, features={"radiomics_params": small_bundle.params, "deep": None},
                  variables=small_bundle.variables, training_input=small_bundle.training_input, training_rois=None,
                  card={}, study={})
    write_bundle(target, models={"knn": small_bundle.models["radiomics/knn"]}, chosen="knn", **common)
    assert load_bundle(target).models == ["knn"]


def test_the_bundle_keeps_the_performance_at_each_cutoff_and_a_case_result_reports_it(tmp_path, small_bundle,
                                                                                      one_case):
    models = {k: small_bundle.models[k] for k in (small_bundle.chosen, "radiomics/knn")}
    counts = {"cohort": "external", "models": {small_bundle.chosen: {"tp": 8, "fp": 1, "tn": 9, "fn": 2},
                                               "radiomics/knn": {"tp": 5, "fp": 5, "tn": 5, "fn": 5}}}
    path = write_bundle(tmp_path / "model", models=models, chosen=small_bundle.chosen, cutoffs=small_bundle.cutoffs,
                        features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=small_bundle.variables, training_input=small_bundle.training_input,
                        training_rois=None, card={}, study={"seed": 0}, performance=counts)
    saved = json.loads((path / "performance.json").read_text())
    text = json.dumps(saved)
    assert set(saved["models"]) == set(models)
    assert not any(str(cid) in text for cid in [*small_bundle.train_ids, *small_bundle.external_ids])
    image, mask, values = one_case(small_bundle.external_ids[0])
    result = load_bundle(path).predict_case(image, mask, values, gradcam=False, explain=False).to_dict()
    perf = result["performance_at_cutoff"]
    assert perf["cohort"] == "external" and perf["cutoff"] == small_bundle.cutoffs[small_bundle.chosen]
    assert perf["sensitivity"]["value"] == 0.8 and perf["specificity"]["value"] == 0.9
    assert perf["sensitivity"]["low"] < 0.8 < perf["sensitivity"]["high"] and result["performance_note"] is None
    old = load_bundle(small_bundle.path).predict_case(image, mask, values, gradcam=False, explain=False)
    assert old.performance_at_cutoff is None and old.performance_note.startswith("not available")


def _bundle_with_segmenter(small_bundle, folder, segmenter):
    return write_bundle(folder, models={small_bundle.chosen: small_bundle.models[small_bundle.chosen]},
                        chosen=small_bundle.chosen, cutoffs=small_bundle.cutoffs,
                        features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=small_bundle.variables, training_input=small_bundle.training_input,
                        training_rois=None, card={}, study={}, segmenter=segmenter)


def test_the_bundle_carries_the_studys_segmenter_checked_like_every_file(tmp_path, small_bundle):
    from sonorad.segment.io import load_segmenter
    from sonorad.segment.predict import propose_mask
    from tests.pipeline.test_automatic_rois import train_saved_segmenter
    from tests.segment.conftest import lesion_image

    seg_dir = train_saved_segmenter(tmp_path / "seg")
    path = _bundle_with_segmenter(small_bundle, tmp_path / "model", seg_dir)
    bundle = load_bundle(path)
    meta = json.loads((seg_dir / "segmenter.json").read_text())
    assert bundle.manifest["segmenter"]["weights_sha256"] == meta["weights_sha256"]
    assert {"segmenter/segmenter.pt", "segmenter/segmenter.json"} <= set(bundle.manifest["files"])
    image, _ = lesion_image(np.random.default_rng(3))
    box = (10, 8, 50, 40)
    assert np.array_equal(propose_mask(bundle.segmenter, image, box).mask,
                          propose_mask(load_segmenter(seg_dir), image, box).mask)
    assert load_bundle(small_bundle.path).segmenter is None
    (path / "segmenter" / "segmenter.pt").write_bytes(b"\x80\x04K\x01.")  # a changed file: refused at load
    with pytest.raises(BundleError, match="segmenter/segmenter.pt was changed"):
        load_bundle(path)


def test_write_refuses_a_foreign_segmenter_folder(tmp_path, small_bundle):
    from sonorad.errors import ConfigError

    fake = tmp_path / "seg"
    fake.mkdir()
    (fake / "segmenter.pt").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ConfigError, match="not a sonorad segmenter"):
        _bundle_with_segmenter(small_bundle, tmp_path / "model", fake)
    assert not (tmp_path / "model").exists()
