"""The calculator as a person uses it, in headless Chromium: load an image, draw, fill in, submit;
one patient after another; the result in the study's words; the ROI canvas by mouse and keyboard.

One server (the small test bundle plus an untrained CNN) and one browser serve the whole module.
Set ``SONORAD_SERVE_SCREENSHOTS=DIR`` to also write the screenshots used by docs/serve.md there
(``serve-*.png``; the printed page as ``serve-print.pdf``, and docs/img/serve-print.png is its
rendering by Ghostscript: ``gs -q -sDEVICE=png16m -r80 -o serve-print.png serve-print.pdf``).
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


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


OUTCOME = "lymph node metastasis (synthetic)"


@pytest.fixture(scope="module")
def calculator_bundle(small_bundle, gradcam_bundle, tmp_path_factory):
    """The small bundle's chosen model plus a CNN (for the Grad-CAM figure), with an outcome
    description and the chosen model's counts at its cut-off on the synthetic external cohort, as a
    study run records them for the sensitivity, specificity, PPV and NPV."""
    from sonorad.bundle import write_bundle

    source = load_bundle(gradcam_bundle)
    chosen = small_bundle.chosen
    p = small_bundle.models[chosen].predict_proba(small_bundle.external_input)[:, 1]
    y = small_bundle.labels.loc[small_bundle.external_ids].astype(int).to_numpy() == 1
    hit = p >= small_bundle.cutoffs[chosen]
    counts = {"tp": int((hit & y).sum()), "fp": int((hit & ~y).sum()), "tn": int((~hit & ~y).sum()),
              "fn": int((~hit & y).sum())}
    return write_bundle(tmp_path_factory.mktemp("calculator_bundle") / "model",
                        models={name: source.model(name) for name in source.models},
                        chosen=chosen, cutoffs=source.cutoffs,
                        features={"radiomics_params": small_bundle.params, "deep": None},
                        variables=small_bundle.variables, training_input=small_bundle.training_input,
                        training_rois=None, card=source.card,
                        study={"seed": 0, "label": {"column": "label", "positive": 1, "description": OUTCOME}},
                        performance={"cohort": "external", "models": {chosen: counts}})


@pytest.fixture(scope="module")
def served(calculator_bundle, browser):
    """(base URL, bundle) of the one server of this module."""
    bundle = load_bundle(calculator_bundle)
    with live_server(create_app(bundle)) as url:
        yield url, bundle


@pytest.fixture
def page(browser, served):
    """A fresh page (its own cookies) on the calculator, the form loaded; page errors collected."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True,
                                  reduced_motion="reduce")  # no smooth scrolling under the mouse
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    tab.set_default_timeout(15_000)
    tab.goto(served[0] + "/")
    tab.wait_for_selector("#var-age")
    yield tab
    context.close()


def _load(page, case):
    page.set_input_files("#image-input", str(case["image_path"]))
    page.wait_for_selector("#roi-canvas[data-ready='1']")


def _screen(page, case):
    """Image pixel -> page coordinates on the canvas (at zoom 1 the canvas shows the whole image)."""
    rows, cols = case["shape"]
    box = page.locator("#roi-canvas").bounding_box()
    return lambda x, y: (box["x"] + x * box["width"] / cols, box["y"] + y * box["height"] / rows)


def _polygon(page, case, points=None):
    page.check("input[name=tool][value=polygon]")
    screen = _screen(page, case)
    points = case["polygon"] if points is None else points
    for x, y in points:
        page.mouse.click(*screen(x, y))
    page.mouse.click(*screen(*points[0]))


def _fill(page, case):
    page.fill("#var-age", str(case["values"]["age"]))
    for name in ("tumor_edge", "calcification"):
        page.select_option(f"#var-{name}", label="Yes" if case["values"][name] == "1" else "No")
    page.select_option("#var-noise_cat1", label=case["values"]["noise_cat1"])


def _submit(page) -> dict:
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer:
        page.click("#submit")
    assert answer.value.status == 200, answer.value.text()
    page.wait_for_selector("#result:not([hidden]):not(.stale)")
    return answer.value.json()


def _form_part(body: bytes, name: str) -> str | None:
    """One field of a posted multipart form (None when absent)."""
    match = re.search(rb'name="' + name.encode() + rb'"(?:; filename="[^"]*")?\r\n(?:[^\r\n]+\r\n)*\r\n(.*?)\r\n--',
                      body, re.S)
    return None if match is None else match.group(1).decode("latin-1")


