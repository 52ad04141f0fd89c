"""An optional signature of a model bundle: an HMAC-SHA256 of its ``manifest.json`` with a secret key.

The manifest lists the sha256 of every other file of the bundle, so signing the manifest signs the
whole bundle. The hashes alone show that a file changed by accident, or was swapped without the
manifest being rewritten; they cannot show a deliberate rewrite, because whoever replaces a file
can recompute its hash in the manifest. The signature can: without the key, nobody can write a
``manifest.sig`` that matches a rewritten manifest.

The key is a file holding at least :data:`MIN_KEY_BYTES` bytes (e.g. ``head -c 32 /dev/urandom >
bundle.key``), given as ``key_file=`` / ``--key-file PATH`` or through the environment variable
:data:`KEY_ENV` (``SONORAD_BUNDLE_KEY_FILE``). When a key is given, :func:`sonorad.bundle.load_bundle`
loads only a bundle signed with that key; without a key a signed bundle still loads, with a line in
``Bundle.load_warnings`` saying that its signature was not checked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from sonorad.bundle._trust import BundleError

__all__ = ["KEY_ENV", "MIN_KEY_BYTES", "SIGNATURE_FILE", "read_key", "resolve_key", "sign_bundle",
           "signature_of", "verify_signature"]

#: Environment variable naming the key file when none is passed.
KEY_ENV = "SONORAD_BUNDLE_KEY_FILE"
#: The signature's file in the bundle folder (not listed in the manifest: it signs the manifest).
SIGNATURE_FILE = "manifest.sig"
#: Shortest key accepted (bytes, after stripping surrounding white space).
MIN_KEY_BYTES = 16
_ALGORITHM = "HMAC-SHA256"
_KEY_FIX = "create one with e.g. `head -c 32 /dev/urandom > bundle.key` and keep it where only trusted people read it"


def read_key(path) -> bytes:
    """The key held by the file ``path`` (surrounding white space stripped); BundleError if unusable."""
    path = Path(path).expanduser()
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise BundleError(f"the bundle key file {path} cannot be read ({exc.strerror or exc}). Fix: give the "
                          f"path of the key file with --key-file or {KEY_ENV}; {_KEY_FIX}.") from None
    if len(key) < MIN_KEY_BYTES:
        raise BundleError(f"the bundle key file {path} holds {len(key)} byte(s); a key needs at least "
                          f"{MIN_KEY_BYTES}. Fix: {_KEY_FIX}.")
    return key


def resolve_key(key=None) -> bytes | None:
    """The key to sign or verify with: ``key`` (bytes, or a key file's path), else the file named by
    ``$SONORAD_BUNDLE_KEY_FILE``, else ``None`` (no signature)."""
    if isinstance(key, (bytes, bytearray)):
        if len(key) < MIN_KEY_BYTES:
            raise BundleError(f"the bundle key has {len(key)} byte(s); a key needs at least {MIN_KEY_BYTES}. "
                              f"Fix: {_KEY_FIX}.")
        return bytes(key)
    if key is not None:
        return read_key(key)
    env = os.environ.get(KEY_ENV, "").strip()
    return read_key(env) if env else None


def signature_of(manifest_bytes: bytes, key: bytes) -> str:
    """Hex HMAC-SHA256 of the manifest's bytes."""
    return hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()


def sign_bundle(folder, key) -> Path:
    """Write ``manifest.sig`` for the bundle ``folder`` with ``key`` (bytes or a key file's path).

    Returns the signature file's path. The bundle's files are not checked here; sign only a bundle
    that :func:`sonorad.bundle.load_bundle` loads.
    """
    key = resolve_key(key)
    if key is None:
        raise BundleError(f"no key to sign with. Fix: give --key-file PATH or set {KEY_ENV}.")
    folder = Path(folder)
    manifest = (folder / "manifest.json").read_bytes()
    path = folder / SIGNATURE_FILE
    path.write_text(json.dumps({"algorithm": _ALGORITHM, "signs": "manifest.json",
                                "hmac": signature_of(manifest, key)}, indent=2) + "\n", encoding="utf-8")
    return path


def verify_signature(folder: Path, key: bytes | None) -> str:
    """Check the bundle's signature against ``key``.

    Returns ``"verified"`` (signed with ``key``), ``"not checked"`` (signed, no key given) or
    ``"unsigned"`` (no signature, no key). Raises BundleError when a key is given and the bundle is
    unsigned, or signed with another key, or its manifest was rewritten after signing.
    """
    sig_path = folder / SIGNATURE_FILE
    if sig_path.is_symlink():
        raise BundleError(f"the bundle file {SIGNATURE_FILE} is a symbolic link; bundles must hold plain files.")
    if not sig_path.exists():
        if key is None:
            return "unsigned"
        raise BundleError("this bundle is not signed, and a key was given (--key-file or "
                          f"{KEY_ENV}): only bundles signed with that key are loaded. It was not loaded. Fix: use "
                          "the signed bundle from its author, or sign this one with sonorad.bundle.sign_bundle if "
                          "you trust where it came from.")
    if key is None:
        return "not checked"
    try:
        record = json.loads(sig_path.read_text(encoding="utf-8"))
        expected = str(record["hmac"])
        if record.get("algorithm") != _ALGORITHM:
            raise ValueError(record.get("algorithm"))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise BundleError(f"{sig_path} is not a sonorad bundle signature. It was not loaded. Fix: use an "
                          "unmodified bundle from its author.") from None
    actual = signature_of((folder / "manifest.json").read_bytes(), key)
    if not hmac.compare_digest(actual, expected):
        raise BundleError("the bundle's signature does not match the key given: its manifest was rewritten after "
                          "it was signed (a file replaced and its hash changed), or it was signed with another key. "
                          "It was not loaded. Fix: use the bundle as its author signed it, with the author's key.")
    return "verified"
