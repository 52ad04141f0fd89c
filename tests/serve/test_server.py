"""Starting the server: loopback by default, a token required for any other binding."""

import pytest

from sonorad.cli import main
from sonorad.errors import ConfigError
from sonorad.serve.server import allowed_hosts_for, check_binding, is_loopback


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.10", "::", "example.org"))


def test_network_binding_needs_a_token(tmp_path):
    check_binding("127.0.0.1", None, None)
    with pytest.raises(ConfigError, match="--token"):
        check_binding("0.0.0.0", None, None)
    check_binding("0.0.0.0", "a-long-enough-token", None)
    with pytest.raises(ConfigError, match="too short"):
        check_binding("0.0.0.0", "short", None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        check_binding("127.0.0.1", None, tmp_path / "file")


def test_cli_refuses_before_loading_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SONORAD_TOKEN", raising=False)
    # The bundle path does not even exist: the binding is refused first, with exit status 2.
    assert main(["serve", str(tmp_path / "no-bundle"), "--host", "0.0.0.0"]) == 2
    assert "--token" in capsys.readouterr().err


def test_loopback_binding_accepts_only_local_host_names():
    assert "localhost" in allowed_hosts_for("127.0.0.1", 8000)
    assert allowed_hosts_for("0.0.0.0", 8000) is None


def test_limits_are_checked_before_anything_is_loaded(tmp_path, capsys):
    from sonorad.serve.server import check_limits

    check_limits(60, 120, 64, 8)
    check_limits(60, None, 1, None)
    with pytest.raises(ConfigError, match="--body-timeout"):
        check_limits(0, 120, 64, None)
    with pytest.raises(ConfigError, match="--session-hours"):
        check_limits(60, 120, 64, 1000)
    assert main(["serve", str(tmp_path / "no-bundle"), "--body-timeout", "-1"]) == 2
    assert "--body-timeout" in capsys.readouterr().err


def test_cli_reads_the_token_file(tmp_path, monkeypatch, capsys):
    import os

    monkeypatch.delenv("SONORAD_TOKEN", raising=False)
    token = tmp_path / "token"
    token.write_text("short\n")
    os.chmod(token, 0o600)
    # the file's token is used: too short, refused before the bundle is looked at
    assert main(["serve", str(tmp_path / "no-bundle"), "--host", "0.0.0.0", "--token-file", str(token)]) == 2
    assert "too short" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "no-bundle"), "--token-file", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_configure_limits_reaches_the_guard_and_the_sessions():
    from fastapi import FastAPI
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from sonorad.serve.auth import install_auth
    from sonorad.serve.guard import Guard
    from sonorad.serve.server import configure_limits

    inner = FastAPI()
    access = install_auth(inner, "a-long-enough-token")
    app = TrustedHostMiddleware(Guard(inner, max_body_bytes=10, token="a-long-enough-token", access=access),
                                allowed_hosts=["127.0.0.1"])
    app.access = access
    configure_limits(app, body_seconds=7, max_request_seconds=9, max_receiving=3, session_hours=2)
    guard = app.app
    assert (guard.body_seconds, guard.max_request_seconds, guard.max_receiving) == (7, 9, 3)
    assert access.session_seconds == 7200


def test_uvicorn_limits_are_valid_and_slow_headers_are_cut_off():
    """A connection that never finishes its headers is closed after the header deadline."""
    import socket
    import threading
    import time

    import uvicorn

    from sonorad.serve.server import uvicorn_options

    from .live import free_port

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    options = uvicorn_options(header_seconds=1.0)
    assert options["h11_max_incomplete_event_size"] == 64 * 1024 and options["limit_concurrency"] >= 256
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as ok:
            ok.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert ok.recv(1024).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            started = time.monotonic()
            assert slow.recv(1024) == b""  # closed by the server, not answered
            assert time.monotonic() - started < 4
    finally:
        server.should_exit = True
        thread.join(timeout=10)