def test_draw_fill_submit_gives_the_predict_probability(small_bundle, served, browser, tmp_path):
    url, bundle = served
    case = _case(small_bundle, 0)
    rows, cols = case["shape"]
    outside = []
    dirs = _shots(tmp_path)
    page = browser.new_page(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    try:
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
        _screenshot(page, dirs, "serve-result.png", full_page=True)

        with page.expect_download() as download:
            page.click("#download")
        saved = json.loads(Path(download.value.path()).read_text())
        pdf = page.pdf(format="A4")
        for d in dirs:
            (d / "serve-print.pdf").write_bytes(pdf)

        # The same case with its mask file instead of the drawing.
        page.set_input_files("#mask-input", str(case["mask_path"]))
        assert "will be used" in page.text_content("#roi-info")
        with page.expect_response(lambda r: r.url.endswith("/api/predict")) as answer_file:
            page.click("#submit")
        from_file = answer_file.value.json()
        page.wait_for_function("document.getElementById('result-meta').textContent.includes('(file)')")
        shown_file = float(page.get_attribute("#probability", "data-value"))
        page.goto(url + "/model-card")
        _screenshot(page, dirs, "serve-model-card.png", full_page=True)
        assert errors == []
    finally:
        page.close()

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
    assert (tmp_path / "serve-result.png").stat().st_size > 10_000


def test_with_a_token_the_page_asks_for_it_first(small_bundle, browser):
    token = "browser-test-token"
    with live_server(create_app(load_bundle(small_bundle.path), token=token)) as url:
        page = browser.new_page()
        try:
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
            page.wait_for_selector("#logout:not([hidden])")  # a server with a token offers a logout
            page.click("#logout")
            page.wait_for_selector("#login:not([hidden])")
            assert page.locator("#calculator").is_hidden()
            page.reload()  # the session is over: the page asks for the token again
            page.wait_for_selector("#login:not([hidden])")
        finally:
            page.close()


# ---------------------------------------------------------------------------- one patient at a time


def test_two_patients_in_a_row_share_nothing(small_bundle, page):
    first, second = _case(small_bundle, 0), _case(small_bundle, 1)
    _load(page, first)
    _polygon(page, first)
    page.fill("#case-id", "patient-A-17")
    _fill(page, first)
    page.set_input_files("#mask-input", str(first["mask_path"]))
    _submit(page)
    assert "patient-A-17" in page.text_content("#result-case")

    # Patient B's image, loaded straight away: nothing of patient A stays.
    _load(page, second)
    assert page.locator("#result").is_hidden() and page.locator("#error").is_hidden()
    assert page.input_value("#case-id") == "" and page.text_content("#roi-info") == "No ROI drawn."
    assert all(page.input_value(f"#var-{name}") == "" for name in first["values"])
    assert page.evaluate("document.getElementById('mask-input').files.length") == 0
    assert page.locator("#mask-clear").is_hidden()
    assert "patient-A-17" not in page.inner_text("body")
    assert "previous patient" in page.text_content("#image-info")

    posted = []
    page.route("**/api/predict", lambda route: (posted.append(route.request.post_data_buffer), route.continue_()))
    _polygon(page, second)
    _fill(page, second)
    answer = _submit(page)
    body = posted[0]
    assert _form_part(body, "mask") is None and b"patient-A-17" not in body
    assert _form_part(body, "case_id") == "case"
    assert json.loads(_form_part(body, "variables")) == second["values"]
    assert len(json.loads(_form_part(body, "roi"))["shapes"]) == 1  # B's outline only
    assert answer["inputs"]["variables"] == second["values"] and answer["inputs"]["roi_source"] == "drawn"

    # "New patient" empties the page, image included.
    page.click("#new-patient")
    assert page.locator("#result").is_hidden()
    assert page.text_content("#image-info") == "No image loaded."
    assert page.evaluate("document.getElementById('image-input').files.length") == 0
    assert page.get_attribute("#roi-canvas", "data-ready") == ""
    assert all(page.input_value(f"#var-{name}") == "" for name in second["values"])

    # An answer that arrives after "New patient" is not shown for the next patient.
    held = []
    page.unroute("**/api/predict")
    page.route("**/api/predict", lambda route: held.append(route))
    _load(page, first)
    _polygon(page, first)
    _fill(page, first)
    page.click("#submit")
    for _ in range(500):
        if held:
            break
        page.wait_for_timeout(20)
    page.click("#new-patient")
    with page.expect_response(lambda r: r.url.endswith("/api/predict")) as late:
        held[0].continue_()
    assert late.value.status == 200
    page.wait_for_timeout(200)
    assert page.locator("#result").is_hidden() and page.locator("#error").is_hidden()
    assert page.errors == []


def test_a_changed_input_marks_the_result_stale_and_a_refusal_hides_it(small_bundle, page, tmp_path):
    case = _case(small_bundle, 0)
    _load(page, case)
    _polygon(page, case)
    _fill(page, case)
    _submit(page)
    assert page.locator("#stale-note").is_hidden()

    page.fill("#var-age", str(case["values"]["age"] + 7))  # a changed variable
    assert "stale" in page.get_attribute("#result", "class")
    assert page.locator("#stale-note").is_visible()
    assert "Inputs changed: recalculate" in page.text_content("#stale-note")
    assert page.is_disabled("#print") and page.is_disabled("#download")
    page.locator("#result").scroll_into_view_if_needed()
    _screenshot(page, _shots(tmp_path), "serve-stale.png")
    _submit(page)  # recalculated: current again
    assert page.locator("#stale-note").is_hidden() and not page.is_disabled("#print")

    page.check("input[name=tool][value=brush]")  # a changed outline
    screen = _screen(page, case)
    page.mouse.move(*screen(5, 5))
    page.mouse.down()
    page.mouse.move(*screen(15, 10), steps=3)
    page.mouse.up()
    assert page.locator("#stale-note").is_visible()

    page.fill("#var-age", "")  # refused: the error, and no result of other inputs under it
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert page.locator("#result").is_hidden()
    assert page.errors == []


def test_shortcuts_act_only_on_the_canvas(small_bundle, page, tmp_path):
    case = _case(small_bundle, 0)
    _load(page, case)
    _polygon(page, case)
    assert page.text_content("#roi-info").startswith("1 shape")
    for field in ("#var-age", "#case-id"):
        page.click(field)
        page.keyboard.type("42")
        page.keyboard.press("Control+z")
        assert page.text_content("#roi-info").startswith("1 shape"), field
        assert page.input_value(field) in ("4", "")  # the field's own undo

    # On the canvas: Ctrl-Z undoes; the keyboard draws a polygon; +, - and 0 zoom.
    page.focus("#roi-canvas")
    page.keyboard.press("Control+z")
    assert page.text_content("#roi-info") == "No ROI drawn."
    for key in ("Enter", "Shift+ArrowRight", "Shift+ArrowRight", "Enter", "Shift+ArrowDown", "Shift+ArrowDown",
                "Enter", "Shift+ArrowLeft"):
        page.keyboard.press(key)
    assert page.text_content("#roi-info").endswith("Polygon in progress: 3 points.")
    for d in _shots(tmp_path):
        page.locator("#roi-panel").screenshot(path=str(d / "serve-keyboard.png"))
    page.keyboard.press("Escape")
    assert page.text_content("#roi-info") == "1 shape drawn."
    page.keyboard.press("+")
    assert float(page.get_attribute("#roi-canvas", "data-zoom")) > 1
    page.keyboard.press("0")
    assert float(page.get_attribute("#roi-canvas", "data-zoom")) == 1
    page.click("#zoom-in")
    assert float(page.get_attribute("#roi-canvas", "data-zoom")) > 1

    # The mouse: the wheel zooms, the pan tool and Space + drag move the view, and draw nothing.
    page.click("#zoom-fit")
    screen = _screen(page, case)
    page.mouse.move(*screen(60, 50))
    page.mouse.wheel(0, -400)
    page.wait_for_selector("#roi-canvas:not([data-zoom='1'])")
    page.check("input[name=tool][value=pan]")
    before = page.get_attribute("#roi-canvas", "data-offset")
    page.mouse.move(*screen(60, 50))
    page.mouse.down()
    page.mouse.move(*screen(70, 60), steps=3)
    page.mouse.up()
    panned = page.get_attribute("#roi-canvas", "data-offset")
    assert panned != before
    page.check("input[name=tool][value=polygon]")
    page.focus("#roi-canvas")
    page.keyboard.down(" ")
    page.mouse.move(*screen(60, 50))
    page.mouse.down()
    page.mouse.move(*screen(50, 40), steps=3)
    page.mouse.up()
    page.keyboard.up(" ")
    assert page.get_attribute("#roi-canvas", "data-offset") != panned
    assert page.text_content("#roi-info") == "1 shape drawn."  # panning added no point
    assert page.errors == []


@pytest.mark.parametrize("size", [(1366, 768), (1024, 768), (768, 1024)])
def test_the_canvas_fits_the_screen_with_its_tools(small_bundle, page, size, tmp_path):
    case = _case(small_bundle, 0)
    page.set_viewport_size({"width": size[0], "height": size[1]})
    _load(page, case)
    page.locator("#roi-panel").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, document.getElementById('roi-panel').offsetTop)")
    for selector in ("#roi-canvas", "#undo", "#zoom-in", "#keyboard-help", "input[name=tool][value=pan]"):
        box = page.locator(selector).bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= size[1] + 1, (selector, box, size)
        assert box["x"] >= 0 and box["x"] + box["width"] <= size[0] + 1, (selector, box, size)
    rows, cols = case["shape"]
    box = page.locator("#roi-canvas").bounding_box()
    assert box["width"] / box["height"] == pytest.approx(cols / rows, rel=0.03)
    if size == (768, 1024):
        _polygon(page, case)
        _screenshot(page, _shots(tmp_path), "serve-tablet.png")
    elif size == (1366, 768):  # a polygon in progress, the mask file previewed beneath it
        page.set_input_files("#mask-input", str(case["mask_path"]))
        page.wait_for_selector("#roi-canvas[data-mask='1']")
        page.check("input[name=tool][value=polygon]")
        screen = _screen(page, case)
        for x, y in case["polygon"][:-2]:
            page.mouse.click(*screen(x, y))
        page.mouse.move(*screen(*case["polygon"][-2]))
        _screenshot(page, _shots(tmp_path), "serve-draw.png")


