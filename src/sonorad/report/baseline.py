"""Baseline characteristics ("Table 1") of a radiomics study.

:func:`baseline_table` summarises the declared clinical and ultrasound variables per cohort
(training / internal / external validation), optionally per outcome class within each cohort, and
adds the p-value of the test appropriate to the variable type and the number of groups compared:

========================  ==================================  ==================================
variable                  2 groups                            more than 2 groups
========================  ==================================  ==================================
numeric, normal           Welch's t-test                      one-way ANOVA
numeric, not normal       Mann-Whitney U test                 Kruskal-Wallis test
categorical / binary /    Pearson's chi-square (Yates'        Pearson's chi-square
ordinal                   correction for 2x2 tables); Fisher  (Fisher-Freeman-Halton Monte Carlo
                          exact when an expected count < 5    test when an expected count < 5)
========================  ==================================  ==================================

A numeric variable counts as normal when every group shown in its row passes the Shapiro-Wilk test
(p > ``alpha``, groups of at least 3 values); it is then shown as mean ± SD, otherwise as
median [IQR] (25th-75th percentile), so that the summary and the test always agree. Categorical
levels are shown as n (%) of the non-missing values of the column; missing values get their own
row, n (% of all cases in the column), and are left out of the tests.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"age": [40, 52, 61, 45, 58, 49, 70, 66],
...                    "margin": ["smooth", "spiculated", "spiculated", "smooth",
...                               "spiculated", "smooth", "spiculated", "smooth"],
...                    "part": ["train"] * 4 + ["external"] * 4})
>>> t = baseline_table(df, "part", {"age": "numeric", "margin": "categorical"})
>>> list(t.to_frame().columns)
['Training (n=4)', 'External validation (n=4)', 'p-value', 'Test']
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonorad.study import VARIABLE_TYPES, StudyConfig, VariableSpec, canonical_value

__all__ = ["BaselineTable", "baseline_table", "format_p_value", "PART_NAMES"]

#: Display names of the split parts; other group values are shown as they are.
PART_NAMES = {"train": "Training", "internal": "Internal validation", "external": "External validation"}
_PART_ORDER = ("train", "internal", "external")
_NUMERIC_MODES = ("auto", "mean", "median", "both")
_P_COLUMN = "p-value"
_TEST_COLUMN = "Test"

# Short names shown in the "Test" column and long names used in the footnote.
_TESTS = {
    "welch": ("Welch t", "Welch's t-test"),
    "anova": ("ANOVA", "one-way ANOVA"),
    "mannwhitney": ("Mann-Whitney U", "Mann-Whitney U test"),
    "kruskal": ("Kruskal-Wallis", "Kruskal-Wallis test"),
    "chi2": ("Chi-square", "Pearson's chi-square test (Yates' continuity correction for 2x2 tables)"),
    "fisher": ("Fisher exact", "Fisher's exact test (2x2 table with an expected count below 5)"),
    "fisher_mc": ("Fisher-Freeman-Halton (MC)",
                  "Fisher-Freeman-Halton exact test by Monte Carlo simulation (larger table with an "
                  "expected count below 5)"),
}


def format_p_value(p: float) -> str:
    """Format a p-value for a table: ``<0.001``, three decimals otherwise, empty when undefined.

    Examples
    --------
    >>> format_p_value(0.0004), format_p_value(0.04321), format_p_value(float("nan"))
    ('<0.001', '0.043', '')
    """
    if p is None or not np.isfinite(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


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
        One row per variable and comparison: ``variable``, ``type``, ``comparison`` (``"between
        groups"`` or the group compared across classes), ``test`` (key), ``test_name``,
        ``statistic``, ``p_value`` (float, NaN when not computable), ``normal`` (numeric rows:
        whether every group passed Shapiro-Wilk), ``n`` (values used) and ``note``.
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


# --- input normalisation ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Variable:
    name: str
    type: str
    levels: tuple[str, ...] | None


def _normalise_variables(variables, table: pd.DataFrame) -> list[_Variable]:
    if isinstance(variables, StudyConfig):
        variables = variables.variables
    if isinstance(variables, str):
        variables = [variables]
    if isinstance(variables, Mapping):
        items = list(variables.items())
    elif isinstance(variables, Sequence):
        items = [(name, None) for name in variables]
    else:
        raise TypeError("variables must be a mapping name -> type (or VariableSpec), a list of column "
                        f"names or a StudyConfig; got {type(variables).__name__}")
    if not items:
        raise ValueError("variables is empty. Fix: name at least one column of the table to summarise")
    missing = [name for name, _ in items if name not in table.columns]
    if missing:
        raise ValueError(f"variables {', '.join(map(repr, missing))} are not columns of the table; "
                         f"the table has: {', '.join(map(str, table.columns))}. Fix: correct the names "
                         "(case-sensitive) or add the columns")
    out = []
    for name, spec in items:
        if isinstance(spec, VariableSpec):
            out.append(_Variable(name, spec.type, spec.allowed_values))
        elif spec is None:
            out.append(_Variable(name, _infer_type(table[name]), None))
        elif isinstance(spec, str):
            if spec not in VARIABLE_TYPES:
                raise ValueError(f"variable {name!r}: type {spec!r} is not one of {', '.join(VARIABLE_TYPES)}")
            out.append(_Variable(name, spec, None))
        else:
            raise TypeError(f"variable {name!r}: give its type as a string ({', '.join(VARIABLE_TYPES)}) or a "
                            f"VariableSpec; got {type(spec).__name__}")
    return out


def _infer_type(values: pd.Series) -> str:
    present = values.dropna()
    if pd.api.types.is_bool_dtype(values) or present.nunique() <= 2:
        return "binary"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    return "categorical"


def _as_series(values, table: pd.DataFrame, argument: str) -> pd.Series:
    """A column name or a Series aligned to the table's index, as a Series."""
    if isinstance(values, str):
        if values not in table.columns:
            raise ValueError(f"{argument}={values!r} is not a column of the table; the table has: "
                             f"{', '.join(map(str, table.columns))}")
        return table[values]
    if isinstance(values, pd.Series):
        if not values.index.equals(table.index):
            missing = table.index.difference(values.index)
            if len(missing):
                shown = ", ".join(map(str, missing[:10]))
                raise ValueError(f"{argument} has no value for cases {shown}. Fix: pass a Series indexed by "
                                 "the same case ids as the table (e.g. cohort.split_labels())")
            values = values.reindex(table.index)
        return values
    raise TypeError(f"{argument} must be a column name or a pandas Series indexed like the table; "
                    f"got {type(values).__name__}")


