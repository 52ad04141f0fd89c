"""Hashes, atomic writes and package versions of sonorad.provenance."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata

import pandas as pd
import pytest

from sonorad.provenance import (
    BUNDLE_PACKAGES,
    METHODS_PACKAGES,
    PACKAGES,
    atomic_write,
    atomic_write_text,
    content_hash,
    package_versions,
    sha256_bytes,
    sha256_file,
    sha256_files,
    write_json_atomic,
)


def test_sha256_file_and_bytes_match_hashlib(tmp_path):
    data = bytes(range(256)) * 9000  # more than one 1 MiB chunk
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == expected == sha256_bytes(data)
    assert sha256_file(str(path)) == expected


def test_sha256_file_follows_content_not_name(tmp_path):
    a = tmp_path / "a.png"
    a.write_bytes(b"\x89PNG" + bytes(range(256)) * 10)
    digest = sha256_file(a)
    renamed = a.rename(tmp_path / "renamed.png")
    assert sha256_file(renamed) == digest
    data = bytearray(renamed.read_bytes())
    data[100] ^= 1
    renamed.write_bytes(bytes(data))
    assert sha256_file(renamed) != digest
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "missing.png")


def test_sha256_files_separates_files(tmp_path):
    (tmp_path / "a").write_bytes(b"ab")
    (tmp_path / "b").write_bytes(b"c")
    (tmp_path / "c").write_bytes(b"a")
    (tmp_path / "d").write_bytes(b"bc")
    ab_c = sha256_files([tmp_path / "a", tmp_path / "b"])
    assert ab_c == hashlib.sha256(b"ab\0c\0").hexdigest()
    assert ab_c != sha256_files([tmp_path / "c", tmp_path / "d"])
    assert sha256_files([str(tmp_path / "a")]) == hashlib.sha256(b"ab\0").hexdigest()


def test_content_hash_known_value_and_order():
    # the resume keys of existing run folders depend on this exact value
    assert content_hash({"a": 1}) == hashlib.sha256(b'{"a": 1}\x00').hexdigest()
    assert content_hash({"b": 1, "a": 2}) == content_hash({"a": 2, "b": 1})
    assert content_hash(1, 2) != content_hash(2, 1)


def test_content_hash_sees_values_index_and_names():
    df = pd.DataFrame({"x": [1.0, 2.0]}, index=["a", "b"])
    assert content_hash(df) == content_hash(df.copy())
    assert content_hash(df) != content_hash(df.rename(columns={"x": "y"}))
    assert content_hash(df) != content_hash(df.set_axis(["a", "c"]))
    assert content_hash(df["x"]) != content_hash(df["x"].rename("z"))


def test_atomic_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    assert atomic_write_text(path, "new ü") == path
    assert path.read_text(encoding="utf-8") == "new ü"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_failure_keeps_old_file_and_cleans_up(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_write_json_atomic_writes_json_dumps_text(tmp_path):
    data = {"b": [1, 2], "a": None}
    path = write_json_atomic(tmp_path / "m.json", data, indent=2, sort_keys=True)
    assert path.read_text() == json.dumps(data, indent=2, sort_keys=True)


def test_package_versions_display_and_distribution():
    display = package_versions()
    assert list(display) == ["Python", *METHODS_PACKAGES]
    assert display["Python"] == platform.python_version()
    assert display["scikit-learn"] == metadata.version("scikit-learn")
    recorded = package_versions(by="distribution")
    assert list(recorded) == [PACKAGES[name] for name in BUNDLE_PACKAGES]
    assert recorded["numpy"] == metadata.version("numpy")
    assert set(METHODS_PACKAGES) | set(BUNDLE_PACKAGES) == set(PACKAGES)


def test_package_versions_custom_mapping_and_errors():
    assert package_versions({"absent": "no-such-distribution-sonorad"}, by="distribution") == {
        "no-such-distribution-sonorad": None}
    assert package_versions(["NumPy"], by="distribution") == {"numpy": metadata.version("numpy")}
    with pytest.raises(ValueError, match="by="):
        package_versions(by="name")


def test_import_loads_no_heavy_package():
    import subprocess
    import sys

    code = ("import sys, sonorad.provenance as p; p.package_versions(); "
            "assert not {'pandas', 'torch', 'shap', 'radiomics'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
