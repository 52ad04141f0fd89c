"""Predictions in parallel worker processes: overlap, time limit, bounded queue, determinism, shutdown."""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sonorad.bundle import load_bundle
from sonorad.imaging import read_image
from sonorad.serve.app import create_app
from sonorad.serve.guard import find_guard
from sonorad.serve.workers import ClientGone, InlinePool, PoolBusy, PoolTimeout, ProcessPool, probe

from .live import live_server
from .test_app import _case


def _nap(seconds: float, note=None) -> dict:
    """A job of ``seconds`` that scores nothing (:func:`sonorad.serve.workers.probe`)."""
    return {"seconds": seconds, "note": None if note is None else str(note)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a killed child not yet reaped is a zombie: gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.fixture(scope="module")
def bundle(small_bundle):
    return load_bundle(small_bundle.path)


@pytest.fixture(scope="module")
def app(bundle):
    """One server app with two worker processes and a queue of one, shared by the tests below."""
    app = create_app(bundle, workers=2, max_queue=1)
    try:
        assert app.calculator.pool.wait_ready(240), "the workers did not load the bundle"
        yield app
    finally:
        pids = app.calculator.pool.pids()
        app.close()
        assert pids and not any(_alive(p) for p in pids), "a worker process outlived close()"


@pytest.fixture
def pool(app):
    pool = app.calculator.pool
    assert pool.wait_ready(240)
    return pool


@pytest.mark.slow  # starts worker processes that load a bundle
def test_two_slow_predictions_overlap(pool):
    start = time.monotonic()
    pool.run(probe, _nap(1.0), timeout=30)["pid"]
    one = time.monotonic() - start
    start = time.monotonic()
    with ThreadPoolExecutor(2) as threads:
        pids = list(threads.map(lambda _: pool.run(probe, _nap(1.0), timeout=30)["pid"], range(2)))
    two = time.monotonic() - start
    assert two < 1.8 * one, f"two jobs took {two:.2f} s, one {one:.2f} s: they did not run at once"
    assert len(set(pids)) == 2 and os.getpid() not in pids


@pytest.mark.slow  # starts worker processes that load a bundle
def test_a_prediction_past_its_limit_is_stopped_and_the_pool_recovers(pool):
    pids = set(pool.pids())
    with pytest.raises(PoolTimeout) as info:
        pool.run(probe, _nap(60), timeout=0.5)
    assert info.value.started
    killed = pids - set(pool.pids())
    assert len(killed) == 1 and not _alive(killed.pop())  # its process was killed ...
    assert pool.wait_ready(240)  # ... and replaced
    assert len(set(pool.pids())) == 2
    assert pool.run(probe, {}, timeout=30)["pid"] in pool.pids()


@pytest.mark.slow  # starts worker processes that load a bundle
def test_queue_full_is_refused_at_once_and_a_queued_job_of_a_gone_client_never_runs(pool, tmp_path):
    """Two workers busy, one job queued (max_queue=1): a fourth is refused; the queued job is dropped
    when its client goes away, before it starts."""
    busy = [threading.Thread(target=pool.run, args=(probe, _nap(2.0)), kwargs={"timeout": 30})
            for _ in range(2)]
    for t in busy:
        t.start()
    time.sleep(0.3)
    left = threading.Event()
    marker = tmp_path / "queued-started"
    outcome = []

    def queued():
        try:
            outcome.append(pool.run(probe, _nap(0.1, marker), timeout=30, gone=left.is_set))
        except ClientGone:
            outcome.append("dropped")

    waiting = threading.Thread(target=queued)
    waiting.start()
    time.sleep(0.3)
    with pytest.raises(PoolBusy) as info:
        pool.run(probe, {}, timeout=30)
    assert info.value.retry_after >= 1
    left.set()
    waiting.join(10)
    for t in busy:
        t.join(10)
    assert outcome == ["dropped"] and not marker.exists()
    assert pool.run(probe, {}, timeout=30)["pid"] in pool.pids()  # the slots were given back


@pytest.mark.slow  # starts worker processes that load a bundle
def test_the_api_answers_the_same_probability_whatever_worker(app, bundle, small_bundle):
    import httpx2 as httpx

    cases = [_case(small_bundle, i) for i in (0, 1)]
    expected = [bundle.predict_case(read_image(c["image_path"]), c["mask"], c["values"]).probability for c in cases]
    with live_server(app) as url, httpx.Client(base_url=url, timeout=120) as http:
        def one(i):
            c = cases[i % 2]
            r = http.post("/api/predict", files={"image": ("s.png", c["image"]), "mask": ("m.png", c["mask_bytes"])},
                          data={"variables": json.dumps(c["values"])})
            return i % 2, r.status_code, r.json()

        with ThreadPoolExecutor(3) as threads:  # two workers + one queued: never refused
            answers = list(threads.map(one, range(6)))
    assert [status for _, status, _ in answers] == [200] * 6, answers[0][2]
    for k, _, body in answers:
        assert abs(body["result"]["probability"] - expected[k]) < 1e-6
    assert len({body["result"]["probability"] for k, _, body in answers if k == 0}) == 1


# ----------------------------------------------------------------------- in one process (workers=0)


def _slow(seconds):
    def predict_case(*args, **kwargs):
        time.sleep(seconds)
        raise AssertionError("a stopped prediction must not answer")

    return predict_case


def test_api_answers_504_past_the_time_limit_and_503_when_full(bundle, small_bundle, monkeypatch):
    import httpx2 as httpx

    case = _case(small_bundle, 0)
    monkeypatch.setattr(bundle, "predict_case", _slow(1.5))
    app = create_app(bundle, workers=0, max_queue=0)
    find_guard(app).max_request_seconds = 0.5
    files = {"image": ("s.png", case["image"]), "mask": ("m.png", case["mask_bytes"])}
    try:
        with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
            post = lambda _: http.post("/api/predict", files=files, data={"variables": json.dumps(case["values"])})  # noqa: E731
            with ThreadPoolExecutor(2) as threads:
                first = threads.submit(post, 0)
                time.sleep(0.2)
                second = threads.submit(post, 1)
                answers = sorted([first.result(), second.result()], key=lambda r: r.status_code)
    finally:
        app.close()
    busy, late = answers
    assert busy.status_code == 503 and int(busy.headers["retry-after"]) >= 1 and "busy" in busy.json()["error"]
    assert late.status_code == 504 and "0.5 s" in late.json()["error"]


def test_inline_pool_drops_a_queued_job_of_a_gone_client(bundle):
    pool = InlinePool(bundle, max_queue=2)
    ran = []
    try:
        holder = threading.Thread(target=pool.run, args=(lambda b: time.sleep(0.8),), kwargs={"kwargs": {}, "timeout": 30})
        holder.start()
        time.sleep(0.1)
        with pytest.raises(ClientGone):
            pool.run(lambda b: ran.append(1), {}, timeout=30, gone=lambda: True)
        holder.join(10)
        time.sleep(0.1)
        assert ran == []
    finally:
        pool.close()


def test_process_pool_needs_a_worker(bundle):
    with pytest.raises(ValueError, match="at least one worker"):
        ProcessPool(bundle, workers=0)


def test_api_drops_a_queued_request_when_its_client_disconnects(bundle, small_bundle, monkeypatch):
    import httpx2 as httpx

    case = _case(small_bundle, 0)
    calls = []

    def slow(*args, **kwargs):
        calls.append(kwargs.get("case_id"))
        time.sleep(1.5)
        raise ValueError("not scored in this test")

    monkeypatch.setattr(bundle, "predict_case", slow)
    app = create_app(bundle, workers=0, max_queue=2)
    files = {"image": ("s.png", case["image"]), "mask": ("m.png", case["mask_bytes"])}
    try:
        with live_server(app) as url:
            with httpx.Client(base_url=url, timeout=30) as first, httpx.Client(base_url=url, timeout=0.6) as second:
                running = threading.Thread(target=lambda: first.post("/api/predict", files=files, data={
                    "variables": json.dumps(case["values"]), "case_id": "first"}))
                running.start()
                time.sleep(0.3)
                with pytest.raises(httpx.TimeoutException):  # gives up while queued: the connection closes
                    second.post("/api/predict", files=files, data={"variables": json.dumps(case["values"]),
                                                                   "case_id": "second"})
                running.join(30)
            time.sleep(1.0)
    finally:
        app.close()
    assert calls == ["first"]
