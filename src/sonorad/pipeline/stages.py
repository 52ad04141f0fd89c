"""The stages of a study, as functions with explicit inputs and outputs.

validate -> extract -> (ICC) -> fit -> cross-validate -> predict -> evaluate -> explain; the
runner (:mod:`sonorad.runner.run`) calls them in order, logs them, checkpoints the costly ones and
writes what they return. No stage reads another's output from disk or mutates shared state, so
each can be unit-tested and re-run from saved results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sonorad.designs import DesignResult, FeatureColumns, build_design, model_input_table
from sonorad.errors import FAILURE_COLUMNS, CohortError, ConfigError, Problem

__all__ = ["COHORT_OF_PART", "Features", "Evaluation", "validate", "extract", "compute_icc", "included",
           "feature_columns", "model_inputs", "make_design", "fit", "cross_validate", "fine_tune", "predict",
           "evaluate", "reference_comparison", "CenterResults", "per_center", "Bootstrap", "bootstrap", "odds_ratio_tables", "empty_failures",
           "check_parts", "cohort_ids", "model_card", "with_mask_settings", "automatic_rois"]

#: cohort name of each split part
COHORT_OF_PART = {"train": "training", "internal": "internal", "external": "external"}
_PATH_COLUMNS = ("image", "mask", "mask2")


def empty_failures() -> pd.DataFrame:
    return pd.DataFrame(columns=FAILURE_COLUMNS)


# -- validate -------------------------------------------------------------------------------------
def validate(study, *, say=None) -> tuple[object, pd.DataFrame]:
    """Validate the study's cases table; return ``(cohort, failures)``.

    A missing or unreadable image/mask file excludes its case (a row of ``failures``); every other
    error-level problem raises :class:`~sonorad.errors.CohortError` with the whole list. Warnings
    are kept in ``cohort.warnings``. Then what would fail after extraction is checked
    (:func:`sonorad.pipeline.preflight.preflight`: the declared variables encoded as the models
    encode them, the nomogram's needs, events per variable and Riley's sample size): its errors
    raise, its warnings join ``cohort.warnings`` and ``say`` (the run log) gets its report.
    """
    from dataclasses import replace

    from sonorad.cohort import Cohort, read_cases, validate_cases
    from sonorad.pipeline.automatic_rois import check_automatic_rois
    from sonorad.pipeline.preflight import check_cohort

    if study.cohort is None:
        raise ConfigError("the study names no cohort table. Fix: add `cohort: path/to/cases.csv` to the study "
                          "file or pass --cohort")
    table = read_cases(study.cohort, label_column=study.label.column)
    problems = validate_cases(table, study=study, check_files=True)
    per_case = [p for p in problems if p.severity == "error" and p.case_id is not None
                and p.column in _PATH_COLUMNS]
    problems += check_automatic_rois(table, study, exclude={p.case_id for p in per_case})  # masks.segmenter, boxes
    blocking = [p for p in problems if p.severity == "error" and p not in per_case]
    if blocking:
        raise CohortError(blocking, source=str(study.cohort))
    warnings = tuple(p for p in problems if p.severity != "error")
    failures = pd.DataFrame([{"case_id": p.case_id, "stage": "validate", "error": p.message, "fix": p.fix}
                             for p in per_case], columns=FAILURE_COLUMNS)
    cohort = Cohort(table=table, study=study, warnings=warnings, source=Path(study.cohort))
    checked = check_cohort(cohort, exclude=failures["case_id"].astype(str), source=study.cohort)
    for line in checked.lines if say is not None else ():
        say(line)
    return replace(cohort, warnings=(*cohort.warnings, *checked.warnings)), failures


def automatic_rois(cohort, failures: pd.DataFrame, study, out, *, say=None):
    """Propose the masks of the cases with a ``box`` and no ``mask`` (``masks.segmenter``); see
    :mod:`sonorad.pipeline.automatic_rois`. Returns ``(cohort, failures, rois)``: the cohort's table
    points to the accepted proposals, ``failures`` gains the flagged ones, ``rois`` is an
    :class:`~sonorad.pipeline.automatic_rois.AutomaticRois`.
    """
    from dataclasses import replace

    from sonorad.pipeline.automatic_rois import load_study_segmenter, propose_rois

    rois = propose_rois(cohort.table, load_study_segmenter(study), out, exclude=failures["case_id"].astype(str),
                        say=say)
    failures = pd.concat([failures, rois.failures], ignore_index=True)
    return replace(cohort, table=rois.table), failures, rois


# -- extract --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Features:
    """Feature tables of the cases that could be extracted, and the cases that could not.

    ``radiomics`` is ``None`` when radiomics is off; ``deep`` maps each backbone to its table.
    """

    radiomics: pd.DataFrame | None
    deep: dict
    failures: pd.DataFrame
    params: dict | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {} if self.radiomics is None else {"radiomics": self.radiomics}
        out.update({f"deep_{b}": t for b, t in self.deep.items()})
        return out


def extract(table: pd.DataFrame, config, *, cache, progress: bool = True, say=print) -> Features:
    """PyRadiomics and frozen CNN features of every case of ``table`` (cached per case)."""
    from sonorad.deep.extractor import extract_deep
    from sonorad.features.extract import extract_radiomics
    from sonorad.features.radiomics import spacing_params
    from sonorad.features.store import FeatureCache

    cache = FeatureCache(cache) if not isinstance(cache, FeatureCache) else cache
    failures, radiomics, params, deep = [], None, None, {}
    if config.radiomics:
        params = spacing_params(config.params, config.spacing, config.spacing_mm)
        radiomics, fails = extract_radiomics(table, params=params, cache=cache, jobs=config.jobs, progress=progress)
        failures.append(fails)
        say(f"radiomics: {radiomics.shape[1]} PyRadiomics features for {len(radiomics)} of {len(table)} cases, "
            f"{len(fails)} failed")
    for backbone in config.deep:
        feats, fails = extract_deep(table, backbone, cache=cache, batch_size=config.batch_size, margin=config.margin,
                                    mask_background=config.mask_background, progress=progress)
        failures.append(fails)
        deep[backbone] = feats
        say(f"deep {backbone}: {feats.shape[1]} frozen features for {len(feats)} cases, {len(fails)} failed")
    fails = pd.concat([f.reindex(columns=FAILURE_COLUMNS) for f in failures] or [empty_failures()],
                      ignore_index=True)
    return Features(radiomics=radiomics, deep=deep, failures=fails, params=params)


def with_mask_settings(table: pd.DataFrame, study) -> pd.DataFrame:
    """The cases table with the study's ``masks.label`` filled into ``mask_label`` where a case sets none."""
    from sonorad.cohort import case_mask_settings

    labels = case_mask_settings(table, study)["label"]
    if labels.isna().all():
        return table
    return table.assign(mask_label=labels)


