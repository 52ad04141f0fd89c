"""Content-addressed feature cache (sonorad.features.store)."""

from __future__ import annotations

import numpy as np
import pytest

from sonorad.features.store import FeatureCache


def test_key_is_deterministic_and_unambiguous():
    k = FeatureCache.key(b"image", b"mask", "params")
    assert k == FeatureCache.key(b"image", b"mask", "params")
    assert len(k) == 64 and int(k, 16) >= 0
    assert FeatureCache.key("ab", "c") != FeatureCache.key("a", "bc")  # parts are length-prefixed
    assert FeatureCache.key("é") == FeatureCache.key("é".encode())
    assert FeatureCache.key(b"x", b"y") != FeatureCache.key(b"y", b"x")


def test_key_refuses_paths_and_nothing(tmp_path):
    with pytest.raises(TypeError, match="sha256_file"):
        FeatureCache.key(tmp_path)
    with pytest.raises(ValueError, match="at least one part"):
        FeatureCache.key()


def test_scalars_round_trip_exactly_in_order(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    value = {"b_last": 0.1 + 0.2, "a_first": np.float32(1.5), "tiny": 5e-324, "nan": np.nan, "inf": -np.inf, "int": 3}
    k = cache.key("case")
    assert cache.get(k) is None and k not in cache
    cache.put(k, value)
    got = cache.get(k)
    assert list(got) == list(value)
    assert got["b_last"] == 0.1 + 0.2  # bit-exact float64
    assert got["tiny"] == 5e-324 and np.isnan(got["nan"]) and got["inf"] == -np.inf
    assert got["a_first"] == 1.5 and got["int"] == 3.0 and all(type(v) is float for v in got.values())
    assert k in cache and len(cache) == 1


def test_arrays_round_trip_exactly(tmp_path):
    cache = FeatureCache(tmp_path)
    emb = np.random.default_rng(0).normal(size=1280)
    cache.put(cache.key("emb"), emb)
    got = cache.get(cache.key("emb"))
    assert got.dtype == np.float64 and np.array_equal(got, emb)
    several = {"resnet18": emb[:512], "vgg16": emb[:7].astype(np.float32)}
    cache.put(cache.key("several"), several)
    got = cache.get(cache.key("several"))
    assert list(got) == ["resnet18", "vgg16"]
    assert np.array_equal(got["resnet18"], emb[:512])
    assert np.array_equal(got["vgg16"], emb[:7].astype(np.float32).astype(np.float64))


def test_put_refuses_other_values(tmp_path):
    cache = FeatureCache(tmp_path)
    k = cache.key("x")
    with pytest.raises(TypeError, match="shape"):
        cache.put(k, np.zeros((2, 2)))
    with pytest.raises(TypeError, match="mixed"):
        cache.put(k, {"a": 1.0, "b": np.zeros(3)})
    with pytest.raises(TypeError):
        cache.put(k, [1.0, 2.0])
    with pytest.raises(ValueError, match="64-character"):
        cache.get("not-a-key")
    assert len(cache) == 0


def test_overwrite_and_damaged_entry(tmp_path):
    cache = FeatureCache(tmp_path)
    k = cache.key("x")
    cache.put(k, {"a": 1.0})
    cache.put(k, {"a": 2.0})
    assert cache.get(k) == {"a": 2.0}
    path = next(tmp_path.glob("??/*.npz"))
    path.write_bytes(path.read_bytes()[:20])  # truncated, as after a full disk
    assert cache.get(k) is None  # a miss: recomputed and rewritten by the caller
    cache.put(k, {"a": 3.0})
    assert cache.get(k) == {"a": 3.0}


def test_interrupted_write_leaves_no_entry_and_no_temp_file(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path)
    done, interrupted = cache.key("done"), cache.key("interrupted")
    cache.put(done, {"a": 1.0})

    def savez_then_die(handle, **arrays):
        handle.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", savez_then_die)
    with pytest.raises(KeyboardInterrupt):
        cache.put(interrupted, {"a": 2.0})
    monkeypatch.undo()
    assert cache.get(interrupted) is None
    assert cache.get(done) == {"a": 1.0}
    assert sorted(p.suffix for p in tmp_path.rglob("*") if p.is_file()) == [".npz"]
