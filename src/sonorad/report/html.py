"""One self-contained HTML report: sections, numbered figures and tables, formulas.

:class:`Report` collects sections and their content in order and writes a single ``.html`` file a
person can e-mail, archive or print: figures are embedded (PNG as base64 ``data:`` URIs, SVG inline),
the style sheet is inline, there is no JavaScript and no reference to any external file or URL.
Every text given to the builder is HTML-escaped; only ``add_section(..., html=...)`` inserts markup
as given, and :meth:`Report.to_html` refuses a document that would load anything from outside.

Figures and tables are numbered in document order (Figure 1, Figure 2, ...; Table 1, ...) and get
anchors ``figure-1``, ``table-1`` so the text can link to them.

Examples
--------
>>> import pandas as pd
>>> report = (Report("Breast lesion DLR study", subtitle="BUS-BRA, 4 centers")
...           .add_section("methods", "Methods", text="Features were extracted with PyRadiomics.")
...           .add_table("methods", pd.DataFrame({"AUC": [0.81]}, index=["LR"]), "Discrimination"))
>>> "Table 1." in report.to_html()
True
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from sonorad.provenance import atomic_write_text

__all__ = ["Report", "ExternalReferenceError", "external_references"]

_SECTION_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
# Attributes through which a browser fetches something.
_FETCHING_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "data", "action", "formaction", "poster",
                        "background"}


# A CSS url() that is neither a data: URI nor a fragment (#id) of this document.
#: a table cell holding ``estimate (low-high)`` or ``estimate (low to high)`` (format_ci)
_CI_CELL = re.compile(r"<td>(-?[0-9][0-9.e+-]* \((?:-?[0-9][0-9.e+-]*)(?:-| to )-?[0-9][0-9.e+-]*\))</td>")
_EXTERNAL_CSS_URL = re.compile(r"url\(\s*['\"]?(?!data:|#)", re.I)


class ExternalReferenceError(ValueError):
    """The document would load a file or URL from outside itself."""


@dataclass
class _Item:
    kind: str  # text, html, figure, table, code
    body: str
    caption: str | None = None
    note: str | None = None


@dataclass
class _Section:
    id: str
    title: str
    items: list[_Item] = field(default_factory=list)


def _paragraphs(text: str) -> str:
    """Plain text -> escaped ``<p>`` blocks (blank line = new paragraph, newline = line break)."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", str(text).strip()) if b.strip()]
    return "\n".join("<p>" + html.escape(b).replace("\n", "<br>\n") + "</p>" for b in blocks)


