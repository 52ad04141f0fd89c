"""Score-fusion design: Rad-score + DL-score, LASSO over clinical,
ultrasound and score variables, logistic regression and the model zoo.

1. Rad-score from radiomics, DL-score from deep features (:class:`sonorad.scores.RadScore`:
   z-score -> univariate -> correlation -> LASSO), each optionally after ComBat. With several DL
   backbones there is one DL-score per backbone (``dl_score_<backbone>``, ``dl_scores="per_backbone"``,
   the default) or one over all their features (``"joint"``).
2. The training cohort's scores fed to stage 2 are **out-of-fold**: each training case's score
   comes from a score model fitted on the other folds (patient-grouped, stratified), so stage 2
   learns how the scores behave on unseen cases; the scores are then refitted on the whole
   training cohort to score new cohorts. (As in stacking, a stage-2 validation case may have
   helped fit the score of a stage-2 training case; its own score never saw its label.)
3. Stage 2, one Pipeline per zoo model: encode clinical + US variables, keep the two scores ->
   LASSO selection (internally z-scored, predictors passed in their own units) -> zoo model.
   Selection sits inside the Pipeline, so the grouped CV that tunes every model re-selects in
   every fold; its CV AUC is honest.

Models: ``rad_score``, ``dl_score`` (or ``dl_score_<backbone>`` per backbone) and one per zoo model
(family ``combined``); the primary model is the combined model chosen by the one-standard-error rule
on the tuning-CV AUCs (:mod:`sonorad.designs.choice`).
"""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from sonorad.designs._common import (FeatureBlocks, _as_series, _check_selection_keys, _fit_zoo, _labels, _rows,
                                     _with_center, _zoo_models, selection_steps)
from sonorad.designs.base import ColumnModel, DesignResult, FeatureColumns, ScoreStack, backbone_of
from sonorad.designs.design import Design
from sonorad.designs.choice import TIE_RULE, choose_model
from sonorad.errors import ConfigError
from sonorad.keys import Key

__all__ = ["ScoreFusionEngine", "ScoreFusionDesign"]

#: values of ``models.dl_scores``
DL_SCORES = ("per_backbone", "joint")


def _fit_score(pipe, X, y, groups):
    """One Rad-score / DL-score Pipeline fitted on some training rows (a joblib task)."""
    return pipe.fit(X, y, score__groups=groups)


