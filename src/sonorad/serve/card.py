"""The calculator's model-card page: ``card.json`` in plain words, as HTML.

The words come from :func:`sonorad.bundle.card.readable_card` (the one vocabulary of the card's
fields, also used by ``card.md``); this module only writes them as HTML, every text escaped.
"""

from __future__ import annotations

import html
from importlib import resources

from sonorad.bundle.card import readable_card

__all__ = ["card_html"]

TEMPLATE = resources.files("sonorad.serve") / "static" / "card.html"


def _block_html(block) -> str:
    """A sentence, a list of blocks, a table or label/value pairs of :func:`readable_card` as HTML."""
    if isinstance(block, str):
        return f"<p>{html.escape(block)}</p>"
    if isinstance(block, list):
        items = "".join(f"<li>{html.escape(b) if isinstance(b, str) else _block_html(b)}</li>" for b in block)
        return f"<ul>{items}</ul>"
    if "table" in block:
        head = "".join(f"<th scope=\"col\">{html.escape(h)}</th>" for h in block["table"])
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block["rows"])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    rows = "".join(f"<tr><th scope=\"row\">{html.escape(label)}</th><td>"
                   f"{html.escape(value) if isinstance(value, str) else _block_html(value)}</td></tr>"
                   for label, value in block["pairs"])
    return f"<table>{rows}</table>"


def card_html(card: dict, identity: dict, research_use: str) -> str:
    """The model card page: the card's sections in plain words, in a fixed order.

    Parameters
    ----------
    card : dict
        The bundle's ``card.json``.
    identity : dict
        The bundle's identity; its ``sha256`` is shown in the footer.
    research_use : str
        The research-use notice shown at the top.

    Returns
    -------
    str
        The page (``static/card.html`` filled in).
    """
    title = html.escape(str(card.get("title") or "Model card"))
    body = "".join(f'<section class="card-section" id="card-{html.escape(s["key"])}"><h2>{html.escape(s["title"])}'
                   f'</h2>{"".join(_block_html(b) for b in s["blocks"])}</section>' for s in readable_card(card))
    template = TEMPLATE.read_text(encoding="utf-8")
    return (template.replace("{{sha256}}", html.escape(str(identity["sha256"])))
            .replace("{{research_use}}", html.escape(research_use))
            .replace("{{title}}", title).replace("{{card}}", body))
