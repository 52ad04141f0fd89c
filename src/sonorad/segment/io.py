"""Saving and loading a segmenter: a torch state dict plus JSON metadata; no code runs at load.

A segmenter folder holds

- ``segmenter.pt``: the network's state dict (``torch.save(net.state_dict())``: tensors only);
- ``segmenter.json``: the metadata (:attr:`Segmenter.meta`) and the sha256 of ``segmenter.pt``.

:func:`load_segmenter` reads the JSON, checks the hash, rebuilds the network from the JSON's
settings and reads the weights with ``torch.load(weights_only=True)``, which refuses any pickled
object other than tensors and plain containers: a foreign pickle is refused, never executed.
"""

from __future__ import annotations

import json
from pathlib import Path

from sonorad.errors import ConfigError

__all__ = ["WEIGHTS_FILE", "META_FILE", "save_segmenter", "load_segmenter"]

WEIGHTS_FILE = "segmenter.pt"
META_FILE = "segmenter.json"
_FORMAT = "sonorad-segmenter"


def save_segmenter(segmenter, out) -> Path:
    """Write ``segmenter`` to the folder ``out`` (created); returns the folder.

    Both files are written atomically, the weights first, so a folder never pairs new metadata with
    old weights.
    """
    import io

    import torch

    from sonorad.provenance import atomic_write, sha256_bytes, write_json_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in segmenter.net.state_dict().items()}, buffer)
    data = buffer.getvalue()
    atomic_write(out / WEIGHTS_FILE, lambda tmp: tmp.write_bytes(data))
    meta = {**segmenter.meta, "format": _FORMAT, "weights_file": WEIGHTS_FILE, "weights_sha256": sha256_bytes(data)}
    write_json_atomic(out / META_FILE, meta, indent=2, allow_nan=False)
    return out


def _refuse(path, why: str) -> ConfigError:
    return ConfigError(
        f"{path} is not a sonorad segmenter: {why}; give the folder written by `sonorad segment train` "
        f"(with {META_FILE} and {WEIGHTS_FILE})"
    )


def _read_meta(folder: Path) -> dict:
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise _refuse(folder, f"{META_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(meta_path, f"it is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise _refuse(meta_path, f"its 'format' is not {_FORMAT!r}")
    for key in ("image_size", "margin", "encoder", "weights_sha256"):
        if key not in meta:
            raise _refuse(meta_path, f"the key {key!r} is missing")
    return meta


def load_segmenter(path):
    """Load a segmenter saved by :func:`save_segmenter`.

    Parameters
    ----------
    path : str or Path
        The segmenter folder (or its ``segmenter.json`` / ``segmenter.pt``).

    Returns
    -------
    Segmenter
        On the CPU, in eval mode.

    Raises
    ------
    ConfigError
        Missing or malformed metadata, weights whose sha256 differs from the metadata's, a weights
        file holding anything but a state dict of tensors (a foreign pickle is refused by
        ``weights_only=True`` before any of its code can run), or weights that do not fit the network.
    """
    import io

    import torch

    from sonorad.provenance import sha256_bytes
    from sonorad.segment.model import Segmenter, build_segmenter_net

    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"segmenter folder not found: {path}; give the folder written by `sonorad segment train`")
    meta = _read_meta(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise _refuse(folder, f"{WEIGHTS_FILE} is missing")
    data = weights.read_bytes()
    if sha256_bytes(data) != meta["weights_sha256"]:
        raise _refuse(weights, f"its sha256 differs from the one recorded in {META_FILE} (the file was replaced "
                               "or damaged)")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise _refuse(weights, f"it is not a plain state dict of tensors ({type(exc).__name__}); it was not loaded")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _refuse(weights, "it does not hold a state dict of tensors")
    net = build_segmenter_net(meta["encoder"], weights=None)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise _refuse(weights, f"its weights do not fit the {meta['encoder']} U-Net ({str(exc)[:200]})") from None
    return Segmenter(net, meta)
