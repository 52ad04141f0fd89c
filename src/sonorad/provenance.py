"""Provenance: content hashes, atomic file writes and the versions of the analysis packages.

Every output sonorad writes can be traced to what produced it. This module is the one home of the
small pieces that make that possible:

- :func:`sha256_file`, :func:`sha256_files`, :func:`sha256_bytes` and :func:`content_hash`: SHA-256
  digests of a file, of several files, of bytes, and of DataFrames / Series / JSON-able values (the
  resume keys of a run folder).
- :func:`atomic_write`, :func:`atomic_write_text` and :func:`write_json_atomic`: a file appears whole
  or not at all (temporary file in the same folder, then :func:`os.replace`).
- :data:`PACKAGES` and :func:`package_versions`: the installed versions of the analysis packages, as
  a methods section states them and as a model bundle records them.

Nothing here imports a heavy package at import time (pandas loads when :func:`content_hash` first
runs); versions come from :mod:`importlib.metadata`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal

__all__ = [
    "PACKAGES",
    "METHODS_PACKAGES",
    "BUNDLE_PACKAGES",
    "sha256_file",
    "sha256_files",
    "sha256_bytes",
    "content_hash",
    "atomic_write",
    "atomic_write_text",
    "write_json_atomic",
    "package_versions",
]

_CHUNK = 1 << 20

#: Display name -> distribution name of every analysis package whose version sonorad records.
PACKAGES: dict[str, str] = {
    "sonorad": "sonorad",
    "NumPy": "numpy",
    "pandas": "pandas",
    "SciPy": "scipy",
    "scikit-learn": "scikit-learn",
    "PyRadiomics": "pyradiomics",
    "SimpleITK": "SimpleITK",
    "PyTorch": "torch",
    "torchvision": "torchvision",
    "SHAP": "shap",
    "statsmodels": "statsmodels",
    "XGBoost": "xgboost",
    "LightGBM": "lightgbm",
    "matplotlib": "matplotlib",
    "skops": "skops",
}

#: The packages a methods section states (display names, in the order they are written).
METHODS_PACKAGES: tuple[str, ...] = ("sonorad", "NumPy", "pandas", "SciPy", "scikit-learn", "PyRadiomics",
                                     "SimpleITK", "PyTorch", "torchvision", "SHAP", "statsmodels", "XGBoost",
                                     "LightGBM", "matplotlib")

#: The packages a model bundle records and compares on load (display names, in the manifest's order).
BUNDLE_PACKAGES: tuple[str, ...] = ("NumPy", "SciPy", "pandas", "scikit-learn", "skops", "XGBoost", "LightGBM",
                                    "PyRadiomics", "SimpleITK", "PyTorch", "torchvision", "SHAP")


# --- hashes ----------------------------------------------------------------------------------------

def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks.

    Parameters
    ----------
    path : str or Path
        The file (an image, a weights file, a bundle file).

    Returns
    -------
    str
        64 lower-case hex characters.

    Raises
    ------
    FileNotFoundError
        The file does not exist.

    Examples
    --------
    >>> sha256_file("weights.pt")  # doctest: +SKIP
    '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
    """
    h = hashlib.sha256()
    _update_from_file(h, path)
    return h.hexdigest()


def sha256_files(paths: Iterable[str | Path]) -> str:
    """One SHA-256 over several files: each file's bytes followed by a NUL byte, in the given order.

    Parameters
    ----------
    paths : iterable of str or Path
        The files (e.g. an image and its mask files), each read in 1 MiB chunks.

    Returns
    -------
    str
        64 lower-case hex characters; a different order or split of the same bytes gives another hash.

    Raises
    ------
    FileNotFoundError
        A file does not exist.
    """
    h = hashlib.sha256()
    for path in paths:
        _update_from_file(h, path)
        h.update(b"\0")
    return h.hexdigest()


def _update_from_file(h, path: str | Path) -> None:
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 of ``data`` as 64 lower-case hex characters.

    Examples
    --------
    >>> sha256_bytes(b"")
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    return hashlib.sha256(data).hexdigest()


