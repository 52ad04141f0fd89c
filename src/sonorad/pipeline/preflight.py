"""What would fail after feature extraction, checked before it.

Extraction takes minutes to hours; a declared variable that the models cannot encode, a nomogram
that cannot be drawn or a training cohort too small for its candidate predictors should be known
before it starts. :func:`preflight` runs on the validated cases table and the split:

- every declared variable is encoded as the models encode it (:class:`~sonorad.clinical.ClinicalEncoder`
  fitted on the training cases, applied to the validation cases): a variable with no training
  value, levels that cannot be encoded, a validation value the fitted encoder refuses are errors
  naming the variable and the fix;
- the nomogram (``evaluation.nomogram``) needs a logistic model in the design;
- events per candidate predictor parameter (EPV) and Riley et al.'s minimum sample size for a
  binary outcome (:func:`riley_sample_size`, as R's ``pmsampsize``) are reported, and warned below
  a floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from sonorad.errors import ConfigError, Problem

__all__ = ["SampleSizeResult", "riley_sample_size", "Preflight", "preflight", "check_cohort", "EPV_FLOOR"]

#: Events per candidate predictor parameter below which the run warns (Peduzzi et al. 1996).
EPV_FLOOR = 10
#: Anticipated Cox-Snell R² as a share of its maximum when none is declared: the conservative
#: default of Riley et al. (2020), 15% of the maximum for the outcome's prevalence.
DEFAULT_R2_SHARE = 0.15


@dataclass(frozen=True)
class SampleSizeResult:
    """Riley et al.'s minimum sample size for a binary-outcome prediction model (``pmsampsize``).

    Attributes
    ----------
    prevalence, parameters, r2_cs, max_r2_cs, shrinkage :
        The inputs: outcome proportion, candidate predictor parameters, anticipated Cox-Snell R²
        (``r2_declared`` False: the default share of its maximum) and the target shrinkage.
    criteria : DataFrame
        ``criterion, n``: (1) expected shrinkage >= ``shrinkage``; (2) optimism in Nagelkerke's
        R² <= ``delta``; (3) the intercept within ``margin`` (95%) of the true proportion.
    n, events : int
        The minimum sample size (the largest of the criteria) and its events, both rounded up.
    epp : float
        Events per candidate predictor parameter at that size (``n * prevalence / parameters``, as
        ``pmsampsize`` reports it).
    """

    prevalence: float
    parameters: int
    r2_cs: float
    max_r2_cs: float
    shrinkage: float
    r2_declared: bool
    criteria: pd.DataFrame
    n: int
    events: int
    epp: float
    method: str = "Riley et al. 2020 (BMJ 368:m441), binary outcome, as pmsampsize"

    def sentence(self) -> str:
        r2 = (f"anticipated Cox-Snell R² {self.r2_cs:.3f}" + ("" if self.r2_declared else
              f" ({DEFAULT_R2_SHARE:.0%} of its maximum {self.max_r2_cs:.3f}, the conservative default)"))
        return (f"Riley's minimum sample size for {self.parameters} candidate predictor parameter(s) at prevalence "
                f"{self.prevalence:.3f} and {r2}: {self.n} cases with {self.events} events "
                f"(criteria: " + ", ".join(f"{c} {n}" for c, n in zip(self.criteria['criterion'],
                                                                         self.criteria['n'])) + ")")


def _shrinkage_n(parameters: int, r2_cs: float, shrinkage: float) -> float:
    return parameters / ((shrinkage - 1) * math.log(1 - r2_cs / shrinkage))


def riley_sample_size(prevalence: float, parameters: int, r2_cs: float | None = None, *, shrinkage: float = 0.9,
                      delta: float = 0.05, margin: float = 0.05) -> SampleSizeResult:
    """Minimum sample size to develop a logistic prediction model (Riley et al. 2020; ``pmsampsize``).

    Parameters
    ----------
    prevalence : float
        Anticipated outcome proportion, in (0, 1).
    parameters : int
        Candidate predictor parameters (a categorical variable of k levels counts k - 1).
    r2_cs : float or None
        Anticipated Cox-Snell R². ``None``: 15% of its maximum for this prevalence.
    shrinkage : float
        Target expected uniform shrinkage (criterion 1).
    delta : float
        Largest acceptable optimism in Nagelkerke's R² (criterion 2).
    margin : float
        Largest acceptable absolute error of the overall risk (criterion 3).

    Examples
    --------
    Riley et al. (2020), BMJ, binary example (``pmsampsize(type = "b", rsquared = 0.288, parameters = 24,
    prevalence = 0.174)``): criterion 1 asks 623 cases (109 events), criterion 2 662, criterion 3 221;
    the minimum is 662 cases with 116 events, EPP 4.8.

    >>> size = riley_sample_size(0.174, 24, 0.288)
    >>> size.criteria["n"].tolist(), size.n, size.events, round(size.epp, 1)
    ([623, 662, 221], 662, 116, 4.8)
    """
    if not 0 < prevalence < 1:
        raise ValueError(f"prevalence must be in (0, 1); got {prevalence}")
    if parameters < 1:
        raise ValueError(f"parameters must be >= 1; got {parameters}")
    loglik_null = prevalence * math.log(prevalence) + (1 - prevalence) * math.log(1 - prevalence)
    max_r2 = 1 - math.exp(2 * loglik_null)
    declared = r2_cs is not None
    r2 = float(r2_cs) if declared else DEFAULT_R2_SHARE * max_r2
    if not 0 < r2 < max_r2:
        raise ValueError(f"r2_cs must be in (0, {max_r2:.4f}) (the maximum for prevalence {prevalence}); got {r2}")
    n1 = _shrinkage_n(parameters, r2, shrinkage)
    s2 = r2 / (r2 + delta * max_r2)
    n2 = _shrinkage_n(parameters, r2, s2)
    n3 = (1.96 / margin) ** 2 * prevalence * (1 - prevalence)
    sizes = [math.ceil(round(v, 9)) for v in (n1, n2, n3)]
    criteria = pd.DataFrame({"criterion": [f"shrinkage >= {shrinkage:g}", f"optimism in R² <= {delta:g}",
                                           f"overall risk within {margin:g}"], "n": sizes})
    n = max(sizes)
    events = math.ceil(round(n * prevalence, 9))
    return SampleSizeResult(prevalence=prevalence, parameters=int(parameters), r2_cs=r2, max_r2_cs=max_r2,
                            shrinkage=shrinkage, r2_declared=declared, criteria=criteria, n=n, events=events,
                            epp=n * prevalence / parameters)


@dataclass(frozen=True)
class Preflight:
    """What :func:`preflight` found.

    Attributes
    ----------
    problems : tuple of Problem
        Errors (the run would fail after extraction) and warnings.
    lines : tuple of str
        What the run log reports (events per variable, sample size).
    parameters : int
        Candidate predictor parameters counted.
    events, non_events : int
        Training cases of each class.
    sample_size : SampleSizeResult or None
    """

    problems: tuple = ()
    lines: tuple = ()
    parameters: int = 0
    events: int = 0
    non_events: int = 0
    sample_size: SampleSizeResult | None = None
    encoded: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    @property
    def epv(self) -> float:
        """Events per candidate predictor parameter (the smaller class counts as the events)."""
        return min(self.events, self.non_events) / self.parameters if self.parameters else math.inf


def _variable_problems(name, spec, train: pd.Series, others: pd.Series, where: str) -> tuple[list, int]:
    """Encode one declared variable as the models do; return its problems and its parameter count."""
    from sonorad.clinical import ClinicalEncoder

    if train.notna().sum() == 0:
        elsewhere = int(others.notna().sum())
        seen = f"; it has values in {elsewhere} validation case(s) only" if elsewhere else ""
        return [Problem(f"declared variable {name!r} has no value in any of the {len(train)} training cases "
                        f"({where}){seen}, so no model can learn from it and the run would stop after extraction",
                        fix=f"fill {name} for the training cases, or remove variables.{name} from the study file",
                        column=name)], 0
    encoder = ClinicalEncoder.from_study({name: spec})
    frame = train.to_frame(name)
    try:
        encoder.fit(frame)
    except (ValueError, ConfigError) as exc:
        message, _, fix = str(exc).partition(" Fix: ")
        return [Problem(f"declared variable {name!r} cannot be encoded from the training cases: {message}",
                        fix=fix or f"correct variables.{name} in the study file", column=name)], 0
    problems = []
    parameters = len(encoder.get_feature_names_out())
    if spec.type in ("categorical", "binary", "ordinal") and train.dropna().map(str).nunique() < 2:
        problems.append(Problem(f"declared variable {name!r} takes one value only in the training cases, so the "
                                "models cannot use it", fix=f"remove variables.{name} or check its values",
                                column=name, severity="warning"))
    if len(others):
        if spec.type == "categorical" and spec.unseen == "other" and name in encoder.levels_:
            from sonorad.variables import apply_unseen_policy

            # the models score such a value as its variable's unseen policy codes it (validate says so)
            others, _ = apply_unseen_policy(others, spec, encoder.levels_[name])
        try:
            encoder.transform(others.to_frame(name))
        except (ValueError, ConfigError) as exc:
            message, _, fix = str(exc).partition(" Fix: ")
            problems.append(Problem(f"declared variable {name!r}: the validation cases hold values the models, "
                                    f"fitted on the training cases, cannot score: {message}",
                                    fix=fix or f"recode the values or declare them in variables.{name}", column=name))
    return problems, parameters


def _sections(study) -> tuple[dict, dict, dict] | None:
    from sonorad.study.schema import check_runner_sections

    values, problems = check_runner_sections(dict(study.features), dict(study.models), dict(study.evaluation),
                                             source=study.source)
    return None if problems else (values["features"], {**values["models"], **study.models}, values["evaluation"])


def _scores(design: str, features: dict, models: dict) -> int:
    """Scores that enter the final model beside the variables (the score-fusion designs' second stage)."""
    if design not in ("score_fusion", "radiomics_nomogram"):
        return 0
    n = 1 if features.get("radiomics", True) else 0
    if design == "score_fusion":
        backbones = features.get("dl_backbone") or ()
        backbones = [backbones] if isinstance(backbones, str) else list(backbones)
        if backbones:
            n += 1 if models.get("dl_scores") == "joint" else len(backbones)
    return n


def _has_logistic(design: str, models: dict) -> bool:
    if design == "radiomics_nomogram":
        return True
    zoo = models.get("models")
    return zoo is None or "logistic_regression" in zoo


def preflight(table: pd.DataFrame, parts: pd.Series, y: pd.Series, study, *, epv_floor: float = EPV_FLOOR,
              r2_cs: float | None = None) -> Preflight:
    """Check, before extraction, what would make the run fail or mislead after it.

    Parameters
    ----------
    table : DataFrame
        The validated cases table (indexed by case_id) of the cases the run will use.
    parts : Series
        ``train`` / ``internal`` / ``external`` per case.
    y : Series
        0/1 outcome per case.
    study : StudyConfig
    epv_floor : float
        Events per candidate predictor parameter below which to warn.
    r2_cs : float or None
        Anticipated Cox-Snell R² of Riley's criteria (``None``: 15% of its maximum).
    """
    from sonorad.defaults import DEFAULT_DESIGN
    from sonorad.designs import get_design

    train = parts.index[parts == "train"]
    others = parts.index[parts != "train"]
    if not len(train):
        return Preflight()  # no training case: the run stops on it with its own message
    centers = ", ".join(sorted(table.loc[train, "center"].astype(str).unique())) if "center" in table else ""
    where = f"training center(s) {centers}" if centers else "training cohort"
    problems, encoded = [], {}
    for name, spec in study.variables.items():
        if name not in table.columns:
            continue  # the cases-table checks name an absent column
        found, k = _variable_problems(name, spec, table.loc[train, name], table.loc[others, name], where)
        problems += found
        encoded[name] = k
    sections = _sections(study)
    design = get_design(study.models.get("design", DEFAULT_DESIGN)).name
    n_scores = 0
    if sections is not None:
        features, models, evaluation = sections
        n_scores = _scores(design, features, models)
        if evaluation.get("nomogram", True) and not _has_logistic(design, models):
            problems.append(Problem("evaluation.nomogram is on but the design fits no logistic regression, so no "
                                    "nomogram can be drawn", fix="add logistic_regression to models.models, or set "
                                    "evaluation.nomogram: false", column="evaluation.nomogram", severity="warning"))
    parameters = sum(encoded.values()) + n_scores
    events = int(y.loc[train].sum())
    result = Preflight(problems=tuple(problems), parameters=parameters, events=events,
                       non_events=int(len(train) - events), encoded=encoded)
    lines = []
    if parameters and 0 < events < len(train):
        counted = f"{sum(encoded.values())} from the declared variables" + (
            f" and {n_scores} score(s) of the {design} design" if n_scores else "")
        if design == "feature_families":
            counted += " (the imaging features, selected inside the design, are not counted)"
        lines.append(f"events per variable: {min(events, len(train) - events)} events (the smaller class) for "
                     f"{parameters} candidate predictor parameter(s) ({counted}): EPV {result.epv:.1f}")
        size = riley_sample_size(events / len(train), parameters, r2_cs)
        lines.append(size.sentence() + f"; the training cohort has {len(train)} cases with {events} events")
        result = Preflight(problems=result.problems, lines=tuple(lines), parameters=parameters, events=events,
                           non_events=result.non_events, sample_size=size, encoded=encoded)
        warn = []
        if result.epv < epv_floor:
            warn.append(Problem(f"{result.epv:.1f} events per candidate predictor parameter, below {epv_floor:g}: "
                                "the models may be overfitted and their apparent performance optimistic",
                                fix="declare fewer variables, merge rare levels, or add training cases",
                                column="variables", severity="warning"))
        if len(train) < size.n:
            warn.append(Problem(f"the training cohort ({len(train)} cases, {events} events) is smaller than Riley's "
                                f"minimum sample size ({size.n} cases, {size.events} events) for {parameters} "
                                "candidate predictor parameter(s)",
                                fix="read the optimism-corrected and external results with care; declare fewer "
                                "variables or add training cases", column="variables", severity="warning"))
        if warn:
            result = Preflight(problems=(*result.problems, *warn), lines=result.lines, parameters=parameters,
                               events=events, non_events=result.non_events, sample_size=size, encoded=encoded)
    return result


def check_cohort(cohort, *, exclude=(), source=None) -> Preflight:
    """:func:`preflight` of a validated :class:`~sonorad.cohort.Cohort` (less the cases ``exclude``).

    Raises
    ------
    CohortError
        Listing every error-level problem (each names the variable or study key and the fix).
    """
    from sonorad.errors import CohortError

    if cohort.study is None:
        return Preflight()
    kept = cohort.table.index.difference(pd.Index([str(c) for c in exclude]), sort=False)
    checked = preflight(cohort.table.loc[kept], cohort.split_labels().loc[kept], cohort.y.loc[kept], cohort.study)
    if checked.errors:
        raise CohortError(checked.errors, source=str(source if source is not None else cohort.source))
    return checked
