"""load_bundle: refuses foreign types, changed files, incompatible versions; the Bundle API."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile

import numpy as np
import pytest

import sonorad
from sonorad.bundle import BundleError, compatible_versions, load_bundle


def _copy(small_bundle, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(small_bundle.path, target)
    return target


def _rehash(folder):
    """What an attacker who edits a bundle can always do: recompute the manifest's hashes."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in manifest["files"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _edit_manifest(folder, **changes):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_load_exposes_the_api_the_calculator_uses(small_bundle):
    bundle = sonorad.load_bundle(small_bundle.path)
    assert bundle.chosen == small_bundle.chosen
    assert bundle.models == list(small_bundle.models)
    assert bundle.cutoffs == pytest.approx(small_bundle.cutoffs)
    assert set(bundle.variables) == set(small_bundle.variables)
    assert len(bundle.sha256) == 64
    assert bundle.sha256 == hashlib.sha256((small_bundle.path / "manifest.json").read_bytes()).hexdigest()
    assert bundle.card["intended_use"].startswith("Test bundle")
    assert "Intended use" in bundle.card_markdown
    json.dumps(bundle.schema())
    assert [v["name"] for v in bundle.schema()] == list(small_bundle.variables)


def test_hand_edited_skops_file_naming_a_foreign_type_is_refused(small_bundle, tmp_path):
    folder = _copy(small_bundle, tmp_path)
    target = folder / "models" / "rad_clin_logistic_regression.skops"
    buffer = io.BytesIO()
    with zipfile.ZipFile(target) as src, zipfile.ZipFile(buffer, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "schema.json":
                schema = json.loads(data)
                text = json.dumps(schema).replace('"__module__": "sklearn.linear_model._logistic"',
                                                  '"__module__": "os"').replace('"LogisticRegression"', '"system"')
                assert text != json.dumps(schema)
                data = text.encode()
            dst.writestr(item, data)
    target.write_bytes(buffer.getvalue())
    _rehash(folder)
    with pytest.raises(BundleError, match=r"os\.system") as info:
        load_bundle(folder)
    assert "nothing in it was run" in str(info.value)


def test_an_extra_model_of_an_untrusted_class_is_refused(small_bundle, tmp_path):
    import skops.io as sio
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Stranger(ClassifierMixin, BaseEstimator):
        def predict_proba(self, X):
            return np.zeros((len(X), 2))

    folder = _copy(small_bundle, tmp_path)
    (folder / "models" / "stranger.skops").write_bytes(sio.dumps(Stranger()))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["models"]["stranger"] = {"file": "models/stranger.skops", "kind": "skops", "input": "model_input",
                                      "class": "x", "keeps_training_vectors": False}
    manifest["files"]["models/stranger.skops"] = ""
    (folder / "manifest.json").write_text(json.dumps(manifest))
    _rehash(folder)
    with pytest.raises(BundleError, match="Stranger"):
        load_bundle(folder)


def test_a_changed_file_fails_the_hash_check(small_bundle, tmp_path):
    folder = _copy(small_bundle, tmp_path)
    schema = folder / "schema.json"
    schema.write_text(schema.read_text().replace('"numeric"', '"categorical"'))
    with pytest.raises(BundleError, match="schema.json was changed"):
        load_bundle(folder)


def test_missing_and_unlisted_files_are_refused(small_bundle, tmp_path):
    folder = _copy(small_bundle, tmp_path)
    (folder / "extra.py").write_text("print('hi')")
    with pytest.raises(BundleError, match="does not list"):
        load_bundle(folder)
    (folder / "extra.py").unlink()
    (folder / "card.md").unlink()
    with pytest.raises(BundleError, match="card.md is missing"):
        load_bundle(folder)


def test_a_file_replaced_by_a_symbolic_link_is_named_as_such(small_bundle, tmp_path):
    folder = _copy(small_bundle, tmp_path)
    real = tmp_path / "elsewhere" / "card.md"
    real.parent.mkdir()
    shutil.move(folder / "card.md", real)
    (folder / "card.md").symlink_to(real)                           # same bytes, same hash
    with pytest.raises(BundleError, match="card.md is a symbolic link; bundles must hold plain files"):
        load_bundle(folder)
    (folder / "card.md").unlink()
    shutil.move(real, folder / "card.md")
    shutil.move(folder / "models", tmp_path / "elsewhere" / "models")
    (folder / "models").symlink_to(tmp_path / "elsewhere" / "models")   # a linked folder
    with pytest.raises(BundleError, match=r"models/.* is a symbolic link; bundles must hold plain files"):
        load_bundle(folder)


def test_manifest_paths_outside_the_bundle_are_refused(small_bundle, tmp_path):
    folder = _copy(small_bundle, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["../../etc/passwd"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="outside the bundle folder"):
        load_bundle(folder)


def test_incompatible_sonorad_version_gets_a_clear_message(small_bundle, tmp_path):
    folder = _copy(small_bundle, tmp_path)
    _edit_manifest(folder, sonorad_version="9.2.0")
    with pytest.raises(BundleError) as info:
        load_bundle(folder)
    message = str(info.value)
    assert "written by sonorad 9.2.0" in message and f"this is sonorad {sonorad.__version__}" in message
    assert "sonorad==9.2.0" in message


def test_newer_bundle_format_asks_for_an_upgrade(small_bundle, tmp_path):
    folder = _copy(small_bundle, tmp_path)
    _edit_manifest(folder, format_version=99)
    with pytest.raises(BundleError, match="upgrade sonorad"):
        load_bundle(folder)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no manifest.json"):
        load_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(tmp_path)


def test_version_rule():
    assert compatible_versions("0.1.0", "0.1.9")
    assert not compatible_versions("0.1.0", "0.2.0")
    assert compatible_versions("1.2.0", "1.5.0")
    assert not compatible_versions("1.2.0", "2.0.0")


def test_a_zipped_bundle_loads_and_unsafe_zips_do_not(small_bundle, tmp_path):
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in small_bundle.path.rglob("*"):
            if file.is_file():
                zf.write(file, f"model/{file.relative_to(small_bundle.path).as_posix()}")
    assert load_bundle(archive).sha256 == load_bundle(small_bundle.path).sha256
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(BundleError, match="outside the bundle folder"):
        load_bundle(evil)
    assert not (tmp_path.parent / "outside.txt").exists()


def test_version_differences_of_packages_are_listed(small_bundle, tmp_path):
    folder = _copy(small_bundle, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["packages"]["scikit-learn"] = "0.0.1"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    bundle = load_bundle(folder)
    assert any("scikit-learn" in w and "0.0.1" in w for w in bundle.load_warnings)


def test_a_malformed_manifest_is_a_bundle_error(small_bundle, tmp_path):
    folder = _copy(small_bundle, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["models"][small_bundle.chosen]["file"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="malformed"):
        load_bundle(folder)


def test_the_manifest_records_the_same_packages_and_keys(small_bundle):
    manifest = json.loads((small_bundle.path / "manifest.json").read_text())
    assert list(manifest["packages"]) == ["numpy", "scipy", "pandas", "scikit-learn", "skops", "xgboost", "lightgbm",
                                          "pyradiomics", "SimpleITK", "torch", "torchvision", "shap"]
    assert {"format", "format_version", "sonorad_version", "chosen", "cutoffs", "models", "files",
            "packages", "created_utc"} <= set(manifest)


def test_the_bundle_owns_what_it_derives_once(small_bundle):
    bundle = load_bundle(small_bundle.path)
    made = []
    assert bundle.cached("k", lambda: made.append(1) or "v") == "v"
    assert bundle.cached("k", lambda: made.append(1) or "w") == "v" and made == [1]
    assert bundle.cached("none", lambda: None) is None
    assert bundle.radiomics_params is bundle.radiomics_params and "setting" in bundle.radiomics_params
    assert bundle.crop_settings == [] and bundle.needs_center is False  # no network, no ComBat in this bundle
    assert {bundle.model_kind(m) for m in bundle.models} == {"skops"}
    with pytest.raises(BundleError, match="no model"):
        bundle.model_kind("absent")
