"""The model zoo: one registry entry (estimator factory + search space) per algorithm.

Every zoo model is a two-step ``Pipeline([("scale", ...), ("clf", classifier)])``: ``scale`` is a
``StandardScaler`` for scale-sensitive algorithms (LR, SVM, KNN, MLP) and ``"passthrough"`` for
the others, so every model takes raw predictors, and the classifier itself is ``model[-1]``.
Search spaces are small on purpose (a few candidates each): the cohorts are a few hundred
patients, and the tuning runs stratified, patient-grouped k-fold CV on the training cohort,
then refits the best candidate on all of it.

Class imbalance: ``class_weight="balanced"`` uses the algorithm's own ``class_weight`` when it
has one, balanced sample weights when its ``fit`` takes ``sample_weight``, and random
oversampling of the minority class otherwise (KNN, MLP); ``resample="oversample"`` or
``"undersample"`` resamples the training rows instead. Resampling happens inside the model's
``fit``, so inside CV it only ever touches the training folds.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from sonorad.errors import ConfigError

__all__ = [
    "ModelSpec",
    "MODEL_ZOO",
    "available_models",
    "get_model",
    "search_space",
    "tune_model",
    "tune_pipeline",
    "ImbalanceWrapper",
    "PlattCalibratedSVC",
    "cv_folds_note",
]


@dataclass(frozen=True)
class ModelSpec:
    """One algorithm of the zoo.

    Attributes
    ----------
    name : str
        Registry key (``"logistic_regression"``).
    label : str
        Display name (``"Logistic regression"``).
    factory : callable
        ``factory(random_state) -> unfitted classifier``.
    search_space : dict
        Grid over the classifier's parameters (unprefixed names).
    scale : bool
        Whether the predictors are standardised before the classifier.
    class_weight : bool
        Whether the classifier takes ``class_weight`` natively.
    class_weight_param : str
        The ``set_params`` name of that option.
    """

    name: str
    label: str
    factory: Callable[[int], BaseEstimator]
    search_space: dict = field(default_factory=dict)
    scale: bool = False
    class_weight: bool = False
    class_weight_param: str = "class_weight"


def _logistic(rs):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=5000, random_state=rs)


class PlattCalibratedSVC(ClassifierMixin, BaseEstimator):
    """An SVM with Platt-scaled probabilities whose inner calibration folds fit the data it gets.

    ``CalibratedClassifierCV(cv=5)`` fails on a training set (or a training-CV fold) with fewer than
    5 cases of a class. Here the number of inner, stratified, unshuffled (hence deterministic) folds
    is ``min(cv, smallest class count)``. With a single case of a class the sigmoid cannot be
    cross-fitted: it is then fitted on the SVM's own training decision values (optimistic
    probabilities; the ranking, hence the AUC, is unchanged) and a :class:`UserWarning` says so.

    Parameters
    ----------
    estimator : SVC
        The (unfitted) support vector classifier; its parameters are tuned as ``estimator__C`` etc.
    cv : int, default=5
        Inner folds wanted.

    Attributes
    ----------
    calibrated_ : CalibratedClassifierCV
        Fitted on all rows with ``n_folds_`` inner folds (``ensemble=False``: one SVC refit on all of
        them, one sigmoid fitted on the out-of-fold decision values).
    n_folds_ : int
        Inner folds used; 0 when the sigmoid was fitted on the training decision values.
    classes_ : ndarray

    Examples
    --------
    >>> from sklearn.svm import SVC
    >>> X = np.arange(12, dtype=float).reshape(-1, 1); y = np.array([0] * 9 + [1] * 3)
    >>> PlattCalibratedSVC(SVC(), cv=5).fit(X, y).n_folds_
    3
    """

    def __init__(self, estimator=None, cv: int = 5):
        self.estimator = estimator
        self.cv = cv

    def fit(self, X, y, sample_weight=None):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator
        from sklearn.svm import SVC

        y = np.asarray(y)
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"svm: the training set holds one class only ({classes.tolist()}); "
                             "Fix: both classes are needed to fit a classifier")
        estimator = clone(SVC(kernel="rbf") if self.estimator is None else self.estimator)
        weights = {} if sample_weight is None else {"sample_weight": sample_weight}
        n_folds = int(min(self.cv, counts.min()))
        if n_folds >= 2:
            # An int cv is an unshuffled StratifiedKFold for a classifier (and keeps the fitted model
            # free of splitter objects, which a bundle's skops file does not hold).
            self.calibrated_ = CalibratedClassifierCV(estimator, method="sigmoid", ensemble=False, cv=n_folds)
            self.calibrated_.fit(X, y, **weights)
        else:
            import warnings

            found = ", ".join(f"{c!r}: {n}" for c, n in zip(classes.tolist(), counts.tolist()))
            warnings.warn(
                f"svm: this training set has a single case of a class ({found}), too few to cross-fit "
                "Platt scaling; the sigmoid is fitted on the training decision values, so the probabilities "
                "are optimistic (the ranking is not affected). Fix: add cases of the rare class or use fewer "
                "CV folds", UserWarning, stacklevel=2)
            n_folds = 0
            estimator.fit(X, y, **weights)
            # The frozen SVC is not refitted: one "fold" whose test part is every row gives the sigmoid
            # the in-sample decision values.
            rows = np.arange(len(y))
            self.calibrated_ = CalibratedClassifierCV(FrozenEstimator(estimator), method="sigmoid", ensemble=False,
                                                      cv=[(rows, rows)])
            self.calibrated_.fit(X, y, **weights)
        self.n_folds_ = n_folds
        self.classes_ = self.calibrated_.classes_
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "calibrated_")
        return self.calibrated_.predict_proba(X)

    def predict(self, X):
        check_is_fitted(self, "calibrated_")
        return self.calibrated_.predict(X)


def _svm(rs):
    from sklearn.svm import SVC

    # Platt scaling fitted on internal (unshuffled, hence deterministic) folds of the training rows.
    return PlattCalibratedSVC(SVC(kernel="rbf", random_state=rs), cv=5)


def _knn(rs):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier()


def _random_forest(rs):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, random_state=rs, n_jobs=1)


def _extra_trees(rs):
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(n_estimators=100, random_state=rs, n_jobs=1)


def _xgboost(rs):
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=100, learning_rate=0.1, subsample=0.8, random_state=rs,
                         n_jobs=1, eval_metric="logloss", verbosity=0)


def _lightgbm(rs):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=100, learning_rate=0.05, min_child_samples=10,
                          subsample=0.8, subsample_freq=1, random_state=rs, n_jobs=1, verbose=-1)


def _mlp(rs):
    from sklearn.neural_network import MLPClassifier

    # L-BFGS converges faster and more reproducibly than Adam on a few hundred rows. With tens of
    # selected features the training loss keeps falling long after the validation AUC has settled
    # (the net interpolates), so 300 iterations act as early stopping: on the real benchmark's 91
    # DL-family features the tuning CV AUC is 0.8865 at 300 and 0.8827 at 3000 iterations, with
    # the same best candidate, for a tenth of the time (benchmarks/breast_us/profile_study2.py
    # --mlp-iterations 3000,300).
    return MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=300, random_state=rs)


def _adaboost(rs):
    from sklearn.ensemble import AdaBoostClassifier

    return AdaBoostClassifier(n_estimators=50, random_state=rs)


def _gradient_boosting(rs):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(n_estimators=100, subsample=0.8, random_state=rs)


def _naive_bayes(rs):
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


def _decision_tree(rs):
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(random_state=rs)


MODEL_ZOO: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("logistic_regression", "Logistic regression", _logistic,
                  {"C": [0.01, 0.1, 1.0, 10.0]}, scale=True, class_weight=True),
        ModelSpec("svm", "Support vector machine", _svm,
                  {"estimator__C": [0.1, 1.0, 10.0], "estimator__gamma": ["scale", 0.01]}, scale=True,
                  class_weight=True, class_weight_param="estimator__class_weight"),
        ModelSpec("knn", "k-nearest neighbours", _knn,
                  {"n_neighbors": [5, 11, 21], "weights": ["uniform", "distance"]}, scale=True),
        ModelSpec("random_forest", "Random forest", _random_forest,
                  {"max_depth": [3, None], "min_samples_leaf": [1, 5]}, class_weight=True),
        ModelSpec("extra_trees", "Extra trees", _extra_trees,
                  {"max_depth": [3, None], "min_samples_leaf": [1, 5]}, class_weight=True),
        ModelSpec("xgboost", "XGBoost", _xgboost, {"max_depth": [2, 4], "learning_rate": [0.05, 0.2]}),
        ModelSpec("lightgbm", "LightGBM", _lightgbm, {"num_leaves": [4, 15], "learning_rate": [0.05, 0.2]},
                  class_weight=True),
        ModelSpec("mlp", "Multilayer perceptron", _mlp,
                  {"alpha": [0.1, 1.0], "hidden_layer_sizes": [(8,), (32,)]}, scale=True),
        ModelSpec("adaboost", "AdaBoost", _adaboost, {"learning_rate": [0.1, 0.5, 1.0]}),
        ModelSpec("gradient_boosting", "Gradient boosting", _gradient_boosting,
                  {"max_depth": [2, 3], "learning_rate": [0.05, 0.2]}),
        ModelSpec("naive_bayes", "Gaussian naive Bayes", _naive_bayes, {"var_smoothing": [1e-9, 1e-6, 1e-3]}),
        ModelSpec("decision_tree", "Decision tree", _decision_tree,
                  {"max_depth": [2, 3, 5], "min_samples_leaf": [1, 5]}, class_weight=True),
    ]
}


def available_models() -> list[str]:
    """Names of every zoo algorithm, in registry order (logistic regression first)."""
    return list(MODEL_ZOO)


def _spec(name: str) -> ModelSpec:
    if name not in MODEL_ZOO:
        raise ConfigError(
            f"Unknown model {name!r}. Choose among: {', '.join(MODEL_ZOO)}."
        )
    return MODEL_ZOO[name]


class ImbalanceWrapper(ClassifierMixin, BaseEstimator):
    """Fit a classifier on re-weighted or resampled training rows; predict unchanged.

    Parameters
    ----------
    estimator : classifier
    strategy : {"weight", "oversample", "undersample"}, default="weight"
        ``"weight"`` passes balanced ``sample_weight`` to ``estimator.fit``; ``"oversample"``
        duplicates random minority rows, ``"undersample"`` drops random majority rows, until the
        classes are equal.
    random_state : int, default=0
    """

    def __init__(self, estimator=None, strategy: str = "weight", random_state: int = 0):
        self.estimator = estimator
        self.strategy = strategy
        self.random_state = random_state

    def fit(self, X, y):
        from sklearn.utils.class_weight import compute_sample_weight

        y = np.asarray(y)
        self.estimator_ = clone(self.estimator)
        if self.strategy == "weight":
            self.estimator_.fit(X, y, sample_weight=compute_sample_weight("balanced", y))
        elif self.strategy in ("oversample", "undersample"):
            rng = np.random.default_rng(self.random_state)
            classes, counts = np.unique(y, return_counts=True)
            target = counts.max() if self.strategy == "oversample" else counts.min()
            rows = []
            for c, n in zip(classes, counts):
                idx = np.flatnonzero(y == c)
                if n < target:
                    idx = np.concatenate([idx, rng.choice(idx, target - n, replace=True)])
                elif n > target:
                    idx = rng.choice(idx, target, replace=False)
                rows.append(np.sort(idx))
            rows = np.concatenate(rows)
            Xr = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
            self.estimator_.fit(Xr, y[rows])
        else:
            raise ConfigError(
                f"ImbalanceWrapper: strategy={self.strategy!r}; choose 'weight', 'oversample' or 'undersample'."
            )
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)


def _accepts_sample_weight(estimator) -> bool:
    return "sample_weight" in inspect.signature(estimator.fit).parameters


def get_model(name: str, *, random_state: int = 0, class_weight: str | None = None,
              resample: str | None = None):
    """An unfitted zoo model: ``Pipeline([("scale", ...), ("clf", classifier)])``.

    Parameters
    ----------
    name : str
        One of :func:`available_models`.
    random_state : int, default=0
        Seed of every random choice of the algorithm.
    class_weight : {None, "balanced"}, default=None
        Re-weight classes inversely to their frequency (see module docstring).
    resample : {None, "oversample", "undersample"}, default=None
        Resample the training rows to balance the classes (inside ``fit`` only).

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``model[-1]`` is the classifier, or an :class:`ImbalanceWrapper` around it.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    spec = _spec(name)
    if class_weight not in (None, "balanced"):
        raise ConfigError(f"class_weight={class_weight!r}; choose None or 'balanced'.")
    if resample not in (None, "oversample", "undersample"):
        raise ConfigError(f"resample={resample!r}; choose None, 'oversample' or 'undersample'.")
    clf = spec.factory(random_state)
    if resample is not None:
        clf = ImbalanceWrapper(clf, strategy=resample, random_state=random_state)
    elif class_weight == "balanced":
        if spec.class_weight:
            clf.set_params(**{spec.class_weight_param: "balanced"})
        else:
            strategy = "weight" if _accepts_sample_weight(clf) else "oversample"
            clf = ImbalanceWrapper(clf, strategy=strategy, random_state=random_state)
    scale = StandardScaler() if spec.scale else "passthrough"
    return Pipeline([("scale", scale), ("clf", clf)])