def _figure_png(fig, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _figure_svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def _clean_svg(svg: str, source: str, prefix: str, alt: str) -> str:
    """Make an SVG document embeddable inline: drop the XML prolog, doctype, metadata and namespaces.

    The HTML parser knows the SVG and XLink namespaces, so the ``xmlns`` declarations (which are
    URLs) are not needed; matplotlib's RDF metadata only names the producing software. Element ids
    get ``prefix`` so that two inline figures never share an id (ids are global in an HTML page).
    """
    start = svg.find("<svg")
    if start < 0:
        raise ValueError(f"{source} is not an SVG image (no <svg> element). Fix: pass a PNG or SVG file")
    svg = svg[start:]
    if re.search(r"<script|<[^>]*\son[a-z]+\s*=", svg, flags=re.I):
        raise ValueError(f"{source} contains scripts or event handlers, which a report does not run. Fix: "
                         "export the figure again without interactivity (matplotlib SVG has none)")
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    svg = re.sub(r'(\bid="|url\(#|href="#)([^")]+)',
                 lambda m: m.group(1) + prefix + m.group(2) if m.group(2) in ids else m.group(0), svg)
    svg = svg.replace("<svg", f'<svg role="img" aria-label="{alt}"', 1)  # the alt text of an inline image
    return svg.strip()


def _image_html(fig_or_path, dpi: int, fmt: str, alt: str, prefix: str) -> str:
    alt = html.escape(alt, quote=True)
    if isinstance(fig_or_path, (str, Path)):
        path = Path(fig_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"figure file {path} does not exist. Fix: save the figure first "
                                    "(sonorad.report.save_figure) or pass the matplotlib Figure itself")
        data = path.read_bytes()
        if data.startswith(_PNG_SIGNATURE):
            mime = "image/png"
        elif data.startswith(_JPEG_SIGNATURE):
            mime = "image/jpeg"
        elif path.suffix.lower() == ".svg":
            return _clean_svg(data.decode("utf-8"), str(path), prefix, alt)
        else:
            raise ValueError(f"figure file {path} is not a PNG, JPEG or SVG image. Fix: save it as PNG or SVG")
        return f'<img src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}" alt="{alt}">'
    if not hasattr(fig_or_path, "savefig"):
        raise TypeError("a figure must be a matplotlib Figure or the path of a PNG / JPEG / SVG file; got "
                        f"{type(fig_or_path).__name__}")
    if fmt == "svg":
        return _clean_svg(_figure_svg(fig_or_path), "the figure", prefix, alt)
    png = base64.b64encode(_figure_png(fig_or_path, dpi)).decode("ascii")
    return f'<img src="data:image/png;base64,{png}" alt="{alt}">'


class _ReferenceFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            value = value.strip()
            if name in _FETCHING_ATTRIBUTES and value and not value.startswith(("#", "data:")):
                self.found.append(f"<{tag} {name}={value[:80]!r}>")
            if name == "style" and _EXTERNAL_CSS_URL.search(value):
                self.found.append(f"<{tag} style={value[:80]!r}>")

    def handle_data(self, data):
        if self.lasttag == "style" and _EXTERNAL_CSS_URL.search(data):
            self.found.append("url(...) in a <style> block")
        if self.lasttag == "style" and "@import" in data:
            self.found.append("@import in a <style> block")


def external_references(document: str) -> list[str]:
    """Every place where an HTML document would fetch something from outside itself.

    Links within the page (``#anchor``) and ``data:`` URIs are internal; text (including URLs written
    as plain text in citations) is not a reference.

    Parameters
    ----------
    document : str
        HTML text.

    Returns
    -------
    list of str
        One short description per external reference (empty when self-contained).
    """
    finder = _ReferenceFinder()
    finder.feed(document)
    finder.close()
    return finder.found


class Report:
    """A self-contained HTML report built section by section.

    Parameters
    ----------
    title : str
        Report title (page title and heading).
    subtitle : str, optional
        A line under the title (study, cohort, date).
    footer : str, optional
        Text at the end of the report (e.g. software versions, generation date).
    dpi : int, optional
        Resolution at which matplotlib Figures are embedded as PNG (default 150; files saved with
        :func:`sonorad.report.save_figure` are 300 dpi).

    Notes
    -----
    Sections appear in the order they were added; each has an ``id`` used as its anchor in the table
    of contents and as the target of :meth:`add_figure`, :meth:`add_table`, :meth:`add_code` and
    :meth:`add_text`.
    """

    def __init__(self, title: str, subtitle: str | None = None, *, footer: str | None = None, dpi: int = 150):
        if not str(title).strip():
            raise ValueError("title is empty. Fix: give the report a title (e.g. the study name)")
        self.title = str(title)
        self.subtitle = subtitle
        self.footer = footer
        self.dpi = int(dpi)
        self._sections: dict[str, _Section] = {}
        self._n_images = 0

    # --- building --------------------------------------------------------------------------------

    @property
    def section_ids(self) -> list[str]:
        """Ids of the sections added so far, in order."""
        return list(self._sections)

    def add_section(self, id: str, title: str, *, text: str | None = None, html: str | None = None) -> Report:
        """Add a section.

        Parameters
        ----------
        id : str
            Anchor of the section: a letter followed by letters, digits, ``-`` or ``_``; unique.
        title : str
            Heading (escaped).
        text : str, optional
            Plain text (escaped); a blank line starts a new paragraph.
        html : str, optional
            Trusted HTML inserted as given (after ``text``). It must not load external resources;
            :meth:`to_html` checks.

        Returns
        -------
        Report
            ``self``, so calls can be chained.
        """
        if not isinstance(id, str) or not _SECTION_ID.match(id):
            raise ValueError(f"section id {id!r} is not valid. Fix: use a letter followed by letters, digits, "
                             "'-' or '_' (e.g. 'baseline', 'model-performance')")
        if id in self._sections:
            raise ValueError(f"section id {id!r} is already used. Fix: give each section its own id")
        section = _Section(id, str(title))
        self._sections[id] = section
        if text is not None:
            section.items.append(_Item("text", _paragraphs(text)))
        if html is not None:
            section.items.append(_Item("html", str(html)))
        return self

    def _section(self, section_id: str) -> _Section:
        if section_id not in self._sections:
            known = ", ".join(self._sections) or "none yet"
            raise ValueError(f"no section with id {section_id!r} (sections: {known}). Fix: call "
                             f"add_section({section_id!r}, title) first")
        return self._sections[section_id]

    def add_text(self, section_id: str, text: str) -> Report:
        """Add plain-text paragraphs (escaped) to a section."""
        self._section(section_id).items.append(_Item("text", _paragraphs(text)))
        return self

    def add_figure(self, section_id: str, fig_or_path, caption: str, *, format: str = "png") -> Report:
        """Add a numbered figure.

        Parameters
        ----------
        section_id : str
            The section it belongs to.
        fig_or_path : matplotlib.figure.Figure or str or Path
            A Figure (rendered now, so later changes to it are not seen) or a PNG / JPEG / SVG file.
        caption : str
            Caption (escaped), shown as ``Figure N. caption``.
        format : {"png", "svg"}
            How a Figure is embedded: base64 PNG at ``dpi`` or inline SVG (vector, larger for
            scatter-heavy plots). Files keep their own format.
        """
        if format not in ("png", "svg"):
            raise ValueError(f"format must be 'png' or 'svg'; got {format!r}")
        section = self._section(section_id)
        self._n_images += 1
        body = _image_html(fig_or_path, self.dpi, format, caption, prefix=f"img{self._n_images}-")
        section.items.append(_Item("figure", body, caption=str(caption)))
        return self

    def add_table(self, section_id: str, df: pd.DataFrame, caption: str, *, float_format="{:.3f}",
                  note: str | None = None, index: bool = True) -> Report:
        """Add a numbered table.

        Parameters
        ----------
        section_id : str
            The section it belongs to.
        df : pandas.DataFrame
            The table; an object with ``to_frame()`` (a result dataclass, a ``BaselineTable``) is
            converted with it. Every cell, header and index value is escaped.
        caption : str
            Caption (escaped), shown as ``Table N. caption``.
        float_format : str or callable, optional
            Format of float cells: a ``str.format`` pattern (``"{:.3f}"``) or a function.
        note : str, optional
            Footnote under the table (escaped), e.g. ``BaselineTable.note``.
        index : bool, optional
            Show the index (default True).
        """
        section = self._section(section_id)
        if not isinstance(df, pd.DataFrame) and hasattr(df, "to_frame"):
            if note is None and isinstance(getattr(df, "note", None), str):
                note = df.note
            df = df.to_frame()
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"add_table needs a pandas DataFrame; got {type(df).__name__}")
        formatter = float_format.format if isinstance(float_format, str) else float_format
        body = df.to_html(escape=True, border=0, na_rep="—", float_format=formatter, index=index,
                          classes="data-table")
        body = re.sub(r"^<table[^>]*>", '<table class="data-table">', body.lstrip(), count=1)
        body = _CI_CELL.sub(r'<td class="ci">\1</td>', body)  # an estimate with its CI stays on one line
        section.items.append(_Item("table", body, caption=str(caption), note=note))
        return self

    def add_code(self, section_id: str, text: str, caption: str | None = None) -> Report:
        """Add preformatted text (a formula such as the Rad-score, a command), escaped."""
        self._section(section_id).items.append(_Item("code", html.escape(str(text)), caption=caption))
        return self

    # --- rendering -------------------------------------------------------------------------------

    def to_html(self) -> str:
        """The whole document as a string.

        Raises
        ------
        ExternalReferenceError
            When trusted HTML given to :meth:`add_section` would load an external file or URL.
        """
        esc = html.escape
        toc = "\n".join(f'<li><a href="#{s.id}">{esc(s.title)}</a></li>' for s in self._sections.values())
        counters = {"figure": 0, "table": 0}
        parts = []
        for section in self._sections.values():
            parts.append(f'<section id="{section.id}">\n<h2>{esc(section.title)}</h2>')
            for item in section.items:
                parts.append(self._render_item(item, counters))
            parts.append("</section>")
        subtitle = f'<p class="subtitle">{esc(self.subtitle)}</p>' if self.subtitle else ""
        footer = f"<footer>{_paragraphs(self.footer)}</footer>" if self.footer else ""
        document = _TEMPLATE.format(title=esc(self.title), subtitle=subtitle, toc=toc, body="\n".join(parts),
                                    footer=footer, css=_CSS)
        found = external_references(document)
        if found:
            raise ExternalReferenceError(
                "the report would load content from outside the file: " + "; ".join(found[:5])
                + ". Fix: embed images with add_figure and remove external links from the html given to "
                "add_section (write URLs as plain text)")
        return document

    @staticmethod
    def _render_item(item: _Item, counters: dict) -> str:
        esc = html.escape
        if item.kind in ("text", "html"):
            return item.body
        if item.kind == "code":
            caption = f'<p class="code-caption">{esc(item.caption)}</p>' if item.caption else ""
            return f'{caption}<pre class="code"><code>{item.body}</code></pre>'
        counters[item.kind] += 1
        number = counters[item.kind]
        if item.kind == "figure":
            return (f'<figure id="figure-{number}">\n{item.body}\n<figcaption><span class="label">Figure {number}.'
                    f"</span> {esc(item.caption)}</figcaption>\n</figure>")
        note = f'<p class="table-note">{esc(item.note)}</p>' if item.note else ""
        body = item.body.replace('<table class="data-table">',
                                 f'<table class="data-table">\n<caption><span class="label">Table {number}.</span> '
                                 f"{esc(item.caption)}</caption>", 1)
        return f'<div class="table-wrap" id="table-{number}">\n{body}\n{note}</div>'

    def write(self, path: str | Path) -> Path:
        """Write the report to one ``.html`` file (UTF-8) and return its path.

        Parameters
        ----------
        path : str or Path
            Output file; its folder is created when missing.
        """
        path = Path(path)
        document = self.to_html()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, document)  # an interrupted write never leaves a half report
        return path


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<nav class="toc" aria-label="Contents">
<p class="toc-title">Contents</p>
<ol>
{toc}
</ol>
</nav>
<main>
<header>
<h1>{title}</h1>
{subtitle}
</header>
{body}
{footer}
</main>
</body>
</html>
"""

_CSS = """
:root { --ink: #1f2328; --muted: #59636e; --rule: #d0d7de; --accent: #0b5cad; --bg-soft: #f6f8fa; }
* { box-sizing: border-box; }
html { font-size: 16px; }
body { margin: 0; color: var(--ink); background: #fff; display: flex; align-items: flex-start;
  font-family: Georgia, "Times New Roman", serif; line-height: 1.55; }
nav.toc { position: sticky; top: 0; flex: 0 0 15rem; max-height: 100vh; overflow-y: auto;
  padding: 1.5rem 1rem; border-right: 1px solid var(--rule); background: var(--bg-soft);
  font-family: "Helvetica Neue", Arial, sans-serif; font-size: 0.9rem; }
nav.toc .toc-title { font-weight: bold; margin: 0 0 0.5rem; text-transform: uppercase; letter-spacing: 0.05em;
  color: var(--muted); font-size: 0.8rem; }
nav.toc ol { margin: 0; padding-left: 1.2rem; }
nav.toc li { margin: 0.25rem 0; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
main { flex: 1 1 auto; max-width: 62rem; padding: 1.5rem 2.5rem 4rem; min-width: 0; }
header h1 { font-size: 1.9rem; line-height: 1.2; margin: 0.5rem 0 0.25rem; }
.subtitle { color: var(--muted); margin: 0 0 1.5rem; font-size: 1.05rem; }
h2 { font-size: 1.35rem; border-bottom: 1px solid var(--rule); padding-bottom: 0.25rem; margin-top: 2.25rem; }
section { scroll-margin-top: 1rem; }
p { margin: 0.6rem 0; max-width: 48rem; }
figure { margin: 1.25rem 0; break-inside: avoid; page-break-inside: avoid; }
figure img, figure svg { max-width: 100%; height: auto; display: block; }
figcaption, caption { font-family: "Helvetica Neue", Arial, sans-serif; font-size: 0.9rem; color: var(--muted);
  text-align: left; margin-top: 0.4rem; }
caption { caption-side: top; margin: 0 0 0.4rem; }
.label { font-weight: bold; color: var(--ink); }
.table-wrap { margin: 1.25rem 0; overflow-x: auto; break-inside: avoid; page-break-inside: avoid; }
table { border-collapse: collapse; font-family: "Helvetica Neue", Arial, sans-serif; font-size: 0.85rem;
  font-variant-numeric: tabular-nums; }
th, td { padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
td.ci { white-space: nowrap; }
thead th { border-bottom: 2px solid var(--ink); }
table { border-top: 2px solid var(--ink); border-bottom: 2px solid var(--ink); }
tbody tr:nth-child(even) { background: var(--bg-soft); }
tbody th { font-weight: normal; }
.table-note { font-size: 0.8rem; color: var(--muted); margin-top: 0.4rem; }
pre.code { background: var(--bg-soft); border: 1px solid var(--rule); border-radius: 4px; padding: 0.75rem 1rem;
  overflow-x: auto; font-size: 0.85rem; white-space: pre-wrap; }
.code-caption { font-family: "Helvetica Neue", Arial, sans-serif; font-size: 0.9rem; color: var(--muted); }
footer { margin-top: 3rem; padding-top: 0.75rem; border-top: 1px solid var(--rule); color: var(--muted);
  font-size: 0.85rem; }
@media (max-width: 800px) { body { display: block; } nav.toc { position: static; max-height: none;
  border-right: none; border-bottom: 1px solid var(--rule); } main { padding: 1rem; } }
@media print {
  nav.toc { display: none; }
  body { display: block; font-size: 11pt; }
  main { max-width: none; padding: 0; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  tbody tr:nth-child(even) { background: none; }
}
"""