# ------------------------------------------------------------------------------ the study's words

_CONTRACT = {
    "scored_at": "2026-12-06T21:40:12Z",
    "outcome": {"name": "central lymph node metastasis", "positive": "1"},
    "performance_at_cutoff": {
        "cohort": "external", "n": 120, "cutoff": None, "method": "Wilson score intervals",
        "sensitivity": {"value": 0.81, "low": 0.70, "high": 0.89}, "specificity": {"value": 0.64, "low": 0.52, "high": 0.74},
        "ppv": {"value": 0.57, "low": 0.45, "high": 0.68}, "npv": {"value": 0.85, "low": 0.74, "high": 0.92}},
    "uncertainty": {"low": 0.11, "high": 0.33, "level": 0.95, "method": "bootstrap of the training cohort"},
    "roi_sensitivity": {"low": 0.18, "high": 0.25, "pixels": 2, "probabilities": {"eroded": 0.18, "dilated": 0.25},
                        "method": "outline eroded and dilated"},
}


def test_every_part_of_the_result_contract_is_shown_or_said_missing(small_bundle, page):
    """The page's rendering of each contract field, on the real answer with those fields set (then
    null with their notes): this checks the page, not the server."""
    case = _case(small_bundle, 0)

    def schema(route):  # a unit for the age: shown beside the field and in the inputs table
        body = route.fetch().json()
        for field in body["variables"]:
            field["unit"] = "years" if field["name"] == "age" else field.get("unit", "")
        route.fulfill(json=body)

    page.route("**/api/schema", schema)
    page.reload()
    page.wait_for_selector("#var-age")
    assert page.text_content(".field[data-name=age] .unit") == "years"
    assert "years" in page.text_content(".field[data-name=age] .hint")
    _load(page, case)
    _polygon(page, case)
    _fill(page, case)
    real = _submit(page)  # the server's answer, then the same answer with each field set or null
    assert f"{case['values']['age']:g} years" in page.text_content("#inputs")
    extra = {}

    def answer(route):
        body = json.loads(json.dumps(real))
        body["scored_at"] = _CONTRACT["scored_at"]
        body["bundle"]["id"] = body["bundle"]["sha256"][:12]
        for key in ("outcome", "performance_at_cutoff", "uncertainty", "roi_sensitivity"):
            body["result"][key] = extra.get(key, _CONTRACT[key])
            body["result"][f"{key.removesuffix('_at_cutoff')}_note"] = f"no {key} in this test"
        body["result"]["contributions"] = [{**c, "label": f"predictor {i}", "display": "yes"}
                                           for i, c in enumerate(body["result"]["contributions"])]
        body["result"]["warnings"] = ["The image is in colour: check that it is the ultrasound image."]
        extra["body"] = body
        route.fulfill(json=body)

    page.route("**/api/predict", answer)
    page.fill("#var-age", str(case["values"]["age"]))
    _submit(page)
    body = extra["body"]
    assert page.text_content("#probability-label") == "Probability of central lymph node metastasis"
    assert page.text_content("#roi-range") == "(0.180–0.250 when the outline is shrunk or grown by 2 px)"
    cells = [page.text_content(f"#performance td[data-metric={m}]") for m in ("sensitivity", "specificity", "ppv", "npv")]
    assert cells == ["0.81 (0.70–0.89)", "0.64 (0.52–0.74)", "0.57 (0.45–0.68)", "0.85 (0.74–0.92)"]
    assert "external cohort, n = 120" in page.text_content("#performance-note")
    assert "Wilson score intervals" in page.text_content("#performance-note")
    assert page.text_content("#uncertainty") == ("95% uncertainty interval for this patient: 0.110–0.330 "
                                                 "(bootstrap of the training cohort)")
    assert page.text_content("#scored") == f"Scored 2026-12-06 21:40:12 UTC · model bundle {body['bundle']['id']}"
    labels = page.eval_on_selector_all("#shap text.label", "els => els.map(e => e.dataset.label)")
    assert sorted(labels) == sorted(f"predictor {i} = yes" for i in range(len(labels))) and labels
    assert page.locator("#warnings li").all_text_contents() == body["result"]["warnings"]
    assert page.locator("#warnings").is_visible()

    extra.update(outcome=None, performance_at_cutoff=None, uncertainty=None, roi_sensitivity=None)
    page.fill("#var-age", str(case["values"]["age"]))
    page.click("#submit")
    page.wait_for_selector("#uncertainty:has-text('not available')")
    assert page.text_content("#probability-label") == "Probability (outcome name not available)"
    assert "not available: no roi_sensitivity in this test" in page.text_content("#roi-range")
    assert "not available: no performance_at_cutoff in this test" in page.text_content("#performance-note")
    assert page.locator("#performance").is_hidden()
    assert page.text_content("#uncertainty").endswith("not available: no uncertainty in this test")
    assert page.errors == []