def compute_icc(train_table: pd.DataFrame, config, *, seed: int, cache, progress: bool = True) -> pd.DataFrame:
    """ICC(3,1) of every radiomics feature on (up to ``icc.n_cases``) training cases."""
    from sonorad.features.icc import feature_icc
    from sonorad.features.radiomics import spacing_params

    n_cases = min(config.icc["n_cases"], len(train_table))
    params = spacing_params(config.params, config.spacing, config.spacing_mm)
    return feature_icc(train_table, params=params, seed=seed, n_cases=n_cases, jobs=config.jobs,
                       cache=cache, progress=progress)


def included(cohort, failures: pd.DataFrame) -> pd.Index:
    """Case ids of the cohort that no stage excluded, in table order."""
    failed = set(failures["case_id"].astype(str))
    return pd.Index([c for c in cohort.table.index if c not in failed], name="case_id")


def check_parts(parts: pd.Series, y: pd.Series, source) -> None:
    """Stop when no training case is left or the training cohort holds one class only."""
    train = parts.index[parts == "train"]
    problems = []
    if not len(train):
        problems.append(Problem("no training case is left", "check the split and the excluded cases"))
    elif y.loc[train].nunique() < 2:
        problems.append(Problem("the training cohort holds one class only",
                                "check the label column and the training centers"))
    if problems:
        raise CohortError(problems, source=str(source))