def _ordered_levels(values: pd.Series, preferred: Sequence[str] = ()) -> list:
    present = list(pd.unique(values.dropna()))
    first = [v for v in preferred if v in present]
    rest = [v for v in present if v not in first]
    try:
        rest = sorted(rest)
    except TypeError:
        rest = sorted(rest, key=str)
    return first + rest


def _numeric_values(values: pd.Series, name: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if bad.any():
        cases = ", ".join(f"{case} ({values[case]!r})" for case in values.index[bad][:10])
        raise ValueError(f"numeric variable {name!r} has values that are not numbers: cases {cases}. Fix: "
                         "correct the cells, leave them empty, or declare the variable as categorical")
    return numbers.astype(float)


# --- statistics ---------------------------------------------------------------------------------------

def _is_normal(samples: list[np.ndarray], alpha: float) -> bool:
    """Every sample of at least 3 distinct-valued points passes Shapiro-Wilk (p > alpha)."""
    from scipy import stats

    tested = False
    for sample in samples:
        if len(sample) < 3:
            continue
        if np.ptp(sample) == 0:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns that p may be inexact for n > 5000
            if stats.shapiro(sample).pvalue <= alpha:
                return False
        tested = True
    return tested


def _numeric_test(samples: list[np.ndarray], normal: bool) -> tuple[str | None, float, float, str]:
    from scipy import stats

    samples = [s for s in samples if len(s) >= (2 if normal else 1)]
    if len(samples) < 2:
        return None, math.nan, math.nan, "fewer than two groups with values"
    if np.ptp(np.concatenate(samples)) == 0:
        return None, math.nan, math.nan, "the variable is constant"
    if len(samples) == 2:
        if normal:
            res = stats.ttest_ind(samples[0], samples[1], equal_var=False)
            return "welch", float(res.statistic), float(res.pvalue), ""
        res = stats.mannwhitneyu(samples[0], samples[1], alternative="two-sided")
        return "mannwhitney", float(res.statistic), float(res.pvalue), ""
    if normal:
        res = stats.f_oneway(*samples)
        return "anova", float(res.statistic), float(res.pvalue), ""
    res = stats.kruskal(*samples)
    return "kruskal", float(res.statistic), float(res.pvalue), ""


def _categorical_test(observed: np.ndarray, n_resamples: int, rng: np.random.Generator):
    """Test of independence of a levels x groups count table (zero rows / columns dropped)."""
    from scipy import stats
    from scipy.stats.contingency import expected_freq

    observed = observed[observed.sum(axis=1) > 0][:, observed.sum(axis=0) > 0]
    if observed.shape[0] < 2 or observed.shape[1] < 2:
        return None, math.nan, math.nan, "only one level or one group with values"
    small = bool((expected_freq(observed) < 5).any())
    if observed.shape == (2, 2) and small:
        res = stats.fisher_exact(observed)
        return "fisher", float(res.statistic), float(res.pvalue), "expected count < 5"
    if small:
        method = stats.MonteCarloMethod(n_resamples=n_resamples, rng=rng)
        res = stats.fisher_exact(observed, method=method)
        return "fisher_mc", float(res.statistic), float(res.pvalue), (
            f"expected count < 5 in a {observed.shape[0]}x{observed.shape[1]} table; "
            f"Monte Carlo p-value ({n_resamples} tables)")
    res = stats.chi2_contingency(observed)
    return "chi2", float(res.statistic), float(res.pvalue), ""


# --- cell formatting ---------------------------------------------------------------------------------

def _mean_sd(x: np.ndarray, digits: int) -> str:
    if len(x) == 0:
        return ""
    sd = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
    return f"{np.mean(x):.{digits}f} ± {sd:.{digits}f}" if np.isfinite(sd) else f"{np.mean(x):.{digits}f}"


def _median_iqr(x: np.ndarray, digits: int) -> str:
    if len(x) == 0:
        return ""
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return f"{med:.{digits}f} [{q1:.{digits}f}, {q3:.{digits}f}]"


def _n_pct(n: int, total: int, digits: int) -> str:
    return f"{n} ({100 * n / total:.{digits}f}%)" if total else f"{n}"


# --- the table ---------------------------------------------------------------------------------------

def baseline_table(table: pd.DataFrame, group, variables, *, label=None, group_names: Mapping | None = None,
                   label_names: Mapping | None = None, numeric: str = "auto", alpha: float = 0.05,
                   digits: int = 1, ordinal_test: str = "chi2", n_resamples: int = 9999,
                   random_state: int = 0) -> BaselineTable:
    """Summarise variables per cohort (and per class) with the p-value of the appropriate test.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per case (the cohort table), indexed by case id.
    group : str, pandas.Series or None
        Column (or Series indexed like ``table``) giving each case's cohort, e.g.
        ``cohort.split_labels()``; the parts ``train``, ``internal``, ``external`` are shown in that
        order with readable names. ``None`` puts every case in one group (``All``).
    variables : mapping, list of str or StudyConfig
        ``{name: type}`` with a type of ``numeric``, ``binary``, ``categorical``, ``ordinal``, or
        ``{name: VariableSpec}`` (its declared levels / order set the row order), a list of column
        names (types inferred: two values -> binary, numbers -> numeric, else categorical), or a
        study whose declared variables are used.
    label : str or pandas.Series, optional
        The outcome per case. When given, every group is split into one column per class and the
        p-values compare the classes within each group; otherwise they compare the groups.
    group_names, label_names : mapping, optional
        Display names of group and label values (e.g. ``{0: "benign", 1: "malignant"}``).
    numeric : {"auto", "mean", "median", "both"}
        ``auto`` chooses mean ± SD + parametric tests when every group of the row passes
        Shapiro-Wilk, else median [IQR] + rank tests; ``mean`` / ``median`` force one; ``both``
        shows both summaries and tests as ``auto``.
    alpha : float
        Significance level of the Shapiro-Wilk normality check.
    digits : int
        Decimals of means, SDs, medians, quartiles and percentages.
    ordinal_test : {"chi2", "rank"}
        Test of ordinal variables: ``chi2`` treats the levels as categories (chi-square / Fisher,
        as categorical variables); ``rank`` uses the level order (Mann-Whitney U for two groups,
        Kruskal-Wallis for more, on the level ranks), which has more power for a trend.
    n_resamples : int
        Monte Carlo tables for the Fisher-Freeman-Halton test of larger sparse tables.
    random_state : int
        Seed of those Monte Carlo tests (the only random step), so the table is reproducible.

    Returns
    -------
    BaselineTable

    Raises
    ------
    ValueError
        When a variable or the group / label column is not in the table, a case has no group, a
        numeric variable holds text (naming the cases), or an option is invalid.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame; got {type(table).__name__}")
    if numeric not in _NUMERIC_MODES:
        raise ValueError(f"numeric={numeric!r} is not one of {', '.join(_NUMERIC_MODES)}")
    if ordinal_test not in ("chi2", "rank"):
        raise ValueError(f"ordinal_test={ordinal_test!r} is not one of chi2, rank")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1; got {alpha}")
    specs = _normalise_variables(variables, table)
    groups = (pd.Series("All", index=table.index) if group is None
              else _as_series(group, table, "group"))
    if groups.isna().any():
        cases = ", ".join(map(str, table.index[groups.isna().to_numpy()][:10]))
        raise ValueError(f"cases {cases} have no group. Fix: give every case a group or drop those rows")
    group_levels = _ordered_levels(groups, _PART_ORDER)
    names = {**PART_NAMES, **dict(group_names or {})}
    labels = None
    if label is not None:
        labels = _as_series(label, table, "label")
        if labels.isna().any():
            cases = ", ".join(map(str, table.index[labels.isna().to_numpy()][:10]))
            raise ValueError(f"cases {cases} have no label. Fix: fill in the label or drop those rows")
        label_levels = _ordered_levels(labels)
        lnames = dict(label_names or {})

    # Display columns: (key selecting the cases, header). Keys are (group, label-or-None).
    columns: list[tuple[tuple, object]] = []
    for g in group_levels:
        in_group = groups == g
        gname = f"{names.get(g, g)} (n={int(in_group.sum())})"
        if labels is None:
            columns.append(((g, None), gname))
        else:
            for lv in label_levels:
                n = int((in_group & (labels == lv)).sum())
                columns.append(((g, lv), (gname, f"{lnames.get(lv, lv)} (n={n})")))
    masks = {key: ((groups == key[0]) & ((labels == key[1]) if key[1] is not None else True)).to_numpy()
             for key, _ in columns}
    # Comparisons: between groups (no label) or between classes within each group.
    if labels is None:
        comparisons = [("between groups", [key for key, _ in columns], _P_COLUMN)] if len(columns) > 1 else []
    else:
        comparisons = [(f"{names.get(g, g)}", [key for key, _ in columns if key[0] == g],
                        (f"{names.get(g, g)} (n={int((groups == g).sum())})", _P_COLUMN))
                       for g in group_levels]

    rng = np.random.default_rng(random_state)
    rows: list[tuple[tuple[str, str], dict]] = []
    test_rows: list[dict] = []
    used: set[str] = set()
    for spec in specs:
        values = table[spec.name]
        if spec.type == "numeric":
            new_rows, new_tests = _numeric_rows(spec, _numeric_values(values, spec.name), columns, masks,
                                                comparisons, numeric, alpha, digits)
        else:
            new_rows, new_tests = _categorical_rows(spec, values, columns, masks, comparisons, digits,
                                                    n_resamples, rng, rank=spec.type == "ordinal"
                                                    and ordinal_test == "rank")
        rows += new_rows
        test_rows += new_tests
        used |= {t["test"] for t in new_tests if t["test"]}

    headers = [header for _, header in columns]
    p_headers = [p for _, _, p in comparisons]
    if labels is None:
        ordered = headers + p_headers
    else:
        ordered = []
        for g in group_levels:
            ordered += [h for (key, h) in columns if key[0] == g]
            ordered += [p for (name, _, p) in comparisons if name == f"{names.get(g, g)}"]
    if comparisons:
        ordered.append(_TEST_COLUMN if labels is None else ("", _TEST_COLUMN))
    index = pd.MultiIndex.from_tuples([r for r, _ in rows], names=["variable", "level"])
    display = pd.DataFrame([[cells.get(h, "") for h in ordered] for _, cells in rows], index=index,
                           columns=pd.MultiIndex.from_tuples(ordered) if labels is not None else ordered)
    tests = pd.DataFrame(test_rows, columns=["variable", "type", "comparison", "test", "test_name", "statistic",
                                             "p_value", "normal", "n", "note"])
    counts = pd.Series({header if isinstance(header, str) else " / ".join(header): int(masks[key].sum())
                        for key, header in columns}, name="n")
    return BaselineTable(table=display, tests=tests, counts=counts,
                         note=_footnote(used, numeric, alpha, n_resamples, random_state, bool(comparisons),
                                        ordinal_rank=ordinal_test == "rank"
                                        and any(v.type == "ordinal" for v in specs)))


def _test_record(spec: _Variable, comparison: str, result, n: int, normal=None) -> dict:
    key, statistic, p, note = result
    return {"variable": spec.name, "type": spec.type, "comparison": comparison, "test": key,
            "test_name": _TESTS[key][1] if key else "", "statistic": statistic, "p_value": p,
            "normal": normal, "n": n, "note": note}


def _numeric_rows(spec, numbers: pd.Series, columns, masks, comparisons, mode, alpha, digits):
    arrays = {key: numbers.to_numpy()[masks[key]] for key, _ in columns}
    present = {key: a[~np.isnan(a)] for key, a in arrays.items()}
    normal = {"mean": True, "median": False}.get(mode)
    if normal is None:
        normal = _is_normal(list(present.values()), alpha)
    if mode == "both":
        what, show = "mean ± SD / median [IQR]", lambda x: f"{_mean_sd(x, digits)} / {_median_iqr(x, digits)}"
    elif normal:
        what, show = "mean ± SD", lambda x: _mean_sd(x, digits)
    else:
        what, show = "median [IQR]", lambda x: _median_iqr(x, digits)
    cells = {header: show(present[key]) for key, header in columns}
    tests, names = [], []
    for comparison, keys, p_header in comparisons:
        result = _numeric_test([present[k] for k in keys], normal)
        tests.append(_test_record(spec, comparison, result, sum(len(present[k]) for k in keys), normal))
        cells[p_header] = format_p_value(result[2])
        if result[0] and _TESTS[result[0]][0] not in names:
            names.append(_TESTS[result[0]][0])
    _set_test_cell(cells, columns, names)
    rows = [((f"{spec.name}, {what}", ""), cells)]
    rows += _missing_row(spec.name, f"{spec.name}, {what}", arrays, columns, digits, np.isnan)
    return rows, tests


def _categorical_rows(spec, values: pd.Series, columns, masks, comparisons, digits, n_resamples, rng,
                      rank: bool = False):
    text = values.map(canonical_value)
    levels = list(spec.levels) if spec.levels else []
    found = _ordered_levels(text)
    if spec.levels is None:
        numeric = all(_is_number(v) for v in found)
        levels = sorted(found, key=float) if numeric else found
    else:
        levels += [v for v in found if v not in levels]  # undeclared values still shown, never hidden
    label_of = f"{spec.name}, n (%)"
    arrays = {key: text.to_numpy()[masks[key]] for key, _ in columns}
    counts = {key: np.array([(a == lv).sum() for lv in levels]) for key, a in arrays.items()}
    head: dict = {}
    tests, names = [], []
    for comparison, keys, p_header in comparisons:
        observed = np.column_stack([counts[k] for k in keys]) if levels else np.zeros((0, len(keys)))
        if rank:  # level positions as ordered scores
            position = {lv: i for i, lv in enumerate(levels)}
            samples = [np.array([position[v] for v in arrays[k] if pd.notna(v)], dtype=float) for k in keys]
            result = _numeric_test(samples, normal=False)
        else:
            result = _categorical_test(observed, n_resamples, rng)
        tests.append(_test_record(spec, comparison, result, int(observed.sum())))
        head[p_header] = format_p_value(result[2])
        if result[0] and _TESTS[result[0]][0] not in names:
            names.append(_TESTS[result[0]][0])
    _set_test_cell(head, columns, names)
    rows = [((label_of, ""), head)]
    for i, level in enumerate(levels):
        rows.append(((label_of, str(level)),
                     {header: _n_pct(int(counts[key][i]), int(counts[key].sum()), digits)
                      for key, header in columns}))
    rows += _missing_row(spec.name, label_of, arrays, columns, digits, pd.isna)
    return rows, tests


def _set_test_cell(cells: dict, columns, names: list[str]) -> None:
    label_mode = bool(columns) and isinstance(columns[0][1], tuple)
    cells[("", _TEST_COLUMN) if label_mode else _TEST_COLUMN] = " / ".join(names)


def _missing_row(name, row_label, arrays, columns, digits, is_missing):
    missing = {key: int(np.sum(is_missing(a))) for key, a in arrays.items()}
    if not any(missing.values()):
        return []
    return [((row_label, "Missing"), {header: _n_pct(missing[key], len(arrays[key]), digits)
                                      for key, header in columns})]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


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
        names = [_TESTS[k][1] for k in _TESTS if k in used]
        parts.append("P-values: " + "; ".join(names) + ".")
        if "fisher_mc" in used:
            parts.append(f"Monte Carlo tests used {n_resamples} simulated tables (seed {seed}).")
    return " ".join(parts)
