"""Start the calculator: load the bundle once, check the binding, run uvicorn."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from sonorad.errors import ConfigError
from sonorad.serve.auth import TOKEN_ENV, resolve_token
from sonorad.serve.guard import (
    DEFAULT_BODY_SECONDS,
    DEFAULT_MAX_RECEIVING,
    DEFAULT_MAX_REQUEST_SECONDS,
    find_guard,
)
from sonorad.serve.uploads import UploadLimits, memfd_available

__all__ = ["allowed_hosts_for", "check_binding", "check_limits", "configure_limits", "header_deadline_protocol",
           "is_loopback", "load_proposal_segmenter", "proposal_segmenter", "serve", "uvicorn_options"]


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
            f"required: set it in the environment ({TOKEN_ENV}=T) or in a file (--token-file PATH, one line), "
            "or give --token T (shows in the process list); give T only to the people who may use it. "
            "Or bind 127.0.0.1")
    if token is not None and len(token) < 8:
        raise ConfigError("the access token is too short: use at least 8 characters (for example a random "
                          "passphrase)")
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


#: Seconds a connection may take to send a request line and its headers (uvicorn itself has no limit).
HEADER_SECONDS = 20.0


def header_deadline_protocol(seconds: float = HEADER_SECONDS):
    """uvicorn's h11 protocol with a deadline for each request's line and headers.

    The deadline starts when the connection opens and again when a response is complete; when it
    passes before the next request's headers are in, the connection is closed. (The body has its own
    deadline, in :class:`sonorad.serve.guard.Guard`.)
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineH11Protocol(H11Protocol):
        _header_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self):
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc):
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

        def _arm(self):
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(seconds, self._headers_late)

        def _headers_late(self):
            self._header_timer = None
            waiting = self.cycle is None or self.cycle.response_complete  # no request in progress
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineH11Protocol


def uvicorn_options(max_receiving: int = DEFAULT_MAX_RECEIVING, max_inflight: int = 16,
                    header_seconds: float = HEADER_SECONDS) -> dict:
    """uvicorn's own limits for the calculator (the guard's limits act inside them).

    * ``http``: h11 with a deadline of ``header_seconds`` for each request's headers
      (:func:`header_deadline_protocol`), so connections that never finish their headers are closed;
    * ``timeout_keep_alive`` 5 s: an idle kept-alive connection is closed;
    * ``limit_concurrency``: connections and tasks at once (more are answered 503 by uvicorn), well above
      what the guard admits, so the guard's clearer answers come first;
    * ``h11_max_incomplete_event_size`` 64 KiB: request line and headers larger than that are refused;
    * ``backlog`` 256 pending connections; ``timeout_graceful_shutdown`` 10 s.
    """
    return {"http": header_deadline_protocol(header_seconds), "timeout_keep_alive": 5,
            "h11_max_incomplete_event_size": 64 * 1024,
            "limit_concurrency": max(256, 4 * (max_receiving + max_inflight)), "backlog": 256,
            "timeout_graceful_shutdown": 10}


def check_limits(body_seconds, max_request_seconds, max_receiving, session_hours) -> None:
    """Refuse limits that are not positive (``ConfigError`` naming the option)."""
    problems = []
    if not body_seconds > 0:
        problems.append(f"--body-timeout {body_seconds}: must be a positive number of seconds")
    if max_request_seconds is not None and not max_request_seconds > 0:
        problems.append(f"--request-timeout {max_request_seconds}: must be a positive number of seconds")
    if max_receiving < 1:
        problems.append(f"--max-receiving {max_receiving}: must be at least 1")
    if session_hours is not None and not 0 < session_hours <= 720:
        problems.append(f"--session-hours {session_hours}: must be between 0 and 720")
    if problems:
        raise ConfigError("; ".join(problems))


def configure_limits(app, *, body_seconds: float = DEFAULT_BODY_SECONDS,
                     max_request_seconds: float | None = DEFAULT_MAX_REQUEST_SECONDS,
                     max_receiving: int = DEFAULT_MAX_RECEIVING, session_hours: float | None = None) -> None:
    """Set the guard's time limits and the session lifetime on an app made by ``create_app``.

    Raises
    ------
    ConfigError
        A limit that is not positive (checked before anything is set).
    """
    check_limits(body_seconds, max_request_seconds, max_receiving, session_hours)
    guard = find_guard(app)
    if guard is not None:
        guard.body_seconds = float(body_seconds)
        guard.max_request_seconds = max_request_seconds
        guard.max_receiving = int(max_receiving)
    access = getattr(app, "access", None)
    if access is not None and session_hours is not None:
        access.session_seconds = float(session_hours) * 3600.0


