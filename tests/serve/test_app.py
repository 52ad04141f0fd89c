"""The calculator's API against a small real bundle: the same answer as predict, and every bad input refused."""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from sonorad.bundle import load_bundle
from sonorad.imaging import load_roi, read_image
from sonorad.serve.app import create_app, decode_mask
from sonorad.serve.roi import rasterize_polygon
from sonorad.serve.uploads import UploadLimits

from .conftest import BASE, png_bomb, png_bytes
from .live import live_server



def _case(small_bundle, index: int) -> dict:
    """One external case: file bytes, its mask, its variables as the form sends them, and a polygon
    around the lesion (the convex hull of its pixel centres, as a reader would click it)."""
    from scipy.spatial import ConvexHull

    table = small_bundle.table
    cid = small_bundle.external_ids[index]
    row = table.loc[cid]
    image, mask = load_roi(row["image"], row["mask"], case_id=cid)
    rows, cols = np.nonzero(mask)
    centres = np.column_stack([cols + 0.5, rows + 0.5])
    hull = ConvexHull(centres)
    box = [[float(x), float(y)] for x, y in centres[hull.vertices]]
    values = {"age": float(row["age"]), "tumor_edge": str(row["tumor_edge"]),
              "calcification": str(row["calcification"]), "noise_cat1": str(row["noise_cat1"])}
    return {"case_id": cid, "patient_id": str(row["patient_id"]), "center": str(row["center"]), "image_path": Path(row["image"]), "image": Path(row["image"]).read_bytes(),
            "mask_path": Path(row["mask"]), "mask_bytes": Path(row["mask"]).read_bytes(), "mask": mask,
            "values": values, "polygon": box,
            "shape": image.shape}


@pytest.fixture(scope="module")
def case(small_bundle):
    return _case(small_bundle, 0)


def _post(client, case, *, image=None, mask=None, roi=None, variables=None, extra=None):
    files = {"image": ("scan.png", case["image"] if image is None else image)}
    if mask is not None:
        files["mask"] = ("mask.png", mask)
    data = {"variables": json.dumps(case["values"] if variables is None else variables), "case_id": case["case_id"]}
    if roi is not None:
        data["roi"] = roi if isinstance(roi, str) else json.dumps(roi)
    data.update(extra or {})
    return client.post("/api/predict", files=files, data=data)


# ------------------------------------------------------------------------------------ the page


