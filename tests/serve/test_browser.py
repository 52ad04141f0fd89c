"""The calculator as a person uses it, in headless Chromium: load an image, draw, fill in, submit.

Set ``SONORAD_SERVE_SCREENSHOTS=DIR`` to also write the screenshots used by docs/serve.md there
(the printed page as ``serve_print.pdf``; docs/screenshots/serve_print.png is its rendering by
Ghostscript: ``gs -q -sDEVICE=png16m -r80 -o serve_print.png serve_print.pdf``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonorad.bundle import load_bundle
from sonorad.imaging import read_image
from sonorad.serve.app import create_app, decode_mask

from .live import live_server
from .test_app import _case

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    return path


def _shots(tmp_path: Path) -> list[Path]:
    extra = os.environ.get("SONORAD_SERVE_SCREENSHOTS")
    return [tmp_path] + ([Path(extra)] if extra else [])


def _screenshot(page, dirs, name, **kwargs):
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(d / name), **kwargs)


def test_draw_fill_submit_gives_the_predict_probability(small_bundle, gradcam_bundle, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    bundle = load_bundle(gradcam_bundle)  # the small bundle's models plus a CNN, for the Grad-CAM figure
    case = _case(small_bundle, 0)
    rows, cols = case["shape"]
    outside = []
    dirs = _shots(tmp_path)
    with live_server(create_app(bundle)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(url + "/")
            page.wait_for_selector("#var-age")
            page.set_input_files("#image-input", str(case["image_path"]))
            page.wait_for_selector("#roi-canvas[data-ready='1']")
            box = page.locator("#roi-canvas").bounding_box()

            def screen(x, y):
                return box["x"] + x * box["width"] / cols, box["y"] + y * box["height"] / rows

            # A brush stroke, then undo: the canvas is empty again.
            page.check("input[name=tool][value=brush]")
            page.mouse.move(*screen(10, 10))
            page.mouse.down()
            page.mouse.move(*screen(30, 20), steps=5)
            page.mouse.up()
            assert page.text_content("#roi-info").startswith("1 shape")
            page.click("#undo")
            assert page.text_content("#roi-info") == "No ROI drawn."

            # The polygon: click each corner, then the first one again to close it.
            page.check("input[name=tool][value=polygon]")
            for x, y in case["polygon"]:
                page.mouse.click(*screen(x, y))
            page.mouse.click(*screen(*case["polygon"][0]))
            assert page.text_content("#roi-info").startswith("1 shape")

            # Submitting without the age: a clear message on the page, the field marked.
            page.fill("#var-age", "")
            page.click("#submit")
            page.wait_for_selector("#error:not([hidden])")
            assert "required and missing" in page.text_content("#error")
            assert "invalid" in page.get_attribute(".field[data-name=age]", "class")

            page.fill("#var-age", str(case["values"]["age"]))
            for name in ("tumor_edge", "calcification"):
                page.select_option(f"#var-{name}", label="Yes" if case["values"][name] == "1" else "No")
            page.select_option("#var-noise_cat1", label=case["values"]["noise_cat1"])
            with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
                page.click("#submit")
            assert answer.value.status == 200, answer.value.text()
            result = answer.value.json()
            page.wait_for_selector("#result:not([hidden])")
            shown_text = page.text_content("#probability")
            shown_value = float(page.get_attribute("#probability", "data-value"))
            page.wait_for_timeout(300)  # the ROI figure draws from a decoded PNG
            gradcam_width = page.evaluate("document.getElementById('gradcam').naturalWidth")
            _screenshot(page, dirs, "serve_result.png", full_page=True)

            with page.expect_download() as download:
                page.click("#download")
            saved = json.loads(Path(download.value.path()).read_text())
            pdf = page.pdf(format="A4")
            for d in dirs:
                (d / "serve_print.pdf").write_bytes(pdf)

            # The same case with its mask file instead of the drawing.
            page.set_input_files("#mask-input", str(case["mask_path"]))
            assert "will be used" in page.text_content("#roi-info")
            with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer_file:
                page.click("#submit")
            from_file = answer_file.value.json()
            page.wait_for_function("document.getElementById('result-meta').textContent.includes('(file)')")
            shown_file = float(page.get_attribute("#probability", "data-value"))
            page.goto(url + "/model-card")
            _screenshot(page, dirs, "serve_model_card.png", full_page=True)
            assert errors == []
        finally:
            browser.close()

    assert outside == []  # the page loaded nothing from anywhere but the calculator
    assert gradcam_width > 0 and result["result"]["gradcam"].startswith("data:image/png;base64,")
    assert result["inputs"]["variables"] == case["values"] and result["inputs"]["roi_source"] == "drawn"
    mask = decode_mask(result["mask"])
    assert mask.shape == (rows, cols) and mask.sum() > 0.8 * case["mask"].sum()

    # The same image with the rasterized mask through both scoring paths of the bundle.
    direct = bundle.predict_case(read_image(case["image_path"]), mask, case["values"], case_id=case["case_id"])
    mask_path = tmp_path / "drawn_mask.png"
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
    cases_csv = tmp_path / "cases.csv"
    pd.DataFrame([{"case_id": case["case_id"], "patient_id": case["patient_id"], "center": case["center"],
                   "image": str(case["image_path"]), "mask": str(mask_path),
                   **case["values"]}]).to_csv(cases_csv, index=False)
    batch = bundle.predict(cases_csv).predictions
    batch_p = float(batch.loc[batch["model"] == bundle.chosen, "probability"].iloc[0])
    assert shown_value == direct.probability
    assert batch_p == pytest.approx(direct.probability, abs=1e-12)
    assert re.match(rf"{direct.probability:.4f} \(", shown_text), shown_text

    assert saved["result"]["probability"] == direct.probability and saved["bundle"]["sha256"] == bundle.sha256
    direct_file = bundle.predict_case(read_image(case["image_path"]), case["mask"], case["values"])
    assert from_file["inputs"]["roi_source"] == "file" and shown_file == direct_file.probability
    np.testing.assert_array_equal(decode_mask(saved["mask"]), mask)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1  # prints on one A4 page
    assert (tmp_path / "serve_result.png").stat().st_size > 10_000


def test_with_a_token_the_page_asks_for_it_first(small_bundle):
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    token = "browser-test-token"
    with live_server(create_app(load_bundle(small_bundle.path), token=token)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.wait_for_selector("#login:not([hidden])")
            assert page.locator("#calculator").is_hidden()
            page.fill("#token-input", "not-the-token")
            page.click("#login-form button")
            page.wait_for_selector("#login-error:not([hidden])")
            page.fill("#token-input", token)
            page.click("#login-form button")
            page.wait_for_selector("#var-age")  # the form, loaded with the cookie
            assert page.locator("#login").is_hidden()
            assert token not in page.url  # never in the address
        finally:
            browser.close()
