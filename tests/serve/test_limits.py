"""Bounded work through the whole calculator: costly ROIs, pathological JSON, stalled uploads."""

import io
import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from sonorad.serve.app import create_app
from sonorad.serve.server import configure_limits

from .conftest import BASE
from .live import live_server



@pytest.fixture(scope="module")
def case(small_bundle):
    row = small_bundle.table.loc[small_bundle.external_ids[0]]
    values = {"age": float(row["age"]), "tumor_edge": str(row["tumor_edge"]),
              "calcification": str(row["calcification"]), "noise_cat1": str(row["noise_cat1"])}
    return {"image": Path(row["image"]).read_bytes(), "mask": Path(row["mask"]).read_bytes(), "values": values}


@pytest.fixture(scope="module")
def large_png():
    """A 4096 x 4096 gray PNG (the largest image the default pixel limit lets in)."""
    from PIL import Image

    rows, cols = np.mgrid[0:4096, 0:4096]
    buf = io.BytesIO()
    Image.fromarray(((rows // 8 + cols // 8) % 256).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _predict(client, image, values, roi):
    return client.post("/api/predict", files={"image": ("scan.png", image)},
                       data={"variables": json.dumps(values), "roi": roi if isinstance(roi, str) else json.dumps(roi)})


# ----------------------------------------------------------------------------- costly ROIs


def _timed(client, image, values, roi):
    started = time.perf_counter()
    response = _predict(client, image, values, roi)
    return response, time.perf_counter() - started


def test_a_2000_point_polygon_on_a_4096_image_is_answered_within_15_s(client, large_png, case):
    rng = np.random.default_rng(0)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 2000))
    # a star of 2000 spikes over most of the image: a valid request, refused for its outline (the shape
    # features would cost its square), not after hours of feature extraction
    radii = rng.uniform(100, 1900, 2000)
    star = np.column_stack([2048 + radii * np.cos(angles), 2048 + radii * np.sin(angles)]).tolist()
    response, seconds = _timed(client, large_png, case["values"], star)
    assert seconds < 15 and response.status_code == 422, response.text
    assert response.json()["field"] == "roi" and "outline" in response.json()["error"]
    # a smooth 2000-point outline is rasterized; the variables are refused after it (this times the ROI)
    smooth = np.column_stack([2048 + 1500 * np.cos(angles), 2048 + 1500 * np.sin(angles)]).tolist()
    response, seconds = _timed(client, large_png, {**case["values"], "age": "not a number"}, smooth)
    assert seconds < 15 and response.status_code == 422 and response.json()["field"] == "age", response.text
    # a zig-zag whose 4000 edges each cross the whole image is over the work limit: refused before rasterizing
    zigzag = [[float(i), 0.0 if i % 2 else 4096.0] for i in range(4000)]
    response, seconds = _timed(client, large_png, case["values"], zigzag)
    assert seconds < 15 and response.status_code == 422 and response.json()["field"] == "roi", response.text
    assert "limit" in response.json()["error"] and response.json()["fix"]


def test_a_50_point_radius_500_brush_on_a_4096_image_is_answered_within_15_s(client, large_png, case):
    rng = np.random.default_rng(1)
    brush = {"shapes": [{"type": "brush", "radius": 500, "points": rng.uniform(500, 3500, size=(50, 2)).tolist()}]}
    response, seconds = _timed(client, large_png, {**case["values"], "age": "not a number"}, brush)
    assert seconds < 15 and response.json()["field"] == "age", response.text
    many = {"shapes": [{"type": "brush", "radius": 500, "points": rng.uniform(0, 4096, size=(5000, 2)).tolist()}]}
    response, seconds = _timed(client, large_png, case["values"], many)
    assert seconds < 15 and response.status_code == 422 and response.json()["field"] == "roi"


# ------------------------------------------------------------------------- pathological JSON


@pytest.mark.parametrize("field", ["variables", "roi"])
def test_json_nested_100000_deep_is_a_4xx_naming_the_field(client, case, field):
    deep = "[" * 100_000 + "]" * 100_000
    data = {"variables": json.dumps(case["values"]), field: deep}
    files = {"image": ("scan.png", case["image"])}
    if field != "roi":
        files["mask"] = ("mask.png", case["mask"])
    response = client.post("/api/predict", files=files, data=data)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["field"] == field and "nested" in response.json()["error"]


def test_login_json_nested_deep_is_a_4xx(bundle):
    with TestClient(create_app(bundle, token="a-long-test-token"), base_url=BASE) as guarded:
        response = guarded.post("/api/login", content=("[" * 100_000 + "]" * 100_000).encode(),
                                headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500 and response.json()["field"] == "token"


# --------------------------------------------------------------------------- stalled uploads


def _stall(port: int) -> socket.socket:
    """A connection that sends the headers of a 100 kB upload and 7 bytes of it, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n--xyz\r\n")
    return sock


def _answer(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    except (TimeoutError, ConnectionError):
        return b"<no answer>"
    finally:
        sock.close()


def test_16_stalled_uploads_do_not_starve_a_valid_request(bundle, case):
    """16 clients that send a few bytes and stall (today's in-flight limit): a valid request gets 200,
    and the stalled ones get 408 once the body deadline has passed."""
    import httpx2 as httpx

    app = create_app(bundle)
    configure_limits(app, body_seconds=3.0)
    started = time.monotonic()
    with live_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        stalled = [_stall(port) for _ in range(16)]
        try:
            time.sleep(0.3)  # all 16 are now inside the guard, waiting for their bodies
            sent = time.monotonic()
            response = httpx.post(f"{url}/api/predict", files={"image": ("scan.png", case["image"]),
                                                               "mask": ("mask.png", case["mask"])},
                                  data={"variables": json.dumps(case["values"])}, timeout=30)
            assert response.status_code == 200, response.text
            assert time.monotonic() - sent < 30
            answers = [_answer(sock, timeout=10) for sock in stalled]
        finally:
            for sock in stalled:
                sock.close()
    assert all(a.startswith(b"HTTP/1.1 408") or a == b"" for a in answers), answers
    assert sum(a.startswith(b"HTTP/1.1 408") for a in answers) >= 15
    assert time.monotonic() - started < 45