# -- model inputs ---------------------------------------------------------------------------------
def feature_columns(features: Features, study, config) -> FeatureColumns:
    """Which model-input columns are radiomics, deep (the DL backbones), clinical and ultrasound variables."""
    deep = _dl_features(features, config)
    return FeatureColumns(
        radiomics=tuple(features.radiomics.columns) if features.radiomics is not None else (),
        deep=tuple(deep.columns) if deep is not None else (),
        backbones=tuple(b for b in config.dl_backbones if b in features.deep),
        clinical=tuple(n for n, v in study.variables.items() if v.role != "ultrasound"),
        us=tuple(study.variables_with_role("ultrasound")))


def _dl_features(features: Features, config) -> pd.DataFrame | None:
    """The frozen features of the DL backbones, side by side (``<backbone>_<i>`` columns)."""
    tables = [features.deep[b] for b in config.dl_backbones if b in features.deep]
    return pd.concat(tables, axis=1) if tables else None


def model_inputs(cohort_table: pd.DataFrame, features: Features, columns: FeatureColumns, ids, config) -> pd.DataFrame:
    """The model input table of the cases ``ids``: features, declared variables (raw) and center."""
    ids = pd.Index(ids)
    deep = _dl_features(features, config)
    variables = cohort_table.loc[ids, list(columns.variables)] if columns.variables else None
    return model_input_table(ids, radiomics=features.radiomics, deep=deep, variables=variables,
                             centers=cohort_table.loc[ids, "center"].astype(str))


def apply_unseen_levels(inputs: dict[str, pd.DataFrame], variables: dict) -> tuple[dict, list[str]]:
    """Code the validation cohorts' unseen categories as ``sonorad predict`` does (``unseen: other``).

    For each categorical variable declared with ``unseen: other``, a value of an internal or external
    case that no training case holds becomes ``other`` (when that is a training level) or missing
    (imputed), through :func:`sonorad.variables.apply_unseen_policy`, the rule ``validate``,
    ``predict`` and the calculator apply. Returns the new tables and one note per coded value.
    """
    from sonorad.variables import apply_unseen_policy, canonical_value

    out, notes = dict(inputs), []
    train = inputs.get("training")
    for name, spec in (variables or {}).items():
        if spec.type != "categorical" or spec.unseen != "other" or train is None or name not in train.columns:
            continue
        known = sorted({v for v in train[name].map(canonical_value) if v is not None})
        for cohort, table in inputs.items():
            if cohort == "training" or name not in table.columns:
                continue
            coded, warnings = apply_unseen_policy(table[name], spec, known)
            if warnings:
                out[cohort] = out[cohort].assign(**{name: coded})
                notes += [f"{cohort} cohort: {w.message}" for w in warnings]
    return out, notes


# -- fit and cross-validate -----------------------------------------------------------------------
def make_design(study, config, icc: pd.DataFrame | None = None):
    """The configured, unfitted design (ICC values feed its ICC filter when computed)."""
    values = None
    if icc is not None:
        values = icc["icc"] if "icc" in icc.columns else icc
    return build_design(config.models, variables=study.variables, seed=study.seed, icc=values,
                        icc_threshold=None if config.icc is None else config.icc["threshold"])


def fit(design, X: pd.DataFrame, y: pd.Series, groups: pd.Series, columns: FeatureColumns) -> DesignResult:
    """Fit the design on the training cohort's model input table."""
    return design.fit(X, y.loc[X.index], groups.loc[X.index].astype(str), columns=columns)


def _fold(design, X, y, groups, columns, tr, te) -> pd.DataFrame:
    result = design.fit(X.iloc[tr], y.iloc[tr], groups.iloc[tr], columns=columns)
    return result.predict_proba(X.iloc[te])


def _cv_splits(X: pd.DataFrame, y: pd.Series, groups: pd.Series, *, folds: int, seed: int) -> list:
    from sonorad.selection import make_grouped_cv

    return list(make_grouped_cv(folds, y.loc[X.index].to_numpy(), groups.loc[X.index].astype(str).to_numpy(),
                                random_state=seed))


