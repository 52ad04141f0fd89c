"""The model-card page: card.json in plain words, every text escaped."""

from __future__ import annotations

import html
import re

import pytest

from sonorad.serve.card import card_html

RAW = ("citl", "eavg", "hl_p", "hl p", "keeps_training_vectors", "sonorad_version", "models_keeping")
CLASS_PATH = re.compile(r"\b[a-z_]+(\.[a-z_]+)+\.[A-Z]\w+")  # sonorad.designs.base.ScoreStack

CARD = {"title": "sonorad model: clnm", "intended_use": "Research use only.", "design": "score_fusion",
        "chosen_model": "logistic_regression",
        "external_auc": {"auc": 0.91, "low": 0.84, "high": 0.99, "cohort": "external", "model": "logistic_regression"},
        "calibration": {"cohort": "external", "citl": -0.178, "intercept": -0.129, "slope": 1.138, "brier": 0.103,
                        "eavg": 0.024, "hl_p": 0.0},
        "bundle": {"sonorad_version": "0.1.0", "chosen_model": "logistic_regression", "cutoff": 0.317,
                   "models": {"logistic_regression": {"class": "sonorad.designs.base.ScoreStack", "cutoff": 0.317,
                                                      "keeps_training_vectors": False},
                              "knn": {"class": "sonorad.designs.base.ScoreStack", "cutoff": 0.3,
                                      "keeps_training_vectors": True}},
                   "excluded_models": ["svm"], "models_keeping_training_vectors": ["knn"]}}


def _shown(page: str) -> str:
    """The page's text as a reader sees it (tags out, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _assert_in_words(text: str):
    for raw in RAW:
        assert raw not in text, raw
    assert not CLASS_PATH.search(text), CLASS_PATH.search(text)


def test_the_card_page_says_the_card_in_words():
    text = _shown(card_html(CARD, {"sha256": "ab" * 32}, "Research use only."))
    _assert_in_words(text)
    assert "Calibration-in-the-large" in text and "Average absolute calibration error (Eavg)" in text
    assert "Hosmer-Lemeshow test p-value" in text and "< 0.001" in text and "0.000" not in text
    assert "Logistic regression" in text and "k-nearest neighbours" in text
    assert "cut-off 0.3170: a probability at or above it puts a patient in the high-risk group" in text
    assert "AUC 0.910 (95% CI 0.840 to 0.990) on the external cohort" in text and "ab" * 32 in text


def test_the_card_page_escapes_what_the_card_holds():
    page = card_html({**CARD, "title": "<script>x</script>", "limitations": ["<b>one vendor</b>"]},
                     {"sha256": "0"}, "Research use only.")
    assert "<script>x" not in page and "<b>one" not in page and "&lt;b&gt;one vendor&lt;/b&gt;" in page


@pytest.fixture(scope="module")
def client(small_bundle):
    from fastapi.testclient import TestClient

    from sonorad.bundle import load_bundle
    from sonorad.serve.app import create_app

    with TestClient(create_app(load_bundle(small_bundle.path)), base_url="http://127.0.0.1") as c:
        yield c


def test_a_test_bundle_s_card_page_has_no_raw_key_and_card_json_keeps_them(client):
    page = client.get("/model-card")
    assert page.status_code == 200
    text = _shown(page.text)
    _assert_in_words(text)
    assert "Calibration slope" in text and "Logistic regression on the Rad-score with the clinical variables" in text
    card = client.get("/api/card").json()["card"]
    assert "slope" in card["calibration"] and card["bundle"]["models"]                 # machine-readable as before
    assert all("." in m["class"] for m in card["bundle"]["models"].values())

