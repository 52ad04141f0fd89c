"""Baseline characteristics ("Table 1") of a radiomics study, drawn as a display table.

The numbers (summaries per cohort and class, and the tests behind the p-values) come from
:func:`sonorad.evaluation.baseline.baseline_statistics`; :func:`baseline_table` only turns them into
text cells: numeric variables as mean ± SD when the tests were parametric, otherwise as median
[IQR] (25th-75th percentile), so that the summary and the test always agree; categorical levels as
n (%) of the non-missing values of the column, missing values on their own row, n (% of all cases
in the column). A footnote names the summaries and the tests used. When some patient has several
images, every header counts both (``"Training (n=240 images, 138 patients)"``) and the footnote says
how the tests reduce a patient's images to one row; with one image per patient the table counts
cases only.

Examples
--------
>>> import pandas as pd
>>> from sonorad.evaluation.baseline import baseline_statistics
>>> df = pd.DataFrame({"age": [40, 52, 61, 45, 58, 49, 70, 66],
...                    "margin": ["smooth", "spiculated", "spiculated", "smooth",
...                               "spiculated", "smooth", "spiculated", "smooth"],
...                    "part": ["train"] * 4 + ["external"] * 4})
>>> t = baseline_table(baseline_statistics(df, "part", {"age": "numeric", "margin": "categorical"}))
>>> list(t.to_frame().columns)
['Training (n=4)', 'External validation (n=4)', 'p-value', 'Test']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


__all__ = ["BaselineTable", "baseline_table", "PART_NAMES"]

#: Display names of the split parts; other group values are shown as they are.
PART_NAMES = {"train": "Training", "internal": "Internal validation", "external": "External validation"}
_P_COLUMN = "p-value"
_TEST_COLUMN = "Test"


@dataclass(frozen=True)
class BaselineTable:
    """A baseline-characteristics table with the tests behind its p-values.

    Attributes
    ----------
    table : pandas.DataFrame
        Display table of strings. Index: (variable, level) with level ``""`` on a variable's first
        row; columns: one per group (``"Training (n=120)"``) or, with a label, (group, class) pairs
        plus a ``p-value`` column per group; a final ``Test`` column names the tests of each row.
    tests : pandas.DataFrame
        One row per variable and comparison, as
        :attr:`sonorad.evaluation.baseline.BaselineStatistics.tests` with ``comparison`` shown by
        its display name (``"between groups"`` or the group compared across classes).
    counts : pandas.Series
        Number of cases per display column (before removing missing values).
    note : str
        Footnote naming the summaries and tests used; print it under the table.
    """

    table: pd.DataFrame
    tests: pd.DataFrame
    counts: pd.Series
    note: str

    def to_frame(self) -> pd.DataFrame:
        """The display table (a copy), ready for ``Report.add_table`` or ``to_csv``."""
        return self.table.copy()

    def to_html(self, caption: str | None = None) -> str:
        """The table as an HTML fragment (all text escaped) with the footnote under it.

        Parameters
        ----------
        caption : str, optional
            Shown as the table's ``<caption>``.
        """
        import html

        frame = self.table.copy()
        frame.index = frame.index.set_names(["Variable", "Level"])
        body = frame.to_html(escape=True, border=0, na_rep="", classes="baseline-table")
        if caption is not None:
            body = body.replace(">\n", f">\n<caption>{html.escape(caption)}</caption>\n", 1)
        return f"{body}\n<p class=\"table-note\">{html.escape(self.note)}</p>"

    def __str__(self) -> str:
        with pd.option_context("display.max_columns", 50, "display.width", 160):
            return f"{self.table.to_string()}\n{self.note}"


# --- cell formatting ---------------------------------------------------------------------------------

def _mean_sd(s: dict, digits: int) -> str:
    if s["n"] == 0:
        return ""
    mean, sd = s["mean"], s["sd"]
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if np.isfinite(sd) else f"{mean:.{digits}f}"


def _median_iqr(s: dict, digits: int) -> str:
    if s["n"] == 0:
        return ""
    return f"{s['median']:.{digits}f} [{s['q1']:.{digits}f}, {s['q3']:.{digits}f}]"


def _n_pct(n: int, total: int, digits: int) -> str:
    return f"{n} ({100 * n / total:.{digits}f}%)" if total else f"{n}"


# --- the table ---------------------------------------------------------------------------------------

def baseline_table(statistics, *, group_names: Mapping | None = None,
                   label_names: Mapping | None = None, digits: int = 1) -> BaselineTable:
    """Draw Table 1 from its statistics: one text cell per summary, the p-values and a footnote.

    Parameters
    ----------
    statistics : sonorad.evaluation.baseline.BaselineStatistics
        From :func:`sonorad.evaluation.baseline.baseline_statistics`.
    group_names, label_names : mapping, optional
        Display names of group and label values (e.g. ``{0: "benign", 1: "malignant"}``); the parts
        ``train``, ``internal``, ``external`` read as Training, Internal / External validation.
    digits : int
        Decimals of means, SDs, medians, quartiles and percentages.

    Returns
    -------
    BaselineTable
    """
    from sonorad.evaluation.baseline import BETWEEN_GROUPS, BaselineStatistics

    if not isinstance(statistics, BaselineStatistics):
        raise TypeError("statistics must be the BaselineStatistics of "
                        "sonorad.evaluation.baseline.baseline_statistics(table, group, variables, ...); "
                        f"got {type(statistics).__name__}")
    names = {**PART_NAMES, **dict(group_names or {})}
    lnames = dict(label_names or {})
    labelled = statistics.labelled
    several = statistics.several_images_per_patient and statistics.patient_sizes is not None

    def group_header(g) -> str:
        if several:
            return (f"{names.get(g, g)} (n={statistics.group_sizes[g]} images, "
                    f"{statistics.patient_sizes[g]} patients)")
        return f"{names.get(g, g)} (n={statistics.group_sizes[g]})"

    def label_header(c) -> str:
        if several and c.patients is not None:
            return f"{lnames.get(c.label, c.label)} (n={c.n} images, {c.patients} patients)"
        return f"{lnames.get(c.label, c.label)} (n={c.n})"

    # Display columns: (key selecting the cases, header). Keys are (group, label-or-None).
    columns = [(c.key, (group_header(c.group), label_header(c)) if labelled
                else group_header(c.group)) for c in statistics.columns]
    p_header = {name: (_P_COLUMN if name == BETWEEN_GROUPS and not labelled
                       else (group_header(name), _P_COLUMN))
                for name, _ in statistics.comparisons}
    shown = {name: (name if name == BETWEEN_GROUPS and not labelled else f"{names.get(name, name)}")
             for name, _ in statistics.comparisons}

    rows: list[tuple[tuple[str, str], dict]] = []
    for variable in statistics.variables:
        if variable.type == "numeric":
            rows += _numeric_rows(variable, columns, statistics.numeric, p_header, digits)
        else:
            rows += _categorical_rows(variable, columns, p_header, digits)

    headers = [header for _, header in columns]
    if not labelled:
        ordered = headers + [p_header[name] for name, _ in statistics.comparisons]
    else:
        ordered = []
        for g in statistics.group_sizes:
            ordered += [h for (key, h) in columns if key[0] == g]
            ordered += [p_header[name] for name, _ in statistics.comparisons if name == g]
    if statistics.comparisons:
        ordered.append(_TEST_COLUMN if not labelled else ("", _TEST_COLUMN))
    index = pd.MultiIndex.from_tuples([r for r, _ in rows], names=["variable", "level"])
    display = pd.DataFrame([[cells.get(h, "") for h in ordered] for _, cells in rows], index=index,
                           columns=pd.MultiIndex.from_tuples(ordered) if labelled else ordered)
    tests = statistics.tests.copy()
    if len(tests):
        tests["comparison"] = [shown[c] for c in tests["comparison"]]
    counts = pd.Series({header if isinstance(header, str) else " / ".join(header): c.n
                        for (_, header), c in zip(columns, statistics.columns)}, name="n")
    ordinal_rank = statistics.ordinal_test == "rank" and any(v.type == "ordinal" for v in statistics.variables)
    note = _footnote(statistics.tests_used, statistics.numeric, statistics.alpha, statistics.n_resamples,
                     statistics.random_state, bool(statistics.comparisons), ordinal_rank=ordinal_rank)
    if statistics.several_images_per_patient:
        note += " " + statistics.patient_rule
    return BaselineTable(table=display, tests=tests, counts=counts, note=note)


def _test_names(variable) -> list[str]:
    from sonorad.evaluation.baseline import BASELINE_TESTS

    names = []
    for t in variable.tests:
        if t["test"] and BASELINE_TESTS[t["test"]][0] not in names:
            names.append(BASELINE_TESTS[t["test"]][0])
    return names


def _p_cells(variable, p_header) -> dict:
    from sonorad.evaluation.formatting import format_p

    return {p_header[t["comparison"]]: format_p(t["p_value"]) for t in variable.tests}


def _numeric_rows(variable, columns, mode, p_header, digits):
    if mode == "both":
        what, show = "mean ± SD / median [IQR]", lambda s: f"{_mean_sd(s, digits)} / {_median_iqr(s, digits)}"
    elif variable.normal:
        what, show = "mean ± SD", lambda s: _mean_sd(s, digits)
    else:
        what, show = "median [IQR]", lambda s: _median_iqr(s, digits)
    cells = {header: show(variable.summary[key]) for key, header in columns}
    cells.update(_p_cells(variable, p_header))
    _set_test_cell(cells, columns, _test_names(variable))
    rows = [((f"{variable.name}, {what}", ""), cells)]
    rows += _missing_row(f"{variable.name}, {what}", variable.summary, columns, digits)
    return rows


def _categorical_rows(variable, columns, p_header, digits):
    label_of = f"{variable.name}, n (%)"
    head = _p_cells(variable, p_header)
    _set_test_cell(head, columns, _test_names(variable))
    rows = [((label_of, ""), head)]
    for i, level in enumerate(variable.levels):
        rows.append(((label_of, str(level)),
                     {header: _n_pct(int(variable.summary[key]["counts"][i]),
                                     int(variable.summary[key]["counts"].sum()), digits)
                      for key, header in columns}))
    rows += _missing_row(label_of, variable.summary, columns, digits)
    return rows


def _set_test_cell(cells: dict, columns, names: list[str]) -> None:
    label_mode = bool(columns) and isinstance(columns[0][1], tuple)
    cells[("", _TEST_COLUMN) if label_mode else _TEST_COLUMN] = " / ".join(names)


def _missing_row(row_label, summary, columns, digits):
    if not any(summary[key]["missing"] for key, _ in columns):
        return []
    return [((row_label, "Missing"), {header: _n_pct(summary[key]["missing"], summary[key]["total"], digits)
                                      for key, header in columns})]


def _footnote(used: set[str], mode: str, alpha: float, n_resamples: int, seed: int, tested: bool,
              ordinal_rank: bool = False) -> str:
    parts = []
    if mode == "auto":
        parts.append("Numeric variables: mean ± SD when every group passed the Shapiro-Wilk test "
                     f"(P > {alpha:g}), otherwise median [IQR].")
    elif mode == "both":
        parts.append("Numeric variables: mean ± SD / median [IQR]; the test follows the Shapiro-Wilk "
                     f"check (P > {alpha:g} in every group = normal).")
    else:
        parts.append(f"Numeric variables: {'mean ± SD' if mode == 'mean' else 'median [IQR]'}.")
    parts.append("Categorical variables: n (%) of the non-missing values; missing values n (% of all cases), "
                 "excluded from the tests.")
    if tested and ordinal_rank:
        parts.append("Ordinal variables were compared on the ranks of their ordered levels.")
    if tested and used:
        from sonorad.evaluation.baseline import BASELINE_TESTS

        names = [BASELINE_TESTS[k][1] for k in BASELINE_TESTS if k in used]
        parts.append("P-values: " + "; ".join(names) + ".")
        if "fisher_mc" in used:
            parts.append(f"Monte Carlo tests used {n_resamples} simulated tables (seed {seed}).")
    return " ".join(parts)
