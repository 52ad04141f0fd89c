"""Frozen embeddings, cohort extraction with cache and failures, and the scikit-learn transformer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.deep.backbones import load_backbone
from sonorad.deep.extractor import DeepFeatureExtractor, embed_crops, extract_deep


def test_embeddings_are_deterministic_and_independent_of_batching(make_images):
    images, _, _, _ = make_images(6, size=40)
    net = load_backbone("efficientnet_lite0")
    a = embed_crops(net, list(images), batch_size=4, input_size=64)
    b = embed_crops(net, list(images), batch_size=1, input_size=64)
    c = embed_crops(load_backbone("efficientnet_lite0"), list(images), batch_size=4, input_size=64)
    assert a.shape == (6, 1280) and a.dtype == np.float64
    np.testing.assert_array_equal(a, c)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not np.allclose(a[0], a[1])


def test_extract_deep_table_failures_and_cache(png_cohort, feature_cache, monkeypatch):
    table = png_cohort.copy()
    table.loc["c03", "image"] = "/nonexistent/c03.png"
    feats, fails = extract_deep(table, "small_cnn", weights=None, cache=feature_cache, batch_size=2, progress=False)
    assert list(feats.index) == ["c00", "c01", "c02", "c04", "c05"]
    assert feats.index.name == "case_id"
    assert list(feats.columns[:2]) == ["small_cnn_0", "small_cnn_1"] and feats.shape[1] == 64
    assert (feats.dtypes == np.float64).all()
    assert list(fails.columns) == ["case_id", "stage", "error", "fix"]
    assert fails["case_id"].tolist() == ["c03"] and fails["stage"].tolist() == ["deep_small_cnn"]
    assert "c03.png" in fails["error"].iloc[0] and fails["fix"].iloc[0]
    assert len(list(feature_cache.root.rglob("*.npz"))) == 5

    # Second run: every good case comes from the cache, no image is cropped again.
    import sonorad.deep.extractor as extractor

    def fail_if_called(*args, **kwargs):
        raise AssertionError("cache miss")

    monkeypatch.setattr(extractor, "case_crop", fail_if_called)
    again, _ = extract_deep(png_cohort.drop(index="c03"), "small_cnn", weights=None, cache=feature_cache,
                            progress=False)
    pd.testing.assert_frame_equal(again, feats)


def test_cache_key_changes_with_image_bytes(png_cohort, feature_cache):
    from PIL import Image

    feats, _ = extract_deep(png_cohort.iloc[:1], "small_cnn", weights=None, cache=feature_cache, progress=False)
    path = png_cohort["image"].iloc[0]
    arr = np.asarray(Image.open(path)).copy()
    arr[arr < 250] += 5  # same file name, different content
    Image.fromarray(arr).save(path)
    again, _ = extract_deep(png_cohort.iloc[:1], "small_cnn", weights=None, cache=feature_cache, progress=False)
    assert len(list(feature_cache.root.rglob("*.npz"))) == 2
    assert not np.allclose(feats.to_numpy(), again.to_numpy())


def test_extractor_in_grouped_cross_validation(make_images):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    images, _, y, patient = make_images(16, size=32)
    pipe = make_pipeline(
        DeepFeatureExtractor("small_cnn", weights=None, input_size=32, pca_components=3),
        StandardScaler(), LogisticRegression(),
    )
    scores = cross_val_score(pipe, images, y, groups=patient, cv=GroupKFold(2), scoring="roc_auc")
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_pca_is_fitted_on_training_cases_only(make_images):
    images, _, _, _ = make_images(12, size=32)
    ext = DeepFeatureExtractor("efficientnet_lite0", input_size=64, pca_components=4).fit(images[:8])
    assert ext.pca_.n_samples_ == 8
    out = ext.transform(images)
    assert out.shape == (12, 4)
    assert list(ext.get_feature_names_out()) == [f"efficientnet_lite0_pc{i}" for i in range(4)]
    # training scores of a PCA are centred; the held-out ones are not constrained to be
    np.testing.assert_allclose(out[:8].mean(axis=0), 0, atol=1e-6)


def test_frozen_extractor_feature_names_and_errors(make_images):
    images, _, _, _ = make_images(4, size=32)
    ext = DeepFeatureExtractor("small_cnn", weights=None, input_size=32).fit(images)
    assert ext.transform(images).shape == (4, 64)
    assert ext.get_feature_names_out()[-1] == "small_cnn_63"
    with pytest.raises(Exception, match="mode must be"):
        DeepFeatureExtractor("small_cnn", mode="warm").fit(images)
    with pytest.raises(Exception, match="needs the training labels"):
        DeepFeatureExtractor("small_cnn", mode="finetune").fit(images)


@pytest.mark.data
def test_real_breast_cases_give_identical_1280_tables(shared_data):
    pytest.importorskip("sonorad.imaging.roi")
    cases = pd.read_csv(shared_data / "breast_lesions_usg" / "cases.csv").head(12)
    root = shared_data / "breast_lesions_usg"
    cases["image"] = [str(root / p) for p in cases["image"]]
    cases["mask"] = [";".join(str(root / m) for m in str(p).split(";")) for p in cases["mask"]]
    cases = cases.set_index("case_id", drop=False)
    a, fa = extract_deep(cases, "efficientnet_lite0", progress=False)
    b, _ = extract_deep(cases, "efficientnet_lite0", progress=False)
    assert fa.empty and a.shape == (12, 1280)
    assert list(a.index) == cases["case_id"].astype(str).tolist()
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a.std(axis=0).mean() > 0  # the 12 lesions do not all look alike


def test_fitted_extractor_pickles(make_images):
    import pickle

    images, _, _, _ = make_images(4, size=32)
    ext = DeepFeatureExtractor("small_cnn", weights=None, input_size=32).fit(images)
    again = pickle.loads(pickle.dumps(ext))
    np.testing.assert_array_equal(again.transform(images), ext.transform(images))
