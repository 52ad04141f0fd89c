"""Tests of the paper-ready formatters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonorad.evaluation.formatting import (format_ci, format_estimate, format_p, markdown_table,
                                           paper_table)


@pytest.mark.parametrize("p,text", [
    (0.0, "<0.001"), (0.0004, "<0.001"), (0.000999, "<0.001"), (0.001, "0.001"), (0.0012, "0.001"),
    (0.04321, "0.043"), (0.0495, "0.050"), (0.5, "0.500"), (0.9996, "1.000"), (1.0, "1.000"),
    (np.float64(0.2), "0.200"), (float("nan"), ""), (None, ""),
])
def test_format_p(p, text):
    assert format_p(p) == text


def test_format_p_other_digits_and_bad_values():
    assert format_p(0.00004, digits=4) == "<0.0001" and format_p(0.01234, digits=2) == "0.01"
    assert format_p(float("nan"), na="NA") == "NA"
    for bad in (-0.01, 1.2, float("inf")):
        with pytest.raises(ValueError, match="not a p-value"):
            format_p(bad)


def test_format_ci():
    assert format_ci(0.94, 0.888, 0.992) == "0.940 (0.888-0.992)"
    assert format_ci(0.9404, 0.88849, 0.99151) == "0.940 (0.888-0.992)"
    assert format_ci(2.35, 1.1, 3.6, digits=2) == "2.35 (1.10-3.60)"
    assert format_ci(-0.56, -0.9, -0.22) == "-0.560 (-0.900 to -0.220)"
    assert format_ci(0.1, -0.05, 0.25) == "0.100 (-0.050 to 0.250)"
    assert format_ci(float("nan"), 0.1, 0.2) == "n/a"
    assert format_ci(0.5, float("nan"), 0.7) == "0.500"
    assert format_estimate(np.inf) == "n/a" and format_estimate(1, digits=1) == "1.0"


def test_paper_table_and_markdown():
    t = pd.DataFrame({"model": ["LR", "DL|score"], "n": [70, 70], "auc": [0.94, np.nan],
                      "lo": [0.888, np.nan], "hi": [0.992, np.nan], "slope": [1.1384, 0.1796],
                      "hl_p": [0.7307, 1e-9], "flag": [True, False]})
    out = paper_table(t, {"Model": "model", "n": "n", "AUC (95% CI)": ("auc", "lo", "hi"),
                          "Slope": "slope", "HL p": "hl_p", "Separated": "flag"}, p_values=["HL p"])
    assert out.to_dict("list") == {
        "Model": ["LR", "DL|score"], "n": ["70", "70"], "AUC (95% CI)": ["0.940 (0.888-0.992)", "n/a"],
        "Slope": ["1.138", "0.180"], "HL p": ["0.731", "<0.001"], "Separated": ["yes", "no"]}
    md = markdown_table(out).splitlines()
    assert md[0] == "| Model | n | AUC (95% CI) | Slope | HL p | Separated |"
    assert md[1].count("---") == 6 and md[3].startswith("| DL\\|score |")
    with pytest.raises(ValueError, match=r"\['missing'\]"):
        paper_table(t, {"x": ("auc", "missing", "hi")})
