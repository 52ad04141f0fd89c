"""Tests of sonorad.report.clear: the CLEAR checklist items and how a run fills them."""

from types import SimpleNamespace

import pandas as pd
import pytest

from sonorad.report.clear import CLEAR_ITEMS, CLEAR_SECTIONS, RUN_ITEMS, clear_checklist, run_clear_items
from sonorad.report.sections.common import SECTION_TITLES


def test_58_items_numbered_1_to_58_in_the_checklist_sections():
    numbers = [item[0] for item in CLEAR_ITEMS]
    assert numbers == list(range(1, 59))
    assert {item[1] for item in CLEAR_ITEMS} == set(CLEAR_SECTIONS)
    # sections follow the checklist's order, and each item text is given
    order = [CLEAR_SECTIONS.index(item[1]) for item in CLEAR_ITEMS]
    assert order == sorted(order) and all(item[2].strip() for item in CLEAR_ITEMS)
    assert dict((n, s) for n, s, _ in CLEAR_ITEMS)[45] == "Results"


def test_run_known_items_point_to_report_sections_that_exist():
    assert set(RUN_ITEMS) <= set(range(1, 59))
    assert {section for section, _ in RUN_ITEMS.values()} <= set(SECTION_TITLES)
    table = clear_checklist()
    assert len(table) == 58 and table["item"].is_unique
    assert set(table.loc[table["filled_by"] == "run", "item"]) == set(RUN_ITEMS)
    authors = table[table["filled_by"] == "authors"]
    assert {8, 18, 19, 20, 49}.issubset(set(authors["item"]))
    assert (authors["addressed_in"] == "to be completed by the authors").all()


def test_a_run_fills_what_it_did_and_only_that():
    parts = pd.Series(["train", "train", "external"], index=["a", "b", "c"])
    bare = SimpleNamespace(study=SimpleNamespace(variables={}), parts=parts,
                           explanations=SimpleNamespace(nomogram=None, shap=None, gradcam=()),
                           evaluation=SimpleNamespace(metrics=pd.DataFrame({"model": ["lr"]})))
    items = run_clear_items(bare)
    assert 43 not in items and 17 not in items and 42 not in items
    assert "external" in items[38][1]
    full = SimpleNamespace(study=SimpleNamespace(variables={"birads": object()}), parts=parts,
                           explanations=SimpleNamespace(nomogram=object(), shap=object(), gradcam=()),
                           evaluation=SimpleNamespace(metrics=pd.DataFrame({"model": ["lr", "clinical_lr"]})))
    items = run_clear_items(full)
    assert items[43] == ("nomogram", "nomogram, SHAP values") and items[17][0] == "clinical"
    assert 42 in items and 48 in items
    assert {section for section, _ in items.values()} <= set(SECTION_TITLES)


def test_bad_item_numbers_are_named():
    with pytest.raises(ValueError, match="not a CLEAR item number"):
        clear_checklist({59: "Methods"})
    with pytest.raises(ValueError, match="item 4: the report section is empty"):
        clear_checklist({4: " "})


def test_automatic_rois_answer_the_segmentation_item():
    parts = pd.Series(["train", "external"], index=["a", "b"])
    base = dict(study=SimpleNamespace(variables={}), parts=parts,
                explanations=SimpleNamespace(nomogram=None, shap=None, gradcam=()),
                evaluation=SimpleNamespace(metrics=pd.DataFrame({"model": ["lr"]})))
    assert 19 not in run_clear_items(SimpleNamespace(**base, feature_summary={}))
    run = SimpleNamespace(**base, feature_summary={"automatic_rois": {"n_automatic": 3, "n_rois": 10}})
    section, text = run_clear_items(run)[19]
    assert section in SECTION_TITLES and "3 of 10 ROIs proposed by a box-prompted segmenter" in text
