"""Clinical and ultrasound-semantic variables: encoding, imputation, logistic regression tables.

:class:`ClinicalEncoder` turns the declared variables of a study (age, tumour edge,
calcification, US-reported lymph node, ...) into numeric predictors, learning everything
(medians, modes, category levels) from the training cohort only. Missing values are imputed with
the training median (continuous, ordinal) or mode (binary, categorical), and a 0/1
``<variable>_missing`` indicator is added for every variable that had missing values in training.

:func:`univariable_logistic` and :func:`multivariable_logistic` give the odds-ratio tables of
clinical papers (OR, 95% Wald CI, Wald p) from ``statsmodels`` logistic regression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sonorad.errors import ConfigError
from sonorad.variables import VARIABLE_TYPES, canonical_value

__all__ = ["ENCODER_TYPES", "ClinicalEncoder", "LogisticTable", "univariable_logistic",
           "multivariable_logistic", "clinical_encoders", "decode_value", "predictor_level", "term_label"]

#: Types :class:`ClinicalEncoder` accepts: the declared variable types
#: (:data:`sonorad.variables.VARIABLE_TYPES`) and ``continuous``, an alias of ``numeric``.
ENCODER_TYPES = ("continuous", *VARIABLE_TYPES)


def _case_list(index, mask, limit=5) -> str:
    ids = [str(i) for i in index[np.asarray(mask)]]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def _canonical(values: pd.Series) -> pd.Series:
    """Values as the study file compares them (``2``, ``2.0`` and ``"2"`` are one level)."""
    return values.map(canonical_value).astype(object)


class ClinicalEncoder(TransformerMixin, BaseEstimator):
    """Encode declared clinical / ultrasound variables into numeric predictors.

    Parameters
    ----------
    variables : dict or None
        ``{column: type}``, type one of:

        - ``"continuous"`` (alias ``"numeric"``): kept as a number;
        - ``"ordinal"``: coded 0, 1, 2, ... by position in ``categories[column]`` (lowest first);
          without declared levels the values must be numeric and are kept as they are;
        - ``"binary"``: 0/1, the second level coded 1 (default levels: the sorted training values);
        - ``"categorical"``: one-hot, the first level is the reference and gets no column.

        ``None`` infers: numeric columns with more than two values continuous, two-valued columns
        binary, others categorical.
    categories : dict or None
        ``{column: [levels...]}``: the level order of binary, categorical and ordinal variables.
        Levels are compared as text the way the study file does (``2``, ``2.0`` and ``"2"`` are one
        level, see :func:`sonorad.variables.canonical_value`). A value outside the levels is an error
        naming the cases, at ``fit`` and at ``transform``.
    add_indicator : bool, default=True
        Add a 0/1 ``<column>_missing`` column for every variable with missing values in training.

    Attributes
    ----------
    types_ : dict
        Final type of every variable (``"numeric"`` normalised to ``"continuous"``).
    levels_ : dict
        Levels (canonical text) of binary, categorical and level-coded ordinal variables.
    fill_ : dict
        Imputation value of every variable: training median of the numeric code, or training mode
        level; learnt from the training rows only.
    indicators_ : list of str
        Variables that get a missing indicator.
    feature_names_out_ : ndarray of str

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age": [40, None, 70], "edge": ["smooth", "irregular", "smooth"]})
    >>> enc = ClinicalEncoder({"age": "numeric", "edge": "binary"}, {"edge": ["smooth", "irregular"]})
    >>> enc.fit_transform(X).to_numpy().tolist()
    [[40.0, 0.0, 0.0], [55.0, 1.0, 1.0], [70.0, 0.0, 0.0]]
    """

    def __init__(self, variables: dict | None = None, categories: dict | None = None,
                 add_indicator: bool = True):
        self.variables = variables
        self.categories = categories
        self.add_indicator = add_indicator

    @classmethod
    def from_study(cls, variables, role: str | None = None, add_indicator: bool = True) -> "ClinicalEncoder":
        """An encoder for the variables of a study file.

        Parameters
        ----------
        variables : mapping of str -> sonorad.variables.VariableSpec
            ``StudyConfig.variables``.
        role : {"clinical", "ultrasound"} or None
            Keep only the variables of this role (``None``: all).
        """
        chosen = {name: spec for name, spec in variables.items() if role is None or spec.role == role}
        types = {name: spec.type for name, spec in chosen.items()}
        levels = {}
        for name, spec in chosen.items():
            declared = spec.order if spec.type == "ordinal" else spec.levels
            if declared:
                levels[name] = list(declared)
        return cls(variables=types, categories=levels or None, add_indicator=add_indicator)

    def _check_frame(self, X):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "ClinicalEncoder needs a DataFrame indexed by case_id with one column per variable; "
                f"got {type(X).__name__}."
            )

    @staticmethod
    def _infer(X):
        types = {}
        for col in X.columns:
            values = X[col].dropna()
            if values.nunique() <= 2:
                types[col] = "binary"
            elif pd.api.types.is_numeric_dtype(values):
                types[col] = "continuous"
            else:
                types[col] = "categorical"
        return types

    def _numeric(self, X, col, kind):
        values = X[col]
        numeric = pd.to_numeric(values, errors="coerce")
        bad_rows = numeric.isna() & values.notna()
        if bad_rows.any():
            raise ValueError(
                f"Column {col!r} ({kind}) has non-numeric values in case(s) "
                f"{_case_list(X.index, bad_rows)} (e.g. {values[bad_rows].iloc[0]!r}). "
                "Fix: correct the values, or declare the variable categorical."
            )
        return numeric.astype(float)

    def _levelled(self, X, col, levels, when):
        text = _canonical(X[col])
        unknown = text.notna() & ~text.isin(levels)
        if unknown.any():
            raise ValueError(
                f"Column {col!r} has value(s) {sorted(set(text[unknown]))[:5]} not among its levels "
                f"{levels} (case(s) {_case_list(X.index, unknown)}){when}. Fix: recode them to a "
                "known level, or declare the levels in the study file."
            )
        return text

    def fit(self, X, y=None):
        """Learn levels and imputation values from the training rows (``y`` is ignored)."""
        self._check_frame(X)
        types = dict(self.variables) if self.variables is not None else self._infer(X)
        absent = [c for c in types if c not in X.columns]
        if absent:
            raise ConfigError(
                f"Variables {absent} are declared but absent from the table (columns: "
                f"{list(X.columns)[:10]}). Fix: add the columns to cases.csv or remove them from the study file."
            )
        bad = {c: t for c, t in types.items() if t not in ENCODER_TYPES}
        if bad:
            raise ConfigError(f"Unknown variable type(s) {bad}; choose among {ENCODER_TYPES}.")
        declared = {c: [str(v) for v in _canonical(pd.Series(list(lv), dtype=object))]
                    for c, lv in (self.categories or {}).items()}
        self.types_, self.levels_, self.fill_ = {}, {}, {}
        for col, kind in types.items():
            kind = "continuous" if kind == "numeric" else kind
            self.types_[col] = kind
            if X[col].notna().sum() == 0:
                raise ValueError(f"Column {col!r} has no value in the training cohort. Fix: drop the variable.")
            if kind == "continuous" or (kind == "ordinal" and col not in declared):
                self.fill_[col] = float(self._numeric(X, col, kind).median())
                continue
            observed = _canonical(X[col]).dropna()
            levels = declared.get(col, sorted(observed.unique(), key=_level_key))
            if kind == "binary" and len(levels) != 2:
                if col not in declared and len(levels) == 1 and set(levels) <= {"0", "1"}:
                    levels = ["0", "1"]  # a 0/1 column that happens to hold one value in training
                else:
                    raise ValueError(
                        f"Column {col!r} is declared binary but has levels {levels}. Fix: declare it "
                        "categorical, or give its two levels."
                    )
            text = self._levelled(X, col, levels, " in the training cohort").dropna()
            self.levels_[col] = levels
            if kind == "ordinal":
                self.fill_[col] = float(text.map(levels.index).median())
            else:
                counts = text.value_counts()
                self.fill_[col] = min(counts.index[counts == counts.max()], key=levels.index)
        self.indicators_ = [c for c in types if self.add_indicator and X[c].isna().any()]
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.feature_names_out_ = np.asarray(self._out_names(), dtype=object)
        return self

    def _out_names(self):
        names = []
        for col, kind in self.types_.items():
            if kind == "categorical":
                names += [f"{col}_{lvl}" for lvl in self.levels_[col][1:]]
            else:
                names.append(col)
        return names + [f"{c}_missing" for c in self.indicators_]

    def transform(self, X) -> pd.DataFrame:
        """Numeric predictors (float64), indexed like ``X``, columns ``feature_names_out_``."""
        check_is_fitted(self, "types_")
        self._check_frame(X)
        absent = [c for c in self.types_ if c not in X.columns]
        if absent:
            raise ValueError(f"Columns {absent} are missing from the table to encode. Fix: add them.")
        out = {}
        for col, kind in self.types_.items():
            if col not in self.levels_:
                out[col] = self._numeric(X, col, kind).fillna(self.fill_[col])
                continue
            levels = self.levels_[col]
            text = self._levelled(X, col, levels, "")
            if kind == "ordinal":
                out[col] = text.map(lambda v: np.nan if pd.isna(v) else levels.index(v)).astype(float).fillna(
                    self.fill_[col])
                continue
            filled = text.where(text.notna(), self.fill_[col])
            if kind == "binary":
                out[col] = (filled == levels[1]).astype(float)
            else:
                for lvl in levels[1:]:
                    out[f"{col}_{lvl}"] = (filled == lvl).astype(float)
        for col in self.indicators_:
            out[f"{col}_missing"] = X[col].isna().astype(float)
        return pd.DataFrame(out, index=X.index)[list(self.feature_names_out_)]

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


def clinical_encoders(model) -> list[ClinicalEncoder]:
    """The fitted :class:`ClinicalEncoder` objects inside ``model``.

    Looks through Pipeline steps and the blocks of column routers (``ColumnTransformer``, or any step
    holding fitted ``transformers_`` as ``(name, transformer, columns)``); ``model`` may itself be an
    encoder. Returns an empty list when there is none.
    """
    from sklearn.pipeline import Pipeline

    if isinstance(model, ClinicalEncoder):
        return [model] if hasattr(model, "types_") else []
    if isinstance(model, Pipeline):
        return [enc for _, step in model.steps for enc in clinical_encoders(step)]
    found = []
    for part in getattr(model, "transformers_", None) or ():
        if isinstance(part, tuple) and len(part) == 3 and not isinstance(part[1], str):
            found += clinical_encoders(part[1])
    return found


def predictor_level(encoders, feature: str):
    """Which variable and level an encoded predictor stands for.

    Parameters
    ----------
    encoders : ClinicalEncoder or iterable of them (fitted), or a model holding them
    feature : str
        An output column of an encoder (``birads``, ``edge``, ``birads_4``, ``age_missing``).

    Returns
    -------
    tuple (variable, kind, levels) or None
        ``kind`` is the variable's type, ``"one-hot"`` for the column of one categorical level
        (``levels`` is then that one level), or ``"missing"`` for a missing indicator; ``None``
        when ``feature`` is not a level-coded output (a continuous variable, a score, a feature).
    """
    if isinstance(encoders, ClinicalEncoder):
        encoders = [encoders]
    elif not isinstance(encoders, (list, tuple)):
        encoders = clinical_encoders(encoders)
    for enc in encoders:
        for col, kind in enc.types_.items():
            levels = enc.levels_.get(col)
            if feature == col and levels is not None and kind in ("binary", "ordinal"):
                return col, kind, list(levels)
            if kind == "categorical" and feature.startswith(f"{col}_") and feature[len(col) + 1:] in levels[1:]:
                return col, "one-hot", [feature[len(col) + 1:]]
        for col in enc.indicators_:
            if feature == f"{col}_missing":
                return col, "missing", []
    return None


def decode_value(encoders, feature: str, value) -> str:
    """The text a person reads for an encoded predictor value: the level, not its code.

    An ordinal or binary variable's code ``k`` is its ``k``-th level (BI-RADS ordered 2, 3, 4, 5:
    code ``1.0`` is ``"3"``); a one-hot column of level ``L`` reads ``"L"`` at 1 and ``"not L"`` at 0;
    a missing indicator reads ``"missing"`` / ``"recorded"``. A non-integer ordinal code (the
    training median imputed for a missing value can fall between two levels) reads
    ``"between 3 and 4 (imputed)"``. Any other predictor (continuous variables, scores, radiomics
    features) reads as its number, ``f"{value:.4g}"``. Only the shown text changes: the value and
    its SHAP contribution are those of the code.

    Parameters
    ----------
    encoders : ClinicalEncoder, iterable of them, or a model holding them (:func:`clinical_encoders`)
    feature : str
        The predictor's name as the model's classifier sees it.
    value : float

    Examples
    --------
    >>> import pandas as pd
    >>> enc = ClinicalEncoder({"birads": "ordinal"}, {"birads": [2, 3, 4, 5]}).fit(
    ...     pd.DataFrame({"birads": [2, 3, 4, 5]}))
    >>> decode_value(enc, "birads", 1.0), decode_value(enc, "age", 54.0)
    ('3', '54')
    """
    number = float(value)
    found = predictor_level(encoders, feature)
    if found is None or not np.isfinite(number):
        return f"{number:.4g}"
    _, kind, levels = found
    if kind == "missing":
        return "missing" if number == 1 else "recorded"
    if kind == "one-hot":
        return levels[0] if number == 1 else f"not {levels[0]}"
    if number.is_integer() and 0 <= number < len(levels):
        return levels[int(number)]
    low = int(np.clip(np.floor(number), 0, len(levels) - 1))
    high = int(np.clip(np.ceil(number), 0, len(levels) - 1))
    return f"between {levels[low]} and {levels[high]} (imputed)"


def term_label(encoders, feature: str) -> str:
    """What an odds ratio of predictor ``feature`` compares, in the levels' own text.

    ``"birads (per level: 2 < 3 < 4 < 5)"`` for an ordinal code, ``"edge: irregular vs smooth"``
    for a binary variable, ``"birads: 4 vs 2"`` for the one-hot column of a categorical level,
    ``"age: missing vs recorded"`` for a missing indicator, and ``feature`` itself otherwise.
    """
    found = predictor_level(encoders, feature) if encoders is not None else None
    if found is None:
        return feature
    col, kind, levels = found
    if kind == "ordinal":
        return f"{col} (per level: {' < '.join(levels)})"
    if kind == "binary":
        return f"{col}: {levels[1]} vs {levels[0]}"
    if kind == "missing":
        return f"{col}: missing vs recorded"
    encs = [encoders] if isinstance(encoders, ClinicalEncoder) else list(encoders)
    reference = next(e.levels_[col][0] for e in encs if col in e.levels_)
    return f"{col}: {levels[0]} vs {reference}"


def _level_key(level: str):
    """Sort numeric-looking levels by value, others alphabetically after them."""
    try:
        return (0, float(level), "")
    except ValueError:
        return (1, 0.0, level)


@dataclass
class LogisticTable:
    """Odds-ratio table of a logistic regression.

    Attributes
    ----------
    odds_ratio, ci_low, ci_high, p_value : pandas.Series
        Indexed by variable: OR = exp(beta), 95% Wald CI, two-sided Wald p.
    n : int
        Cases used.
    kind : str
        ``"univariable"`` (one model per variable) or ``"multivariable"`` (one model).
    method : str
    terms : pandas.Series or None
        What each odds ratio compares, in the levels' own text (:func:`term_label`); given when
        the table was built with the encoder of its predictors.
    """

    odds_ratio: pd.Series
    ci_low: pd.Series
    ci_high: pd.Series
    p_value: pd.Series
    n: int
    kind: str
    method: str = "logistic regression (statsmodels Logit), Wald 95% CI and p"
    terms: pd.Series | None = None

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({"odds_ratio": self.odds_ratio, "ci_low": self.ci_low,
                              "ci_high": self.ci_high, "p_value": self.p_value})
        if self.terms is not None:
            frame.insert(0, "term", self.terms.reindex(frame.index))
        return frame

    def __str__(self) -> str:
        return f"{self.kind} {self.method} (n = {self.n})\n{self.to_frame().round(4).to_string()}"


def _logit(X: pd.DataFrame, y):
    import statsmodels.api as sm

    design = sm.add_constant(X.astype(float), has_constant="add")
    try:
        return sm.Logit(np.asarray(y, dtype=float), design).fit(disp=0, maxiter=200)
    except np.linalg.LinAlgError as exc:
        raise ValueError(
            f"Logistic regression on {list(X.columns)} failed ({exc}): the predictors are collinear "
            "or a variable separates the classes perfectly. Fix: drop or merge the offending variables."
        ) from exc


def _check_xy(X, y):
    if not isinstance(X, pd.DataFrame):
        raise TypeError("X must be a DataFrame of numeric predictors (e.g. ClinicalEncoder output).")
    y = pd.Series(np.asarray(y), index=X.index)
    if set(np.unique(y)) - {0, 1}:
        raise ValueError("y must be 0/1. Fix: encode the positive class as 1.")
    if X.isna().any().any():
        cols = list(X.columns[X.isna().any()])
        raise ValueError(f"Predictors {cols} have missing values. Fix: encode with ClinicalEncoder first.")
    return y


def _terms(encoder, columns) -> pd.Series | None:
    if encoder is None:
        return None
    return pd.Series({c: term_label(encoder, str(c)) for c in columns})


def univariable_logistic(X: pd.DataFrame, y, encoder=None) -> LogisticTable:
    """One logistic regression per column of ``X``: OR, 95% CI and p of each variable alone.

    ``encoder`` (the fitted :class:`ClinicalEncoder` that made ``X``, optional) names what each
    odds ratio compares in the levels' own text (the ``term`` column, :func:`term_label`)."""
    y = _check_xy(X, y)
    rows = {}
    for col in X.columns:
        fit = _logit(X[[col]], y)
        ci = fit.conf_int().loc[col]
        rows[col] = (np.exp(fit.params[col]), np.exp(ci[0]), np.exp(ci[1]), fit.pvalues[col])
    frame = pd.DataFrame(rows, index=["or", "lo", "hi", "p"]).T
    return LogisticTable(frame["or"], frame["lo"], frame["hi"], frame["p"], len(y), "univariable",
                         terms=_terms(encoder, X.columns))


def multivariable_logistic(X: pd.DataFrame, y, encoder=None) -> LogisticTable:
    """One logistic regression on every column of ``X``: adjusted OR, 95% CI and p (``encoder``:
    as in :func:`univariable_logistic`)."""
    y = _check_xy(X, y)
    fit = _logit(X, y)
    ci = fit.conf_int().loc[X.columns]
    params = fit.params[X.columns]
    return LogisticTable(np.exp(params), np.exp(ci[0]), np.exp(ci[1]), fit.pvalues[X.columns],
                         len(y), "multivariable", terms=_terms(encoder, X.columns))
