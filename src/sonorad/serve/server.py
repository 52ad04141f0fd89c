"""Start the calculator: load the bundle once, check the binding, run uvicorn."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from sonorad.errors import ConfigError
from sonorad.serve.uploads import UploadLimits, memfd_available

__all__ = ["allowed_hosts_for", "check_binding", "is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None, keep: Path | None) -> None:
    """Refuse a network binding without a token, and an unusable ``--keep`` or in-memory route.

    Raises
    ------
    ConfigError
        Binding other than loopback without ``--token``; ``--keep`` that is not a writable folder; no
        way to read uploads in memory (not Linux) and no ``--keep``.
    """
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"--host {host} makes the calculator reachable from the network; an access token is then "
            "required: add --token T (give T only to the people who may use it), or bind 127.0.0.1")
    if token is not None and len(token) < 8:
        raise ConfigError("--token is too short: use at least 8 characters (for example a random passphrase)")
    if keep is not None:
        keep = Path(keep)
        if keep.exists() and not keep.is_dir():
            raise ConfigError(f"--keep {keep}: exists and is not a folder")
    elif not memfd_available():
        raise ConfigError("this system cannot read uploads in memory (no memfd_create); start with "
                          "--keep DIR, and each request's files are written there")


def allowed_hosts_for(host: str, port: int) -> list[str] | None:
    """Host headers accepted on a loopback binding (a DNS-rebinding page sends its own name); None = any."""
    if not is_loopback(host):
        return None
    return ["127.0.0.1", "localhost", "::1", "[::1]", host]


def serve(bundle_path, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
          keep=None, limits: UploadLimits | None = None, allow_missing: bool = False,
          log_level: str = "info") -> None:
    """Load the bundle at ``bundle_path`` and serve the calculator until interrupted."""
    keep = Path(keep) if keep is not None else None
    check_binding(host, token, keep)  # before anything is loaded: a refused binding costs nothing

    import uvicorn

    from sonorad.bundle import load_bundle
    from sonorad.serve.app import create_app

    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(Path(bundle_path))
    app = create_app(bundle, token=token, keep=keep, limits=limits, allowed_hosts=allowed_hosts_for(host, port),
                     allow_missing=allow_missing)
    logging.getLogger("sonorad.serve").info("serving %s on http://%s:%d", bundle_path, host, port)
    print(f"sonorad serve: http://{host}:{port}/  (bundle {str(bundle.sha256)[:12]}; Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)
