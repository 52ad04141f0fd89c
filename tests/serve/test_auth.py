"""Access with a token: token sources, session cookies with an expiry, logout, failed-login limit."""

import os
import warnings

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from sonorad.errors import ConfigError
from sonorad.serve.auth import COOKIE, TOKEN_ENV, Access, install_auth, resolve_token
from sonorad.serve.guard import Guard

TOKEN = "correct-horse-battery"
BASE = "http://127.0.0.1:8000"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _scope(cookie=None, **headers):
    pairs = [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    if cookie is not None:
        pairs.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    return {"type": "http", "headers": pairs}


def _app(token=TOKEN, **access_options):
    """A small FastAPI app with the login routes, one guarded route, behind the guard."""
    app = FastAPI()
    access = install_auth(app, token)
    if access is not None:
        for key, value in access_options.items():
            setattr(access, key, value)

    @app.get("/api/secret")
    def secret():
        return {"ok": True}

    return Guard(app, max_body_bytes=1_000_000, token=token, access=access), access


# ---------------------------------------------------------------------------- token sources


def test_token_from_environment_file_or_argument(tmp_path):
    assert resolve_token(environ={}) is None
    assert resolve_token("from-argv-token", environ={}) == "from-argv-token"
    assert resolve_token(environ={TOKEN_ENV: "from-env-token"}) == "from-env-token"
    assert resolve_token(environ={TOKEN_ENV: ""}) is None  # empty = unset
    path = tmp_path / "token"
    path.write_text("  from-file-token \n\n")
    os.chmod(path, 0o600)
    assert resolve_token(token_file=path, environ={}) == "from-file-token"


def test_token_sources_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="one way only"):
        resolve_token("a-token-here", environ={TOKEN_ENV: "another-token"})
    with pytest.raises(ConfigError, match="no such file"):
        resolve_token(token_file=tmp_path / "missing", environ={})
    two = tmp_path / "two"
    two.write_text("first-line\nsecond-line\n")
    os.chmod(two, 0o600)
    with pytest.raises(ConfigError, match="exactly one line"):
        resolve_token(token_file=two, environ={})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="exactly one line"):
        resolve_token(token_file=empty, environ={})
    open_file = tmp_path / "open"
    open_file.write_text("world-readable-token\n")
    os.chmod(open_file, 0o644)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_token(token_file=open_file, environ={}) == "world-readable-token"
    assert any("chmod 600" in str(w.message) for w in caught)


def test_cli_serve_reads_the_token_from_the_environment(tmp_path, monkeypatch, capsys):
    """A network binding is accepted with SONORAD_TOKEN (it then fails on the missing bundle, not the token)."""
    from sonorad.cli import main

    monkeypatch.setenv(TOKEN_ENV, "a-long-enough-token")
    code = main(["serve", str(tmp_path / "no-bundle"), "--host", "0.0.0.0"])
    err = capsys.readouterr().err
    assert code != 0 and "--token" not in err and "no-bundle" in err
    monkeypatch.delenv(TOKEN_ENV)
    assert main(["serve", str(tmp_path / "no-bundle"), "--host", "0.0.0.0"]) == 2
    assert "SONORAD_TOKEN" in capsys.readouterr().err


# ------------------------------------------------------------------------------ sessions


def test_sessions_expire_and_can_be_revoked():
    clock = Clock()
    access = Access(TOKEN, session_seconds=60, clock=clock)
    sid = access.new_session()
    assert TOKEN not in sid and len(sid) >= 32
    assert access.allowed(_scope(cookie=sid))
    clock.now += 59
    assert access.session_ok(sid)
    clock.now += 2
    assert not access.session_ok(sid) and not access.allowed(_scope(cookie=sid))
    other = access.new_session()
    access.revoke(other)
    assert not access.session_ok(other)
    # the token itself in the cookie is no session
    assert not access.allowed(_scope(cookie=TOKEN))
    assert access.allowed(_scope(authorization=f"Bearer {TOKEN}"))
    assert access.allowed(_scope(x_sonorad_token=TOKEN))
    assert not access.allowed(_scope(x_sonorad_token=TOKEN[:-1]))


def test_session_table_is_bounded():
    clock = Clock()
    access = Access(TOKEN, max_sessions=3, clock=clock)
    ids = [access.new_session() for _ in range(5)]
    assert len(access._sessions) == 3
    assert not access.session_ok(ids[0]) and access.session_ok(ids[-1])