def cv_folds(X: pd.DataFrame, y: pd.Series, groups: pd.Series, *, folds: int, seed: int) -> pd.Series:
    """The training-CV fold (0 .. K-1) of every case of ``X``: the folds :func:`cross_validate` uses."""
    fold = pd.Series(-1, index=X.index, name="fold")
    for k, (_, test) in enumerate(_cv_splits(X, y, groups, folds=folds, seed=seed)):
        fold.iloc[test] = k
    return fold


def cross_validate(design, X: pd.DataFrame, y: pd.Series, groups: pd.Series, columns: FeatureColumns, *,
                   folds: int, seed: int, progress=None) -> tuple[pd.DataFrame, int]:
    """Out-of-fold predictions of the whole design (selection, scores and tuning refitted in every fold).

    Folds are stratified by outcome and grouped by patient, and fitted one after the other: the
    parallelism is inside each fit (its grid searches, under :func:`sonorad.parallel.fitting_jobs`),
    which keeps every worker busy whatever the number of folds. Returns ``(predictions, n_folds)``;
    ``n_folds`` may be lower than asked when a class has fewer patients than folds.
    ``progress(done, total)`` is called after every finished fold.
    """
    y = y.loc[X.index]
    groups = groups.loc[X.index].astype(str)
    splits = _cv_splits(X, y, groups, folds=folds, seed=seed)
    parts = []
    for tr, te in splits:
        parts.append(_fold(design, X, y, groups, columns, tr, te))
        if progress is not None:
            progress(len(parts), len(splits))
    return pd.concat(parts).reindex(X.index), len(splits)


def fine_tune(train_table: pd.DataFrame, y: pd.Series, groups: pd.Series, cnn: dict, *, seed: int, backbone: str):
    """A :class:`~sonorad.deep.finetune.CNNClassifier` fine-tuned on the training cases."""
    from sonorad.deep.finetune import CNNClassifier

    params = {k: v for k, v in cnn.items() if k != "backbones"}
    return CNNClassifier(backbone=backbone, random_state=seed, **params).fit(
        train_table, y.loc[train_table.index], groups=groups.loc[train_table.index].astype(str))


# -- predict --------------------------------------------------------------------------------------
def predict(result: DesignResult, inputs: dict, cnns: dict, tables: dict) -> dict[str, pd.DataFrame]:
    """P(positive) of every model on every cohort.

    ``inputs`` and ``tables`` map a cohort name to its model input table and to its rows of the
    cases table (for the fine-tuned CNNs, which read the images).
    """
    out = {}
    for cohort, X in inputs.items():
        frame = result.predict_proba(X)
        for name, model in cnns.items():
            frame[name] = model.predict_proba(tables[cohort])[:, 1]
        out[cohort] = frame
    return out


# -- evaluate -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    """Every statistic of a run, computed from the per-case probabilities and labels."""

    primary_cohort: str
    highlight: tuple
    cutoffs: pd.DataFrame
    metrics: pd.DataFrame
    delong: pd.DataFrame
    delong_matrix: pd.DataFrame
    calibration: pd.DataFrame
    calibration_curves: dict
    decision_curve: pd.DataFrame
    decision_curve_result: object
    notes: tuple = field(default_factory=tuple)