class ScoreFusionEngine(BaseEstimator):
    """Score-fusion design: Rad-score + DL-score, LASSO over clinical + US + scores, every zoo model.

    Parameters
    ----------
    models : list of str or None
        Zoo models to fit (``None``: all of :func:`sonorad.models.available_models`).
    rad_score, dl_score : dict or None
        Parameters of the :class:`~sonorad.scores.RadScore` and of every
        :class:`~sonorad.scores.DLScore` (keys: icc, icc_threshold, icc_missing, test, alpha, fdr,
        max_univariate, correlation, correlation_threshold, method, rule, n_lambdas, cv).
    dl_scores : {"per_backbone", "joint"}, default="per_backbone"
        With deep features of several backbones: one DL-score per backbone, each a stage-2
        predictor (``dl_score_<backbone>``), or one DL-score over all of them (``dl_score``).
        One backbone always gives one ``dl_score``. The default is the benchmark's evidence
        (``docs/modeling.md``, *Site robustness*).
    dl_backbones : list of str or None
        The backbones of the ``deep`` table's columns (``<backbone>_<i>``), set by the design from
        the study's features (``None``: one table, one DL-score).
    final_selection : dict or None
        ``LassoSelector`` parameters of stage 2 (method, rule, n_lambdas, cv, scoring).
    clinical_variables, us_variables : dict or None
        ``{column: type}`` for the :class:`~sonorad.clinical.ClinicalEncoder` of each table
        (``None``: types inferred).
    categories : dict or None
        Level order of categorical / binary variables.
    cv : int, default=5
        Folds of the out-of-fold scores and of model tuning.
    n_iter : int or None
        Randomised search size per model (``None``: full grid).
    class_weight, resample :
        Class-imbalance options of :func:`sonorad.models.get_model`.
    harmonize : bool, default=False
        ComBat (fitted on training centers) before each score.
    harmonize_options : dict or None
        :class:`~sonorad.harmonize.ComBatHarmonizer` parameters.
    random_state : int, default=0
        The one seed of every fold, solver and model.
    n_jobs : int or None
        Parallel CV fits of the model searches (results do not depend on it).

    Attributes
    ----------
    rad_score_, dl_score_ : RadScore
        Scores refitted on the whole training cohort (``formula()``, ``lasso_.path_frame()``);
        ``dl_score_`` is the first DL-score when there is one per backbone.
    score_pipelines_ : dict
        ``{"rad_score": Pipeline, "dl_score": Pipeline}`` (with ComBat when on), or one
        ``dl_score_<backbone>`` Pipeline per backbone.
    score_columns_ : dict
        Score name -> the feature columns it reads.
    oof_scores_ : DataFrame
        Out-of-fold training scores fed to stage 2.
    stage2_training_ : DataFrame
        The stage-2 input of the training cohort (raw clinical/US columns + OOF scores).
    pipelines_ : dict
        Model name -> fitted stage-2 Pipeline (``encode``, ``lasso``, ``model``).
    selected_features_ : list of str
        Predictors kept by the stage-2 LASSO.
    cv_auc_ : Series
        Tuning-CV AUC of every model (mean over the tuning folds of its best candidate; selection
        inside the CV).
    fold_auc_ : DataFrame
        The best candidate's AUC in each tuning fold (rows: folds, columns: models).
    best_params_ : dict
    choice_ : ModelChoice
        The one-standard-error choice among the models (:mod:`sonorad.designs.choice`).
    best_model_ : str
        The chosen model (``choice_.chosen``).
    """

    def __init__(self, models=None, rad_score=None, dl_score=None, dl_scores: str = "per_backbone",
                 dl_backbones=None, final_selection=None,
                 clinical_variables=None, us_variables=None, categories=None, cv: int = 5,
                 n_iter: int | None = None, class_weight: str | None = None, resample: str | None = None,
                 harmonize: bool = False, harmonize_options=None, random_state: int = 0,
                 n_jobs: int | None = None):
        self.models = models
        self.rad_score = rad_score
        self.dl_score = dl_score
        self.dl_scores = dl_scores
        self.dl_backbones = dl_backbones
        self.final_selection = final_selection
        self.clinical_variables = clinical_variables
        self.us_variables = us_variables
        self.categories = categories
        self.cv = cv
        self.n_iter = n_iter
        self.class_weight = class_weight
        self.resample = resample
        self.harmonize = harmonize
        self.harmonize_options = harmonize_options
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _score_pipeline(self, kind):
        from sonorad.harmonize import ComBatHarmonizer
        from sonorad.scores import DLScore, RadScore

        cfg = self.rad_score if kind == "rad_score" else self.dl_score
        _check_selection_keys(cfg, "rad_score" if kind == "rad_score" else "dl_score")
        steps = []
        if self.harmonize:
            steps.append(("combat", ComBatHarmonizer(**(self.harmonize_options or {}))))
        params = {**(cfg or {}), "random_state": self.random_state}
        if kind == "rad_score":
            score = RadScore(**params)
        else:
            backbone = kind.removeprefix("dl_score_") if kind != "dl_score" else None
            score = DLScore(name=kind, label=f"DL-score ({backbone})" if backbone else "DL-score", **params)
        steps.append(("score", score))
        return Pipeline(steps)

    def _score_specs(self, tables) -> list[tuple[str, str, list | None]]:
        """``(score name, table, its columns or None for all)`` of every score the tables allow."""
        if self.dl_scores not in DL_SCORES:
            raise ConfigError(f"models.dl_scores = {self.dl_scores!r}; choose {' or '.join(DL_SCORES)}.")
        specs = []
        if tables.get("radiomics") is not None:
            specs.append(("rad_score", "radiomics", None))
        deep = tables.get("deep")
        if deep is not None:
            backbones = list(self.dl_backbones or ())
            if self.dl_scores == "joint" or len(backbones) < 2:
                specs.append(("dl_score", "deep", None))
            else:
                for backbone in backbones:
                    columns = [c for c in deep.columns if backbone_of(c) == backbone]
                    if not columns:
                        raise ValueError(f"the deep table has no {backbone}_<i> column. Fix: extract that "
                                         "backbone or leave it out of features.dl_backbone.")
                    specs.append((f"dl_score_{backbone}", "deep", columns))
        return specs

    def _score_input(self, tables, kind_table, index, centers, columns=None):
        X = _rows(tables, kind_table, index)
        if columns is not None:
            X = X[columns]
        if self.harmonize:
            if centers is None:
                raise ValueError("harmonize=True needs the center of every case. Fix: pass centers=.")
            X = _with_center(X, centers)
        return X

    def _stage2_blocks(self, tables, index):
        from sonorad.clinical import ClinicalEncoder

        blocks = []
        for name, variables in (("clinical", self.clinical_variables), ("us", self.us_variables)):
            if tables.get(name) is None:
                continue
            frame = _rows(tables, name, index)
            columns = list(variables) if variables is not None else list(frame.columns)
            blocks.append((name, ClinicalEncoder(variables=variables, categories=self.categories), columns))
        return blocks

    def _stage2_frame(self, tables, index, scores):
        parts = []
        for name, variables in (("clinical", self.clinical_variables), ("us", self.us_variables)):
            if tables.get(name) is not None:
                frame = _rows(tables, name, index)
                # only the declared columns, so one cases table can serve as both "clinical" and "us"
                parts.append(frame[list(variables)] if variables is not None else frame)
        parts.append(scores)
        frame = pd.concat(parts, axis=1)
        if frame.columns.duplicated().any():
            raise ValueError(f"Columns {list(frame.columns[frame.columns.duplicated()])} appear in two tables. "
                             "Fix: rename them.")
        return frame

    def fit(self, tables: dict, y, groups=None, centers=None):
        """Fit every step on the training cohort.

        Parameters
        ----------
        tables : dict of DataFrame
            ``radiomics``, ``deep``, ``clinical``, ``us`` (any subset with at least one), indexed by case_id.
        y : Series (indexed by case_id) or array aligned with the first table
            0/1 labels.
        groups : Series or array or None
            Patient ids (``None``: one patient per case).
        centers : Series or array or None
            Centers, needed when ``harmonize=True``.
        """
        from joblib import Parallel, delayed

        from sonorad.selection import LassoSelector, make_grouped_cv

        y = _labels(y, tables)
        index = y.index
        groups = _as_series(groups, index, "groups")
        g = None if groups is None else groups.to_numpy()
        centers = _as_series(centers, index, "centers")
        models = _zoo_models(self.models)
        folds = make_grouped_cv(self.cv, y.to_numpy(), g, random_state=self.random_state)

        self.score_pipelines_, self.score_columns_, oof = {}, {}, {}
        for kind, table, columns in self._score_specs(tables):
            X = self._score_input(tables, table, index, centers, columns)
            pipe = self._score_pipeline(kind)
            values = np.empty(len(index))
            # the out-of-fold fits and the full fit are independent: they run on the workers of the
            # enclosing joblib configuration (one process when there is none)
            *fits, full = Parallel()(
                delayed(_fit_score)(clone(pipe), X.iloc[rows], y.iloc[rows], None if g is None else g[rows])
                for rows in [*(tr for tr, _ in folds), slice(None)])  # slice: no copy of X
            for fold, (_, te) in zip(fits, folds):
                values[te] = fold.decision_function(X.iloc[te])
            oof[kind] = values
            self.score_pipelines_[kind] = full
            self.score_columns_[kind] = list(X.columns.drop("center", errors="ignore"))
        self.rad_score_ = self.score_pipelines_["rad_score"][-1] if "rad_score" in self.score_pipelines_ else None
        dl = [k for k in self.score_pipelines_ if k.startswith("dl_score")]
        self.dl_score_ = self.score_pipelines_[dl[0]][-1] if dl else None
        self.oof_scores_ = pd.DataFrame(oof, index=index)

        blocks = self._stage2_blocks(tables, index)
        if len(self.oof_scores_.columns):
            blocks.append(("scores", "passthrough", list(self.oof_scores_.columns)))
        if not blocks:
            raise ValueError("No input table given. Fix: pass at least one of radiomics, deep, clinical, us.")
        self.stage2_training_ = self._stage2_frame(tables, index, self.oof_scores_)
        final = {"cv": 10, "n_lambdas": 30, **(self.final_selection or {})}
        front = [("encode", FeatureBlocks(blocks)),
                 ("lasso", LassoSelector(standardize=True, random_state=self.random_state, **final))]
        with tempfile.TemporaryDirectory(prefix="sonorad-cache-") as cache:
            self.pipelines_, self.cv_auc_, self.best_params_, self.fold_auc_ = _fit_zoo(
                front, self.stage2_training_, y.to_numpy(), g, {"lasso__groups": g}, models=models,
                cv=self.cv, n_iter=self.n_iter, class_weight=self.class_weight, resample=self.resample,
                random_state=self.random_state, memory=cache, n_jobs=self.n_jobs)
        first = self.pipelines_[models[0]]
        self.selected_features_ = list(first.named_steps["lasso"].get_feature_names_out())
        self.choice_ = choose_model(self.cv_auc_, self.fold_auc_)
        self.best_model_ = self.choice_.chosen
        return self

    def scores(self, tables: dict, centers=None) -> pd.DataFrame:
        """Rad-score / DL-score values (log-odds) of every case of ``tables``, from the full-training fits."""
        check_is_fitted(self, "pipelines_")
        index = self._index(tables)
        centers = _as_series(centers, index, "centers")
        out = {}
        for kind, table, _ in self._score_specs(tables):
            if kind not in self.score_pipelines_:
                continue
            X = self._score_input(tables, table, index, centers, self.score_columns_[kind])
            out[kind] = self.score_pipelines_[kind].decision_function(X)
        return pd.DataFrame(out, index=index)

    def _index(self, tables):
        for name in ("radiomics", "deep", "clinical", "us"):
            if tables.get(name) is not None:
                return tables[name].index
        raise ValueError("No table given. Fix: pass the same tables as for fit.")

    def stage2_features(self, tables: dict, centers=None) -> pd.DataFrame:
        """Stage-2 input (raw clinical/US columns + scores) of any cohort."""
        index = self._index(tables)
        return self._stage2_frame(tables, index, self.scores(tables, centers))

    def predict_proba(self, tables: dict, centers=None) -> pd.DataFrame:
        """P(positive) of every case: one column per zoo model, plus ``rad_score`` / ``dl_score``.

        The score columns are the logistic transform of each score (their own probability), so
        every column can be evaluated the same way.
        """
        features = self.stage2_features(tables, centers)
        out = {}
        for kind, table, _ in self._score_specs(tables):
            if kind in self.score_pipelines_:
                out[kind] = self.score_pipelines_[kind].predict_proba(
                    self._score_input(tables, table, features.index, _as_series(centers, features.index, "centers"),
                                      self.score_columns_[kind]))[:, 1]
        for name, pipe in self.pipelines_.items():
            out[name] = pipe.predict_proba(features)[:, 1]
        return pd.DataFrame(out, index=features.index)

    # -- what the fitted family learned ----------------------------------------------------------
    def funnel(self) -> pd.DataFrame:
        """Selection funnel of the Rad-score, the DL-score and the stage-2 LASSO."""
        from sonorad.designs.funnel import score_funnel, selection_funnel

        check_is_fitted(self, "pipelines_")
        frames = [score_funnel(pipe, pipe[-1].label) for pipe in self.score_pipelines_.values()]
        first = next(iter(self.pipelines_.values()))
        n2 = len(first.named_steps["encode"].get_feature_names_out())
        frames.append(selection_funnel([("lasso", first.named_steps["lasso"])], n2,
                                       "stage 2: clinical + ultrasound + scores"))
        return pd.concat(frames, ignore_index=True)

    def lasso_paths(self) -> dict[str, pd.DataFrame]:
        check_is_fitted(self, "pipelines_")
        out = {pipe[-1].label: pipe[-1].lasso_.path_frame() for pipe in self.score_pipelines_.values()}
        out["stage 2"] = next(iter(self.pipelines_.values())).named_steps["lasso"].path_frame()
        return out

    def score_coefficients(self) -> pd.DataFrame:
        """Coefficients of the Rad-score / DL-score formulas: ``score, feature, coefficient, mean, sd``."""
        rows = []
        for kind, pipe in self.score_pipelines_.items():
            score = pipe[-1]
            rows.append({"score": kind, "feature": "(intercept)", "coefficient": score.intercept_,
                         "mean": np.nan, "sd": np.nan})
            for f, c, m, s in zip(score.features_, score.coef_, score.mean_, score.sd_):
                rows.append({"score": kind, "feature": f, "coefficient": c, "mean": m, "sd": s})
        return pd.DataFrame(rows, columns=["score", "feature", "coefficient", "mean", "sd"])


