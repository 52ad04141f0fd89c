"""Screenshot every section of a sonorad report in headless Chromium (for docs/screenshots/).

Usage::

    python scripts/screenshot_report.py demo_out/report.html --out docs/screenshots [--width 1100]

Needs Debian's ``chromium`` and the ``playwright`` package (installed with the dev extras); the
system browser is driven through ``executable_path``, nothing is downloaded. Writes
``<section id>.png`` per section (clipped to the first ``--max-height`` pixels) and ``top.png``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--max-height", type=int, default=1400)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": 900}, device_scale_factor=1)
        page.goto(Path(args.report).resolve().as_uri(), wait_until="load")
        page.screenshot(path=str(out / "top.png"))
        for sid in page.evaluate("Array.from(document.querySelectorAll('section[id]')).map(s => s.id)"):
            box = page.locator(f"section#{sid}").bounding_box()
            if box is None:
                continue
            clip = {"x": box["x"], "y": box["y"], "width": box["width"],
                    "height": min(box["height"], args.max_height)}
            page.screenshot(path=str(out / f"{sid}.png"), clip=clip, full_page=True)
            print(f"{out / (sid + '.png')}")
        browser.close()


if __name__ == "__main__":
    main()
