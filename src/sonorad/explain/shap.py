"""SHAP explanations of a fitted model, in the space of the predictors its classifier reads.

Two layers:

- :func:`explain_model` explains any fitted classifier or ``Pipeline`` (the transform steps are run
  first and the final estimator is explained on their output, with the names given by
  ``get_feature_names_out``).
- :func:`explain_cases` is what the study run and the bundle's calculator both call: the model is
  split into its *parts* (:func:`explain_parts`: display steps, trailing per-column scalers, the
  classifier), the classifier is explained after the scalers, and the result is labelled with the
  predictors' own names and values (``age``, ``rad_score``), never positional ``x0, x1, ...``.
  The background is given in the same display space, so the run (training rows) and the bundle
  (saved centroids) differ only by the background they pass.

Explainer by model type (the output space is recorded in ``ShapResult.output``):

==========================================================  ===============  ==================
model                                                       explainer        output
==========================================================  ===============  ==================
RandomForest, ExtraTrees, DecisionTree                      TreeExplainer    probability
GradientBoosting, HistGradientBoosting, XGBoost, LightGBM   TreeExplainer    log-odds
LogisticRegression                                          LinearExplainer  log-odds
anything else with ``predict_proba`` (SVM, KNN, MLP, NB,    Permutation      probability
AdaBoost, ...)
==========================================================  ===============  ==================

Tree SHAP uses the exact tree-path-dependent algorithm (no background sample needed). Linear and
permutation explainers use an ``Independent`` masker on a background sample of at most
``max_background`` rows; the permutation explainer runs a few antithetic permutations per case,
which keeps every zoo model under a few seconds on a 200-case cohort.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from sonorad.evaluation._results import ResultMixin

__all__ = ["ShapResult", "explain_model", "choose_explainer", "explain_space", "explain_parts", "apply_steps",
           "display_table", "explain_cases", "top_contributions", "CONTRIBUTION_FIELDS", "MAX_BACKGROUND"]

#: Largest background sample of the linear and permutation explainers.
MAX_BACKGROUND = 20
#: Fields of one row of :func:`top_contributions`.
CONTRIBUTION_FIELDS = ("case_id", "rank", "feature", "value", "label", "shap", "base_value", "output", "explainer")

_TREE_PROBA = {"RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier",
               "ExtraTreeClassifier"}
_TREE_LOGODDS = {"GradientBoostingClassifier", "HistGradientBoostingClassifier", "XGBClassifier",
                 "LGBMClassifier", "CatBoostClassifier"}
_LINEAR = {"LogisticRegression", "LogisticRegressionCV"}


def choose_explainer(estimator) -> tuple[str, str]:
    """Return ``(explainer, output)`` for a fitted classifier (see the module table)."""
    name = type(estimator).__name__
    if name in _TREE_PROBA:
        return "tree", "probability"
    if name in _TREE_LOGODDS:
        return "tree", "log-odds"
    if name in _LINEAR:
        return "linear", "log-odds"
    if not hasattr(estimator, "predict_proba"):
        raise ValueError(f"{name} has no predict_proba; enable probabilities (e.g. SVC(probability=True)) "
                         "so it can be explained.")
    return "permutation", "probability"


@dataclass(frozen=True, repr=False)
class ShapResult(ResultMixin):
    """SHAP values of one model on a set of cases.

    Attributes
    ----------
    values : numpy.ndarray, shape (n_cases, n_features)
        SHAP values of the positive class.
    base_values : numpy.ndarray, shape (n_cases,)
        Expected model output (``values.sum(1) + base_values`` = model output per case).
    data : numpy.ndarray, shape (n_cases, n_features)
        Feature values of the explained cases: the predictors in their own units for
        :func:`explain_cases`, the explained estimator's input for :func:`explain_model`.
    feature_names : list of str
    case_ids : list
        Index of the explained cases.
    explainer : str
        ``"tree"``, ``"linear"`` or ``"permutation"``.
    output : str
        ``"probability"`` or ``"log-odds"``: the scale of ``values``.
    model_name : str
    display_data : numpy.ndarray of str or None, shape (n_cases, n_features)
        ``data`` as a person reads it: a level-coded clinical variable under its level's text
        (BI-RADS ``"3"``, not its code ``1.0``; :func:`sonorad.clinical.decode_value`), other
        predictors as numbers. ``None`` when no predictor is level-coded.
    """

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    feature_names: list
    case_ids: list
    explainer: str
    output: str
    model_name: str = "model"
    display_data: np.ndarray | None = None
    title = "SHAP importance"

    def importance(self) -> pd.DataFrame:
        """Features ranked by mean |SHAP| (columns rank, mean_abs_shap, mean_shap)."""
        mabs = np.abs(self.values).mean(axis=0)
        tab = pd.DataFrame({"feature": self.feature_names, "mean_abs_shap": mabs,
                            "mean_shap": self.values.mean(axis=0)})
        tab = tab.sort_values("mean_abs_shap", ascending=False, kind="stable").reset_index(drop=True)
        tab.insert(0, "rank", np.arange(1, len(tab) + 1))
        return tab.set_index("feature")

    def to_frame(self) -> pd.DataFrame:
        tab = self.importance()
        tab["explainer"] = self.explainer
        tab["output"] = self.output
        return tab

    def values_frame(self) -> pd.DataFrame:
        """SHAP values as a DataFrame (cases x features)."""
        return pd.DataFrame(self.values, index=self.case_ids, columns=self.feature_names)

    def to_explanation(self):
        """The values as a ``shap.Explanation`` (for the shap plotting functions)."""
        import shap

        return shap.Explanation(values=self.values, base_values=self.base_values, data=self.data,
                                display_data=self.display_data, feature_names=list(self.feature_names))

    def value_label(self, i: int, j: int) -> str:
        """The value of predictor ``j`` for case ``i`` as shown (level text, or the number)."""
        if self.display_data is not None:
            return str(self.display_data[i, j])
        return f"{float(self.data[i, j]):.4g}"

    def __repr__(self) -> str:
        return (f"ShapResult({self.model_name}: {self.values.shape[0]} cases x "
                f"{self.values.shape[1]} features, {self.explainer}, {self.output})")


def _split_pipeline(model):
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        return (model[:-1] if len(model.steps) > 1 else None), model.steps[-1][1]
    return None, model


def _unwrap(est, Xt):
    """Explain the inner classifier of a wrapper that predicts unchanged (e.g. a class-imbalance
    wrapper with a fitted ``estimator_``), so tree models keep the exact Tree SHAP."""
    inner = getattr(est, "estimator_", None)
    if inner is None or not hasattr(inner, "predict_proba") or not hasattr(inner, "classes_"):
        return est
    head = Xt.iloc[:5] if hasattr(Xt, "iloc") else np.asarray(Xt)[:5]
    try:
        same = np.allclose(est.predict_proba(head), inner.predict_proba(head))
    except Exception:
        return est
    return _unwrap(inner, Xt) if same else est


def _feature_names(pre, X, n_features: int) -> list[str]:
    if pre is not None:
        try:
            names = list(pre.get_feature_names_out())
            if len(names) == n_features:
                return [str(n) for n in names]
        except Exception:  # some transformers cannot name their outputs
            pass
    if isinstance(X, pd.DataFrame) and X.shape[1] == n_features:
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(n_features)]


def _to_array(X) -> np.ndarray:
    arr = X.to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X)
    return np.asarray(arr, dtype=float)


def explain_model(model, X, *, background=None, max_background: int = MAX_BACKGROUND, max_evals="auto",
                  random_state: int = 0, model_name: str | None = None) -> ShapResult:
    """SHAP values of a fitted classifier or Pipeline for the cases in ``X``.

    Parameters
    ----------
    model : fitted classifier or Pipeline
        Any zoo model (``sonorad.models.get_model(...)`` after ``fit``) or a Pipeline ending
        in one.
    X : pandas.DataFrame or array, shape (n_cases, n_input_features)
        Cases to explain, in the model's input space (before the pipeline's transforms).
    background : DataFrame or array, optional
        Reference cases (training data) in the input space, used by the linear and permutation
        explainers; default ``X``. At most ``max_background`` rows are sampled
        (``random_state``) to keep the permutation explainer fast.
    max_background : int
        Largest background sample.
    max_evals : int or "auto"
        Model evaluations per case for the permutation explainer; each antithetic permutation
        costs ``2 * n_features + 1``. ``"auto"`` runs 3 permutations, ``3 * (2 * n_features + 1)``
        (SHAP values of permutation explainers are estimates; they always add up exactly to the
        model output, and are exact for additive models). Raise it for smoother estimates.
    random_state : int
        Seed of the background sample and of the permutation explainer.
    model_name : str, optional
        Label for tables and plots (default: the estimator's class name).

    Returns
    -------
    ShapResult
        Positive-class SHAP values in the selected-feature space.
    """
    import shap

    if X is None or len(X) == 0:
        raise ValueError("X is empty; pass the cases to explain.")
    pre, est = _split_pipeline(model)
    if not hasattr(est, "classes_"):
        raise ValueError(f"{type(est).__name__} is not fitted; fit the model before explaining it.")
    if len(est.classes_) != 2:
        raise ValueError("explain_model supports binary classifiers only.")
    Xt = pre.transform(X) if pre is not None else X
    est = _unwrap(est, Xt)
    kind, output = choose_explainer(est)
    Xt_arr = _to_array(Xt)
    if not np.isfinite(Xt_arr).all():
        raise ValueError("X contains NaN/infinite values after the pipeline's transforms; impute them first.")
    names = _feature_names(pre, X, Xt_arr.shape[1])
    # keep a DataFrame when the estimator was fitted on one, so feature-name checks pass
    fitted_on_frame = hasattr(est, "feature_names_in_")
    case_ids = list(X.index) if isinstance(X, pd.DataFrame) else list(range(len(Xt_arr)))

    if kind == "tree":
        explainer = shap.TreeExplainer(est)
        Xin = pd.DataFrame(Xt_arr, columns=est.feature_names_in_) if fitted_on_frame else Xt_arr
        ex = explainer(Xin)
        values, base = np.asarray(ex.values), np.asarray(ex.base_values)
    else:
        bg_in = X if background is None else background
        bg = _to_array(pre.transform(bg_in) if pre is not None else bg_in)
        rng = np.random.default_rng(random_state)
        if len(bg) > max_background:
            bg = bg[rng.choice(len(bg), int(max_background), replace=False)]
        masker = shap.maskers.Independent(bg, max_samples=len(bg))
        if kind == "linear":
            explainer = shap.LinearExplainer(est, masker)
            ex = explainer(Xt_arr)
        else:
            cols = list(est.feature_names_in_) if fitted_on_frame else None

            def f(A):
                A = pd.DataFrame(A, columns=cols) if cols is not None else A
                return est.predict_proba(A)[:, 1]

            explainer = shap.PermutationExplainer(f, masker, seed=random_state)
            n_feat = Xt_arr.shape[1]
            me = max_evals if max_evals != "auto" else 3 * (2 * n_feat + 1)
            if int(me) < 2 * n_feat + 1:
                raise ValueError(f"max_evals must be at least 2 * n_features + 1 = {2 * n_feat + 1}; got {me}.")
            ex = explainer(Xt_arr, max_evals=int(me), silent=True)
        values, base = np.asarray(ex.values), np.asarray(ex.base_values)
    if values.ndim == 3:  # (n, p, classes): keep the positive class
        values = values[:, :, 1]
        base = base[:, 1] if base.ndim == 2 else base
    base = np.asarray(base, dtype=float).reshape(-1)
    if base.size == 1:  # some explainers report one expected value for all cases
        base = np.full(values.shape[0], base[0])
    return ShapResult(values=np.asarray(values, dtype=float), base_values=base, data=Xt_arr,
                      feature_names=names, case_ids=case_ids, explainer=kind, output=output,
                      model_name=model_name or type(est).__name__)


# -- the parts of a fitted model -------------------------------------------------------------------
def _is_identity_scaler(step) -> bool:
    """A per-column affine step after which SHAP values are unchanged (only the displayed value is)."""
    from sklearn.preprocessing import StandardScaler

    from sonorad.selection import ZScore

    return isinstance(step, (StandardScaler, ZScore)) or step == "passthrough" or step is None


def _flat_steps(model) -> list:
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        out = []
        for _, step in model.steps:
            if step is None or (isinstance(step, str) and step == "passthrough"):
                continue
            out += _flat_steps(step)
        return out
    return [model]


def explain_space(model) -> tuple[list, list, object]:
    """Split a fitted model into ``(display_steps, scale_steps, classifier)``.

    ``display_steps`` turn the model input table into the predictors in their own units (selected
    features, scores, encoded variables); ``scale_steps`` are trailing per-column scalers (a zoo
    model's ``StandardScaler``); ``classifier`` is the final estimator. Nested pipelines are
    flattened. SHAP values are the same in the scaled and the unscaled space, so contributions are
    computed after ``scale_steps`` and shown with the unscaled values.
    """
    steps = _flat_steps(model)
    *pre, final = steps
    cut = len(pre)
    while cut > 0 and _is_identity_scaler(pre[cut - 1]):
        cut -= 1
    return pre[:cut], pre[cut:], final


def explain_parts(model, X: pd.DataFrame) -> tuple[list, list, object, pd.DataFrame]:
    """:func:`explain_space` of what a model explains, with its input.

    A design's model wrapper (``ColumnModel``, ``ScoreStack``) says with ``final_input(X)`` which
    estimator over which table SHAP and the nomogram explain (e.g. the second stage over the
    declared variables and the scores); a plain Pipeline explains itself over ``X``.

    Returns
    -------
    display_steps, scale_steps, classifier, input_table
    """
    while hasattr(model, "final_input"):
        model, X = model.final_input(X)
    display, scale, final = explain_space(model)
    return display, scale, final, X


def apply_steps(steps: list, X):
    """Apply fitted transform steps in turn; returns a DataFrame with the predictor names."""
    out = X
    for step in steps:
        if isinstance(out, pd.DataFrame) and hasattr(step, "n_features_in_") and not hasattr(step, "feature_names_in_"):
            out = out.to_numpy()  # the step was fitted on an array (its input had no names then either)
        out = step.transform(out)
    if not isinstance(out, pd.DataFrame):
        names = None
        if steps:
            try:
                names = [str(n) for n in steps[-1].get_feature_names_out()]
            except Exception:  # noqa: BLE001 - some transformers cannot name their outputs
                names = None
        arr = np.asarray(out, dtype=float)
        if names is None or len(names) != arr.shape[1]:
            names = [f"x{i}" for i in range(arr.shape[1])]
        out = pd.DataFrame(arr, index=X.index, columns=names)
    return out


def display_table(model, X: pd.DataFrame) -> pd.DataFrame:
    """The predictors a model's classifier reads, in their own units, for the rows of ``X``.

    ``X`` is the model input table; the result has one column per predictor (after selection,
    scores and encoding, before the classifier's per-column scaling). This is the space of the
    ``background`` of :func:`explain_cases`.
    """
    display, _, _, X = explain_parts(model, X)
    return apply_steps(display, X)


def explain_cases(model, X: pd.DataFrame, background: pd.DataFrame, *, max_background: int = MAX_BACKGROUND,
                  random_state: int = 0, model_name: str | None = None) -> ShapResult:
    """SHAP values of a fitted model's classifier for the cases of ``X``, labelled with the predictors.

    Parameters
    ----------
    model : fitted model
        A Pipeline ending in a classifier, or a design's model wrapper with ``final_input``.
    X : DataFrame, shape (n_cases, n_input_columns)
        Cases to explain, in the model input table's columns.
    background : DataFrame, shape (n_reference, n_predictors)
        Reference rows in the display space (:func:`display_table`): the run passes the training
        cases' predictors, a bundle its saved centroids. Used by the linear and permutation
        explainers; at most ``max_background`` rows are drawn with ``random_state``.
    max_background : int
        Largest background sample.
    random_state : int
        Seed of the background sample and of the permutation explainer.
    model_name : str, optional
        Label for tables and plots.

    Returns
    -------
    ShapResult
        ``feature_names`` are the predictors' names (the display columns) and ``data`` their
        values in their own units; ``values`` are the classifier's positive-class SHAP values
        (unchanged by the trailing per-column scalers).
    """
    display, scale, final, X = explain_parts(model, X)
    shown = apply_steps(display, X)
    missing = [c for c in shown.columns if c not in background.columns]
    if missing:
        raise ValueError(f"the background lacks predictor(s) {missing[:5]}; give it the columns of "
                         "display_table(model, X).")
    scaled = apply_steps(scale, shown)
    reference = apply_steps(scale, background[list(shown.columns)])
    result = explain_model(final, scaled, background=reference, max_background=max_background,
                           random_state=random_state, model_name=model_name)
    # the scalers may have been fitted on arrays and name their outputs x0, x1, ...: the predictors
    # keep their own names and units, the SHAP values are those of the scaled space
    return replace(result, feature_names=[str(c) for c in shown.columns],
                   data=shown.to_numpy(dtype=float), display_data=_level_labels(display, shown))


def _level_labels(display_steps: list, shown: pd.DataFrame):
    """``shown`` as text, level-coded clinical variables under their levels; ``None`` without any."""
    from sonorad.clinical import clinical_encoders, decode_value, predictor_level

    encoders = [enc for step in display_steps for enc in clinical_encoders(step)]
    if not any(predictor_level(encoders, str(c)) is not None for c in shown.columns):
        return None
    data = shown.to_numpy(dtype=float)
    return np.array([[decode_value(encoders, str(c), v) for c, v in zip(shown.columns, row)] for row in data],
                    dtype=object).reshape(data.shape)


def top_contributions(result: ShapResult, top: int) -> list[dict]:
    """The ``top`` largest |SHAP| contributions of every explained case, as rows.

    Each row has the fields :data:`CONTRIBUTION_FIELDS`: ``rank`` 1 is the largest; ``value`` is
    the predictor's value (``result.data``), ``label`` the same value as a person reads it (a
    clinical variable's level text, :meth:`ShapResult.value_label`) and ``shap`` its contribution
    on the ``output`` scale.
    """
    rows = []
    for i, cid in enumerate(result.case_ids):
        order = np.argsort(-np.abs(result.values[i]), kind="stable")[:top]
        for rank, j in enumerate(order, start=1):
            rows.append({"case_id": cid, "rank": rank, "feature": result.feature_names[j],
                         "value": float(result.data[i, j]), "label": result.value_label(i, j),
                         "shap": float(result.values[i, j]),
                         "base_value": float(result.base_values[i]), "output": result.output,
                         "explainer": result.explainer})
    return rows
