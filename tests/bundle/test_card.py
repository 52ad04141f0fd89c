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
                 calibration={"slope": 0.95}, limitations=["one vendor"], contact="radiology@example.org")
    text = card_markdown(card)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == ["# sonorad model: clnm", "## Intended use", "## Not intended for", "## Cohorts",
                        "## External validation", "## Calibration", "## Models in this bundle",
                        "## Training data in this bundle", "## Limitations", "## Other"]
    assert "AUC 0.812 (95% CI 0.700-0.900) on external, lr" in text
    assert "| cohort | n | events |" in text and "| external | 50 |  |" in text
    assert "- slope: 0.950" in text and "- children" in text and "- one vendor" in text
    assert "Chosen model: **lr**, cut-off 0.4123" in text
    assert "| lr | LogisticRegression | 0.4123 | no |" in text and "| knn | KNeighborsClassifier |  | yes |" in text
    assert "keep training feature vectors by their nature: knn" in text
    assert "left out of the bundle: svm" in text
    assert '- contact: "radiology@example.org"' in text
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
