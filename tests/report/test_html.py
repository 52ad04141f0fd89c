"""Tests of sonorad.report.html: one self-contained, escaped, numbered HTML file."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from sonorad.report.html import ExternalReferenceError, Report, external_references

EVIL = "<script>alert('x')</script>"


def _figure(kind: str = "line") -> Figure:
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    x = np.linspace(0, 1, 20)
    ax.plot(x, x ** 2) if kind == "line" else ax.scatter(x, 1 - x)
    ax.set_title(kind)
    return fig


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[dict] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "img":
            self.images.append(attrs)


def _parse(document: str) -> _Collector:
    collector = _Collector()
    collector.feed(document)
    return collector


@pytest.fixture
def report(tmp_path) -> Report:
    png_file = tmp_path / "saved.png"
    _figure("scatter").savefig(png_file, dpi=50)
    svg_file = tmp_path / "saved.svg"
    _figure("scatter").savefig(svg_file, format="svg")
    report = Report("Thyroid nodule study", subtitle="2 centers")
    report.add_section("cohort", "Cohort", text="Cases were collected.\n\nSee Collins et al., https://doi.org/10.1136/bmj-2023-078378.")
    report.add_figure("cohort", _figure(), "ROC curves")
    report.add_table("cohort", pd.DataFrame({"AUC": [0.81234, 0.7]}, index=["LR", "SVM"]), "Discrimination",
                     float_format="{:.2f}", note="DeLong 95% CI.")
    report.add_section("models", "Models")
    report.add_figure("models", png_file, "Saved PNG")
    report.add_figure("models", _figure("scatter"), "Inline SVG", format="svg")
    report.add_figure("models", svg_file, "Saved SVG")
    report.add_table("models", pd.DataFrame({"n": [3]}), "Counts")
    report.add_code("models", "Rad-score = -1.2 + 0.8 * glcm_Contrast")
    return report


def test_output_is_self_contained(report, tmp_path):
    path = report.write(tmp_path / "out" / "report.html")
    assert path == tmp_path / "out" / "report.html" and path.is_file()
    document = path.read_text(encoding="utf-8")
    assert external_references(document) == []
    assert "<script" not in document.lower()
    assert "<link" not in document.lower()
    assert "@import" not in document
    # The only URL is the citation written as plain text in a paragraph.
    urls = re.findall(r"https?://[^\s<\"']+", document)
    assert urls == ["https://doi.org/10.1136/bmj-2023-078378."]
    assert "<p>See Collins et al., https://doi.org/" in document
    assert "src=\"http" not in document and "href=\"http" not in document


def test_every_img_is_an_embedded_valid_png(report):
    document = report.to_html()
    images = _parse(document).images
    assert len(images) == 2  # the Figure rendered as PNG and the PNG file; SVGs are inline
    for image in images:
        src = image["src"]
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(data)) as decoded:
            decoded.verify()
        assert image["alt"]
    assert document.count('<svg role="img" aria-label="Inline SVG"') == 1
    assert document.count('<svg role="img" aria-label="Saved SVG"') == 1
    assert "xmlns" not in document  # namespace URLs removed from inline SVG


def test_inline_svgs_do_not_share_ids(report):
    ids = [attrs["id"] for _, attrs in _parse(report.to_html()).tags if "id" in attrs]
    assert len(ids) == len(set(ids))


def test_figures_and_tables_are_numbered_in_order(report):
    document = report.to_html()
    figures = re.findall(r'<span class="label">Figure (\d+)\.</span> ([^<]+)</figcaption>', document)
    assert figures == [("1", "ROC curves"), ("2", "Saved PNG"), ("3", "Inline SVG"), ("4", "Saved SVG")]
    tables = re.findall(r'<span class="label">Table (\d+)\.</span> ([^<]+)</caption>', document)
    assert tables == [("1", "Discrimination"), ("2", "Counts")]
    assert 'id="figure-4"' in document and 'id="table-2"' in document
    assert "0.81" in document and "0.81234" not in document  # float_format applied
    assert "DeLong 95% CI." in document
    # Table of contents links to every section.
    assert '<a href="#cohort">Cohort</a>' in document and '<a href="#models">Models</a>' in document


def test_all_text_is_escaped():
    report = Report(EVIL, subtitle=EVIL, footer=EVIL)
    report.add_section("s1", EVIL, text=EVIL)
    frame = pd.DataFrame({"case_id": [EVIL], EVIL: [1.0]}).set_index("case_id")
    report.add_table("s1", frame, EVIL, note=EVIL)
    report.add_figure("s1", _figure(), EVIL)
    report.add_code("s1", EVIL, caption=EVIL)
    report.add_text("s1", EVIL)
    document = report.to_html()
    assert "<script" not in document.lower()
    assert document.count("&lt;script&gt;") >= 9
    assert 'alt="&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"' in document


def test_trusted_html_must_not_load_external_content():
    report = Report("r")
    report.add_section("links", "Links", html='<p><a href="#links">here</a></p>')
    report.to_html()  # internal anchors are fine
    report.add_section("bad", "Bad", html='<p><a href="https://example.org">site</a></p>')
    with pytest.raises(ExternalReferenceError, match="example.org"):
        report.to_html()
    other = Report("r")
    other.add_section("img", "Image", html='<img src="figure.png">')
    with pytest.raises(ExternalReferenceError, match="figure.png"):
        other.to_html()


def test_section_errors_name_the_id(tmp_path):
    report = Report("r")
    report.add_section("a", "A")
    with pytest.raises(ValueError, match="'a' is already used"):
        report.add_section("a", "again")
    with pytest.raises(ValueError, match="not valid"):
        report.add_section("1 bad id", "B")
    with pytest.raises(ValueError, match=r"no section with id 'b' \(sections: a\)"):
        report.add_table("b", pd.DataFrame({"x": [1]}), "t")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        report.add_figure("a", tmp_path / "missing.png", "c")
    scripted = tmp_path / "scripted.svg"
    scripted.write_text('<svg><script>alert(1)</script></svg>')
    with pytest.raises(ValueError, match="scripted.svg contains scripts"):
        report.add_figure("a", scripted, "c")
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    with pytest.raises(ValueError, match="not a PNG, JPEG or SVG"):
        report.add_figure("a", text_file, "c")
    with pytest.raises(TypeError, match="matplotlib Figure"):
        report.add_figure("a", 42, "c")
    with pytest.raises(ValueError, match="title is empty"):
        Report("  ")


def test_add_table_accepts_result_objects_with_to_frame():
    class Result:
        note = "computed on the external set"

        def to_frame(self):
            return pd.DataFrame({"AUC": [0.75]}, index=["model"])

    report = Report("r").add_section("s", "S")
    report.add_table("s", Result(), "Result")
    document = report.to_html()
    assert "0.750" in document and "computed on the external set" in document


def test_external_references_finds_css_urls_but_not_fragments_or_data():
    assert external_references('<p style="background: url(#grad)">x</p><img src="data:image/png;base64,AA==">') == []
    assert external_references('<p style="background: url(bg.png)">x</p>')
    assert external_references("<style>@import 'print.css';</style>")
    assert external_references("<style>body { background: url('https://example.org/a.png') }</style>")
    assert external_references('<svg><use xlink:href="other.svg#icon"></use></svg>')
    assert external_references('<svg><use xlink:href="#icon"></use></svg>') == []


def test_estimate_with_ci_cells_do_not_wrap():
    report = Report("CI cells")
    report.add_section("s", "S")
    report.add_table("s", pd.DataFrame({"AUC (95% CI)": ["0.812 (0.741-0.883)"], "n": [40]}), "t",
                     float_format="{}")
    page = report.to_html()
    assert '<td class="ci">0.812 (0.741-0.883)</td>' in page and "<td>40</td>" in page
    assert re.search(r"td\.ci\s*\{\s*white-space:\s*nowrap", page)
