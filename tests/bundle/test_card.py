"""sonorad.bundle.card: the model card completed with what the bundle knows, and its markdown."""

from __future__ import annotations

from pathlib import Path

from sonorad.bundle.card import card_markdown, complete_card

MODELS = {"lr": {"class": "LogisticRegression", "keeps_training_vectors": False},
          "knn": {"class": "KNeighborsClassifier", "keeps_training_vectors": True}}


def _card(**study_card):
    return complete_card(study_card, models=MODELS, chosen="lr", cutoffs={"lr": 0.412345678}, excluded=["svm"],
                         study={"name": "clnm"}, sonorad_version="0.1.0")


def test_complete_card_adds_the_bundle_entries_to_a_copy_of_the_study_card():
    study_card = {"intended_use": "Research use only", "source": Path("studies/clnm.yaml")}
    card = complete_card(study_card, models=MODELS, chosen="lr", cutoffs={"lr": 0.4}, excluded=["svm"],
                         study={"name": "clnm"}, sonorad_version="0.1.0")
    assert "bundle" not in study_card and "title" not in study_card  # the study's card is left alone
    assert card["title"] == "sonorad model: clnm" and card["source"] == "studies/clnm.yaml"
    assert card["bundle"] == {
        "sonorad_version": "0.1.0", "chosen_model": "lr", "cutoff": 0.4,
        "models": {"lr": {"class": "LogisticRegression", "cutoff": 0.4, "keeps_training_vectors": False},
                   "knn": {"class": "KNeighborsClassifier", "cutoff": None, "keeps_training_vectors": True}},
        "excluded_models": ["svm"], "models_keeping_training_vectors": ["knn"]}
    assert complete_card({"title": "Mine"}, models={}, chosen="lr", cutoffs={}, excluded=[], study={},
                         sonorad_version="0.1.0")["title"] == "Mine"


def test_card_markdown_renders_every_section_of_the_card():
    card = _card(intended_use="Research use only.", not_intended_for=["children"],
                 cohorts={"training": {"n": 100, "events": 40}, "external": 50},
                 external_auc={"auc": 0.8123, "low": 0.7, "high": 0.9, "cohort": "external", "model": "lr"},
                 calibration={"slope": 0.95, "hl_p": 0.00002}, limitations=["one vendor"],
                 contact="radiology@example.org")
    text = card_markdown(card)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == ["# sonorad model: clnm", "## Intended use", "## Not intended for", "## Cohorts",
                        "## External validation", "## Calibration", "## Models in this bundle",
                        "## Training data in this bundle", "## Limitations", "## Other"]
    assert "AUC 0.812 (95% CI 0.700-0.900) on external, lr" in text
    assert "| cohort | n | events |" in text and "| external | 50 |  |" in text
    assert "- Calibration slope (ideal 1; below 1: the predicted risks are too extreme" in text and ": 0.950" in text
    assert "- Hosmer-Lemeshow test p-value" in text and ": < 0.001" in text and "hl_p" not in text
    assert "- children" in text and "- one vendor" in text
    assert "Chosen model: **lr**, cut-off 0.4123" in text
    assert "| lr | Logistic regression | 0.4123 | no |" in text and "| knn | k-nearest neighbours |  | yes |" in text
    assert "keep training feature vectors by their nature: knn" in text
    assert "left out of the bundle: svm" in text
    assert "- Contact: radiology@example.org" in text
    assert text.endswith("Written by sonorad 0.1.0.\n")


def test_a_card_without_study_entries_still_lists_the_models():
    card = complete_card({}, models={"lr": MODELS["lr"]}, chosen="lr", cutoffs={}, excluded=[], study={},
                         sonorad_version="0.1.0")
    text = card_markdown(card)
    assert "## Intended use" not in text and "## Other" not in text
    assert "cut-off none" in text and "keep training feature vectors by their nature" not in text
    assert "left out of the bundle" not in text


