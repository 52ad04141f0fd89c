"""The ASGI guard in front of the calculator: body cap, access token, cross-site refusal, safe headers.

It is plain ASGI (no framework) so that it runs before anything parses the request:

* a request body above the byte limit is refused with 413 while it streams in, before the
  multipart parser sees it (``Content-Length`` is checked first when the client sends one);
* at most ``max_inflight`` uploads (POST requests) are handled at once; one more is answered 503
  at once, so memory stays bounded by about ``max_inflight`` x (body limit + one decoded image)
  however many clients connect;
* with a token, every path except the page's static files, ``/healthz`` and ``/api/login`` needs
  ``Authorization: Bearer T``, ``X-Sonorad-Token: T`` or the ``sonorad_token`` cookie that
  ``/api/login`` sets (HttpOnly, SameSite=Strict, so other sites cannot send it);
* a POST whose ``Origin`` is another site is refused (403): a web page the user visits cannot make
  the browser submit work to a calculator on 127.0.0.1;
* every response carries a strict Content-Security-Policy (scripts and styles from this server
  only), ``nosniff``, no referrer and no caching of API answers.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

__all__ = ["COOKIE", "PUBLIC_PATHS", "Guard"]

COOKIE = "sonorad_token"
PUBLIC_PATHS = ("/", "/healthz", "/api/login", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)

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
        POST requests handled at once; more get 503.
    """

    def __init__(self, app, *, max_body_bytes: int, token: str | None = None, max_inflight: int = 16):
        self.app = app
        self.max_body_bytes = int(max_body_bytes)
        self.token = token
        self.max_inflight = int(max_inflight)
        self.inflight = 0  # only touched on the event loop's thread

    def token_ok(self, scope) -> bool:
        if self.token is None:
            return True
        offered = []
        auth = _header(scope, b"authorization")
        if auth and auth.lower().startswith("bearer "):
            offered.append(auth[7:].strip())
        if (direct := _header(scope, b"x-sonorad-token")) is not None:
            offered.append(direct.strip())
        if (cookie := _header(scope, b"cookie")) is not None:
            jar = SimpleCookie()
            try:
                jar.load(cookie)
            except CookieError:  # a malformed cookie header is simply no token
                jar = SimpleCookie()
            if COOKIE in jar:
                offered.append(jar[COOKIE].value)
        expected = self.token.encode()
        return any(hmac.compare_digest(t.encode(), expected) for t in offered)

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
                                                "fix": "enter the token given to `sonorad serve --token`"})
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return await _send_json(send, 413, self._too_large(int(length)))
        if scope.get("method") not in ("POST", "PUT"):
            return await self._forward(scope, receive, send, path)
        if self.inflight >= self.max_inflight:
            return await _send_json(send, 503, {"error": f"the calculator is busy ({self.inflight} requests in "
                                                         "progress)", "field": None, "fix": "retry in a moment"},
                                    extra_headers=[(b"retry-after", b"2")])
        self.inflight += 1
        try:
            receive = await self._capped(receive, send)
            if receive is None:
                return None
            return await self._forward(scope, receive, send, path)
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

    async def _capped(self, receive, send):
        """Read the whole body within the cap, then replay it; None when a 413 was sent instead."""
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_body_bytes:
                await _send_json(send, 413, self._too_large(None))
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay_receive():
            if replay:
                return replay.pop()
            return await receive()

        return replay_receive
