"""The report as a person sees it: every figure loads in a real (headless) browser."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from sonorad.report import Report

from .browser import render


def _figure(title):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 0.2, 1], [0, 0.7, 1])
    ax.set_title(title)
    return fig


def test_every_figure_of_a_report_loads_in_chromium(tmp_path):
    report = Report("Browser check", subtitle="PNG and SVG figures")
    report.add_section("roc", "ROC curves", text="Figures embedded in the file.")
    png_fig, svg_fig = _figure("png figure"), _figure("svg figure")
    report.add_figure("roc", png_fig, "A PNG figure")
    report.add_figure("roc", svg_fig, "An SVG figure", format="svg")
    plt.close(png_fig)
    plt.close(svg_fig)
    report.add_table("roc", pd.DataFrame({"auc": [0.81, 0.77]}, index=["LR", "RF"]), "AUCs")
    path = report.write(tmp_path / "report.html")

    seen = render(path, tmp_path / "shot.png")
    assert seen["failed_requests"] == []
    assert len(seen["images"]) == 1
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in seen["images"]), seen["images"]
    assert len(seen["svgs"]) == 1 and seen["svgs"][0]["width"] > 50 and seen["svgs"][0]["height"] > 50
    assert (tmp_path / "shot.png").stat().st_size > 1000


def test_a_broken_image_is_detected(tmp_path):
    """The check can fail: an image whose data does not decode is reported as not loaded."""
    html = tmp_path / "broken.html"
    html.write_text('<html><body><figure><img alt="x" src="data:image/png;base64,AAAA"></figure></body></html>')
    seen = render(html)
    assert seen["images"][0]["width"] == 0


def test_an_estimate_with_its_ci_stays_on_one_line_in_a_narrow_window(tmp_path):
    report = Report("Narrow window")
    report.add_section("models", "Model comparison")
    cols = {f"{m} (95% CI)": ["0.812 (0.741-0.883)", "-0.56 (-0.90 to 0.20)"]
            for m in ("AUC", "Sensitivity", "Specificity", "PPV", "NPV", "Accuracy")}
    report.add_table("models", pd.DataFrame(cols, index=["radiomics_nomogram", "clinical"]), "Models",
                     float_format="{}")
    seen = render(report.write(tmp_path / "report.html"), width=480)
    assert len(seen["ci_lines"]) == 12 and set(seen["ci_lines"]) == {1}, seen["ci_lines"]
