"""Access to the calculator with a token: where the token comes from, sessions, login and logout.

* The token is read from the ``SONORAD_TOKEN`` environment variable or a file (``--token-file``),
  so that it does not show in the process list; ``--token`` still works (see :func:`resolve_token`).
* ``POST /api/login`` with ``{"token": T}`` checks the token and issues a **session**: a random id
  (``secrets.token_urlsafe``) kept in server memory with an expiry (8 hours by default). The cookie
  holds only that id, never the token: ``HttpOnly``, ``SameSite=Strict``, ``Max-Age`` equal to the
  session's lifetime. Restarting the server ends every session.
* ``POST /api/logout`` revokes the session and clears the cookie.
* Failed logins are rate-limited per client address: after ``max_failures`` wrong tokens within
  ``failure_window`` seconds, logins from that address are answered 429 with ``Retry-After`` until
  the oldest failure leaves the window. Behind a reverse proxy every client has the proxy's address,
  so the limit then applies to all of them together.
* Both tables (sessions, failures) are bounded: expired entries are dropped first, then the oldest.
"""

from __future__ import annotations

import hmac
import math
import os
import secrets
import stat
import threading
import time
from collections import OrderedDict, deque
from http.cookies import CookieError, SimpleCookie
from pathlib import Path

from sonorad.errors import ConfigError

__all__ = ["COOKIE", "TOKEN_ENV", "Access", "install_auth", "resolve_token"]

COOKIE = "sonorad_session"
TOKEN_ENV = "SONORAD_TOKEN"
DEFAULT_SESSION_SECONDS = 8 * 3600


def resolve_token(token: str | None = None, token_file=None, environ=None) -> str | None:
    """The access token from ``--token``, ``--token-file`` or ``SONORAD_TOKEN``, at most one of them.

    Parameters
    ----------
    token : str, optional
        Given on the command line (visible in the process list: prefer the other two).
    token_file : path, optional
        A file whose only line is the token (surrounding white space is dropped).
    environ : mapping, optional
        The environment (default ``os.environ``); an empty ``SONORAD_TOKEN`` counts as unset.

    Returns
    -------
    str or None
        None when no source gives a token.

    Raises
    ------
    ConfigError
        More than one source; a token file that is missing, not a file, unreadable, empty or of more than
        one line.
    """
    environ = os.environ if environ is None else environ
    from_env = environ.get(TOKEN_ENV) or None
    given = [name for name, v in (("--token", token), ("--token-file", token_file), (TOKEN_ENV, from_env))
             if v is not None]
    if len(given) > 1:
        raise ConfigError(f"the access token is given by {' and '.join(given)}: give it one way only "
                          f"(preferably {TOKEN_ENV} or --token-file, which do not show in the process list)")
    if token_file is not None:
        return _read_token_file(Path(token_file))
    return token if token is not None else from_env


def _read_token_file(path: Path) -> str:
    if not path.is_file():
        raise ConfigError(f"--token-file {path}: no such file; write the token (one line) into it")
    if path.stat().st_size > 4096:
        raise ConfigError(f"--token-file {path}: {path.stat().st_size} bytes, too large for a token; "
                          "the file must hold the token on one line")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--token-file {path}: cannot be read ({exc})") from exc
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ConfigError(f"--token-file {path}: {len(lines)} non-empty lines; the file must hold the token "
                          "on exactly one line")
    if path.stat().st_mode & (stat.S_IROTH | stat.S_IWOTH):
        import warnings

        warnings.warn(f"--token-file {path} can be read by every user of this computer; "
                      f"restrict it with: chmod 600 {path}", stacklevel=2)
    return lines[0]


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def session_of(scope) -> str | None:
    """The session id in the request's cookie, if any (a malformed cookie header is no session)."""
    cookie = _header(scope, b"cookie")
    if cookie is None:
        return None
    jar = SimpleCookie()
    try:
        jar.load(cookie)
    except CookieError:
        return None
    return jar[COOKIE].value if COOKIE in jar else None