def search_space(name: str, model=None, prefix: str = "") -> dict:
    """The search grid of a zoo model, with parameter names as ``model.set_params`` expects.

    Parameters
    ----------
    name : str
        Zoo name.
    model : Pipeline or None
        The model from :func:`get_model` (tells whether the classifier is wrapped).
    prefix : str
        Prepended to every key, e.g. ``"model__"`` when the zoo model is a Pipeline step.
    """
    spec = _spec(name)
    inner = "clf__"
    if model is not None and isinstance(model[-1], ImbalanceWrapper):
        inner = "clf__estimator__"
    return {f"{prefix}{inner}{k}": list(v) for k, v in spec.search_space.items()}


def tune_pipeline(estimator, grid: dict, X, y, groups=None, *, cv: int = 5, random_state: int = 0,
                  n_iter: int | None = None, fit_params: dict | None = None, n_jobs: int | None = None):
    """Grid (or randomised) search by stratified patient-grouped k-fold CV AUC, refit on all rows.

    Parameters
    ----------
    estimator : estimator or Pipeline
    grid : dict
        Parameter grid in ``set_params`` names.
    X, y : training predictors and binary labels.
    groups : array-like or None
        Patient ids; ``None`` treats every row as its own patient.
    cv : int, default=5
    random_state : int, default=0
        Seed of the folds and of the randomised search.
    n_iter : int or None
        Sample this many candidates at random when the grid is larger; ``None`` searches it all.
    fit_params : dict or None
        Extra ``fit`` parameters, sliced per fold (e.g. ``{"lasso__groups": groups}``).
    n_jobs : int or None

    Returns
    -------
    GridSearchCV or RandomizedSearchCV
        Fitted; ``best_estimator_`` is refitted on all rows, ``best_score_`` its mean CV AUC.
    """
    from sklearn.model_selection import GridSearchCV, ParameterGrid, RandomizedSearchCV

    from sonorad.selection import make_grouped_cv

    folds = make_grouped_cv(cv, y, groups, random_state=random_state)
    size = len(ParameterGrid(grid)) if grid else 1
    if n_iter is not None and n_iter < size:
        search = RandomizedSearchCV(estimator, grid, n_iter=n_iter, scoring="roc_auc", cv=folds,
                                    random_state=random_state, refit=True, n_jobs=n_jobs,
                                    error_score="raise")
    else:
        search = GridSearchCV(estimator, grid or {}, scoring="roc_auc", cv=folds, refit=True,
                              n_jobs=n_jobs, error_score="raise")
    search.fit(X, y, **(fit_params or {}))
    return search


