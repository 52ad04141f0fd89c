"""One checkpoint wrapper: a stage's output saved under the hash of its inputs.

``checkpoint(path, key, compute)`` returns the object saved at ``path`` when its metadata holds
the same ``key`` (the hash of everything the computation depends on), else computes it and saves
it with its metadata. Checkpoints are a run folder's own working files (joblib), read back only by
the run that wrote them; what leaves the run folder is the model bundle (``sonorad.bundle``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["input_hash", "file_sha256", "checkpoint", "write_json"]


def input_hash(*parts) -> str:
    """SHA-256 of DataFrames, Series and JSON-able values (order and column names included)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, pd.DataFrame | pd.Series):
            h.update(np.ascontiguousarray(pd.util.hash_pandas_object(part, index=True).to_numpy()).tobytes())
            names = part.columns if isinstance(part, pd.DataFrame) else [part.name]
            h.update(json.dumps([str(c) for c in names]).encode())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (weights files, bundle files)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def _load(path: Path, key: str):
    import joblib

    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists()):
        return None
    try:
        if json.loads(meta.read_text()).get("key") != key:
            return None
        return joblib.load(path)
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is recomputed, never trusted
        return None


def checkpoint(path: Path, key: str, compute: Callable[[], object], *, metadata: dict | None = None,
               describe: Callable[[object], dict] | None = None) -> tuple[object, float | None]:
    """The object saved at ``path`` under ``key``, else ``compute()`` saved there with its metadata.

    Returns ``(object, seconds)``; ``seconds`` is ``None`` when the saved object was reused.
    """
    import joblib

    obj = _load(path, key)
    if obj is not None:
        return obj, None
    t0 = time.perf_counter()
    obj = compute()
    seconds = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    joblib.dump(obj, tmp)
    tmp.replace(path)
    write_json(path.with_suffix(".json"), {"key": key, "seconds": round(seconds, 1), **(metadata or {}),
                                           **(describe(obj) if describe else {})})
    return obj, seconds
