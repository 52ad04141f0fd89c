"""Open a report in headless Chromium and say what a person would see (used by the browser tests).

Needs Debian's ``chromium`` (``apt-get install chromium``) and the ``playwright`` Python package,
which drives the system browser through ``executable_path``: no browser download is involved.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Path of the system Chromium, or skip the calling test when there is none."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    return path


def render(html_path: Path, screenshot: Path | None = None, *, width: int = 1280) -> dict:
    """Load ``html_path`` and report every image's load state, inline SVG sizes and failed requests."""
    from playwright.sync_api import sync_playwright

    failed: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(Path(html_path).resolve().as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, "
                "width: i.naturalWidth, height: i.naturalHeight}))")
            svgs = page.evaluate(
                "Array.from(document.querySelectorAll('figure svg')).map(s => {"
                "const r = s.getBoundingClientRect(); return {width: r.width, height: r.height}; })")
            sections = page.evaluate("Array.from(document.querySelectorAll('section[id]')).map(s => s.id)")
            # lines of text in each estimate-with-CI cell (one client rect per line box)
            ci_lines = page.evaluate(
                "Array.from(document.querySelectorAll('td.ci')).map(td => {"
                "const r = document.createRange(); r.selectNodeContents(td); return r.getClientRects().length; })")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=False)
        finally:
            browser.close()
    return {"images": images, "svgs": svgs, "sections": sections, "failed_requests": failed,
            "ci_lines": ci_lines}