def test_page_is_served_offline(client):
    page = client.get("/")
    assert page.status_code == 200 and "sonorad risk calculator" in page.text
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(r.startswith(("/static/", "/model-card", "data:")) for r in refs), refs
    for name in ("app.js", "style.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200
        # No script, style or font from elsewhere (the SVG namespace is a name, not a download).
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", asset.text), name
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def test_schema_gives_one_field_per_variable(client, bundle):
    body = client.get("/api/schema").json()
    assert [f["name"] for f in body["variables"]] == [v["name"] for v in bundle.schema()]
    fields = {f["name"]: f for f in body["variables"]}
    assert fields["age"]["input"] == "number" and fields["age"]["range"] is not None
    assert fields["age"]["label"] == "age at surgery (years)"
    assert fields["tumor_edge"]["input"] == "yesno" and fields["noise_cat1"]["choices"] == ["a", "b", "c"]
    assert all(f["required"] for f in body["variables"])
    assert body["bundle"]["sha256"] == bundle.sha256 and "Research use only" in body["research_use"]


def test_model_card_page(client, bundle):
    page = client.get("/model-card")
    assert page.status_code == 200
    assert "Research use only" in page.text and "Test bundle on a synthetic cohort" in page.text
    assert "External validation" in page.text and "0.700" in page.text and bundle.sha256 in page.text
    assert client.get("/api/card").json()["card"]["intended_use"].startswith("Test bundle")


def test_image_preview_reports_what_sonorad_reads(client, case):
    body = client.post("/api/image", files={"image": ("scan.png", case["image"])}).json()
    assert (body["rows"], body["cols"]) == case["shape"] and body["format"] == "png"
    assert body["preview"].startswith("data:image/png;base64,")


# ------------------------------------------------------------------------------------- predict


def test_mask_file_gives_the_predict_case_answer(client, bundle, case):
    response = _post(client, case, mask=case["mask_bytes"])
    assert response.status_code == 200, response.text
    body = response.json()
    image = read_image(case["image_path"])
    direct = bundle.predict_case(image, case["mask"], case["values"], case_id=case["case_id"])
    assert body["result"]["probability"] == direct.probability
    assert body["result"]["risk_group"] == direct.risk_group and body["result"]["cutoff"] == direct.cutoff
    assert body["result"]["contributions"] == json.loads(json.dumps(direct.to_dict()["contributions"]))
    assert body["result"]["nomogram"]["points"]  # the chosen model is a logistic regression
    np.testing.assert_array_equal(decode_mask(body["mask"]), case["mask"])
    assert body["bundle"]["sha256"] == bundle.sha256 and body["inputs"]["roi_source"] == "file"
    assert body["inputs"]["variables"] == case["values"]


def test_only_the_chosen_model_is_scored_and_the_answer_is_dated(client, bundle, case, monkeypatch):
    """The calculator shows the chosen model only, so it runs only that one (same probability as
    above, where predict_case runs them all); the payload names its time and the bundle's short id."""
    import datetime as dt

    asked = []
    real = bundle.predict_case
    monkeypatch.setattr(bundle, "predict_case", lambda *a, **k: asked.append(k.get("models")) or real(*a, **k))
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body = _post(client, case, mask=case["mask_bytes"]).json()
    after = dt.datetime.now(dt.UTC)
    assert asked == [[bundle.chosen]] and set(body["result"]["probabilities"]) == {bundle.chosen}
    full = real(read_image(case["image_path"]), case["mask"], case["values"], case_id=case["case_id"])
    assert len(full.probabilities) > 1 and body["result"]["probability"] == full.probability
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["scored_at"])
    assert before <= dt.datetime.strptime(body["scored_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC) <= after
    assert body["bundle"]["id"] == bundle.sha256[:12] and body["bundle"]["sha256"] == bundle.sha256
    sensitivity = body["result"]["roi_sensitivity"]  # asked for: the risk with the outline eroded / dilated
    assert sensitivity is not None or body["result"]["roi_sensitivity_note"]
    if sensitivity is not None:
        assert sensitivity["low"] <= body["result"]["probability"] <= sensitivity["high"]


def test_drawn_polygon_is_rasterized_and_scored(client, bundle, case):
    response = _post(client, case, roi={"shapes": [{"type": "polygon", "points": case["polygon"]}]})
    assert response.status_code == 200, response.text
    body = response.json()
    mask = decode_mask(body["mask"])
    np.testing.assert_array_equal(mask, rasterize_polygon(case["polygon"], case["shape"]))
    direct = bundle.predict_case(read_image(case["image_path"]), mask, case["values"], case_id=case["case_id"])
    assert body["result"]["probability"] == direct.probability
    assert body["inputs"]["roi"][0]["points"] == case["polygon"]


def test_dicom_upload_keeps_its_spacing(client, bundle, case, tmp_path):
    """A DICOM of the same pixels with PixelSpacing: read as read_image reads it, spacing included."""
    from .conftest import dicom_bytes

    pixels = read_image(case["image_path"]).pixels.astype(np.uint8)
    data = dicom_bytes(pixels, PixelSpacing=[0.2, 0.25])
    (tmp_path / "case.dcm").write_bytes(data)
    preview = client.post("/api/image", files={"image": ("case.dcm", data)}).json()
    assert preview["format"] == "dicom" and preview["spacing_mm"] == [0.2, 0.25]
    body = _post(client, case, image=data, mask=case["mask_bytes"]).json()
    direct = bundle.predict_case(read_image(tmp_path / "case.dcm"), case["mask"], case["values"])
    assert body["inputs"]["image"]["spacing_mm"] == [0.2, 0.25]
    assert body["result"]["probability"] == direct.probability


def test_gradcam_overlay_travels_as_a_png(gradcam_bundle, case):
    import base64
    import io

    from PIL import Image

    bundle = load_bundle(gradcam_bundle)
    with TestClient(create_app(bundle), base_url=BASE) as c:
        body = _post(c, case, mask=case["mask_bytes"]).json()
    direct = bundle.predict_case(read_image(case["image_path"]), case["mask"], case["values"])
    assert direct.gradcam is not None and body["result"]["has_gradcam"]
    data = base64.b64decode(body["result"]["gradcam"].split(",", 1)[1])
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), direct.gradcam)
    assert body["result"]["probability"] == direct.probability


def test_warnings_of_predict_are_passed_on(client, case):
    body = _post(client, case, mask=case["mask_bytes"], variables={**case["values"], "age": 130.0}).json()
    assert any("age" in w and "outside the training range" in w for w in body["result"]["warnings"])


# ---------------------------------------------------------------------------------- bad inputs


