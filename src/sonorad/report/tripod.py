"""TRIPOD+AI reporting checklist for a prediction-model development and validation study.

TRIPOD+AI (Collins GS, Moons KGM, Dhiman P, et al. BMJ 2024;385:e078378,
doi:10.1136/bmj-2023-078378) lists what a report of a study that develops or evaluates a clinical
prediction model (regression or machine learning) should state. :data:`TRIPOD_AI_ITEMS` holds its
items with their official numbers (1 to 27c) and whether each applies to development (D),
evaluation (E) or both (D;E); the item texts here are short paraphrases, not the published wording,
which should be consulted when filling in the checklist.

:func:`tripod_checklist` lists the items of a study type with the report section that addresses
each, or "to be completed by the authors" for what a generated report cannot know (ethics, funding,
dates of accrual, interpretation).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

__all__ = ["TRIPOD_AI_ITEMS", "TRIPOD_AI_REFERENCE", "TO_BE_COMPLETED", "tripod_checklist", "segmentation_items"]

TRIPOD_AI_REFERENCE = ("Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for "
                       "reporting clinical prediction models that use regression or machine learning methods. "
                       "BMJ 2024;385:e078378. doi:10.1136/bmj-2023-078378")
TO_BE_COMPLETED = "to be completed by the authors"

#: (item, part of the paper, topic, applies to, short paraphrase of the item).
TRIPOD_AI_ITEMS: tuple[tuple[str, str, str, str, str], ...] = (
    ("1", "Title", "Title", "D;E",
     "Title says a prediction model is developed or evaluated, for which population and outcome"),
    ("2", "Abstract", "Abstract", "D;E", "Structured abstract following TRIPOD+AI for Abstracts"),
    ("3a", "Introduction", "Background", "D;E",
     "Clinical context (diagnostic or prognostic), why the model is needed, existing models"),
    ("3b", "Introduction", "Background", "D;E",
     "Target population, intended use in the care pathway and intended users"),
    ("3c", "Introduction", "Background", "D;E", "Known health inequalities between sociodemographic groups"),
    ("4", "Introduction", "Objectives", "D;E", "Objectives: development, validation, or both"),
    ("5a", "Methods", "Data", "D;E",
     "Data sources of the development and evaluation sets, why they were used, how representative"),
    ("5b", "Methods", "Data", "D;E", "Dates of data collection: start and end of accrual (and follow-up)"),
    ("6a", "Methods", "Participants", "D;E", "Setting, number and location of centres"),
    ("6b", "Methods", "Participants", "D;E", "Eligibility criteria"),
    ("6c", "Methods", "Participants", "D;E", "Treatments received and how they were handled, if relevant"),
    ("7", "Methods", "Data preparation", "D;E",
     "Pre-processing and quality checks, and whether they were alike across groups"),
    ("8a", "Methods", "Outcome", "D;E",
     "Definition of the predicted outcome, time horizon, how and when it was assessed"),
    ("8b", "Methods", "Outcome", "D;E", "Qualifications of outcome assessors when judgement is involved"),
    ("8c", "Methods", "Outcome", "D;E", "Blinding of outcome assessment"),
    ("9a", "Methods", "Predictors", "D", "How the candidate predictors were chosen; any pre-selection"),
    ("9b", "Methods", "Predictors", "D;E", "Definition and measurement of every predictor (and blinding)"),
    ("9c", "Methods", "Predictors", "D;E", "Qualifications of predictor assessors when judgement is involved"),
    ("10", "Methods", "Sample size", "D;E", "How the study size was arrived at and why it is sufficient"),
    ("11", "Methods", "Missing data", "D;E", "How missing data were handled; reasons for omitted data"),
    ("12a", "Methods", "Analytical methods", "D",
     "How the data were used and partitioned for development and evaluation"),
    ("12b", "Methods", "Analytical methods", "D",
     "How predictors were handled (functional form, rescaling, transformation, standardisation)"),
    ("12c", "Methods", "Analytical methods", "D",
     "Model type and rationale, model-building steps, hyperparameter tuning, internal validation"),
    ("12d", "Methods", "Analytical methods", "D;E",
     "Handling and quantification of heterogeneity across clusters (centres)"),
    ("12e", "Methods", "Analytical methods", "D;E",
     "Performance measures and plots (discrimination, calibration, clinical utility), model comparison"),
    ("12f", "Methods", "Analytical methods", "E", "Any model updating (e.g. recalibration) after evaluation"),
    ("12g", "Methods", "Analytical methods", "E", "How predictions were computed for the evaluation"),
    ("13", "Methods", "Class imbalance", "D;E", "Class-imbalance methods, why, and any recalibration after them"),
    ("14", "Methods", "Fairness", "D;E", "Approaches to model fairness and their rationale"),
    ("15", "Methods", "Model output", "D",
     "What the model outputs (probability, class) and how any classification threshold was chosen"),
    ("16", "Methods", "Training versus evaluation", "D;E",
     "Differences between development and evaluation data (setting, eligibility, outcome, predictors)"),
    ("17", "Methods", "Ethical approval", "D;E", "Ethics committee approval and consent or waiver"),
    ("18a", "Open science", "Funding", "D;E", "Funding source and role of the funders"),
    ("18b", "Open science", "Conflicts of interest", "D;E", "Conflicts of interest of all authors"),
    ("18c", "Open science", "Protocol", "D;E", "Where the protocol can be accessed, or that there is none"),
    ("18d", "Open science", "Registration", "D;E", "Study registration, or that it was not registered"),
    ("18e", "Open science", "Data sharing", "D;E", "Availability of the study data"),
    ("18f", "Open science", "Code sharing", "D;E", "Availability of the analysis code"),
    ("19", "Patient and public involvement", "Patient and public involvement", "D;E",
     "Patient and public involvement, or a statement that there was none"),
    ("20a", "Results", "Participants", "D;E",
     "Flow of participants, with and without the outcome (a diagram helps)"),
    ("20b", "Results", "Participants", "D;E",
     "Characteristics overall and per data source: predictors, sample size, events, missing data"),
    ("20c", "Results", "Participants", "E",
     "Comparison of predictor and outcome distributions between evaluation and development data"),
    ("21", "Results", "Model development", "D;E",
     "Number of participants and outcome events in each analysis (development, tuning, evaluation)"),
    ("22", "Results", "Model specification", "D",
     "The full model (formula, code, object or API) so others can make predictions, and access terms"),
    ("23a", "Results", "Model performance", "D;E",
     "Performance estimates with confidence intervals, also in key subgroups; plots"),
    ("23b", "Results", "Model performance", "D;E", "Heterogeneity of performance across clusters, if examined"),
    ("24", "Results", "Model updating", "E", "Results of any model updating and the updated performance"),
    ("25", "Discussion", "Interpretation", "D;E",
     "Overall interpretation, including fairness, against the objectives and previous studies"),
    ("26", "Discussion", "Limitations", "D;E",
     "Limitations (sample, size, overfitting, missing data) and their effect on bias and generalisability"),
    ("27a", "Discussion", "Usability", "D",
     "How poor-quality or unavailable input data should be handled when the model is used"),
    ("27b", "Discussion", "Usability", "D",
     "Whether users handle input data or interact with the model, and the expertise needed"),
    ("27c", "Discussion", "Usability", "D;E", "Next steps for research: applicability and generalisability"),
)

_ITEM_IDS = tuple(item[0] for item in TRIPOD_AI_ITEMS)
_STUDY_TYPES = {"development": {"D", "D;E"}, "evaluation": {"E", "D;E"},
                "development+evaluation": {"D", "E", "D;E"}}


def tripod_checklist(sections_present: Mapping[str, str], *,
                     study_type: str = "development+evaluation") -> pd.DataFrame:
    """The TRIPOD+AI checklist with the report section that addresses each item.

    Parameters
    ----------
    sections_present : mapping of str -> str
        TRIPOD+AI item number (``"6a"``, ``"12e"``, ``"20b"``) -> where the report addresses it
        (e.g. ``"Methods: cohorts and split"``, ``"Table 1"``). Items not named are marked
        "to be completed by the authors".
    study_type : {"development+evaluation", "development", "evaluation"}
        Which items apply: development (D and D;E items), external evaluation only (E and D;E), or
        both (all items; the default, for a development study with internal / external validation).

    Returns
    -------
    pandas.DataFrame
        Columns ``item``, ``part``, ``topic``, ``applies`` (D, E or D;E), ``recommendation`` (short
        paraphrase) and ``addressed_in``; in checklist order, indexed from 0.

    Raises
    ------
    ValueError
        For an unknown item number (the message lists the valid ones), an item that does not apply
        to the study type, or an unknown study type.

    Examples
    --------
    >>> df = tripod_checklist({"20b": "Table 1"})
    >>> df.loc[df["item"] == "20b", "addressed_in"].item()
    'Table 1'
    """
    if study_type not in _STUDY_TYPES:
        raise ValueError(f"study_type {study_type!r} is not one of {', '.join(_STUDY_TYPES)}")
    if not isinstance(sections_present, Mapping):
        raise TypeError("sections_present must be a mapping item number -> report section, e.g. "
                        "{'20b': 'Table 1'}")
    keep = _STUDY_TYPES[study_type]
    applies = {item[0]: item[3] for item in TRIPOD_AI_ITEMS}
    for key, where in sections_present.items():
        key = str(key).strip()
        if key not in applies:
            raise ValueError(f"{key!r} is not a TRIPOD+AI item number. Fix: use one of {', '.join(_ITEM_IDS)}")
        if applies[key] not in keep:
            raise ValueError(f"TRIPOD+AI item {key} applies to {applies[key]} studies only, not to a "
                             f"{study_type} study. Fix: remove it or change study_type")
        if not str(where).strip():
            raise ValueError(f"item {key}: the report section is empty. Fix: name the section or leave the "
                             "item out")
    where = {str(k).strip(): str(v) for k, v in sections_present.items()}
    rows = [{"item": item, "part": part, "topic": topic, "applies": scope, "recommendation": text,
             "addressed_in": where.get(item, TO_BE_COMPLETED)}
            for item, part, topic, scope, text in TRIPOD_AI_ITEMS if scope in keep]
    return pd.DataFrame(rows, columns=["item", "part", "topic", "applies", "recommendation", "addressed_in"])


def segmentation_items(run) -> dict[str, str]:
    """The TRIPOD+AI items a run's automatic ROIs answer (``{}`` when every ROI was drawn by hand).

    With radiomics predictors the ROI is part of how a predictor is measured (item 9b), and a
    segmenter is part of the data preparation (item 7): both say how many ROIs were automatic, and
    from ``run.feature_summary["automatic_rois"]`` and ``tables/automatic_rois.csv``.
    """
    rois = (getattr(run, "feature_summary", None) or {}).get("automatic_rois")
    if not rois:
        return {}
    by_cohort = dict(rois.get("by_cohort") or {})
    cohorts = "".join(f"; {part} {c['automatic']} of {c['rois']}" for part, c in by_cohort.items())
    text = (f"{rois['n_automatic']} of {rois['n_rois']} lesion ROIs were proposed by a box-prompted segmenter, the "
            f"rest drawn by hand{cohorts} (Methods; per case in tables/automatic_rois.csv)")
    return {"9b": f"Methods: radiomics predictors measured within the lesion ROI; {text}",
            "7": f"Methods: {text}; flagged proposals excluded (Participants)"}