def tune_model(name: str, X, y, groups=None, *, cv: int = 5, random_state: int = 0,
               n_iter: int | None = None, class_weight: str | None = None,
               resample: str | None = None, return_search: bool = False):
    """Tune a zoo model by grouped stratified CV on the training cohort, then refit on all of it.

    Parameters
    ----------
    name : str
        Zoo name (:func:`available_models`).
    X : DataFrame or array of shape (n_samples, n_features)
        Training predictors.
    y : array-like of shape (n_samples,)
        Binary labels.
    groups : array-like or None
        Patient ids, so that images of one patient never straddle folds.
    cv : int, default=5
    random_state : int, default=0
    n_iter : int or None
        Randomised search with this many candidates (``None``: full grid).
    class_weight, resample :
        See :func:`get_model`.
    return_search : bool, default=False
        Return the fitted search object (with ``best_score_``, ``cv_results_``) instead.

    Returns
    -------
    Pipeline
        The best candidate refitted on all training rows (or the search, see above).
    """
    model = get_model(name, random_state=random_state, class_weight=class_weight, resample=resample)
    search = tune_pipeline(model, search_space(name, model), X, y, groups, cv=cv,
                           random_state=random_state, n_iter=n_iter)
    return search if return_search else search.best_estimator_


def cv_folds_note(requested: int, y, key: str = "evaluation.cv_folds") -> tuple[int, str | None]:
    """The number of stratified CV folds a training set allows, and the sentence that says so.

    Stratified k-fold needs at least one case of each class in every fold, so ``k`` is lowered to
    the size of the smallest class (as :func:`sonorad.selection.make_grouped_cv` does). A lowered
    ``k`` must not pass unnoticed: the sentence returned is for the run log and the report's
    methods text.

    Parameters
    ----------
    requested : int
        ``evaluation.cv_folds`` (or ``models.cv``) of the study file.
    y : array-like
        Training labels.
    key : str
        The study-file key the sentence names.

    Returns
    -------
    n_folds : int
        Folds used (``min(requested, smallest class count)``).
    note : str or None
        ``None`` when nothing was lowered.

    Examples
    --------
    >>> cv_folds_note(50, [0] * 49 + [1] * 11)
    (11, 'evaluation.cv_folds = 50 was lowered to 11 folds: the smallest class of the training cohort has 11 cases, and every stratified fold needs one of each class')
    >>> cv_folds_note(5, [0, 1] * 10)
    (5, None)
    """
    _, counts = np.unique(np.asarray(y).ravel(), return_counts=True)
    smallest = int(counts.min()) if counts.size else 0
    n_folds = int(min(requested, smallest))
    if n_folds >= requested:
        return n_folds, None
    return n_folds, (f"{key} = {requested} was lowered to {n_folds} folds: the smallest class of the "
                     f"training cohort has {smallest} cases, and every stratified fold needs one of each class")
