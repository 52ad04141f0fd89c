"""A stage's output saved under the hash of its inputs (sonorad.pipeline.checkpoint)."""

from __future__ import annotations

import json

from sonorad.pipeline.checkpoint import checkpoint


def test_checkpoint_computes_once_then_reuses_and_recomputes_on_a_new_key(tmp_path):
    path = tmp_path / "models" / "stage.joblib"
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    obj, seconds = checkpoint(path, "k1", compute, metadata={"seed": 0}, describe=lambda o: {"n": o["value"]})
    assert obj == {"value": 1} and seconds is not None
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["key"] == "k1" and meta["seed"] == 0 and meta["n"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["stage.joblib", "stage.json"]  # no temporary left

    again, seconds = checkpoint(path, "k1", compute)
    assert again == {"value": 1} and seconds is None and len(calls) == 1
    other, _ = checkpoint(path, "k2", compute)
    assert other == {"value": 2} and len(calls) == 2


def test_an_unreadable_checkpoint_is_recomputed(tmp_path):
    path = tmp_path / "stage.joblib"
    checkpoint(path, "k", lambda: 1)
    path.write_bytes(b"not a joblib file")
    obj, seconds = checkpoint(path, "k", lambda: 2)
    assert obj == 2 and seconds is not None
