"""Model bundles: a finished study as a deployable model, and scoring new cases with it.

:func:`write_bundle` saves everything needed to score a new case (fitted pipelines in the skops
format, the PyRadiomics parameter file, crop and deep-feature settings with the backbone's weights
hash, the variable schema, aggregate training summaries, the model card) and nothing more: no case
id, no training row. :func:`load_bundle` refuses anything it does not trust and returns a
:class:`Bundle`, whose ``predict`` scores a cases table and ``predict_case`` one image in memory.
See ``docs/predict.md``.
"""

from sonorad.bundle._trust import TRUSTED_TYPES, BundleError
from sonorad.bundle.bundle import Bundle, compatible_versions, load_bundle
from sonorad.bundle.inputs import read_cases_for_prediction
from sonorad.bundle.results import BundlePrediction, CaseResult
from sonorad.bundle.signing import sign_bundle
from sonorad.bundle.summary import ROI_COLUMNS, roi_measures, roi_table
from sonorad.bundle.writer import BUNDLE_FORMAT_VERSION, backbone_weights_sha256, write_bundle

__all__ = ["BUNDLE_FORMAT_VERSION", "Bundle", "BundleError", "BundlePrediction", "CaseResult", "ROI_COLUMNS",
           "TRUSTED_TYPES", "backbone_weights_sha256", "compatible_versions", "load_bundle",
           "read_cases_for_prediction", "roi_measures", "roi_table", "sign_bundle", "write_bundle"]
