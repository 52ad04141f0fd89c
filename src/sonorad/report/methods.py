"""A methods section written from the study file, the analysis summary and the software versions.

:func:`methods_paragraph` turns what the study declares (cohorts and split, outcome, variables,
seed) and what the analysis reports (feature-extraction parameters, selection steps, models, case
counts) into plain-text paragraphs a radiologist can paste into a manuscript and edit.
The software versions it states come from :func:`sonorad.provenance.package_versions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sonorad.provenance import package_versions
from sonorad.study import CenterSplit, PatientSplit, StudyConfig

__all__ = ["STATISTICS", "DEFAULT_STATISTICS", "methods_paragraph", "automatic_rois_text"]

_EXTRA_KEYS = ("counts", "features", "deep", "harmonization", "selection", "models", "models_tuning",
               "imbalance", "missing_data", "statistics", "statistics_note", "automatic_rois")

#: Evaluation methods the statistics paragraph can describe, in the order they are written.
STATISTICS = {
    "delong": ("Discrimination was measured by the area under the receiver operating characteristic curve (AUC) "
               "with 95% confidence intervals by DeLong's method, and AUCs of models evaluated on the same cases "
               "were compared with DeLong's test."),
    "youden": ("The classification cut-off was the Youden-index optimum on the training cohort, applied unchanged "
               "to the validation cohorts to report sensitivity, specificity and accuracy."),
    "calibration": "Calibration was assessed with calibration curves (predicted against observed risk).",
    "hosmer_lemeshow": "Goodness of fit was tested with the Hosmer-Lemeshow test.",
    "dca": "Clinical utility was assessed with decision curve analysis (net benefit across threshold probabilities).",
    "nri_idi": ("The added value of one model over another was quantified with the net reclassification improvement "
                "(NRI) and the integrated discrimination improvement (IDI)."),
    "nomogram": "The final logistic model was presented as a nomogram.",
    "shap": "Model predictions were explained with SHAP (Shapley additive explanation) values.",
}
DEFAULT_STATISTICS = ("delong", "youden", "calibration", "hosmer_lemeshow", "dca")


def _join(items: Sequence[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + (", and " if len(items) > 2 else " and ") + items[-1]


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _pct(numerator: int, denominator: int) -> str:
    return f"{100 * numerator / denominator:.1f}%" if denominator else "n/a"


def _cohort_text(study: StudyConfig, counts: Mapping | None) -> str:
    split = study.split
    seed = study.split_seed
    if isinstance(split, CenterSplit):
        text = (f"Cases from {_join(split.train)} formed the training cohort and cases from "
                f"{_join(split.external)} the external validation cohort (split by center).")
        if split.internal_fraction is not None:
            text += (f" An internal validation cohort of {split.internal_fraction:.0%} of the training patients "
                     f"was held out, grouped by patient and stratified by center and outcome (seed {seed}).")
    elif isinstance(split, PatientSplit):
        text = (f"Patients were randomly split into a training cohort and an internal test cohort "
                f"({split.test_fraction:.0%} of the patients), grouped by patient so that all images of a patient "
                f"were in the same cohort, and stratified by center and outcome (seed {seed}).")
    else:
        text = "All cases formed a single training cohort; no hold-out split was declared."
    if counts:
        parts = counts.get("parts", {})
        names = {"train": "training", "internal": "internal validation", "external": "external validation"}
        described = [f"{int(e['n'])} in the {names.get(p, p)} cohort ({int(e['positive'])} positive, "
                     f"{_pct(int(e['positive']), int(e['n']))})" if "positive" in e else
                     f"{int(e['n'])} in the {names.get(p, p)} cohort" for p, e in parts.items()]
        total = counts.get("total")
        excluded = dict(counts.get("excluded") or {})
        lead = f"Of {int(total)} lesion images, " if total is not None else "The analysis included "
        if excluded:
            reasons = _join([f"{n} at {r}" if r else str(n) for r, n in excluded.items()])
            lead += f"{sum(excluded.values())} were excluded ({reasons}); "
        text += " " + lead + _join(described) + " were analysed."
    return text


def _variables_text(study: StudyConfig) -> str:
    if not study.variables:
        return ""
    def describe(name):
        spec = study.variables[name]
        extra = f"; {spec.description}" if spec.description else ""
        return f"{name} ({spec.type}{extra})"
    groups = []
    for role, what in (("clinical", "Clinical variables"), ("ultrasound", "Ultrasound (radiologist-scored) variables")):
        names = study.variables_with_role(role)
        if names:
            groups.append(f"{what}: {_join([describe(n) for n in names])}.")
    other = [n for n, s in study.variables.items() if s.role is None]
    if other:
        groups.append(f"Other variables: {_join([describe(n) for n in other])}.")
    return " ".join(groups) + (" Baseline characteristics were compared with Welch's t-test or the Mann-Whitney U "
                               "test (ANOVA or Kruskal-Wallis for more than two groups) according to the "
                               "Shapiro-Wilk test, and with the chi-square test or, for sparse tables (expected count "
                               "below 5), Fisher's exact test (Monte Carlo Fisher-Freeman-Halton for tables larger "
                               "than 2x2).")


def _features_text(features: Mapping | None, versions: Mapping) -> str:
    if not features:
        return ""
    version = versions.get("PyRadiomics")
    tool = f"PyRadiomics {version}" if version else "PyRadiomics"
    details = []
    if features.get("image_types"):
        details.append(f"image types {_join(_as_list(features['image_types']))}")
    if features.get("feature_classes"):
        details.append(f"feature classes {_join(_as_list(features['feature_classes']))}")
    if features.get("bin_width") is not None:
        details.append(f"a fixed bin width of {features['bin_width']}")
    if features.get("normalize") is not None:
        details.append("intensity normalisation" if features["normalize"] else "no intensity normalisation")
    if features.get("resampled_spacing") is not None:
        details.append(f"resampling to {features['resampled_spacing']} mm pixels")
    text = f"Radiomic features were extracted in 2D from each ultrasound image within the lesion mask with {tool}"
    text += f" ({_join(details)})." if details else "."
    if features.get("n_features") is not None:
        text += f" In total, {int(features['n_features'])} features were extracted per lesion."
    if features.get("icc_threshold") is not None:
        text += (f" Feature reproducibility was assessed with the intraclass correlation coefficient ICC(3,1) "
                 f"between masks, and features with ICC below {features['icc_threshold']} were discarded.")
    return text


def _deep_text(deep: Mapping | None, versions: Mapping) -> str:
    if not deep:
        return ""
    torch = versions.get("PyTorch")
    backbone = deep.get("backbone", "a convolutional neural network")
    text = f"Deep features were extracted with {backbone}"
    if deep.get("weights"):
        text += f" ({deep['weights']} weights)"
    if deep.get("input_size"):
        text += f" from lesion crops resized to {deep['input_size']} pixels"
    text += f" using PyTorch {torch}." if torch else "."
    if deep.get("mode"):
        text += f" The network was used {deep['mode']}."
    return text


def _statistics_text(keys, note) -> str:
    keys = list(DEFAULT_STATISTICS if keys is None else _as_list(keys))
    unknown = [k for k in keys if k not in STATISTICS]
    if unknown:
        raise ValueError(f"extra['statistics'] has unknown methods {', '.join(unknown)}. Fix: use "
                         f"{', '.join(STATISTICS)}")
    sentences = [STATISTICS[k] for k in STATISTICS if k in keys]
    sentences.append("Two-sided P < 0.05 was considered statistically significant.")
    if note:
        sentences.append(str(note))
    return " ".join(sentences)


def automatic_rois_text(summary: Mapping) -> str:
    """The sentences saying which ROIs were automatic.

    Parameters
    ----------
    summary : mapping
        :attr:`sonorad.pipeline.automatic_rois.AutomaticRois.summary`: ``n_automatic``, ``n_rois``,
        ``n_excluded`` and ``segmenter`` (its training cohort's counts and validation Dice, from
        ``segmenter.json``); optional ``by_cohort`` (:func:`~sonorad.pipeline.automatic_rois.automatic_by_cohort`).

    Examples
    --------
    >>> automatic_rois_text({"n_automatic": 3, "n_rois": 10, "n_excluded": 1,
    ...                      "segmenter": {"n_cases": 40, "n_patients": 20, "val_dice_median": 0.91}})[:60]
    'Of the 10 lesion ROIs analysed, 3 were proposed by a box-prom'
    """
    seg = dict(summary.get("segmenter") or {})
    n_auto, n_rois = int(summary["n_automatic"]), int(summary["n_rois"])
    trained = ""
    if seg.get("n_cases") is not None:
        trained = f", trained on {seg['n_cases']} manually delineated images"
        trained += f" of {seg['n_patients']} patients" if seg.get("n_patients") is not None else ""
    dice = seg.get("val_dice_median")
    dice_text = (f" (median Dice {float(dice):.3f} on its patient-grouped validation split)" if dice is not None
                 else " (its validation Dice: not available: not recorded in segmenter.json)")
    text = (f"Of the {n_rois} lesion ROIs analysed, {n_auto} were proposed by a box-prompted segmentation network "
            f"(U-Net decoder on an {seg.get('encoder') or 'EfficientNet-Lite0'} encoder, sonorad{trained}){dice_text} "
            f"from a box drawn around each lesion, and {n_rois - n_auto} were drawn by hand.")
    by_cohort = dict(summary.get("by_cohort") or {})
    if by_cohort:
        names = {"train": "training", "internal": "internal validation", "external": "external validation"}
        text += " Automatic ROIs by cohort: " + "; ".join(
            f"{names.get(part, part)} {c['automatic']} of {c['rois']}" for part, c in by_cohort.items()) + "."
    n_excluded = int(summary.get("n_excluded") or 0)
    if n_excluded:
        text += (f" {n_excluded} proposal{'s were' if n_excluded > 1 else ' was'} flagged as implausible (empty, "
                 "box-shaped, several regions, low confidence or low contrast) and the case"
                 f"{'s were' if n_excluded > 1 else ' was'} excluded.")
    if seg.get("weights_sha256"):
        text += f" The segmenter is identified by the sha256 of its weights ({str(seg['weights_sha256'])[:12]})."
    return text


def methods_paragraph(study: StudyConfig, versions: Mapping | None = None, extra: Mapping | None = None) -> str:
    """Write the methods section of a study as plain-text paragraphs.

    Parameters
    ----------
    study : StudyConfig
        The validated study file: name, description, outcome, variables, split and seed.
    versions : mapping, optional
        Software versions as returned by :func:`package_versions` (the default when ``None``);
        packages with a ``None`` version are not mentioned.
    extra : mapping, optional
        What the analysis did, each key optional:

        ``counts``
            Cohort-flow counts (``cohort_flow_counts``): ``{"total", "excluded", "parts"}``.
        ``features``
            Radiomics summary: ``image_types``, ``feature_classes``, ``bin_width``, ``normalize``,
            ``resampled_spacing``, ``n_features``, ``icc_threshold``.
        ``deep``
            CNN summary: ``backbone``, ``weights``, ``input_size``, ``mode``.
        ``harmonization``
            Text, e.g. ``"ComBat, fitted on the training set with center as batch"``.
        ``selection``
            Ordered list of feature-selection steps (text).
        ``models``, ``models_tuning``
            List of model names; text on hyperparameter tuning (e.g. ``"5-fold cross-validation
            grouped by patient"``).
        ``imbalance``, ``missing_data``
            Text on class-imbalance handling and imputation.
        ``statistics``
            Evaluation methods to describe, keys of :data:`STATISTICS` (default
            :data:`DEFAULT_STATISTICS`: DeLong, Youden cut-off from training, calibration,
            Hosmer-Lemeshow, decision curves).
        ``statistics_note``
            A sentence appended to the statistics paragraph.
        ``automatic_rois``
            Which ROIs a segmenter proposed (:func:`automatic_rois_text`).

    Returns
    -------
    str
        Paragraphs separated by blank lines (plain text; escape it when writing HTML, which
        ``Report.add_section(text=...)`` does).

    Raises
    ------
    ValueError
        For an unknown key in ``extra`` (the message lists the known ones).
    """
    if not isinstance(study, StudyConfig):
        raise TypeError(f"study must be a StudyConfig (sonorad.study.load_study); got {type(study).__name__}")
    extra = dict(extra or {})
    unknown = sorted(set(extra) - set(_EXTRA_KEYS))
    if unknown:
        raise ValueError(f"extra has unknown keys {', '.join(unknown)}. Fix: use {', '.join(_EXTRA_KEYS)}")
    versions = dict(package_versions() if versions is None else versions)

    paragraphs = []
    intro = f"Study {study.name}"
    intro += f" ({study.description})." if study.description else "."
    label = study.label
    intro += (f" The outcome was {label.column} (positive class: {label.column} = {label.positive}); one case was "
              "one lesion on one ultrasound image, analysed with its lesion mask.")
    paragraphs.append(intro + " " + _cohort_text(study, extra.get("counts")))
    if extra.get("automatic_rois"):
        paragraphs.append(automatic_rois_text(extra["automatic_rois"]))
    if study.variables:
        paragraphs.append(_variables_text(study))
    image = " ".join(t for t in (_features_text(extra.get("features"), versions),
                                 _deep_text(extra.get("deep"), versions)) if t)
    if extra.get("harmonization"):
        image += f" Features were harmonised across centers with {extra['harmonization']}."
    if image:
        paragraphs.append(image.strip())

    modelling = []
    steps = _as_list(extra.get("selection"))
    if steps:
        modelling.append("Feature selection was fitted on the training cohort only (the validation cohorts were "
                         f"never used to choose features), in the following steps: {'; '.join(steps)}.")
    if extra.get("missing_data"):
        modelling.append(f"Missing values: {extra['missing_data']}.")
    if extra.get("imbalance"):
        modelling.append(f"Class imbalance: {extra['imbalance']}.")
    models = _as_list(extra.get("models"))
    if models:
        modelling.append(f"The following models were trained: {_join(models)}.")
        if extra.get("models_tuning"):
            modelling.append(f"Hyperparameters were tuned by {extra['models_tuning']} on the training cohort.")
    if modelling:
        paragraphs.append(" ".join(modelling))

    paragraphs.append(_statistics_text(extra.get("statistics"), extra.get("statistics_note")))

    software = [f"{name} {version}" for name, version in versions.items() if version and name != "Python"]
    python = versions.get("Python")
    text = f"Analyses were performed in Python {python}" if python else "Analyses were performed in Python"
    text += f" with {_join(software)}." if software else "."
    text += (" Every random choice (data split, cross-validation folds, model fitting) was derived from the seed "
             f"{study.seed}.")
    paragraphs.append(text)
    return "\n\n".join(paragraphs)