def test_the_result_speaks_the_study_s_words(small_bundle, served, page, tmp_path):
    """Against the server's own answer: labelled contributions, the outcome, sensitivity,
    specificity, PPV and NPV at the cut-off, the ROI-sensitivity range and the date, on the page, the
    printout and in the downloaded JSON."""
    case = _case(small_bundle, 0)
    _load(page, case)
    _polygon(page, case)
    _fill(page, case)
    body = _submit(page)
    result = body["result"]

    labels = page.eval_on_selector_all("#shap text.label", "els => els.map(e => e.dataset.label)")
    assert labels and len(labels) == len(result["contributions"])
    assert not [c for c in result["contributions"] if not c.get("label") or re.fullmatch(r"x\d+", c["label"])]
    assert not [name for name in labels if re.match(r"x\d+\b", name) or "(no description)" in name], labels
    yes_no = {"tumor_edge", "calcification"}  # 0/1 variables read Yes / No
    shown = [f"{c['label']} = " + ({"1": "Yes", "0": "No"}[str(c["display"])] if c["feature"] in yes_no else
                                   str(c["display"])) for c in result["contributions"]]
    assert sorted(labels) == sorted(shown)

    assert result["outcome"]["name"] == OUTCOME
    assert page.text_content("#probability-label") == f"Probability of {OUTCOME}"
    perf = result["performance_at_cutoff"]
    assert perf is not None, result.get("performance_note")
    for metric in ("sensitivity", "specificity", "ppv", "npv"):
        shown = page.text_content(f"#performance td[data-metric={metric}]")
        assert re.fullmatch(r"\d\.\d\d \(\d\.\d\d–\d\.\d\d\)", shown), (metric, shown)
        assert shown.startswith(f"{perf[metric]['value']:.2f}")
    assert perf["cohort"] in page.text_content("#performance-note")
    sens = result.get("roi_sensitivity")
    assert sens is not None, result.get("roi_sensitivity_note", "the answer has no roi_sensitivity")
    assert page.text_content("#roi-range") == (f"({sens['low']:.3f}–{sens['high']:.3f} when the outline is shrunk "
                                               f"or grown by {sens['pixels']} px)")
    scored = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)Z", body["scored_at"])
    assert scored and body["bundle"]["id"] == body["bundle"]["sha256"][:12]
    assert page.text_content("#scored") == f"Scored {scored[1]} {scored[2]} UTC · model bundle {body['bundle']['id']}"

    page.emulate_media(media="print")
    assert page.locator("#scored").is_visible() and page.locator("#performance").is_visible()
    page.emulate_media(media="screen")
    with page.expect_download() as download:
        page.click("#download")
    saved = json.loads(Path(download.value.path()).read_text())
    assert saved["scored_at"] == body["scored_at"] and saved["bundle"]["id"] == body["bundle"]["id"]
    assert page.errors == []