class ScoreFusionDesign(Design):
    """Rad-score + DL-score + clinical/ultrasound variables -> LASSO -> LR and the model zoo."""

    name = "score_fusion"
    aliases = ("study1",)
    title = "Rad-score and DL-score with clinical and ultrasound variables (LASSO, LR + model zoo)"
    engine = ScoreFusionEngine
    selection_keys = ("rad_score", "dl_score")
    icc_key = "rad_score"
    derived = ("dl_backbones",)
    declared = (
        Key("dl_scores", "choice", "with several DL backbones: `per_backbone` (one DL-score per backbone, "
            "`dl_score_<backbone>`, each a stage-2 predictor) or `joint` (one `dl_score` over all their features); "
            "see `docs/modeling.md`, *Site robustness*", choices=DL_SCORES, default_doc="`per_backbone`"),
        Key("final_selection", "any", "stage-2 LASSO: `method`, `rule`, `n_lambdas`, `cv`, `scoring` (`deviance` or "
            "`auc`)", nullable=True, default_doc="`cv: 10, n_lambdas: 30`"),
    )

    #: models always drawn beside the chosen one
    baselines = ("logistic_regression",)

    def score_models(self, engine: ScoreFusionEngine, columns: FeatureColumns) -> dict[str, ColumnModel]:
        center = ["center"] if engine.harmonize else []
        return {kind: ColumnModel.fitted(pipe, engine.score_columns_[kind] + center)
                for kind, pipe in engine.score_pipelines_.items()}

    def result(self, engine: ScoreFusionEngine, columns: FeatureColumns) -> DesignResult:
        scores = self.score_models(engine, columns)
        variables = [c for c in columns.variables
                     if c in set(engine.stage2_training_.columns)]
        stacks = {name: ScoreStack.fitted(list(scores.items()), variables, pipe)
                  for name, pipe in engine.pipelines_.items()}
        families = {kind: (kind,) for kind in scores}
        families["combined"] = tuple(stacks)
        chosen = {kind: kind for kind in scores}
        chosen["combined"] = engine.best_model_
        highlight = [*scores, *[m for m in self.baselines if m in stacks], engine.best_model_]
        formulas = {pipe[-1].label: pipe[-1].formula() for pipe in engine.score_pipelines_.values()}
        steps = selection_steps(engine.rad_score)
        dl = [k for k in engine.score_pipelines_ if k != "rad_score"]
        if len(dl) > 1:
            steps.append("the Rad-score is the LASSO signature of the radiomics features and each DL-score that of "
                         f"one backbone's deep features ({len(dl)} DL-scores); a second LASSO selects among the "
                         "clinical and ultrasound variables and the scores (their out-of-fold training values)")
        else:
            steps.append("the Rad-score and the DL-score are the LASSO signatures of the radiomics and the deep "
                         "features; a second LASSO selects among the clinical and ultrasound variables and both "
                         "scores (their out-of-fold training values)")
        if len(engine.cv_auc_) > 1:
            steps.append(f"the model is chosen by the {TIE_RULE}")
        return DesignResult(
            design=self.name, models={**scores, **stacks}, families=families, chosen=chosen,
            primary=engine.best_model_, highlight=tuple(dict.fromkeys(highlight)), cv_auc=engine.cv_auc_.copy(),
            selected_features={"combined": list(engine.selected_features_)}, funnel=engine.funnel(),
            lasso_paths=engine.lasso_paths(), coefficients=engine.score_coefficients(), formulas=formulas,
            training_scores=engine.oof_scores_.copy(),
            nomogram_model="logistic_regression" if "logistic_regression" in stacks else None,
            multivariable_predictors=tuple(engine.selected_features_),
            methods=tuple(steps), choices={"combined": engine.choice_})
