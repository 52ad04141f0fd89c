"""One checkpoint wrapper: a stage's output saved under the hash of its inputs.

``checkpoint(path, key, compute)`` returns the object saved at ``path`` when its metadata holds
the same ``key`` (the hash of everything the computation depends on), else computes it and saves
it with its metadata. Checkpoints are a run folder's own working files (joblib), read back only by
the run that wrote them; what leaves the run folder is the model bundle (``sonorad.bundle``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from sonorad.provenance import atomic_write, write_json_atomic

__all__ = ["checkpoint"]


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
    atomic_write(path, lambda tmp: joblib.dump(obj, tmp))
    write_json_atomic(path.with_suffix(".json"), {"key": key, "seconds": round(seconds, 1), **(metadata or {}),
                                                  **(describe(obj) if describe else {})},
                      indent=2, sort_keys=True, default=str)
    return obj, seconds