class Access:
    """The token, the live sessions and the failed-login table of one server.

    Parameters
    ----------
    token : str
    session_seconds : float
        Lifetime of a session from login (also the cookie's ``Max-Age``).
    max_sessions : int
        Sessions kept at once; one more drops expired ones, then the oldest.
    max_failures : int
        Wrong tokens allowed per client address within ``failure_window`` seconds.
    failure_window : float
    max_clients : int
        Client addresses tracked for failures at once (bounds memory under many addresses).
    clock : callable
        Seconds, monotonic (tests inject their own).
    """

    def __init__(self, token: str, *, session_seconds: float = DEFAULT_SESSION_SECONDS, max_sessions: int = 1000,
                 max_failures: int = 5, failure_window: float = 300.0, max_clients: int = 10000,
                 clock=time.monotonic):
        if not token:
            raise ValueError("Access needs a non-empty token")
        if session_seconds <= 0:
            raise ValueError(f"session_seconds must be positive, got {session_seconds}")
        self.token = token
        self.session_seconds = float(session_seconds)
        self.max_sessions = int(max_sessions)
        self.max_failures = int(max_failures)
        self.failure_window = float(failure_window)
        self.max_clients = int(max_clients)
        self.clock = clock
        self._sessions: OrderedDict[str, float] = OrderedDict()  # id -> expiry, oldest first
        self._failures: OrderedDict[str, deque] = OrderedDict()  # address -> failure times
        self._lock = threading.Lock()  # routes run in a thread pool, the guard on the event loop

    # ------------------------------------------------------------------ token and sessions

    def token_matches(self, offered: str) -> bool:
        return hmac.compare_digest(str(offered).encode(), self.token.encode())

    def new_session(self) -> str:
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                self._sessions = OrderedDict((k, t) for k, t in self._sessions.items() if t > now)
            while len(self._sessions) >= self.max_sessions:
                self._sessions.popitem(last=False)
            self._sessions[sid] = now + self.session_seconds
        return sid

    def session_ok(self, sid: str | None) -> bool:
        if not sid:
            return False
        with self._lock:
            expiry = self._sessions.get(sid)
            if expiry is None:
                return False
            if expiry <= self.clock():
                del self._sessions[sid]
                return False
            return True

    def revoke(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def allowed(self, scope) -> bool:
        """The request carries the token (``Authorization: Bearer``, ``X-Sonorad-Token``) or a live session."""
        auth = _header(scope, b"authorization")
        if auth and auth.lower().startswith("bearer ") and self.token_matches(auth[7:].strip()):
            return True
        direct = _header(scope, b"x-sonorad-token")
        if direct is not None and self.token_matches(direct.strip()):
            return True
        return self.session_ok(session_of(scope))

    # ----------------------------------------------------------------------- failed logins

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may try now."""
        now = self.clock()
        with self._lock:
            times = self._failures.get(client)
            if times is None:
                return None
            while times and times[0] <= now - self.failure_window:
                times.popleft()
            if not times:
                del self._failures[client]
                return None
            if len(times) < self.max_failures:
                return None
            return max(1, math.ceil(times[0] + self.failure_window - now))

    def record_failure(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            times = self._failures.pop(client, None) or deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[client] = times  # most recent last
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def forget_failures(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


def install_auth(app, token: str | None, *, session_seconds: float | None = None) -> Access | None:
    """Add ``POST /api/login`` and ``POST /api/logout`` to the FastAPI ``app``.

    Parameters
    ----------
    app : fastapi.FastAPI
    token : str, optional
        None: the calculator is open, login answers "no token needed".
    session_seconds : float, optional
        Session lifetime; default ``SONORAD_SESSION_HOURS`` from the environment, else 8 hours.

    Returns
    -------
    Access or None
        What the guard checks requests against (None without a token).
    """
    from starlette.responses import JSONResponse

    from sonorad.serve.jsonin import load_json
    from sonorad.serve.uploads import UploadError

    if session_seconds is None:
        session_seconds = _session_seconds_from_env()
    access = Access(token, session_seconds=session_seconds) if token else None

    def refuse(status, message, fix, headers=None):
        return JSONResponse({"error": message, "field": "token", "fix": fix}, status_code=status, headers=headers)

    # Plain Starlette routes (the handler gets the request as it is): FastAPI's own body parsing would
    # meet hostile JSON before the bounded loader does.
    async def login(request):
        try:
            payload = load_json(await request.body() or b"{}", field="token", what="the login request",
                                max_chars=4096, max_depth=2, fix='send a JSON object {"token": "..."}')
        except UploadError as exc:
            return refuse(exc.status, exc.message, exc.fix)
        if not isinstance(payload, dict):
            return refuse(422, "the login request must be a JSON object", 'send {"token": "..."}')
        if access is None:
            return JSONResponse({"status": "no token needed"})
        client = request.client.host if request.client else "unknown"
        wait = access.retry_after(client)
        if wait is not None:
            return refuse(429, f"too many wrong tokens from this address; try again in {wait} s",
                          "wait, then enter the token given by whoever started the server",
                          headers={"Retry-After": str(wait)})
        if not access.token_matches(str(payload.get("token", ""))):
            access.record_failure(client)
            return refuse(401, "wrong access token", "ask whoever started the server")
        access.forget_failures(client)
        response = JSONResponse({"status": "ok", "expires_in_s": int(access.session_seconds)})
        response.set_cookie(COOKIE, access.new_session(), max_age=int(access.session_seconds), httponly=True,
                            samesite="strict", path="/", secure=request.url.scheme == "https")
        return response

    async def logout(request):
        if access is not None:
            access.revoke(session_of(request.scope))
        response = JSONResponse({"status": "logged out"})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    app.router.add_route("/api/login", login, methods=["POST"], include_in_schema=True)
    app.router.add_route("/api/logout", logout, methods=["POST"], include_in_schema=True)
    return access


def _session_seconds_from_env() -> float:
    text = os.environ.get("SONORAD_SESSION_HOURS", "").strip()
    if not text:
        return DEFAULT_SESSION_SECONDS
    try:
        hours = float(text)
    except ValueError:
        hours = float("nan")
    if not (math.isfinite(hours) and 0 < hours <= 24 * 30):
        raise ConfigError(f"SONORAD_SESSION_HOURS={text!r}: must be a number of hours between 0 and 720")
    return hours * 3600.0