def content_hash(*parts) -> str:
    """SHA-256 of DataFrames, Series and JSON-able values (order and column names included).

    Each part contributes its content and a separator, so ``content_hash(a, b)`` differs from
    ``content_hash(b, a)``. A DataFrame or Series contributes its values, its index and its column
    names (a Series its name); anything else contributes ``json.dumps(part, sort_keys=True,
    default=str)``, so dictionaries hash the same whatever their key order.

    Parameters
    ----------
    *parts
        DataFrames, Series or JSON-able values (other objects are hashed through ``str``).

    Returns
    -------
    str
        64 lower-case hex characters; the same parts give the same hash in every process.

    Examples
    --------
    >>> content_hash({"b": 1, "a": 2}) == content_hash({"a": 2, "b": 1})
    True
    """
    import numpy as np
    import pandas as pd

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


# --- atomic writes ---------------------------------------------------------------------------------

def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write a file so that readers see either the old file or the whole new one, never half of it.

    ``write`` writes a temporary file in the same folder as ``path`` (a hidden name ending in
    ``.tmp``); it then replaces ``path`` with :func:`os.replace`, which is atomic within one file
    system. When ``write`` raises, the temporary file is removed and ``path`` is left unchanged.

    Parameters
    ----------
    path : str or Path
        The file to write; its folder must exist.
    write : callable
        ``write(tmp_path)`` writes the complete content to ``tmp_path`` (e.g. ``df.to_csv``,
        ``lambda p: joblib.dump(obj, p)``).

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> atomic_write("features.csv", lambda p: table.to_csv(p))  # doctest: +SKIP
    """
    path = Path(path)
    # a unique name, so two processes writing the same file never share a temporary file
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`) and return ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def write_json_atomic(path: str | Path, data, **json_kwargs) -> Path:
    """Write ``json.dumps(data, **json_kwargs)`` to ``path`` atomically and return ``path``.

    Parameters
    ----------
    path : str or Path
        The JSON file to write.
    data
        Anything :func:`json.dumps` accepts with ``json_kwargs``.
    **json_kwargs
        Passed to :func:`json.dumps` (``indent``, ``sort_keys``, ``default``...); the text is written
        exactly as :func:`json.dumps` returns it, without a trailing newline.

    Examples
    --------
    >>> write_json_atomic("meta.json", {"key": "abc"}, indent=2, sort_keys=True)  # doctest: +SKIP
    """
    return atomic_write_text(path, json.dumps(data, **json_kwargs))


# --- package versions ------------------------------------------------------------------------------

def package_versions(packages: Mapping[str, str] | Iterable[str] | None = None, *,
                     by: Literal["display", "distribution"] = "display") -> dict[str, str | None]:
    """Installed versions of the analysis packages, read from package metadata (nothing is imported).

    Parameters
    ----------
    packages : mapping or iterable of str, optional
        A mapping display name -> distribution name, or display names of :data:`PACKAGES`. Default:
        :data:`METHODS_PACKAGES` when ``by="display"``, :data:`BUNDLE_PACKAGES` when
        ``by="distribution"``.
    by : {"display", "distribution"}
        ``"display"``: keys are display names, preceded by ``"Python"`` (what a methods section
        states). ``"distribution"``: keys are distribution names, without Python (what a model
        bundle's manifest records and compares on load).

    Returns
    -------
    dict of str -> str or None
        E.g. ``{"Python": "3.12.3", "sonorad": "0.1.0", "NumPy": "2.1.0", ...}``; ``None`` for a
        package that is not installed.

    Raises
    ------
    ValueError
        ``by`` is not one of the two choices.
    KeyError
        A display name is not in :data:`PACKAGES`.

    Examples
    --------
    >>> package_versions(["NumPy"], by="distribution")  # doctest: +SKIP
    {'numpy': '2.1.0'}
    """
    from importlib import metadata

    if by not in ("display", "distribution"):
        raise ValueError(f"package_versions: by={by!r}; choose 'display' or 'distribution'")
    if packages is None:
        packages = METHODS_PACKAGES if by == "display" else BUNDLE_PACKAGES
    if not isinstance(packages, Mapping):
        packages = {name: PACKAGES[name] for name in packages}
    out: dict[str, str | None] = {"Python": platform.python_version()} if by == "display" else {}
    for name, distribution in packages.items():
        key = name if by == "display" else distribution
        try:
            out[key] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            out[key] = None
    return out
