"""CLEAR reporting checklist for a radiomics study.

CLEAR, the CheckList for EvaluAtion of Radiomics research (Kocak B, Baessler B, Bakas S, et al.
Insights Imaging 2023;14:75, doi:10.1186/s13244-023-01415-8), lists 58 items that a report of a
radiomics study should address, from the title to the sharing of data, code and model.
:data:`CLEAR_ITEMS` holds them with their official numbers and sections; the texts are the items'
short titles (the published checklist explains each one and should be consulted when filling it in).

:data:`RUN_ITEMS` names, for the items a sonorad run can answer from what it did (split, feature
extraction settings, selection, models, evaluation, explanations, the files it wrote), the report
section that answers them. Every other item needs knowledge only the authors have (ethics, the
imaging protocol, who segmented, the interpretation) and is marked "to be completed by the authors".
:func:`clear_checklist` gives the table, next to :func:`sonorad.report.tripod.tripod_checklist`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

__all__ = ["CLEAR_ITEMS", "CLEAR_REFERENCE", "CLEAR_SECTIONS", "RUN_ITEMS", "clear_checklist", "run_clear_items",
           "run_clear_checklist"]

CLEAR_REFERENCE = ("Kocak B, Baessler B, Bakas S, et al. CheckList for EvaluAtion of Radiomics research (CLEAR): a "
                   "step-by-step reporting guideline for authors and reviewers endorsed by ESR and EuSoMII. "
                   "Insights Imaging 2023;14:75. doi:10.1186/s13244-023-01415-8")
AUTHORS = "to be completed by the authors"

#: The checklist's sections, in order.
CLEAR_SECTIONS = ("Title", "Abstract", "Keywords", "Introduction", "Method: study design", "Method: data",
                  "Method: segmentation", "Method: pre-processing", "Method: feature extraction",
                  "Method: data preparation", "Method: modeling", "Method: evaluation", "Results", "Discussion",
                  "Open science: data availability", "Open science: code availability",
                  "Open science: model availability")

_S = CLEAR_SECTIONS
#: (item number, section, short title of the item).
CLEAR_ITEMS: tuple[tuple[int, str, str], ...] = (
    (1, _S[0], "Relevant title, specifying the radiomic methodology"),
    (2, _S[1], "Structured summary with relevant information"),
    (3, _S[2], "Relevant keywords for radiomics"),
    (4, _S[3], "Scientific or clinical background"),
    (5, _S[3], "Rationale for using a radiomic approach"),
    (6, _S[3], "Study objective(s)"),
    (7, _S[4], "Adherence to guidelines or checklists (e.g., CLEAR checklist)"),
    (8, _S[4], "Ethical details (e.g., approval, consent, data protection)"),
    (9, _S[4], "Sample size calculation"),
    (10, _S[4], "Study nature (e.g., retrospective, prospective)"),
    (11, _S[4], "Eligibility criteria"),
    (12, _S[4], "Flowchart for technical pipeline"),
    (13, _S[5], "Data source (e.g., private, public)"),
    (14, _S[5], "Data overlap"),
    (15, _S[5], "Data split methodology"),
    (16, _S[5], "Imaging protocol (i.e., image acquisition and processing)"),
    (17, _S[5], "Definition of non-radiomic predictor variables"),
    (18, _S[5], "Definition of the reference standard (i.e., outcome variable)"),
    (19, _S[6], "Segmentation strategy"),
    (20, _S[6], "Details of operators performing segmentation"),
    (21, _S[7], "Image pre-processing details"),
    (22, _S[7], "Resampling method and its parameters"),
    (23, _S[7], "Discretization method and its parameters"),
    (24, _S[7], "Image types (e.g., original, filtered, transformed)"),
    (25, _S[8], "Feature extraction method"),
    (26, _S[8], "Feature classes"),
    (27, _S[8], "Number of features"),
    (28, _S[8], "Default configuration statement for remaining parameters"),
    (29, _S[9], "Handling of missing data"),
    (30, _S[9], "Details of class imbalance"),
    (31, _S[9], "Details of segmentation reliability analysis"),
    (32, _S[9], "Feature scaling details (e.g., normalization, standardization)"),
    (33, _S[9], "Dimension reduction details"),
    (34, _S[10], "Algorithm details"),
    (35, _S[10], "Training and tuning details"),
    (36, _S[10], "Handling of confounders"),
    (37, _S[10], "Model selection strategy"),
    (38, _S[11], "Testing technique (e.g., internal, external)"),
    (39, _S[11], "Performance metrics and rationale for choosing"),
    (40, _S[11], "Uncertainty evaluation and measures (e.g., confidence intervals)"),
    (41, _S[11], "Statistical performance comparison (e.g., DeLong's test)"),
    (42, _S[11], "Comparison with non-radiomic and combined methods"),
    (43, _S[11], "Interpretability and explainability methods"),
    (44, _S[12], "Baseline demographic and clinical characteristics"),
    (45, _S[12], "Flowchart for eligibility criteria"),
    (46, _S[12], "Feature statistics (e.g., reproducibility, feature selection)"),
    (47, _S[12], "Model performance evaluation"),
    (48, _S[12], "Comparison with non-radiomic and combined approaches"),
    (49, _S[13], "Overview of important findings"),
    (50, _S[13], "Previous works with differences from the current study"),
    (51, _S[13], "Practical implications"),
    (52, _S[13], "Strengths and limitations (e.g., bias and generalizability issues)"),
    (53, _S[14], "Sharing images along with segmentation data (not essential, recommended)"),
    (54, _S[14], "Sharing radiomic feature data"),
    (55, _S[15], "Sharing pre-processing scripts or settings"),
    (56, _S[15], "Sharing source code for modeling"),
    (57, _S[16], "Sharing final model files"),
    (58, _S[16], "Sharing a ready-to-use system (not essential, recommended)"),
)

#: Items every run answers: item -> (report section id, what there answers it). The section ids are
#: those of :data:`sonorad.report.sections.common.SECTION_TITLES`.
RUN_ITEMS: dict[int, tuple[str, str]] = {
    7: ("checklist", "this CLEAR table and the TRIPOD+AI table (tables/paper/clear_checklist.csv)"),
    15: ("methods", "cohorts and split, grouped by patient; training cross-validation folds"),
    21: ("methods", "PyRadiomics settings: 2D extraction within the lesion mask, intensity normalisation"),
    22: ("methods", "resampling and pixel spacing of the feature extraction"),
    23: ("methods", "fixed bin width of the grey-level discretisation"),
    24: ("methods", "image types (original and filtered) of the PyRadiomics parameter file"),
    25: ("methods", "PyRadiomics and its version; the parameter file in the files section"),
    26: ("methods", "feature classes of the PyRadiomics parameter file"),
    27: ("features", "number of features extracted and kept at each selection step"),
    28: ("files", "model/radiomics_params.yaml, the complete PyRadiomics parameter file of the run"),
    29: ("methods", "imputation with training medians / modes and missing indicators; excluded cases"),
    32: ("methods", "feature selection steps, starting with z-scores from training means and SDs"),
    33: ("features", "selection steps (univariable filter, redundancy, LASSO) and what each kept"),
    34: ("methods", "algorithms with package versions"),
    35: ("methods", "hyper-parameter search inside cross-validation grouped by patient"),
    37: ("models", "the model chosen by tuning cross-validation AUC on the training cohort"),
    39: ("models", "AUC, sensitivity, specificity, PPV, NPV, accuracy at the training cut-off; calibration; "
                   "net benefit"),
    40: ("models", "95% confidence intervals of every metric; calibration and decision curves"),
    41: ("delong", "paired DeLong tests between models"),
    44: ("cohort", "baseline table per cohort"),
    45: ("cohort", "flow figure with the cases excluded and why"),
    46: ("features", "selected features and their coefficients"),
    47: ("models", "training (apparent and cross-validated) and validation performance; ROC curves; calibration"),
    55: ("files", "model/radiomics_params.yaml and the study file of this run, to be published with the paper"),
    56: ("files", "sonorad version and the command that reproduces the run"),
    57: ("files", "the model bundle OUT/model, to be published with the paper"),
    58: ("files", "`sonorad serve` runs the bundle as a calculator"),
}

_NUMBERS = tuple(item[0] for item in CLEAR_ITEMS)


def clear_checklist(addressed: Mapping[int, str] | None = None) -> pd.DataFrame:
    """The 58 CLEAR items with where the report addresses each.

    Parameters
    ----------
    addressed : mapping of int -> str, optional
        Item number -> where the report addresses it (e.g. ``"Participants: baseline table"``). Items
        not named are marked "to be completed by the authors". Default: :data:`RUN_ITEMS` with the
        report's section titles.

    Returns
    -------
    pandas.DataFrame
        Columns ``item`` (1-58), ``section``, ``recommendation`` (the item's short title),
        ``filled_by`` (``"run"`` or ``"authors"``) and ``addressed_in``; in checklist order.

    Raises
    ------
    ValueError
        For an item number outside 1-58 or an empty place.

    Examples
    --------
    >>> df = clear_checklist({44: "Participants: baseline table"})
    >>> df.loc[df["item"] == 44, "addressed_in"].item(), df.loc[df["item"] == 1, "filled_by"].item()
    ('Participants: baseline table', 'authors')
    """
    if addressed is None:
        from sonorad.report.sections.common import SECTION_TITLES

        addressed = {n: f"{SECTION_TITLES[section]}: {what}" for n, (section, what) in RUN_ITEMS.items()}
    if not isinstance(addressed, Mapping):
        raise TypeError("addressed must be a mapping item number -> report section, e.g. {44: 'Participants'}")
    where = {}
    for key, place in addressed.items():
        try:
            number = int(key)
        except (TypeError, ValueError):
            number = None
        if number not in _NUMBERS:
            raise ValueError(f"{key!r} is not a CLEAR item number. Fix: use a number from 1 to {len(_NUMBERS)}")
        if not str(place).strip():
            raise ValueError(f"CLEAR item {number}: the report section is empty. Fix: name it or leave the item out")
        where[number] = str(place)
    rows = [{"item": number, "section": section, "recommendation": text,
             "filled_by": "run" if number in where else "authors", "addressed_in": where.get(number, AUTHORS)}
            for number, section, text in CLEAR_ITEMS]
    return pd.DataFrame(rows, columns=["item", "section", "recommendation", "filled_by", "addressed_in"])


def run_clear_items(run) -> dict[int, tuple[str, str]]:
    """:data:`RUN_ITEMS` plus what this run adds: item -> (report section id, what answers it).

    Declared variables answer item 17; automatic ROIs (a segmenter in the study) answer item 19; the cohorts
    evaluated answer item 38; a nomogram, SHAP values
    or Grad-CAM maps actually produced answer item 43; a model on the clinical variables alone (a
    model named ``clinical...``) answers items 42 and 48.
    """
    items = dict(RUN_ITEMS)
    study = getattr(run, "study", None)
    if getattr(study, "variables", None):
        items[17] = ("clinical", "declared clinical and ultrasound variables with their types and levels")
    parts = set(getattr(run, "parts", pd.Series(dtype=object)).astype(str))
    tested = ["cross-validation of the whole pipeline on the training cohort"]
    if "internal" in parts:
        tested.append("internal hold-out (patients not used for training)")
    if "external" in parts:
        tested.append("external testing on separate centers")
    items[38] = ("models", "; ".join(tested))
    explanations = getattr(run, "explanations", None)
    shown = [name for attr, name in (("nomogram", "nomogram"), ("shap", "SHAP values")) if
             getattr(explanations, attr, None) is not None]
    if getattr(explanations, "gradcam", None):  # a tuple of maps, empty when none was drawn
        shown.append("Grad-CAM maps")
    if shown:
        section = "nomogram" if "nomogram" in shown else ("shap" if "SHAP values" in shown else "gradcam")
        items[43] = (section, ", ".join(shown))
    rois = (getattr(run, "feature_summary", None) or {}).get("automatic_rois")
    if rois:
        items[19] = ("methods", f"semi-automatic: {rois['n_automatic']} of {rois['n_rois']} ROIs proposed by a "
                                "box-prompted segmenter (flagged proposals excluded), the rest drawn by hand; per case "
                                "in tables/automatic_rois.csv")
    metrics = getattr(getattr(run, "evaluation", None), "metrics", None)
    if isinstance(metrics, pd.DataFrame) and "model" in metrics.columns and \
            metrics["model"].astype(str).str.lower().str.startswith("clinical").any():
        items[42] = ("models", "a model on the clinical and ultrasound variables alone, beside the radiomics models")
        items[48] = ("delong", "the radiomics models against the clinical-variables model")
    return items


def run_clear_checklist(run) -> pd.DataFrame:
    """:func:`clear_checklist` of a finished run (:func:`run_clear_items`, with the report's section titles)."""
    from sonorad.report.sections.common import SECTION_TITLES

    return clear_checklist({n: f"{SECTION_TITLES[section]}: {what}" for n, (section, what)
                            in sorted(run_clear_items(run).items())})