def evaluate(probabilities: dict, y: pd.Series, *, cv_auc: pd.Series | None, highlight, level: float,
             seed: int, groups: pd.Series | None = None, cv_folds: pd.Series | None = None) -> Evaluation:
    """Cut-offs (training Youden), metrics, DeLong tests, calibration and decision curves.

    ``groups`` (patient id per case) makes AUC intervals and DeLong tests clustered by patient
    where a patient has several images (:mod:`sonorad.pipeline.statistics`).
    """
    from sonorad.pipeline import statistics as st

    notes = []
    known = set(probabilities["training"].columns)
    unknown = [h for h in highlight if h not in known]
    if unknown:
        notes.append(f"evaluation.highlight names unknown models {unknown}; they are left out")
    highlight = tuple(h for h in highlight if h in known)
    clustered = st.clustering_note(probabilities, groups)
    if clustered:
        notes.append(clustered)
    if cv_folds is not None and "training_cv" in probabilities:
        notes.append("The whole-pipeline training-CV AUC's interval is the corrected resampled t interval of "
                     "Nadeau & Bengio (2003) over the folds, around the pooled out-of-fold AUC: the fold models "
                     "share training cases, so DeLong's interval on pooled out-of-fold predictions is too narrow.")
    cutoffs = st.youden_cutoffs(probabilities, y)
    metrics = st.metrics_table(probabilities, y, cutoffs, level=level, seed=seed, cv_auc=cv_auc, groups=groups,
                               cv_folds=cv_folds)
    primary = st.primary_cohort(probabilities)
    tests, matrix = st.delong_tables(probabilities[primary], y, level=level, groups=groups)
    calibration, curves = st.calibration_table(probabilities, y, list(highlight), level=level)
    dca, dca_result = st.decision_curve_table(probabilities[primary], y, list(highlight))
    return Evaluation(primary_cohort=primary, highlight=highlight, cutoffs=cutoffs.drop(columns="_cut"),
                      metrics=metrics, delong=tests, delong_matrix=matrix, calibration=calibration,
                      calibration_curves=curves, decision_curve=dca, decision_curve_result=dca_result,
                      notes=tuple(notes))


# -- the clinical reference -----------------------------------------------------------------------
def reference_comparison(result: DesignResult, probabilities: dict, y: pd.Series, X_train: pd.DataFrame, *,
                         level: float, groups: pd.Series | None = None, cohort: str | None = None):
    """The chosen model against the clinical reference model (:mod:`sonorad.designs.reference`).

    Paired DeLong test, continuous NRI and IDI on ``cohort`` (default: the primary validation
    cohort, as :func:`evaluate`), and the likelihood-ratio test on the training cohort when both
    models are logistic regressions and the reference's predictors are among the chosen model's.
    Returns a :class:`~sonorad.evaluation.comparison.ReferenceComparison`, or ``None`` when the
    design has no reference model (no declared variable) or the reference was chosen.
    """
    from sonorad.designs.reference import logistic_predictors
    from sonorad.evaluation.comparison import compare_with_reference
    from sonorad.evaluation.nested import likelihood_ratio_test
    from sonorad.pipeline import statistics as st

    reference = getattr(result, "reference", None)
    if reference is None or reference == result.primary:
        return None
    cohort = cohort or st.primary_cohort(probabilities)
    frame = probabilities[cohort]
    ids = frame.index[frame[[result.primary, reference]].notna().all(axis=1)]
    cluster = None if groups is None else groups.loc[ids].astype(str).to_numpy()
    lr, notes = None, []
    y_train = y.loc[X_train.index]
    full = logistic_predictors(result.models[result.primary], X_train, result.training_scores)
    reduced = logistic_predictors(result.models[reference], X_train)
    if full is None:
        notes.append(f"likelihood-ratio test not computed: {result.primary} is not a logistic regression")
    elif not set(reduced.columns) <= set(full.columns):
        lacking = sorted(set(reduced.columns) - set(full.columns))
        notes.append(f"likelihood-ratio test not computed: the models are not nested ({result.primary} does not "
                     f"enter {', '.join(lacking[:5])})")
    else:
        try:
            lr = likelihood_ratio_test(y_train.to_numpy(), reduced, full)
        except ValueError as exc:
            notes.append(f"likelihood-ratio test not computed: {exc}")
    comparison = compare_with_reference(y.loc[ids].to_numpy(), frame.loc[ids, result.primary],
                                        frame.loc[ids, reference], model=result.primary, reference=reference,
                                        cohort=cohort, level=level, cluster=cluster, likelihood_ratio=lr)
    if notes:
        from dataclasses import replace

        comparison = replace(comparison, notes=(*comparison.notes, *notes))
    return comparison


# -- per center -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CenterResults:
    """Every metric per validation center and pooled, and the AUC heterogeneity test (TRIPOD+AI 23b).

    ``table``: ``cohort, model, center, n, n_events, auc, ...`` (center ``pooled``: every center of
    the cohort together); ``heterogeneity``: one row per cohort x model (Cochran's Q, I², pooled AUC).
    """

    table: pd.DataFrame
    heterogeneity: pd.DataFrame
    models: tuple


