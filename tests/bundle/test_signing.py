"""sonorad.bundle.signing: a signed manifest catches a model swapped with its hash rewritten."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from sonorad.bundle import BundleError, load_bundle, sign_bundle
from sonorad.bundle.signing import KEY_ENV


def _swap_a_model_and_rewrite_its_hash(folder):
    """What a deliberate tamperer does: put another model of an allowed type under a model's name and
    rewrite the manifest's hash, so the per-file hashes all match."""
    manifest = json.loads((folder / "manifest.json").read_text())
    target = manifest["models"]["rad_clin/logistic_regression"]["file"]
    shutil.copyfile(folder / manifest["models"]["rad_clin/random_forest"]["file"], folder / target)
    manifest["files"][target] = hashlib.sha256((folder / target).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def signed(small_bundle, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(small_bundle.path, folder)
    key = tmp_path / "bundle.key"
    key.write_bytes(b"k" * 32)
    sign_bundle(folder, key)
    return folder, key


def test_a_swapped_model_with_a_rewritten_hash_is_refused_only_with_the_key(signed, tmp_path, monkeypatch):
    folder, key = signed
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert load_bundle(folder, key=key).signature == "verified"
    _swap_a_model_and_rewrite_its_hash(folder)
    unchecked = load_bundle(folder)                                  # the hashes alone cannot tell
    assert "RandomForestClassifier" in repr(unchecked.model("rad_clin/logistic_regression"))
    assert unchecked.signature == "not checked" and any("signature was not checked" in w
                                                        for w in unchecked.load_warnings)
    with pytest.raises(BundleError, match="signature does not match the key"):
        load_bundle(folder, key=key)
    monkeypatch.setenv(KEY_ENV, str(key))                            # the key from the environment
    with pytest.raises(BundleError, match="signature does not match the key"):
        load_bundle(folder)


def test_a_key_refuses_unsigned_bundles_and_other_keys(signed, small_bundle, tmp_path):
    folder, key = signed
    other = tmp_path / "other.key"
    other.write_bytes(b"o" * 32)
    with pytest.raises(BundleError, match="signature does not match the key"):
        load_bundle(folder, key=other)
    with pytest.raises(BundleError, match="not signed, and a key was given"):
        load_bundle(small_bundle.path, key=key)
    assert load_bundle(small_bundle.path).signature == "unsigned"
    short = tmp_path / "short.key"
    short.write_bytes(b"abc")
    with pytest.raises(BundleError, match="at least 16"):
        load_bundle(folder, key=short)
    with pytest.raises(BundleError, match="cannot be read"):
        load_bundle(folder, key=tmp_path / "absent.key")
