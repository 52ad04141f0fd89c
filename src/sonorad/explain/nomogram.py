"""Nomogram of a fitted logistic model: points per predictor, total points, probability.

Works for a scikit-learn ``LogisticRegression`` and for any ``Pipeline`` ending in one whose
earlier steps transform each original predictor separately (``StandardScaler``, ``OneHotEncoder``
inside a ``ColumnTransformer``, imputers, ...). The nomogram is built from the model itself: the
contribution of a predictor to the linear predictor is measured by changing that predictor alone
in a reference case, so no coefficient bookkeeping through the transforms is needed. Additivity
(what makes a nomogram exact) is checked on the data when the nomogram is built.

Points follow the usual convention (Iasonos et al. 2008, J Clin Oncol 26:1364): the predictor
with the widest range of contribution spans 0-100 points; every other predictor is scaled to it;
total points map linearly to the linear predictor and through the logistic function to the
probability, so :meth:`Nomogram.nomogram_points` reproduces ``predict_proba`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonorad.evaluation._results import ResultMixin

__all__ = ["Nomogram", "NomogramPoints", "build_nomogram", "nomogram_points"]


@dataclass(frozen=True, repr=False)
class NomogramPoints(ResultMixin):
    """Points of one case.

    Attributes
    ----------
    points : pandas.Series
        Points per predictor.
    total_points : float
    linear_predictor : float
        Log-odds of the positive class.
    probability : float
        ``1 / (1 + exp(-linear_predictor))``; equals the model's ``predict_proba`` for the case.
    """

    points: pd.Series
    total_points: float
    linear_predictor: float
    probability: float
    title = "Nomogram points"

    def to_frame(self) -> pd.DataFrame:
        out = self.points.rename("points").to_frame()
        out.loc["total points", "points"] = self.total_points
        out.loc["linear predictor", "points"] = self.linear_predictor
        out.loc["probability", "points"] = self.probability
        return out


@dataclass(frozen=True)
class _Axis:
    name: str
    kind: str            # "numeric" or "categorical"
    values: np.ndarray   # grid (numeric) or levels (categorical)
    contrib: np.ndarray  # contribution to the linear predictor at ``values`` (relative to reference)


@dataclass(frozen=True, repr=False)
class Nomogram(ResultMixin):
    """A nomogram built by :func:`build_nomogram`; draw it with :func:`sonorad.evaluation.plots.plot_nomogram`.

    Attributes
    ----------
    model : estimator
        The fitted logistic model (or Pipeline).
    reference : pandas.DataFrame
        One-row reference case (contributions are measured against it).
    axes : list
        One axis per predictor (name, kind, values, contributions).
    points_per_logit : float
        Points per unit of linear predictor (``100 / widest contribution range``).
    lp_at_zero : float
        Linear predictor at 0 total points.
    """

    model: object
    reference: pd.DataFrame
    axes: list
    points_per_logit: float
    lp_at_zero: float
    title = "Nomogram"

    @property
    def predictors(self) -> list[str]:
        return [a.name for a in self.axes]

    def _contrib_min(self, ax: _Axis) -> float:
        return float(np.min(ax.contrib))

    def points_scale(self, name: str, values) -> np.ndarray:
        """Points of predictor ``name`` at ``values`` (any values, also outside the data range)."""
        ax = self._axis(name)
        contrib = self._contributions(name, np.atleast_1d(values))
        return (contrib - self._contrib_min(ax)) * self.points_per_logit

    def _axis(self, name):
        for a in self.axes:
            if a.name == name:
                return a
        raise ValueError(f"{name!r} is not a predictor of this nomogram; predictors: {self.predictors}.")

    def _contributions(self, name: str, values) -> np.ndarray:
        return _contributions(self.model, self.reference, name, values)

    def total_points_to_probability(self, total_points) -> np.ndarray:
        """Map total points to probability."""
        lp = self.lp_at_zero + np.asarray(total_points, dtype=float) / self.points_per_logit
        return 1.0 / (1.0 + np.exp(-lp))

    def probability_to_total_points(self, probability) -> np.ndarray:
        """Total points that give ``probability``."""
        p = np.asarray(probability, dtype=float)
        return (np.log(p / (1 - p)) - self.lp_at_zero) * self.points_per_logit

    @property
    def max_total_points(self) -> float:
        return float(sum((np.max(a.contrib) - np.min(a.contrib)) * self.points_per_logit
                         for a in self.axes))

    def nomogram_points(self, case) -> NomogramPoints:
        """Points, total points, linear predictor and probability of one case.

        Parameters
        ----------
        case : dict, pandas.Series or one-row pandas.DataFrame
            Values of every predictor.
        """
        row = _as_row(case, self.reference)
        # one model call: the reference, then the reference with one predictor set to the case's value
        names = self.predictors
        block = pd.concat([self.reference] * (len(names) + 1), ignore_index=True)
        for k, name in enumerate(names):
            col = block[name].to_numpy(copy=True).astype(object)
            col[k + 1] = row[name].iloc[0]
            block[name] = _cast_like(col, self.reference[name].dtype)
        lp = _linear_predictor(self.model, block)
        pts = {}
        for k, ax in enumerate(self.axes):
            c = lp[k + 1] - lp[0]
            pts[ax.name] = (c - self._contrib_min(ax)) * self.points_per_logit
        total = float(sum(pts.values()))
        lp = self.lp_at_zero + total / self.points_per_logit
        return NomogramPoints(pd.Series(pts, name="points"), total, float(lp),
                              float(1.0 / (1.0 + np.exp(-lp))))

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for ax in self.axes:
            pts = (ax.contrib - self._contrib_min(ax)) * self.points_per_logit
            if ax.kind == "categorical":
                for v, p in zip(ax.values, pts):
                    rows.append({"predictor": ax.name, "value": v, "points": float(p)})
            else:
                for i in (0, len(ax.values) - 1):
                    rows.append({"predictor": ax.name, "value": ax.values[i], "points": float(pts[i])})
        return pd.DataFrame(rows)


def nomogram_points(nomogram: Nomogram, case) -> NomogramPoints:
    """Function form of :meth:`Nomogram.nomogram_points`."""
    return nomogram.nomogram_points(case)


def _as_row(case, reference: pd.DataFrame) -> pd.DataFrame:
    if isinstance(case, pd.DataFrame):
        if len(case) != 1:
            raise ValueError(f"case must be one row; got {len(case)} rows.")
        row = case
    elif isinstance(case, (pd.Series, dict)):
        row = pd.DataFrame([dict(case)])
    else:
        raise ValueError("case must be a dict, a pandas Series or a one-row DataFrame of predictor values.")
    missing = [c for c in reference.columns if c not in row.columns]
    if missing:
        raise ValueError(f"case is missing predictor(s) {missing}; give a value for each.")
    row = row[list(reference.columns)].reset_index(drop=True)
    return pd.DataFrame({c: _cast_like(row[c], reference[c].dtype) for c in reference.columns})


def _cast_like(values, dtype) -> pd.Series:
    """Cast a column to the reference dtype, keeping numeric columns as float so that a
    non-integer value of an integer-typed predictor (age 45.5) is not truncated."""
    ser = pd.Series(values)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return ser.astype(float)
    return ser.astype(dtype)


def _final_estimator(model):
    from sklearn.pipeline import Pipeline

    while isinstance(model, Pipeline):  # a zoo model is itself a Pipeline (scaler -> classifier)
        model = model.steps[-1][1]
    return model


def _linear_predictor(model, X: pd.DataFrame) -> np.ndarray:
    # a model fitted on a DataFrame gets one (column names checked); one fitted on an array gets an array
    from sklearn.pipeline import Pipeline

    # a first step without n_features_in_ (a column router such as FeatureBlocks) needs the frame
    first = model.steps[0][1] if isinstance(model, Pipeline) else model
    wants_frame = hasattr(model, "feature_names_in_") or not hasattr(first, "n_features_in_")
    Xin = X if wants_frame else X.to_numpy(dtype=float)
    return np.asarray(model.decision_function(Xin), dtype=float)


def _contributions(model, reference: pd.DataFrame, name: str, values) -> np.ndarray:
    values = np.asarray(values)
    block = pd.concat([reference] * (len(values) + 1), ignore_index=True)
    col = block[name].to_numpy(copy=True).astype(object)
    col[1:] = values
    block[name] = _cast_like(col, reference[name].dtype)
    lp = _linear_predictor(model, block)
    return lp[1:] - lp[0]


#: Most distinct values of an ordinal variable without declared levels drawn as one tick each.
_MAX_ORDINAL_TICKS = 12


def _encoder_levels(model, X: pd.DataFrame) -> dict:
    """``{column: levels}`` of the level-coded variables of the clinical encoders inside ``model``.

    A binary, categorical or ordinal variable of a :class:`~sonorad.clinical.ClinicalEncoder` only
    exists at its levels: its nomogram axis has a tick per level, labelled with the level's text
    (BI-RADS ``"2"``, ``"3"``, ... rather than the codes 0, 1, ...). An ordinal variable without
    declared levels keeps its numeric values as codes; its levels are the distinct training values
    (up to :data:`_MAX_ORDINAL_TICKS`; beyond that it is drawn as a numeric scale).
    """
    from sonorad.clinical import clinical_encoders

    out = {}
    for enc in clinical_encoders(model):
        for name, kind in enc.types_.items():
            if name in enc.levels_:
                out[name] = [str(v) for v in enc.levels_[name]]
            elif kind == "ordinal" and name in X.columns:
                values = pd.to_numeric(X[name], errors="coerce").dropna().unique()
                if len(values) <= _MAX_ORDINAL_TICKS:  # a many-valued score is drawn as a numeric scale
                    out[name] = sorted(float(v) for v in values)
    return out


def build_nomogram(model, X, *, categorical=None, n_grid: int = 101,
                   check_additivity: bool = True) -> Nomogram:
    """Build the nomogram of a fitted logistic model.

    Parameters
    ----------
    model : fitted LogisticRegression or Pipeline ending in LogisticRegression
        Binary model whose ``decision_function`` is the log-odds of the positive class.
    X : pandas.DataFrame
        Cases in the model's input format (training data is the usual choice); sets the range
        of each numeric axis and the levels of each categorical axis.
    categorical : list of str, optional
        Columns to draw as categories. Non-numeric, boolean and 0/1 columns are categorical by
        default, and so is every binary, categorical or ordinal variable of a
        :class:`~sonorad.clinical.ClinicalEncoder` inside ``model``: its axis has one tick per level
        (the declared levels, under their own text), and its missing values are allowed (the
        encoder imputes them).
    n_grid : int
        Grid points per numeric axis.
    check_additivity : bool
        Verify on up to 25 cases of ``X`` that the linear predictor is the sum of the
        one-predictor contributions (true for the supported pipelines); raise otherwise.

    Returns
    -------
    Nomogram

    Raises
    ------
    ValueError
        If the final estimator is not a binary LogisticRegression, ``X`` is not a DataFrame, or
        the model is not additive in its predictors (interactions, polynomial features).
    """
    from sklearn.linear_model import LogisticRegression

    final = _final_estimator(model)
    if not isinstance(final, LogisticRegression):
        raise ValueError(f"a nomogram needs a LogisticRegression (or a Pipeline ending in one); "
                         f"got {type(final).__name__}.")
    if not hasattr(final, "coef_"):
        raise ValueError("the model is not fitted; fit it on the training cohort first.")
    if len(getattr(final, "classes_", [])) != 2:
        raise ValueError("the nomogram supports binary logistic models only.")
    if not isinstance(X, pd.DataFrame):
        raise ValueError("X must be a pandas DataFrame with one column per predictor (names are "
                         "printed on the nomogram).")
    if len(X) < 2:
        raise ValueError("X needs at least 2 cases to set the axis ranges.")
    X = X.reset_index(drop=True)
    categorical = set(categorical or [])
    unknown = categorical - set(X.columns)
    if unknown:
        raise ValueError(f"categorical names unknown column(s) {sorted(unknown)}; columns: {list(X.columns)}.")
    encoded = {name: levels for name, levels in _encoder_levels(model, X).items() if name in X.columns}
    for name in X.columns:
        if name not in encoded and X[name].isna().any():
            raise ValueError(f"column {name!r} has missing values; impute or drop them first.")
    # the reference case holds a value of every predictor (an encoder imputes the others' gaps)
    complete = X.index[X.notna().all(axis=1)]
    reference = X.loc[[complete[0] if len(complete) else 0]].reset_index(drop=True)
    axes = []
    for name in X.columns:
        col = X[name]
        if name in encoded:
            levels = np.array(encoded[name], dtype=object)
            axes.append(_Axis(name, "categorical", levels, _contributions(model, reference, name, levels)))
            continue
        is_cat = (name in categorical or not pd.api.types.is_numeric_dtype(col)
                  or pd.api.types.is_bool_dtype(col)
                  or set(pd.unique(col.dropna())) <= {0, 1})
        if is_cat:
            levels = np.array(sorted(pd.unique(col), key=lambda v: (str(type(v)), v)), dtype=object)
            axes.append(_Axis(name, "categorical", levels, _contributions(model, reference, name, levels)))
        else:
            grid = np.linspace(float(col.min()), float(col.max()), int(n_grid))
            axes.append(_Axis(name, "numeric", grid, _contributions(model, reference, name, grid)))
    widest = max(float(np.ptp(a.contrib)) for a in axes)
    if widest <= 0:
        raise ValueError("every predictor has zero effect on the model; nothing to draw.")
    ppl = 100.0 / widest
    lp_ref = float(_linear_predictor(model, reference)[0])
    lp0 = lp_ref + sum(float(np.min(a.contrib)) for a in axes)
    nomo = Nomogram(model, reference, axes, ppl, lp0)
    if check_additivity:
        sample = X.iloc[: min(25, len(X))]
        lp = _linear_predictor(model, sample)
        recon = np.array([nomo.nomogram_points(sample.iloc[[i]]).linear_predictor
                          for i in range(len(sample))])
        if not np.allclose(lp, recon, rtol=1e-8, atol=1e-8):
            raise ValueError("the model is not additive in its predictors (interaction or "
                             "non-separable transform), so a nomogram cannot represent it exactly.")
    return nomo
