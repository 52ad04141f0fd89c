"""The calculator's box-to-contour flow: POST /api/propose with a tiny segmenter, and roi_origin on /api/predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from starlette.testclient import TestClient

from sonorad.serve.app import create_app, decode_mask
from sonorad.serve.propose import install_propose, mask_polygon, segmenter_info
from sonorad.serve.roi import check_roi_origin, rasterize_polygon
from sonorad.serve.uploads import UploadError
from tests.segment.conftest import lesion_image

from .conftest import png_bytes

BASE = "http://127.0.0.1:8000"


def train_tiny_segmenter(seed: int = 0):
    """A segmenter trained for four epochs on ten synthetic images (random encoder, 32-pixel input, one thread)."""
    import torch

    from sonorad.segment.data import SegmentationCase
    from sonorad.segment.train import train_segmenter

    rng = np.random.default_rng(seed)
    cases = []
    for i in range(10):
        image, mask = lesion_image(rng)
        cases.append(SegmentationCase(f"c{i}", f"p{i // 2}", image.astype(np.float32) / 255, mask))
    threads = torch.get_num_threads()
    try:
        return train_segmenter(cases, image_size=32, epochs=4, max_minutes=None, batch_size=4, val_fraction=0.3,
                               encoder_weights=None, threads=1, progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_segmenter():
    return train_tiny_segmenter()


@pytest.fixture(scope="module")
def bundle(small_bundle):
    from sonorad.bundle import load_bundle

    return load_bundle(small_bundle.path)


def propose_app(bundle, segmenter):
    """The calculator with the propose routes, as ``sonorad serve --segmenter`` builds it."""
    app = create_app(bundle)
    install_propose(app.fastapi, app.calculator, segmenter)
    return app


@pytest.fixture(scope="module")
def client(bundle, tiny_segmenter):
    with TestClient(propose_app(bundle, tiny_segmenter), base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def lesion():
    image, mask = lesion_image(np.random.default_rng(7), shape=(96, 128))
    return {"png": png_bytes(image), "mask": mask, "shape": mask.shape}


def _propose(client, png, box):
    data = {"box": box if isinstance(box, str) else json.dumps(box)}
    return client.post("/api/propose", files={"image": ("scan.png", png)}, data=data)


def _dice(a, b):
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


# -------------------------------------------------------------------------------- the polygon


def test_mask_polygon_reproduces_the_mask_when_rasterized():
    rows, cols = np.mgrid[:200, :300]
    blob = (((rows - 90) / 60.0) ** 2 + ((cols - 140) / 100.0) ** 2 < 1.0)
    blob |= (np.abs(rows - 150) < 20) & (np.abs(cols - 200) < 50)  # a lobe: not convex
    polygon = mask_polygon(blob)
    assert 3 <= len(polygon) <= 400
    back = rasterize_polygon(np.array(polygon), blob.shape)
    assert _dice(back, blob) >= 0.97


def test_mask_polygon_is_thinned_to_the_point_limit():
    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[:400, :400]
    radius = 150 + 8 * np.sin(np.arctan2(rows - 200, cols - 200) * 40) + rng.normal(0, 0.1, (400, 400))
    ragged = np.hypot(rows - 200, cols - 200) < radius
    polygon = mask_polygon(ragged, max_points=100)
    assert len(polygon) <= 100
    assert _dice(rasterize_polygon(np.array(polygon), ragged.shape), ragged) >= 0.9


def test_mask_polygon_of_an_empty_mask_is_empty():
    assert mask_polygon(np.zeros((10, 10), bool)) == []


# -------------------------------------------------------------------------------- the endpoint


def test_propose_returns_a_polygon_that_reproduces_the_proposed_mask(client, lesion):
    rows, cols = np.nonzero(lesion["mask"])
    box = [int(cols.min()) - 2, int(rows.min()) - 2, int(cols.max()) + 3, int(rows.max()) + 3]
    r = _propose(client, lesion["png"], box)
    assert r.status_code == 200, r.text
    body = r.json()
    mask = decode_mask(body["mask"])
    assert mask.shape == lesion["shape"] and body["pixels"] == int(mask.sum()) > 0
    assert 0.0 <= body["confidence"] <= 1.0 and isinstance(body["flags"], list) and body["message"]
    assert 3 <= len(body["polygon"]) <= 400
    back = rasterize_polygon(np.array(body["polygon"]), lesion["shape"])
    assert _dice(back, mask) >= 0.97
    assert _dice(mask, lesion["mask"]) > 0.5  # the tiny segmenter found the lesion, not just anything
    # the box may also be sent as text
    assert _propose(client, lesion["png"], ",".join(map(str, box))).json()["pixels"] == body["pixels"]


@pytest.mark.parametrize("box, words", [
    ([10, 10, 500, 60], "inside the image"),       # right edge past the 128-pixel width
    ([-40, -40, -5, -5], "inside the image"),
    ([50, 40, 30, 60], "degenerate"),              # right <= left
    ([20, 20, 22, 40], "4"),                       # 2 pixels wide
    ("1,2,3", "four numbers"),
    ("[1, 2, 3, \"x\"]", "four"),
    ("", "box"),
])
def test_bad_boxes_are_refused_naming_box_with_the_fix(client, lesion, box, words):
    r = _propose(client, lesion["png"], box)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "box" and words in body["error"] and body["fix"]


def test_image_is_read_under_the_calculators_limits(client):
    r = client.post("/api/propose", files={"image": ("x.png", b"not an image")}, data={"box": "1,1,20,20"})
    assert r.status_code in (415, 422) and r.json()["field"] == "image"


def test_blank_image_is_flagged_or_refused_never_silently_empty(client):
    blank = png_bytes(np.full((96, 128), 128, np.uint8))
    r = _propose(client, blank, [30, 20, 90, 70])
    body = r.json()
    if r.status_code == 200:
        assert body["flags"] and body["message"] and body["pixels"] > 0
        assert "low_contrast" in body["flags"]
    else:
        assert r.status_code == 422 and body["field"] == "box" and "by hand" in body["fix"]


def test_propose_info_and_no_segmenter(bundle, tiny_segmenter):
    info = segmenter_info(tiny_segmenter)
    assert info["available"] and "U-Net" in info["description"]
    assert segmenter_info(None) == {"available": False, "description": None}
    with TestClient(create_app(bundle), base_url=BASE) as plain:
        assert plain.post("/api/propose", files={"image": ("x.png", b"x")}, data={"box": "1,1,9,9"}).status_code in (
            404, 405)


# -------------------------------------------------------------------------------- roi_origin


def test_roi_origin_is_checked():
    assert check_roi_origin(None, "drawn") == "drawn"
    assert check_roi_origin("", "drawn") == "drawn"
    assert check_roi_origin("proposed", "drawn") == "proposed"
    assert check_roi_origin("edited", "drawn") == "edited"
    assert check_roi_origin("proposed", "file") == "file"
    with pytest.raises(UploadError) as err:
        check_roi_origin("auto", "drawn")
    assert err.value.field == "roi_origin" and "proposed" in err.value.fix


def test_predict_echoes_and_checks_roi_origin(small_bundle, client):
    from .test_app import _case, _post

    case = _case(small_bundle, 0)
    roi = [case["polygon"]]
    for origin, shown in ((None, "drawn"), ("drawn", "drawn"), ("proposed", "proposed"), ("edited", "edited")):
        r = _post(client, case, roi=roi[0], extra={} if origin is None else {"roi_origin": origin})
        assert r.status_code == 200, r.text
        assert r.json()["inputs"]["roi_source"] == shown
    r = _post(client, case, mask=case["mask_bytes"], extra={"roi_origin": "proposed"})
    assert r.status_code == 200 and r.json()["inputs"]["roi_source"] == "file"  # a mask file stays a file
    r = _post(client, case, roi=roi[0], extra={"roi_origin": "automatic"})
    assert r.status_code == 422 and r.json()["field"] == "roi_origin" and "edited" in r.json()["fix"]


def test_schema_says_whether_a_segmenter_is_available(bundle, client):
    assert client.get("/api/schema").json()["segmenter"]["available"] is True
    assert "U-Net" in client.get("/api/schema").json()["segmenter"]["description"]
    with TestClient(create_app(bundle), base_url=BASE) as plain:
        assert plain.get("/api/schema").json()["segmenter"] == {"available": False, "description": None}


def test_serve_refuses_a_bad_segmenter_folder_before_serving(tmp_path):
    from sonorad.errors import ConfigError
    from sonorad.serve.server import serve

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "segmenter.pt").write_bytes(b"not a state dict")
    for folder in (tmp_path / "missing", foreign):
        with pytest.raises(ConfigError, match="--segmenter"):
            serve(tmp_path / "no_bundle_here", segmenter=folder)  # the segmenter is checked first


# -------------------------------------------------------------------------------- in the browser


@pytest.mark.slow
def test_box_propose_erase_submit_says_edited(small_bundle, bundle, tiny_segmenter, tmp_path):
    from PIL import Image

    from .live import live_server
    from .test_app import _case
    from .test_browser import CHROMIUM_ARGS, _chromium, _fill, _form_part, _screenshot, _shots, _submit

    executable = _chromium()
    from playwright.sync_api import sync_playwright

    image, truth = lesion_image(np.random.default_rng(3), shape=(192, 320))
    path = tmp_path / "lesion.png"
    Image.fromarray(image).save(path)
    case = _case(small_bundle, 0)  # its variables
    rows, cols = np.nonzero(truth)
    box = (cols.min() - 4, rows.min() - 4, cols.max() + 5, rows.max() + 5)

    with live_server(propose_app(bundle, tiny_segmenter)) as url, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1366, "height": 768})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_default_timeout(15_000)
            page.goto(url + "/")
            page.wait_for_selector("#var-age")
            assert page.locator("#tool-box").is_visible()
            page.set_input_files("#image-input", str(path))
            page.wait_for_selector("#roi-canvas[data-ready='1']")

            def screen(x, y):  # the canvas's place now (checking a tool may scroll the page)
                frame = page.locator("#roi-canvas").bounding_box()
                return frame["x"] + x * frame["width"] / 320, frame["y"] + y * frame["height"] / 192

            def show(x, y):  # scroll image point (x, y) to the middle of the window
                page.evaluate(f"window.scrollBy(0, {screen(x, y)[1] - 384})")

            page.check("input[name=tool][value=box]")
            show((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            start = screen(box[0], box[1])
            with page.expect_response(lambda r: r.url.endswith("/api/propose")) as answer:
                page.mouse.move(*start)
                page.mouse.down()
                page.mouse.move(*screen(box[2], box[3]), steps=5)
                page.mouse.up()
            assert answer.value.status == 200, answer.value.text()
            proposal = answer.value.json()
            page.wait_for_selector("#roi-canvas[data-origin='proposed']")
            info = page.text_content("#propose-info")
            assert "confidence" in info and proposal["message"] in info
            assert "proposed outline" in page.text_content("#roi-info").lower()
            panel = page.locator("#roi-panel").bounding_box()
            _screenshot(page, _shots(tmp_path), "serve-propose.png", full_page=True,
                        clip={"x": panel["x"], "y": panel["y"] + page.evaluate("window.scrollY"),
                              "width": panel["width"], "height": panel["height"]})

            page.check("input[name=tool][value=erase]")  # erase a little of the proposed outline
            cx, cy = np.mean(proposal["polygon"], axis=0)
            show(cx, cy)
            start = screen(cx, cy)
            page.mouse.move(*start)
            page.mouse.down()
            page.mouse.move(*screen(cx + 6, cy), steps=3)
            page.mouse.up()
            assert page.get_attribute("#roi-canvas", "data-origin") == "edited"
            _fill(page, case)
            posted = []
            page.route("**/api/predict", lambda route: (posted.append(route.request.post_data_buffer), route.continue_()))
            result = _submit(page)
            assert _form_part(posted[0], "roi_origin") == "edited"
            assert result["inputs"]["roi_source"] == "edited"
            assert result["mask"]["pixels"] < proposal["pixels"]  # the erased pixels are out
            assert "edited" in page.text_content("#inputs")
            assert errors == []
        finally:
            chromium.close()


def test_serve_uses_the_bundles_own_segmenter(tmp_path, small_bundle, tiny_segmenter, monkeypatch):
    import uvicorn

    from sonorad.bundle import write_bundle
    from sonorad.segment.io import save_segmenter
    from sonorad.serve.server import serve

    path = write_bundle(tmp_path / "model", models={small_bundle.chosen: small_bundle.models[small_bundle.chosen]},
                        chosen=small_bundle.chosen, cutoffs=small_bundle.cutoffs,
                        features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=small_bundle.variables, training_input=small_bundle.training_input,
                        training_rois=None, card={}, study={},
                        segmenter=save_segmenter(tiny_segmenter, tmp_path / "seg"))
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    threads = __import__("torch").get_num_threads()
    try:
        serve(path, workers=0)
        serve(small_bundle.path, workers=0)
    finally:
        __import__("torch").set_num_threads(threads)  # serving sets one thread for the proposals
    with TestClient(served[0], base_url=BASE) as own, TestClient(served[1], base_url=BASE) as none:
        assert own.get("/api/schema").json()["segmenter"]["available"] is True
        assert none.get("/api/schema").json()["segmenter"]["available"] is False
