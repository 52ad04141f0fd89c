"""The request guard on its own, around a tiny echo application: token, cross-site, body cap, headers."""

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sonorad.serve.guard import COOKIE, Guard

TOKEN = "correct-horse-battery"


async def _echo(request):
    body = await request.body()
    return JSONResponse({"n": len(body), "path": request.url.path})


def _client(token=None, limit=1000):
    app = Starlette(routes=[Route("/api/echo", _echo, methods=["GET", "POST"]),
                            Route("/", _echo), Route("/static/app.js", _echo)])
    return TestClient(Guard(app, max_body_bytes=limit, token=token), base_url="http://127.0.0.1:8000")


def test_without_token_everything_is_open_and_headers_are_safe():
    with _client() as client:
        response = client.get("/api/echo")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("headers, cookies, status", [
    ({}, {}, 401),
    ({"Authorization": "Bearer wrong-token-here"}, {}, 401),
    ({"Authorization": f"Bearer {TOKEN}"}, {}, 200),
    ({"X-Sonorad-Token": TOKEN}, {}, 200),
    ({}, {COOKIE: TOKEN}, 401),  # the cookie holds a session id, never the token itself
    ({}, {COOKIE: TOKEN[:-1]}, 401),
])
def test_token_is_required_on_the_api(headers, cookies, status):
    with _client(token=TOKEN) as client:
        client.cookies.update(cookies)
        response = client.get("/api/echo", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["field"] == "token" and "token" in response.json()["error"]


def test_a_live_session_cookie_is_accepted():
    from sonorad.serve.auth import Access

    access = Access(TOKEN)
    app = Starlette(routes=[Route("/api/echo", _echo)])
    with TestClient(Guard(app, max_body_bytes=100, token=TOKEN, access=access), base_url="http://127.0.0.1:8000") as c:
        c.cookies.set(COOKIE, access.new_session())
        assert c.get("/api/echo").status_code == 200


def test_the_page_and_its_static_files_load_without_the_token():
    with _client(token=TOKEN) as client:
        assert client.get("/").status_code == 200
        assert client.get("/static/app.js").status_code == 200


def test_cross_site_posts_are_refused():
    with _client() as client:
        ok = client.post("/api/echo", content=b"x", headers={"Origin": "http://127.0.0.1:8000"})
        other = client.post("/api/echo", content=b"x", headers={"Origin": "https://evil.example"})
        sandboxed = client.post("/api/echo", content=b"x", headers={"Origin": "null"})
        script = client.post("/api/echo", content=b"x")  # curl and scripts send no Origin
    assert ok.status_code == 200 and script.status_code == 200
    assert other.status_code == 403 and sandboxed.status_code == 403
    assert "cross-site" in other.json()["error"]


def test_body_cap_by_content_length_and_while_streaming():
    with _client(limit=1000) as client:
        assert client.post("/api/echo", content=b"x" * 1000).json()["n"] == 1000
        declared = client.post("/api/echo", content=b"x" * 1001)

        def chunks():  # no Content-Length: the cap applies while the body streams in
            for _ in range(20):
                yield b"y" * 100

        streamed = client.post("/api/echo", content=chunks())
    assert declared.status_code == 413 and "1001 bytes" in declared.json()["error"]
    assert streamed.status_code == 413 and "limit of 1000 bytes" in streamed.json()["error"]


def test_more_uploads_than_max_inflight_are_answered_busy():
    """With one upload in progress and max_inflight=1, the next one gets 503 at once."""
    import asyncio

    started, release = asyncio.Event(), asyncio.Event()

    async def slow_app(scope, receive, send):
        started.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = Guard(slow_app, max_body_bytes=100, max_inflight=1)

    async def request():
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"x", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/predict", "headers": [(b"host", b"127.0.0.1")]}
        await guard(scope, receive, send)
        return sent[0]["status"]

    async def both():
        first = asyncio.create_task(request())
        await started.wait()
        second = await request()
        release.set()
        return await first, second, guard.inflight

    assert asyncio.run(both()) == (200, 503, 0)


def _drive(guard, scope, receive):
    """Run one request through the guard; the status sent (None if nothing was sent)."""
    sent = []

    async def send(message):
        sent.append(message)

    async def run():
        await guard(scope, receive, send)
        return sent

    return run


def _post_scope(path="/api/predict"):
    return {"type": "http", "method": "POST", "path": path, "headers": [(b"host", b"127.0.0.1")]}


def test_a_stalled_body_is_answered_408_within_the_deadline():
    import asyncio
    import time

    async def stalled_receive():
        if not hasattr(stalled_receive, "sent"):
            stalled_receive.sent = True
            return {"type": "http.request", "body": b"--x\r\n", "more_body": True}
        await asyncio.sleep(3600)

    async def app(scope, receive, send):  # never reached
        raise AssertionError("the application must not see a stalled upload")

    guard = Guard(app, max_body_bytes=1000, body_seconds=0.3)
    started = time.monotonic()
    sent = asyncio.run(_drive(guard, _post_scope(), stalled_receive)())
    assert time.monotonic() - started < 2.0
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert guard.receiving == 0 and guard.inflight == 0 and guard.buffered == 0


def test_stalled_uploads_do_not_block_a_complete_request():
    """16 bodies still streaming, max_inflight=1: a complete request is still processed (200)."""
    import asyncio

    async def app(scope, receive, send):
        message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["body"]})

    guard = Guard(app, max_body_bytes=1000, max_inflight=1, body_seconds=30)

    async def stalled_receive():
        await asyncio.sleep(3600)

    async def complete_receive():
        return {"type": "http.request", "body": b"ok", "more_body": False}

    async def scenario():
        stalled = [asyncio.create_task(_drive(guard, _post_scope(), stalled_receive)()) for _ in range(16)]
        await asyncio.sleep(0.05)
        assert guard.receiving == 16
        sent = await asyncio.wait_for(_drive(guard, _post_scope(), complete_receive)(), 5)
        for task in stalled:
            task.cancel()
        return sent

    sent = asyncio.run(scenario())
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"ok"


def test_more_streaming_uploads_than_max_receiving_get_503_and_the_time_limit_is_passed_on():
    import asyncio

    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guard = Guard(app, max_body_bytes=1000, max_receiving=2, max_request_seconds=42.0)

    async def stalled_receive():
        await asyncio.sleep(3600)

    async def complete_receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def scenario():
        stalled = [asyncio.create_task(_drive(guard, _post_scope(), stalled_receive)()) for _ in range(2)]
        await asyncio.sleep(0.05)
        busy = await _drive(guard, _post_scope(), complete_receive)()
        for task in stalled:
            task.cancel()
        await asyncio.gather(*stalled, return_exceptions=True)
        ok = await _drive(guard, _post_scope(), complete_receive)()
        return busy, ok

    busy, ok = asyncio.run(scenario())
    assert busy[0]["status"] == 503 and (b"retry-after", b"2") in busy[0]["headers"]
    assert ok[0]["status"] == 200 and seen["sonorad.max_request_seconds"] == 42.0
    assert guard.receiving == 0