def _one_pixel_mask(shape):
    mask = np.zeros(shape, np.uint8)
    mask[5, 5] = 255
    return png_bytes(mask)


BAD = {
    "text as image": (dict(image=b"just some text, named scan.png"), 415, "image", "not an accepted image"),
    "gif as image": (dict(image=b"GIF89a" + bytes(64)), 415, "image", "not an accepted image"),
    "empty image": (dict(image=b""), 422, "image", "empty"),
    "no roi": (dict(), 422, "roi", "no ROI"),
    "empty roi": (dict(roi=[[500, 500], [510, 500], [505, 510]]), 422, "roi", "the ROI is empty"),
    "one-pixel roi": (dict(mask="one-pixel"), 422, "mask", "only 1 pixel"),
    "mask and roi": (dict(mask="own", roi=[[1, 1], [9, 1], [9, 9]]), 422, "roi", "both a mask file and a drawn ROI"),
    "mask of another size": (dict(mask=png_bytes(np.full((10, 10), 255, np.uint8))), 422, "mask", "but the image is"),
    "roi not json": (dict(roi="[[1, 2], oops"), 422, "roi", "not valid JSON"),
    "missing required variable": (dict(mask="own", drop="age"), 422, "age", "required and missing"),
    "wrong type": (dict(mask="own", set=("age", "fifty")), 422, "age", "age = 'fifty' is not a number"),
    "unseen category": (dict(mask="own", set=("noise_cat1", "z")), 422, "noise_cat1", "noise_cat1 = 'z' is not one of the declared levels"),
    "not yes/no": (dict(mask="own", set=("calcification", "2")), 422, "calcification", "calcification = '2' is not one of the declared levels"),
    "unknown variable": (dict(mask="own", set=("agee", 3)), 422, "agee", "unknown variable"),
    "variables not json": (dict(mask="own", variables="{age: 3}"), 422, "variables", "not valid JSON"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_a_clear_4xx(client, case, name):
    spec, status, field, words = BAD[name]
    kwargs = {}
    if "image" in spec:
        kwargs["image"] = spec["image"]
    mask = spec.get("mask")
    if mask == "own":
        kwargs["mask"] = case["mask_bytes"]
    elif mask == "one-pixel":
        kwargs["mask"] = _one_pixel_mask(case["shape"])
    elif mask is not None:
        kwargs["mask"] = mask
    if "roi" in spec:
        kwargs["roi"] = spec["roi"]
    values = dict(case["values"])
    if "drop" in spec:
        values.pop(spec["drop"])
    if "set" in spec:
        values[spec["set"][0]] = spec["set"][1]
    kwargs["variables"] = values
    if "variables" in spec:
        response = _post(client, case, mask=kwargs.get("mask"), extra={"variables": spec["variables"]})
    else:
        response = _post(client, case, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field and words in body["error"], body
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_missing_image_field(client, case):
    response = client.post("/api/predict", data={"roi": json.dumps(case["polygon"]), "variables": "{}"})
    assert response.status_code == 422 and response.json()["field"] == "image"


def test_decompression_bomb_is_refused_by_the_api(client, case, bomb_png):
    response = _post(client, case, image=bomb_png, roi=case["polygon"])
    assert response.status_code == 413
    assert "20000 x 20000" in response.json()["error"] and "not decoded" in response.json()["error"]


def test_body_over_the_byte_limit(bundle, case):
    with TestClient(create_app(bundle, limits=UploadLimits(max_upload_bytes=len(case["image"]) // 2)),
                    base_url=BASE) as small:
        response = _post(small, case, roi=case["polygon"])
    assert response.status_code == 413 and "limit" in response.json()["error"]


def test_unexpected_failure_is_a_500_without_details(bundle, case, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("internal detail that must not reach the client")

    monkeypatch.setattr(bundle, "predict_case", broken)
    with TestClient(create_app(bundle), base_url=BASE, raise_server_exceptions=False) as plain:
        response = _post(plain, case, mask=case["mask_bytes"])
    assert response.status_code == 500
    assert "internal detail" not in response.text and "Traceback" not in response.text
    assert "server log" in response.json()["error"]


# ------------------------------------------------------------------------------- disk and token


def test_nothing_is_written_to_disk_without_keep(client, case, monkeypatch, tmp_path):
    """Large uploads stay in memory: no temporary file, no spool rolled over to disk."""
    def refuse(*args, **kwargs):
        raise AssertionError("an upload reached the disk")

    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", refuse)
    monkeypatch.chdir(tmp_path)
    big = png_bytes(np.random.default_rng(0).integers(0, 256, (1200, 1200), dtype=np.uint8))
    assert len(big) > 1_100_000  # above Starlette's default 1 MB spool
    polygon = [[100, 100], [120, 100], [120, 120], [100, 120]]  # a lesion-sized ROI (400 pixels)
    response = _post(client, case, image=big, roi=polygon)
    assert response.status_code == 200, response.text
    assert list(tmp_path.iterdir()) == []


def test_keep_writes_each_request_to_its_own_folder(bundle, case, tmp_path):
    with TestClient(create_app(bundle, keep=tmp_path), base_url=BASE) as keeping:
        body = _post(keeping, case, mask=case["mask_bytes"]).json()
        refused = _post(keeping, case, mask=case["mask_bytes"], variables={**case["values"], "age": "old"})
    assert refused.status_code == 422
    kept = {tuple(sorted(p.name for p in folder.iterdir())): folder for folder in tmp_path.iterdir()}
    assert set(kept) == {("image.upload", "mask.upload", "result.json"), ("error.json", "image.upload", "mask.upload")}
    folder = kept[("image.upload", "mask.upload", "result.json")]
    assert (folder / "image.upload").read_bytes() == case["image"]
    assert json.loads((folder / "result.json").read_text())["result"]["probability"] == body["result"]["probability"]
    error = json.loads((kept[("error.json", "image.upload", "mask.upload")] / "error.json").read_text())
    assert "age" in error["error"]


def test_token_guards_the_api_and_the_card(bundle):
    token = "a-long-test-token"
    with TestClient(create_app(bundle, token=token), base_url=BASE) as guarded:
        assert guarded.get("/").status_code == 200
        assert guarded.get("/api/schema").status_code == 401
        assert guarded.get("/model-card").status_code == 401
        assert guarded.post("/api/login", json={"token": "wrong"}).status_code == 401
        assert guarded.get("/api/schema", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        login = guarded.post("/api/login", json={"token": token})
        assert login.status_code == 200 and "httponly" in login.headers["set-cookie"].lower()
        assert guarded.get("/api/schema").status_code == 200  # the cookie now
        assert guarded.get("/model-card").status_code == 200


def test_foreign_host_names_are_refused_on_loopback(bundle):
    app = create_app(bundle, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://evil.example") as rebinding:
        assert rebinding.get("/api/schema").status_code == 400


# ------------------------------------------------------------------------ a real server, threads


def test_concurrent_requests_are_deterministic_and_independent(bundle, small_bundle):
    import httpx2 as httpx

    cases = [_case(small_bundle, i) for i in (0, 1)]
    expected = [bundle.predict_case(read_image(c["image_path"]), c["mask"], c["values"]).probability for c in cases]
    assert expected[0] != expected[1]
    with live_server(create_app(bundle)) as url, httpx.Client(base_url=url, timeout=60) as http:
        def one(i):
            c = cases[i % 2]
            r = http.post("/api/predict", files={"image": ("s.png", c["image"]), "mask": ("m.png", c["mask_bytes"])},
                          data={"variables": json.dumps(c["values"])})
            return i % 2, r.status_code, r.json()["result"]["probability"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(8)))
    assert all(status == 200 for _, status, _ in answers)
    assert all(p == expected[k] for k, _, p in answers)
    assert load_bundle(small_bundle.path).sha256 == bundle.sha256  # the bundle's files are untouched


def _peak_rss_during(fn, interval: float = 0.002) -> tuple[object, int, int]:
    import psutil

    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out = fn()
    finally:
        done.set()
        sampler.join(timeout=5)
    return out, base, peak[0]


@pytest.mark.parametrize("size", [8000, 20000])
def test_bomb_does_not_raise_server_memory(bundle, case, size, bomb_png):
    """An 8000 x 8000 PNG is under Pillow's own bomb limit: only sonorad's header check stops it."""
    import httpx2 as httpx

    data = bomb_png if size == 20000 else png_bomb(size, size)
    with live_server(create_app(bundle)) as url, httpx.Client(base_url=url, timeout=60) as http:
        http.get("/healthz")
        response, base, peak = _peak_rss_during(lambda: http.post(
            "/api/predict", files={"image": ("big.png", data)},
            data={"roi": json.dumps(case["polygon"]), "variables": json.dumps(case["values"])}))
    assert response.status_code == 413 and f"{size} x {size}" in response.json()["error"]
    assert peak - base < 40 * 2**20, f"RSS rose by {(peak - base) / 2**20:.0f} MiB (decoded: {size * size / 2**20:.0f} MiB)"
