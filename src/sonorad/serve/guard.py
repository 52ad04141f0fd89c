"""The ASGI guard in front of the calculator: body cap, access token, cross-site refusal, safe headers.

It is plain ASGI (no framework) so that it runs before anything parses the request:

* a request body above the byte limit is refused with 413 while it streams in, before the
  multipart parser sees it (``Content-Length`` is checked first when the client sends one);
* an upload's body must arrive whole within ``body_seconds`` of its first byte being awaited; a client
  that sends a few bytes and stalls is answered 408 and its connection closed;
* uploads still **streaming** and requests being **processed** are counted apart: at most
  ``max_receiving`` bodies stream at once, holding together at most ``max_buffered_bytes``, and at
  most ``max_inflight`` complete requests are processed at once; beyond either, 503 with
  ``Retry-After``. So stalled uploads (which hold a few bytes each) cannot keep a complete request from
  being processed, and memory stays bounded by about ``max_buffered_bytes`` + ``max_inflight`` x one
  decoded image however many clients connect;
* ``max_request_seconds`` is the processing time allowed to one request once its body is in; it is
  put in the ASGI scope as ``scope["sonorad.max_request_seconds"]`` for the application to enforce;
* with a token, every path except the page's static files, ``/healthz``, ``/api/login`` and
  ``/api/logout`` needs ``Authorization: Bearer T``, ``X-Sonorad-Token: T`` or the session cookie
  that ``/api/login`` sets (see :mod:`sonorad.serve.auth`: a random session id with an expiry, never
  the token);
* a POST whose ``Origin`` is another site is refused (403): a web page the user visits cannot make
  the browser submit work to a calculator on 127.0.0.1;
* every response carries a strict Content-Security-Policy (scripts and styles from this server
  only), ``nosniff``, no referrer and no caching of API answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

from sonorad.serve.auth import COOKIE, Access

__all__ = ["COOKIE", "PUBLIC_PATHS", "Guard", "find_guard"]

PUBLIC_PATHS = ("/", "/healthz", "/api/login", "/api/logout", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)

#: Defaults of the time limits (seconds) and of the uploads streaming at once.
DEFAULT_BODY_SECONDS = 60.0
DEFAULT_MAX_REQUEST_SECONDS = 120.0
DEFAULT_MAX_RECEIVING = 64

SECURITY_HEADERS = [
    (b"content-security-policy",
     (b"default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
      b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


async def _send_json(send, status: int, payload: dict, extra_headers=()):
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *SECURITY_HEADERS, *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _busy(what: str) -> dict:
    return {"error": f"the calculator is busy ({what})", "field": None, "fix": "retry in a moment"}


class Guard:
    """ASGI middleware: see the module docstring.

    Parameters
    ----------
    app : ASGI application
    max_body_bytes : int
        Largest request body accepted.
    token : str, optional
        Access token; None leaves the calculator open (only allowed on loopback, see ``serve``).
    max_inflight : int
        Complete requests (body received) processed at once; more get 503.
    access : sonorad.serve.auth.Access, optional
        Sessions and token check shared with the login route; default: one made from ``token``.
    body_seconds : float
        Time allowed for a whole upload body to arrive; more gets 408 and the connection is closed.
    max_receiving : int
        Upload bodies streaming in at once; more get 503.
    max_buffered_bytes : int, optional
        Body bytes held by the streaming uploads together; default ``max_inflight`` x ``max_body_bytes``.
    max_request_seconds : float, optional
        Processing time allowed to one request, passed on in the ASGI scope (None: no limit).
    """

    def __init__(self, app, *, max_body_bytes: int, token: str | None = None, max_inflight: int = 16,
                 access: Access | None = None, body_seconds: float = DEFAULT_BODY_SECONDS,
                 max_receiving: int = DEFAULT_MAX_RECEIVING, max_buffered_bytes: int | None = None,
                 max_request_seconds: float | None = DEFAULT_MAX_REQUEST_SECONDS):
        self.app = app
        self.max_body_bytes = int(max_body_bytes)
        self.token = token
        self.access = access if access is not None else (Access(token) if token else None)
        self.max_inflight = int(max_inflight)
        self.body_seconds = float(body_seconds)
        self.max_receiving = int(max_receiving)
        self.max_buffered_bytes = int(max_buffered_bytes if max_buffered_bytes is not None
                                      else self.max_inflight * self.max_body_bytes)
        self.max_request_seconds = max_request_seconds
        # only touched on the event loop's thread
        self.inflight = 0  # complete requests being processed
        self.receiving = 0  # bodies still streaming in
        self.buffered = 0  # bytes held by the bodies still streaming in

    def token_ok(self, scope) -> bool:
        """Open without a token; else the token in a header, or a live session cookie."""
        return self.access is None or self.access.allowed(scope)

    @staticmethod
    def _cross_site(scope) -> bool:
        origin = _header(scope, b"origin")
        if origin is None:
            return False
        host = _header(scope, b"host")
        return origin == "null" or urlsplit(origin).netloc != host

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "/")
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if scope.get("method") == "POST" and self._cross_site(scope):
            return await _send_json(send, 403, {"error": "cross-site request refused", "field": None,
                                                "fix": "use the calculator's own page"})
        if not public and not self.token_ok(scope):
            return await _send_json(send, 401, {"error": "an access token is required", "field": "token",
                                                "fix": "log in with the token given to `sonorad serve` "
                                                       "(SONORAD_TOKEN or --token-file)"})
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return await _send_json(send, 413, self._too_large(int(length)))
        if self.max_request_seconds is not None:
            scope = {**scope, "sonorad.max_request_seconds": float(self.max_request_seconds)}
        if scope.get("method") not in ("POST", "PUT"):
            return await self._forward(scope, receive, send, path)
        if self.receiving >= self.max_receiving:
            return await _send_json(send, 503, _busy(f"{self.receiving} uploads arriving"),
                                    extra_headers=[(b"retry-after", b"2")])
        self.receiving += 1
        try:
            body = await self._read_body(receive, send)
        finally:
            self.receiving -= 1
        if body is None:
            return None
        if self.inflight >= self.max_inflight:
            return await _send_json(send, 503, _busy(f"{self.inflight} requests in progress"),
                                    extra_headers=[(b"retry-after", b"2")])
        self.inflight += 1
        try:
            replay = [{"type": "http.request", "body": body, "more_body": False}]

            async def replay_receive():
                if replay:
                    return replay.pop()
                return await receive()

            return await self._forward(scope, replay_receive, send, path)
        finally:
            self.inflight -= 1

    async def _forward(self, scope, receive, send, path: str):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                if path.startswith("/api/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_headers)

    def _too_large(self, n: int | None) -> dict:
        size = f"{n} bytes" if n is not None else "more bytes"
        return {"error": f"the upload has {size}, more than the limit of {self.max_body_bytes} bytes; "
                         "nothing was decoded", "field": "image",
                "fix": "upload one 2D image (not a cine loop or an archive), or start the server with "
                       "a larger --max-upload-mb"}

    async def _read_body(self, receive, send) -> bytes | None:
        """The whole body, within the byte cap and the deadline; None when a 4xx/503 was sent instead."""
        chunks, total = [], 0
        deadline = time.monotonic() + self.body_seconds
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    if remaining <= 0:
                        raise TimeoutError
                    message = await asyncio.wait_for(receive(), remaining)
                except TimeoutError:
                    await _send_json(send, 408, {
                        "error": f"the upload did not arrive within {self.body_seconds:g} s ({total} bytes "
                                 "received)", "field": None,
                        "fix": "check the network connection and send the request again"},
                        extra_headers=[(b"connection", b"close")])
                    return None
                if message["type"] == "http.disconnect":
                    return None
                body = message.get("body", b"")
                total += len(body)
                if total > self.max_body_bytes:
                    await _send_json(send, 413, self._too_large(None))
                    return None
                if self.buffered + len(body) > self.max_buffered_bytes:
                    await _send_json(send, 503, _busy("too many uploads arriving at once"),
                                     extra_headers=[(b"retry-after", b"2"), (b"connection", b"close")])
                    return None
                self.buffered += len(body)
                chunks.append(body)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        finally:
            self.buffered -= sum(len(c) for c in chunks)


def find_guard(app) -> Guard | None:
    """The :class:`Guard` inside ``app`` (itself, or wrapped by other middleware with an ``.app``)."""
    for _ in range(16):
        if isinstance(app, Guard):
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