def test_failed_logins_are_limited_per_address_and_the_table_is_bounded():
    clock = Clock()
    access = Access(TOKEN, max_failures=5, failure_window=300, max_clients=4, clock=clock)
    for _ in range(4):
        access.record_failure("10.0.0.1")
    assert access.retry_after("10.0.0.1") is None
    access.record_failure("10.0.0.1")
    assert access.retry_after("10.0.0.1") == 300
    assert access.retry_after("10.0.0.2") is None  # another address is not affected
    clock.now += 200
    assert access.retry_after("10.0.0.1") == 100
    clock.now += 101
    assert access.retry_after("10.0.0.1") is None
    for i in range(10):
        access.record_failure(f"10.1.0.{i}")
    assert len(access._failures) <= 4


# -------------------------------------------------------------------------- the routes


def test_login_sets_a_session_cookie_not_the_token_and_logout_revokes_it():
    guard, access = _app()
    with TestClient(guard, base_url=BASE) as client:
        assert client.get("/api/secret").status_code == 401
        login = client.post("/api/login", json={"token": TOKEN})
        assert login.status_code == 200
        cookie = login.headers["set-cookie"]
        assert TOKEN not in cookie
        lower = cookie.lower()
        assert "httponly" in lower and "samesite=strict" in lower and "max-age=28800" in lower
        sid = client.cookies[COOKIE]
        assert access.session_ok(sid)
        assert client.get("/api/secret").status_code == 200
        out = client.post("/api/logout")
        assert out.status_code == 200 and COOKIE in out.headers["set-cookie"]
        assert not access.session_ok(sid)
        client.cookies.set(COOKIE, sid)  # the old cookie replayed
        assert client.get("/api/secret").status_code == 401


def test_expired_session_cookie_is_refused():
    clock = Clock()
    guard, access = _app(clock=clock, session_seconds=10.0)
    with TestClient(guard, base_url=BASE) as client:
        login = client.post("/api/login", json={"token": TOKEN})
        assert "max-age=10" in login.headers["set-cookie"].lower()
        assert client.get("/api/secret").status_code == 200
        clock.now += 11
        assert client.get("/api/secret").status_code == 401


def test_wrong_logins_get_429_with_retry_after():
    guard, _ = _app()
    with TestClient(guard, base_url=BASE) as client:
        codes = [client.post("/api/login", json={"token": f"wrong-{i}"}).status_code for i in range(5)]
        blocked = client.post("/api/login", json={"token": TOKEN})  # even the right token, for now
    assert codes == [401] * 5
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["retry-after"]) <= 300
    assert blocked.json()["field"] == "token"


def test_login_without_a_server_token_needs_nothing():
    guard, access = _app(token=None)
    assert access is None
    with TestClient(guard, base_url=BASE) as client:
        assert client.post("/api/login", json={"token": "x"}).json()["status"] == "no token needed"
        assert client.get("/api/secret").status_code == 200


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, "[" * 2000 + "]" * 2000,
                                  '{"token": ' + "[" * 5000 + "]" * 5000 + "}",
                                  "not json", "x" * 10_000])
def test_hostile_login_bodies_get_a_4xx(body):
    guard, _ = _app()
    with TestClient(guard, base_url=BASE) as client:
        response = client.post("/api/login", content=body.encode(), headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["field"] == "token"


def test_calculator_login_route_is_the_session_one(small_bundle):
    """The real app: the cookie holds a session id, deep JSON is a 4xx, logout ends the session."""
    from sonorad.bundle import load_bundle
    from sonorad.serve.app import create_app

    app = create_app(load_bundle(small_bundle.path), token=TOKEN)
    with TestClient(app, base_url=BASE) as client:
        deep = client.post("/api/login", content=("[" * 100_000 + "]" * 100_000).encode(),
                           headers={"content-type": "application/json"})
        assert 400 <= deep.status_code < 500
        login = client.post("/api/login", json={"token": TOKEN})
        assert login.status_code == 200 and TOKEN not in login.headers["set-cookie"]
        assert client.get("/api/schema").status_code == 200
        client.post("/api/logout")
        assert client.get("/api/schema").status_code == 401