def test_card_markdown_lists_the_training_centers_acquisition():
    import json

    import numpy as np

    records = [{"center": "BUS-BRA", "cases": 240, "with_spacing": 0, "spacing_from": "none", "spacing_mm": "",
                "median_spacing_mm": np.nan, "image_size": "500-600 x 700", "bit_depth": "8", "format": "PNG",
                "scanner": ""},
               {"center": "C2", "cases": 60, "with_spacing": 60, "spacing_from": "file", "spacing_mm": "0.08-0.1",
                "median_spacing_mm": 0.09, "image_size": "480 x 640", "bit_depth": "16", "format": "DICOM",
                "scanner": "Acme X1"}]
    card = _card(acquisition=records)
    json.loads(json.dumps(card))  # still JSON (as card.json)
    text = card_markdown(card)
    assert "## Acquisition of the training data" in text and "## Other" not in text
    assert ("| Center | Cases | Format | Pixel spacing (mm) | Spacing from | Image size (rows x cols) | Bit depth "
            "| Scanner |") in text
    assert "| BUS-BRA | 240 | PNG | none: features in pixels | none | 500-600 x 700 | 8 | not recorded |" in text
    assert "| C2 | 60 | DICOM | 0.08-0.1 (median 0.09) | image file | 480 x 640 | 16 | Acme X1 |" in text
    assert "## Acquisition" not in card_markdown(_card())


# --- the card in words ------------------------------------------------------------------------------

DEMO_LIKE = {"title": "sonorad model: clnm", "intended_use": "Research use only.", "design": "score_fusion",
             "chosen_model": "logistic_regression",
             "external_auc": {"auc": 0.91, "low": 0.84, "high": 0.99, "cohort": "external",
                              "model": "logistic_regression"},
             "calibration": {"cohort": "external", "citl": -0.178, "intercept": -0.129, "slope": 1.138,
                             "brier": 0.103, "eavg": 0.024, "hl_p": 0.0004},
             "bundle": {"sonorad_version": "0.1.0", "chosen_model": "logistic_regression", "cutoff": 0.317,
                        "models": {"rad_score": {"class": "sonorad.designs.base.ColumnModel", "cutoff": 0.28,
                                                 "keeps_training_vectors": False},
                                   "logistic_regression": {"class": "sonorad.designs.base.ScoreStack",
                                                           "cutoff": 0.317, "keeps_training_vectors": False},
                                   "radiomics/knn": {"class": "sklearn.pipeline.Pipeline", "cutoff": 0.3,
                                                     "keeps_training_vectors": True}},
                        "excluded_models": [], "models_keeping_training_vectors": ["radiomics/knn"]}}


def _texts(block) -> list[str]:
    if isinstance(block, str):
        return [block]
    if isinstance(block, list):
        return [t for b in block for t in _texts(b)]
    if "table" in block:
        return [*block["table"], *(c for row in block["rows"] for c in row)]
    return [t for label, value in block["pairs"] for t in (label, *_texts(value))]


def test_the_readable_card_says_every_key_in_words():
    from sonorad.bundle.card import readable_card

    sections = readable_card(DEMO_LIKE)
    assert [s["key"] for s in sections] == ["intended_use", "design", "chosen_model", "external_auc", "calibration",
                                            "bundle"]
    words = " ".join(t for s in sections for b in s["blocks"] for t in _texts(b))
    for label in ("Calibration-in-the-large", "Average absolute calibration error (Eavg)",
                  "Hosmer-Lemeshow test p-value", "Calibration slope", "Brier score"):
        assert label in words, label
    assert "< 0.001" in words and "0.000" not in words                  # p < 0.001 said as such
    assert "Logistic regression" in words and "k-nearest neighbours on the radiomics features" in words
    assert "Rad-score alone" in words and "score fusion: a Rad-score" in words
    assert "AUC 0.910 (95% CI 0.840 to 0.990) on the external cohort" in words
    for raw in ("citl", "eavg", "hl_p", "hl p", "sonorad.designs", "sklearn.", "ScoreStack", "keeps_training"):
        assert raw not in words, raw


def test_card_values_in_words():
    from sonorad.bundle.card import card_key_text, card_value_text, model_type

    assert card_value_text("hl_p", 0.0009) == "< 0.001" and card_value_text("hl_p", 0.731) == "0.731"
    assert card_value_text("cutoff", 0.31706) == "0.3171" and card_value_text("slope", None) == "not available"
    assert card_value_text("keeps_training_vectors", True) == "yes"
    assert card_value_text("class", "sklearn.linear_model.LogisticRegression") == "Logistic regression"
    assert model_type("unknown_thing", "pkg.mod.FancyNewClassifier") == "Fancy new classifier"
    assert card_key_text("eavg") == "average absolute calibration error (Eavg)"
    assert card_key_text("site_notes") == "site notes" and card_key_text("C1/b_2") == "C1/b_2"
