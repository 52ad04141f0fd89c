"""Baseline characteristics ("Table 1") statistics: per-cohort summaries and the tests between them.

:func:`baseline_statistics` summarises the declared clinical and ultrasound variables per cohort
(training / internal / external validation), optionally per outcome class within each cohort, and
runs the test appropriate to the variable type and the number of groups compared:

========================  ==================================  ==================================
variable                  2 groups                            more than 2 groups
========================  ==================================  ==================================
numeric, normal           Welch's t-test                      one-way ANOVA
numeric, not normal       Mann-Whitney U test                 Kruskal-Wallis test
categorical / binary /    Pearson's chi-square (Yates'        Pearson's chi-square
ordinal                   correction for 2x2 tables); Fisher  (Fisher-Freeman-Halton Monte Carlo
                          exact when an expected count < 5    test when an expected count < 5)
========================  ==================================  ==================================

A numeric variable counts as normal when every group compared passes the Shapiro-Wilk test
(p > ``alpha``, groups of at least 3 values); the report then shows it as mean ± SD, otherwise as
median [IQR], so that the summary and the test always agree. Missing values are counted and left
out of the tests. The display table is drawn by :func:`sonorad.report.baseline.baseline_table`.

Patients, not images: given each case's patient (``patient=``), every column counts both its images
(cases) and its patients, and when a patient has several images the tests use one row per patient
and column, so that a patient with many images does not weigh as many independent patients: a
numeric variable enters as the mean of the patient's values, any other variable as the value of the
patient's first image that has one (table order). The summaries still describe the images (the
unit the models score). :data:`PATIENT_RULE` states the rule for a footnote.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"age": [40, 52, 61, 45, 58, 49, 70, 66],
...                    "part": ["train"] * 4 + ["external"] * 4})
>>> s = baseline_statistics(df, "part", {"age": "numeric"})
>>> [c.group for c in s.columns], s.tests["test"].tolist()
(['train', 'external'], ['welch'])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonorad.variables import VARIABLE_TYPES, VariableSpec, canonical_value

__all__ = ["BASELINE_TESTS", "BETWEEN_GROUPS", "PATIENT_RULE", "BaselineColumn", "BaselineStatistics",
           "VariableStatistics", "baseline_statistics"]

_PART_ORDER = ("train", "internal", "external")
_NUMERIC_MODES = ("auto", "mean", "median", "both")
#: Comparison name of the test between groups (no label).
BETWEEN_GROUPS = "between groups"

#: How the tests reduce several images of one patient to one row (footnote text).
PATIENT_RULE = ("Tests use one row per patient: the mean of the patient's images for numeric variables, "
                "the patient's first image with a value for the others.")

#: Test key -> (short name for a table cell, full name for a footnote).
BASELINE_TESTS = {
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

_TEST_COLUMNS = ["variable", "type", "comparison", "test", "test_name", "statistic", "p_value", "normal", "n",
                 "note"]


@dataclass(frozen=True)
class BaselineColumn:
    """One column of Table 1: the cases of one group (and one class when a label is given).

    Attributes
    ----------
    group : object
        The group value (e.g. ``"train"``).
    label : object or None
        The class value, or ``None`` without a label.
    n : int
        Number of cases (images) in the column (before removing missing values).
    patients : int or None
        Number of distinct patients in the column, when patients were given.
    """

    group: object
    label: object
    n: int
    patients: int | None = None

    @property
    def key(self) -> tuple:
        """``(group, label)``: the key of this column in :attr:`VariableStatistics.summary`."""
        return (self.group, self.label)


@dataclass(frozen=True)
class VariableStatistics:
    """Summaries of one variable per column and the tests of its comparisons.

    Attributes
    ----------
    name : str
        Column of the cohort table.
    type : str
        ``numeric``, ``binary``, ``categorical`` or ``ordinal``.
    normal : bool or None
        Numeric variables: whether the summary and the tests are the parametric ones (every
        compared group passed Shapiro-Wilk, or forced by ``numeric``). ``None`` otherwise.
    levels : tuple
        Categorical variables: the levels in row order (declared first, then undeclared values).
    summary : dict
        Column key -> dict. Numeric: ``n`` (non-missing values), ``mean``, ``sd`` (NaN for fewer
        than 2 values), ``q1``, ``median``, ``q3`` (NaN without values). Categorical: ``counts``
        (numpy array of counts per level). Both: ``missing`` (count) and ``total`` (cases).
    tests : tuple of dict
        One record per comparison, with the keys of :attr:`BaselineStatistics.tests`.
    """

    name: str
    type: str
    normal: bool | None
    levels: tuple
    summary: dict
    tests: tuple


@dataclass(frozen=True)
class BaselineStatistics:
    """Everything Table 1 shows, as numbers: per-column summaries and the tests behind the p-values.

    Attributes
    ----------
    columns : tuple of BaselineColumn
        Display columns in order: groups (train, internal, external first), then classes within each.
    group_sizes : dict
        Group value -> number of cases.
    labelled : bool
        Whether columns split the groups by class (the tests then compare classes within each group).
    comparisons : tuple of (object, tuple)
        ``(name, column keys)`` per comparison: :data:`BETWEEN_GROUPS` or the group value.
    variables : tuple of VariableStatistics
    tests : pandas.DataFrame
        One row per variable and comparison: ``variable``, ``type``, ``comparison``, ``test`` (key of
        :data:`BASELINE_TESTS`), ``test_name``, ``statistic``, ``p_value`` (NaN when not computable),
        ``normal``, ``n`` (values used: one per patient when a patient has several images) and ``note``.
    numeric, alpha, n_resamples, random_state, ordinal_test
        The settings used (see :func:`baseline_statistics`).
    patient_sizes : dict or None
        Group value -> number of distinct patients, when patients were given.
    patient_rule : str
        :data:`PATIENT_RULE` when some patient has several images (the tests then use one row per
        patient), else "".
    """

    columns: tuple
    group_sizes: dict
    labelled: bool
    comparisons: tuple
    variables: tuple
    tests: pd.DataFrame
    numeric: str
    alpha: float
    n_resamples: int
    random_state: int
    ordinal_test: str
    patient_sizes: dict | None = None
    patient_rule: str = ""

    @property
    def several_images_per_patient(self) -> bool:
        """Whether some patient has several images, so that images and patients counts differ."""
        return bool(self.patient_rule)

    @property
    def tests_used(self) -> set[str]:
        """Keys of the tests that gave a p-value."""
        return {t["test"] for v in self.variables for t in v.tests if t["test"]}

    def to_frame(self) -> pd.DataFrame:
        """The test table (a copy)."""
        return self.tests.copy()


# --- input normalisation ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Variable:
    name: str
    type: str
    levels: tuple[str, ...] | None


def _normalise_variables(variables, table: pd.DataFrame) -> list[_Variable]:
    from sonorad.study import StudyConfig

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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


# --- tests -------------------------------------------------------------------------------------------

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


def _test_record(spec: _Variable, comparison, result, n: int, normal=None) -> dict:
    key, statistic, p, note = result
    return {"variable": spec.name, "type": spec.type, "comparison": comparison, "test": key,
            "test_name": BASELINE_TESTS[key][1] if key else "", "statistic": statistic, "p_value": p,
            "normal": normal, "n": n, "note": note}


# --- per-variable statistics ---------------------------------------------------------------------------

def _numeric_summary(x: np.ndarray) -> dict:
    """n, mean, SD (ddof 1), quartiles of the non-missing values, as ``numpy`` computes them."""
    if len(x) == 0:
        return {"n": 0, "mean": math.nan, "sd": math.nan, "q1": math.nan, "median": math.nan, "q3": math.nan}
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    sd = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
    return {"n": len(x), "mean": float(np.mean(x)), "sd": sd, "q1": float(q1), "median": float(med),
            "q3": float(q3)}


def _per_patient(values: pd.Series, patients: pd.Series | None, mask: np.ndarray, numeric: bool) -> np.ndarray:
    """The values of one column for the tests: one per patient when ``patients`` is given.

    Numeric: the mean of the patient's non-missing values; otherwise the patient's first non-missing
    value (table order). A patient without any value stays missing.
    """
    v = values[mask]
    if patients is None:
        return v.to_numpy()
    grouped = v.groupby(patients[mask].to_numpy(), sort=False)
    return (grouped.mean() if numeric else grouped.first()).reindex(pd.unique(patients[mask])).to_numpy()


def _numeric_statistics(spec, numbers: pd.Series, keys, masks, comparisons, mode, alpha,
                        patients=None) -> VariableStatistics:
    arrays = {key: numbers.to_numpy()[masks[key]] for key in keys}
    present = {key: a[~np.isnan(a)] for key, a in arrays.items()}
    tested = {key: _per_patient(numbers, patients, masks[key], True) for key in keys}
    tested = {key: a[~np.isnan(a)] for key, a in tested.items()}
    normal = {"mean": True, "median": False}.get(mode)
    if normal is None:
        normal = _is_normal(list(tested.values()), alpha)
    summary = {key: {**_numeric_summary(present[key]), "missing": int(np.sum(np.isnan(arrays[key]))),
                     "total": len(arrays[key])} for key in keys}
    tests = []
    for comparison, compared in comparisons:
        result = _numeric_test([tested[k] for k in compared], normal)
        tests.append(_test_record(spec, comparison, result, sum(len(tested[k]) for k in compared), normal))
    return VariableStatistics(spec.name, spec.type, bool(normal), (), summary, tuple(tests))


def _categorical_statistics(spec, values: pd.Series, keys, masks, comparisons, n_resamples, rng,
                            rank: bool = False, patients=None) -> VariableStatistics:
    text = values.map(canonical_value)
    levels = list(spec.levels) if spec.levels else []
    found = _ordered_levels(text)
    if spec.levels is None:
        numeric = all(_is_number(v) for v in found)
        levels = sorted(found, key=float) if numeric else found
    else:
        levels += [v for v in found if v not in levels]  # undeclared values still shown, never hidden
    arrays = {key: text.to_numpy()[masks[key]] for key in keys}
    counts = {key: np.array([(a == lv).sum() for lv in levels]) for key, a in arrays.items()}
    tested = {key: _per_patient(text, patients, masks[key], False) for key in keys}
    tested_counts = {key: np.array([(a == lv).sum() for lv in levels]) for key, a in tested.items()}
    tests = []
    for comparison, compared in comparisons:
        observed = np.column_stack([tested_counts[k] for k in compared]) if levels else np.zeros((0, len(compared)))
        if rank:  # level positions as ordered scores
            position = {lv: i for i, lv in enumerate(levels)}
            samples = [np.array([position[v] for v in tested[k] if pd.notna(v)], dtype=float) for k in compared]
            result = _numeric_test(samples, normal=False)
        else:
            result = _categorical_test(observed, n_resamples, rng)
        tests.append(_test_record(spec, comparison, result, int(observed.sum())))
    summary = {key: {"counts": counts[key], "missing": int(np.sum(pd.isna(arrays[key]))),
                     "total": len(arrays[key])} for key in keys}
    return VariableStatistics(spec.name, spec.type, None, tuple(levels), summary, tuple(tests))


# --- the statistics ------------------------------------------------------------------------------------

def baseline_statistics(table: pd.DataFrame, group, variables, *, label=None, numeric: str = "auto",
                        alpha: float = 0.05, ordinal_test: str = "chi2", n_resamples: int = 9999,
                        random_state: int = 0, patient=None) -> BaselineStatistics:
    """Summaries per cohort (and per class) and the test appropriate to each variable.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per case (the cohort table), indexed by case id.
    group : str, pandas.Series or None
        Column (or Series indexed like ``table``) giving each case's cohort, e.g.
        ``cohort.split_labels()``; the parts ``train``, ``internal``, ``external`` come first, in that
        order. ``None`` puts every case in one group (``All``).
    variables : mapping, list of str or StudyConfig
        ``{name: type}`` with a type of ``numeric``, ``binary``, ``categorical``, ``ordinal``, or
        ``{name: VariableSpec}`` (its declared levels / order set the row order), a list of column
        names (types inferred: two values -> binary, numbers -> numeric, else categorical), or a
        study whose declared variables are used.
    label : str or pandas.Series, optional
        The outcome per case. When given, every group is split into one column per class and the
        tests compare the classes within each group; otherwise they compare the groups.
    numeric : {"auto", "mean", "median", "both"}
        ``auto`` and ``both`` use parametric tests when every group passes Shapiro-Wilk, else rank
        tests; ``mean`` / ``median`` force parametric / rank tests.
    alpha : float
        Significance level of the Shapiro-Wilk normality check.
    ordinal_test : {"chi2", "rank"}
        Test of ordinal variables: ``chi2`` treats the levels as categories (chi-square / Fisher,
        as categorical variables); ``rank`` uses the level order (Mann-Whitney U for two groups,
        Kruskal-Wallis for more, on the level ranks), which has more power for a trend.
    n_resamples : int
        Monte Carlo tables for the Fisher-Freeman-Halton test of larger sparse tables.
    random_state : int
        Seed of those Monte Carlo tests (the only random step), so the result is reproducible.
    patient : str or pandas.Series, optional
        Column (or Series indexed like ``table``) giving each case's patient, e.g. ``"patient_id"``.
        Columns then count patients as well as images, and when a patient has several images the
        tests use one row per patient and column (:data:`PATIENT_RULE`). With one image per
        patient the tests are those without ``patient``.

    Returns
    -------
    BaselineStatistics

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
    labels = None
    if label is not None:
        labels = _as_series(label, table, "label")
        if labels.isna().any():
            cases = ", ".join(map(str, table.index[labels.isna().to_numpy()][:10]))
            raise ValueError(f"cases {cases} have no label. Fix: fill in the label or drop those rows")
        label_levels = _ordered_levels(labels)
    patients = None
    if patient is not None:
        patients = _as_series(patient, table, "patient")
        if patients.isna().any():
            cases = ", ".join(map(str, table.index[patients.isna().to_numpy()][:10]))
            raise ValueError(f"cases {cases} have no patient. Fix: fill in patient_id (one id per patient) "
                             "or drop those rows")
        patients = patients.astype(str)

    def n_patients(mask) -> int | None:
        return None if patients is None else int(patients[mask].nunique())

    columns: list[BaselineColumn] = []
    for g in group_levels:
        in_group = groups == g
        if labels is None:
            columns.append(BaselineColumn(g, None, int(in_group.sum()), n_patients(in_group)))
        else:
            for lv in label_levels:
                both = in_group & (labels == lv)
                columns.append(BaselineColumn(g, lv, int(both.sum()), n_patients(both)))
    several = patients is not None and bool(patients.duplicated().any())
    dedup = patients if several else None
    keys = [c.key for c in columns]
    masks = {key: ((groups == key[0]) & ((labels == key[1]) if key[1] is not None else True)).to_numpy()
             for key in keys}
    # Comparisons: between groups (no label) or between classes within each group.
    if labels is None:
        comparisons = [(BETWEEN_GROUPS, tuple(keys))] if len(keys) > 1 else []
    else:
        comparisons = [(g, tuple(key for key in keys if key[0] == g)) for g in group_levels]

    rng = np.random.default_rng(random_state)
    results = []
    for spec in specs:
        values = table[spec.name]
        if spec.type == "numeric":
            results.append(_numeric_statistics(spec, _numeric_values(values, spec.name), keys, masks,
                                               comparisons, numeric, alpha, patients=dedup))
        else:
            results.append(_categorical_statistics(spec, values, keys, masks, comparisons, n_resamples, rng,
                                                   rank=spec.type == "ordinal" and ordinal_test == "rank",
                                                   patients=dedup))
    tests = pd.DataFrame([t for r in results for t in r.tests], columns=_TEST_COLUMNS)
    return BaselineStatistics(
        columns=tuple(columns), group_sizes={g: int((groups == g).sum()) for g in group_levels},
        labelled=labels is not None, comparisons=tuple(comparisons), variables=tuple(results), tests=tests,
        numeric=numeric, alpha=alpha, n_resamples=n_resamples, random_state=random_state,
        ordinal_test=ordinal_test,
        patient_sizes=None if patients is None else {g: n_patients(groups == g) for g in group_levels},
        patient_rule=PATIENT_RULE if several else "")