def per_center(probabilities: dict, y: pd.Series, centers: pd.Series, cutoffs: pd.DataFrame, *,
               level: float, groups: pd.Series | None = None) -> CenterResults:
    """Every model on every center of the internal and external cohorts, and pooled."""
    from sonorad.pipeline import statistics as st

    thresholds = cutoffs["threshold"].astype(float) if "threshold" in cutoffs.columns else None
    models = tuple(next(iter(probabilities.values())).columns)
    table, het = st.center_tables(probabilities, y, centers, thresholds, level=level, groups=groups)
    return CenterResults(table=table, heterogeneity=het, models=models)


# -- bootstrap ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bootstrap:
    """Harrell's bootstrap optimism correction of the chosen model (internal validation).

    ``validation`` is the :class:`~sonorad.evaluation.BootstrapValidation` (``table``: apparent,
    training, test, optimism, corrected AUC / intercept / slope / Brier; ``calibration``: the
    bias-corrected calibration curve); ``model`` the model validated (the design's choice on the
    whole training cohort; in each resample, the design's choice in that resample); ``folder``
    the checkpoint folder of the resamples.
    """

    validation: object
    model: str
    folder: str


def _unique_index(X: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``X`` whose repeated case ids (a patient drawn twice) get a ``#k`` suffix."""
    counts = X.groupby(level=0).cumcount().to_numpy()
    X = X.copy()
    X.index = pd.Index([f"{i}#{k}" if k else str(i) for i, k in zip(X.index, counts)], name=X.index.name)
    return X


class _RefitChosen:
    """``fit_predict`` of :func:`~sonorad.evaluation.bootstrap_validation`: the whole design refitted,
    P(positive) of the model the design chooses in that sample (the choice is part of the pipeline)."""

    def __init__(self, design, columns, apparent: DesignResult, X: pd.DataFrame):
        self.design, self.columns, self.apparent, self.X = design, columns, apparent, X

    def __call__(self, X_train, y_train, groups_train, X_predict):
        if X_train is self.X:         # the apparent fit is the fit stage's: not refitted
            return self.apparent.predict_proba(X_predict)[self.apparent.primary].to_numpy()
        X_train = _unique_index(X_train)
        result = self.design.fit(X_train, pd.Series(y_train, index=X_train.index),
                                 pd.Series(groups_train, index=X_train.index).astype(str), columns=self.columns)
        return result.predict_proba(X_predict)[result.primary].to_numpy()


def bootstrap(design, apparent: DesignResult, X: pd.DataFrame, y: pd.Series, groups: pd.Series,
              columns: FeatureColumns, *, n_resamples: int, seed: int, jobs: int = 1, checkpoint=None,
              progress=None) -> Bootstrap:
    """Bootstrap optimism-corrected AUC, calibration intercept / slope and Brier of the chosen model.

    Patients of the training cohort are resampled with replacement; in every resample the whole
    design (selection, scores, tuning, the choice of model) is refitted on the bootstrap sample
    and its chosen model scored on the bootstrap sample and on the original training cohort
    (Harrell 1996; ``rms::validate`` / ``rms::calibrate``). ``apparent`` is the fit stage's result:
    its chosen model on its own training cases is the apparent performance. Each finished
    resample is written to ``checkpoint`` (a folder), so an interrupted run resumes.
    """
    import warnings

    from sonorad.evaluation import bootstrap_validation

    y = y.loc[X.index]
    groups = groups.loc[X.index].astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        validation = bootstrap_validation(_RefitChosen(design, columns, apparent, X), X, y.to_numpy(),
                                          groups.to_numpy(), n_resamples=n_resamples, random_state=seed,
                                          n_jobs=jobs, checkpoint=checkpoint, progress=progress)
    return Bootstrap(validation=validation, model=apparent.primary,
                     folder=str(checkpoint) if checkpoint is not None else "")


def odds_ratio_tables(variables: dict, train_table: pd.DataFrame, y: pd.Series,
                      scores: pd.DataFrame | None = None, selected: list[str] | None = None):
    """Univariable and multivariable logistic regression (OR, 95% CI, p) on the training cohort.

    The declared variables are encoded as the models see them (fitted on training); second-stage
    scores enter as their out-of-fold values, so a score's odds ratio is not inflated by its own
    fit. The multivariable model uses the predictors the design's selection kept when given (the
    published tables' convention), else every predictor.

    Returns ``(univariable, multivariable, notes)``; a table is ``None`` when its model cannot be
    fitted (the reason is in ``notes``).
    """
    from sonorad.clinical import ClinicalEncoder, multivariable_logistic, univariable_logistic

    notes = []
    parts = []
    encoder = None
    if variables:
        encoder = ClinicalEncoder.from_study(variables)
        parts.append(encoder.fit_transform(train_table[list(variables)]))
    if scores is not None and len(scores.columns):
        parts.append(scores)
    if not parts:
        return None, None, ["no clinical or ultrasound variable is declared"]
    X = pd.concat(parts, axis=1).loc[y.index]
    X = X.loc[:, X.std() > 0]
    uni = multi = None
    try:
        uni = univariable_logistic(X, y, encoder=encoder).to_frame()
    except ValueError as exc:
        notes.append(f"univariable table not computed: {exc}")
    chosen = [c for c in (selected or []) if c in X.columns] or list(X.columns)
    try:
        multi = multivariable_logistic(X[chosen], y, encoder=encoder).to_frame()
    except ValueError as exc:
        notes.append(f"multivariable table not computed: {exc}")
    return uni, multi, notes


def model_card(study, result: DesignResult, evaluation: Evaluation, parts: pd.Series, y: pd.Series,
               cohort_table: pd.DataFrame) -> dict:
    """The model card of a study's bundle: intended use, cohorts, external AUC with CI, calibration."""
    positive = study.label.positive
    cohorts = []
    for part, name in COHORT_OF_PART.items():
        ids = parts.index[parts == part]
        if len(ids):
            centers = sorted(cohort_table.loc[ids, "center"].astype(str).unique())
            cohorts.append({"cohort": name, "cases": len(ids), "positives": int(y.loc[ids].sum()),
                            "centers": ", ".join(centers)})
    card = {"intended_use": (f"Research use only; not a medical device. Estimates the probability that "
                             f"{study.label.column} = {positive!r} for one lesion from its ultrasound image, the "
                             f"lesion ROI and the declared variables. Study: {study.description or study.name}. "
                             "The estimate supports, and never replaces, clinical judgement."),
            "not_intended_for": ["images, scanners or populations unlike the training cohort without local "
                                 "validation (see the out-of-distribution warnings)",
                                 "use without recalibration at a site whose calibration was not checked"],
            "cohorts": cohorts, "design": result.design, "chosen_model": result.primary}
    metrics = evaluation.metrics
    row = metrics[(metrics["cohort"] == evaluation.primary_cohort) & (metrics["model"] == result.primary)]
    if len(row) and "auc" in row.columns and pd.notna(row["auc"].iloc[0]):
        r = row.iloc[0]
        card["external_auc"] = {"auc": float(r["auc"]), "low": float(r["auc_low"]), "high": float(r["auc_high"]),
                                "cohort": evaluation.primary_cohort, "model": result.primary}
    cal = evaluation.calibration
    crow = cal[(cal["cohort"] == evaluation.primary_cohort) & (cal["model"] == result.primary)] if len(cal) else cal
    if len(crow):
        keep = [c for c in ("citl", "intercept", "slope", "brier", "eavg", "hl_p") if c in crow.columns]
        card["calibration"] = {"cohort": evaluation.primary_cohort,
                               **{c: (None if pd.isna(crow.iloc[0][c]) else float(crow.iloc[0][c])) for c in keep}}
    train = parts.index[parts == "train"]
    if len(train):
        from sonorad.cohort.acquisition import acquisition_table

        table = acquisition_table(cohort_table.loc[train]).reset_index()
        card["acquisition"] = table.astype(object).where(table.notna(), None).to_dict("records")
    return card


def cohort_ids(parts: pd.Series) -> dict[str, pd.Index]:
    """Case ids of every non-empty cohort (training, internal, external)."""
    return {COHORT_OF_PART[p]: parts.index[parts == p] for p in COHORT_OF_PART if (parts == p).any()}

