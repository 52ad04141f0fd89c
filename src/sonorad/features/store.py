"""Content-addressed per-case feature cache.

An entry is keyed by what determines the features (the bytes of the image and mask files, the
extraction parameters, the backbone ...), never by file names, so a renamed or moved file still
hits the cache and an edited one misses it. Entries are compressed NumPy ``.npz`` files (float64 round-trips
bit for bit, NaN included, and nothing is pickled), written to a temporary file and moved into
place with :func:`os.replace`, so an interrupted run never leaves a half-written entry: it simply
resumes from the entries that exist. Failures are never cached: a fixed file is retried.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sonorad.provenance import atomic_write

__all__ = ["FeatureCache"]

_KINDS = ("scalars", "arrays", "array")


class FeatureCache:
    """A folder of per-case feature entries, addressed by content keys.

    Parameters
    ----------
    root : str or Path
        Folder holding the entries (created on first write). Entries live in
        ``root/<key[:2]>/<key>.npz``.

    Notes
    -----
    A value is one of

    - a mapping of feature name to number (radiomics): returned as ``dict[str, float]`` in the same order;
    - a mapping of name to 1-D array (e.g. several embeddings): returned as ``dict[str, ndarray]``;
    - a 1-D array (a deep embedding): returned as a float64 ``ndarray``.

    Several processes may share one cache: writes are atomic and two writers of the same key write
    the same content.

    Examples
    --------
    >>> import tempfile
    >>> cache = FeatureCache(tempfile.mkdtemp())
    >>> k = cache.key(b"image bytes", b"mask bytes", "params-hash")
    >>> cache.get(k) is None
    True
    >>> cache.put(k, {"original_firstorder_Mean": 0.1})
    >>> cache.get(k)
    {'original_firstorder_Mean': 0.1}
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r})"

    @staticmethod
    def key(*parts: bytes | bytearray | memoryview | str) -> str:
        """sha256 hex key of the given parts.

        Each part is length-prefixed before hashing, so ``key("ab", "c") != key("a", "bc")``.

        Parameters
        ----------
        *parts : bytes or str
            What the entry depends on: file bytes (or their :func:`sonorad.provenance.sha256_file`),
            a parameter hash, a backbone name... Strings are UTF-8 encoded.

        Returns
        -------
        str
            64 hex characters.
        """
        if not parts:
            raise ValueError("FeatureCache.key needs at least one part (file bytes, parameter hash, ...)")
        digest = hashlib.sha256()
        for i, part in enumerate(parts):
            if isinstance(part, str):
                data = part.encode("utf-8")
            elif isinstance(part, (bytes, bytearray, memoryview)):
                data = bytes(part)
            else:
                raise TypeError(
                    f"FeatureCache.key part {i} is a {type(part).__name__}; pass bytes or str "
                    "(e.g. sha256_file(path) for a file, not the path itself)"
                )
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        if not (isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
            raise ValueError(f"cache key must be a 64-character hex string from FeatureCache.key, got {key!r}")
        return self.root / key[:2] / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self._path(key).is_file()

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.npz")) if self.root.is_dir() else 0

    def get(self, key: str) -> dict | np.ndarray | None:
        """The stored value, or ``None`` when the key is absent or its entry is unreadable.

        Parameters
        ----------
        key : str
            A key from :meth:`key`.

        Returns
        -------
        dict, numpy.ndarray or None
            As stored by :meth:`put` (see the class notes); ``None`` on a miss.
        """
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                kind = str(data["kind"])
                if kind == "scalars":
                    return dict(zip(data["names"].tolist(), data["values"].tolist()))
                if kind == "arrays":
                    names = data["names"].tolist()
                    return {name: data[f"a{i}"].copy() for i, name in enumerate(names)}
                if kind == "array":
                    return data["array"].copy()
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            # a damaged entry (disk full, manual edit) is a miss: the value is recomputed and rewritten
            return None
        return None

    def put(self, key: str, value: Mapping | np.ndarray) -> None:
        """Store ``value`` under ``key`` atomically (temporary file, then :func:`os.replace`).

        Parameters
        ----------
        key : str
            A key from :meth:`key`.
        value : mapping or numpy.ndarray
            ``{name: number}``, ``{name: 1-D array}`` or a 1-D array; numbers are stored as float64.

        Raises
        ------
        TypeError
            ``value`` is none of the above.
        """
        path = self._path(key)
        arrays = self._encode(value)
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)  # lossless; the padded name array shrinks ~20x
                handle.flush()
                os.fsync(handle.fileno())

        atomic_write(path, write)

    @staticmethod
    def _encode(value) -> dict[str, np.ndarray]:
        if isinstance(value, Mapping):
            names = [str(name) for name in value]
            items = list(value.values())
            if all(np.ndim(v) == 0 for v in items):
                values = np.array([float(v) for v in items], dtype=np.float64)
                return {"kind": np.array("scalars"), "names": np.array(names, dtype=str), "values": values}
            if all(np.ndim(v) == 1 for v in items):
                out = {"kind": np.array("arrays"), "names": np.array(names, dtype=str)}
                out.update({f"a{i}": np.asarray(v, dtype=np.float64) for i, v in enumerate(items)})
                return out
            raise TypeError(
                "FeatureCache.put: a mapping must hold only numbers or only 1-D arrays; "
                "store mixed values under separate keys"
            )
        if isinstance(value, np.ndarray) and value.ndim == 1:
            return {"kind": np.array("array"), "array": value.astype(np.float64)}
        raise TypeError(
            f"FeatureCache.put stores a mapping of numbers, a mapping of 1-D arrays or a 1-D array; "
            f"got {type(value).__name__}" + (f" with shape {value.shape}" if isinstance(value, np.ndarray) else "")
        )