def load_proposal_segmenter(path):
    """The segmenter of ``--segmenter DIR``, loaded once with the safe loader, with one torch thread.

    Raises
    ------
    ConfigError
        The folder is missing or not a segmenter (:func:`sonorad.segment.io.load_segmenter` says why).
    """
    from sonorad.segment.io import load_segmenter

    try:
        segmenter = load_segmenter(Path(path))
    except ConfigError as exc:
        raise ConfigError(f"--segmenter {path}: {exc}") from None
    return proposal_segmenter(segmenter)


def proposal_segmenter(segmenter):
    """``segmenter``, ready to propose in the calculator: one torch thread (one proposal at a time,
    each one small crop: more threads would only wait)."""
    import torch

    torch.set_num_threads(1)
    return segmenter


def serve(bundle_path, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
          keep=None, limits: UploadLimits | None = None, allow_missing: bool = False,
          log_level: str = "info", token_file=None, session_hours: float | None = None,
          body_seconds: float = DEFAULT_BODY_SECONDS, max_request_seconds: float | None = DEFAULT_MAX_REQUEST_SECONDS,
          max_receiving: int = DEFAULT_MAX_RECEIVING, workers: int | None = None, max_queue: int = 8,
          segmenter=None) -> None:
    """Load the bundle at ``bundle_path`` and serve the calculator until interrupted.

    ``workers`` worker processes score in parallel (default: one per core,
    :func:`sonorad.serve.workers.default_workers`; 0 scores in the server's process), with up to
    ``max_queue`` predictions waiting.

    The token is ``token``, or read from ``token_file`` or the ``SONORAD_TOKEN`` environment variable
    (:func:`sonorad.serve.auth.resolve_token`); the time limits are described in
    :mod:`sonorad.serve.guard`.

    ``segmenter`` (a folder written by ``sonorad segment train``) is loaded with the safe loader
    (:func:`sonorad.segment.io.load_segmenter`) before the bundle, so a bad folder is refused before
    anything is served; the page then offers the box-to-contour tool (:mod:`sonorad.serve.propose`).
    Without it, the bundle's own segmenter (its study's ``masks.segmenter``) is used when it has one.
    """
    keep = Path(keep) if keep is not None else None
    token = resolve_token(token, token_file)
    check_binding(host, token, keep)  # before anything is loaded: a refused binding costs nothing
    check_limits(body_seconds, max_request_seconds, max_receiving, session_hours)
    if (workers is not None and workers < 0) or max_queue < 0:
        raise ConfigError(f"--workers {workers} / --max-queue {max_queue}: must be 0 or more")
    limits = limits or UploadLimits()

    import uvicorn

    from sonorad.bundle import load_bundle
    from sonorad.serve.app import create_app
    from sonorad.serve.workers import default_workers

    seg = load_proposal_segmenter(segmenter) if segmenter is not None else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(Path(bundle_path))
    if seg is None and bundle.segmenter is not None:
        seg = proposal_segmenter(bundle.segmenter)
    app = create_app(bundle, token=token, keep=keep, limits=limits, allowed_hosts=allowed_hosts_for(host, port),
                     allow_missing=allow_missing, workers=default_workers() if workers is None else workers,
                     max_queue=max_queue)
    if seg is not None:
        from sonorad.serve.propose import install_propose

        install_propose(app.fastapi, app.calculator, seg)
    configure_limits(app, body_seconds=body_seconds, max_request_seconds=max_request_seconds,
                     max_receiving=max_receiving, session_hours=session_hours)
    logging.getLogger("sonorad.serve").info("serving %s on http://%s:%d", bundle_path, host, port)
    print(f"sonorad serve: http://{host}:{port}/  (bundle {str(bundle.sha256)[:12]}; Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False,
                **uvicorn_options(max_receiving, limits.max_inflight))
