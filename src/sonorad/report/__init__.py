"""The report layer: a self-contained HTML report and the pieces of a radiomics paper.

Everything here takes already computed data (DataFrames, matplotlib Figures, strings, the
:class:`~sonorad.study.StudyConfig`) and turns it into something a reader opens:

- :class:`Report`: one HTML file with a table of contents, numbered figures and tables, formulas,
  embedded images and no external references (:mod:`sonorad.report.html`).
- :func:`baseline_table`: "Table 1", the baseline characteristics per cohort (and per class) with
  their p-values, drawn from :func:`sonorad.evaluation.baseline.baseline_statistics`
  (:mod:`sonorad.report.baseline`).
- :func:`methods_paragraph`: a methods section written from the study
  file (:mod:`sonorad.report.methods`).
- :func:`tripod_checklist`: the TRIPOD+AI checklist with the section addressing each item
  (:mod:`sonorad.report.tripod`); :func:`clear_checklist`: the 58 CLEAR items, answered by the run
  or left to the authors (:mod:`sonorad.report.clear`).
- :func:`save_figure`, :func:`cohort_flow_counts`, :func:`cohort_flow_figure`: publication figures
  and the cohort flow diagram (:mod:`sonorad.report.figures`).
- :func:`acquisition_display`: the acquisition table by center as shown in the report and the model
  card (:mod:`sonorad.report.acquisition`).

matplotlib and scipy are imported only by the functions that need them.
"""

from sonorad.report.acquisition import acquisition_display
from sonorad.report.baseline import BaselineTable, baseline_table
from sonorad.report.clear import CLEAR_ITEMS, clear_checklist
from sonorad.report.figures import cohort_flow_counts, cohort_flow_figure, save_figure
from sonorad.report.html import ExternalReferenceError, Report, external_references
from sonorad.report.methods import methods_paragraph
from sonorad.report.tripod import TRIPOD_AI_ITEMS, tripod_checklist

__all__ = [
    "Report",
    "ExternalReferenceError",
    "external_references",
    "BaselineTable",
    "baseline_table",
    "methods_paragraph",
    "TRIPOD_AI_ITEMS",
    "tripod_checklist",
    "CLEAR_ITEMS",
    "clear_checklist",
    "save_figure",
    "cohort_flow_counts",
    "cohort_flow_figure",
    "acquisition_display",
]
