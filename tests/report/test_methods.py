"""Tests of sonorad.report.methods: the methods text follows the study file and the analysis summary."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from sonorad.provenance import package_versions
from sonorad.report.methods import methods_paragraph
from sonorad.study import StudyConfig

VERSIONS = {"Python": "3.11.9", "sonorad": "0.1.0", "PyRadiomics": "3.0.1", "PyTorch": "2.5.0", "SHAP": None}


def _study(split) -> StudyConfig:
    return StudyConfig.from_dict({
        "name": "clnm", "description": "cervical lymph node metastasis", "seed": 2025,
        "label": {"column": "clnm", "positive": 1},
        "variables": {"age": {"type": "numeric", "role": "clinical", "description": "years"},
                      "calcification": {"type": "binary", "role": "ultrasound"},
                      "site": "categorical"},
        "split": split,
    })


CENTER_SPLIT = {"by": "center", "train": ["hospital_1", "hospital_2"], "external": ["hospital_3"],
                "internal_fraction": 0.2}


def test_package_versions_match_metadata_and_mark_absent_packages():
    versions = package_versions()
    assert versions["NumPy"] == metadata.version("numpy")
    assert versions["scikit-learn"] == metadata.version("scikit-learn")
    assert versions["Python"] == ".".join(map(str, sys.version_info[:3]))
    for name in ("sonorad", "pandas", "PyRadiomics", "PyTorch", "torchvision", "SHAP", "statsmodels", "XGBoost",
                 "LightGBM"):
        assert name in versions
    assert package_versions({"absent": "no-such-distribution-sonorad"})["absent"] is None


def test_package_versions_import_no_heavy_package():
    code = ("import sys, sonorad.report, sonorad.provenance as p; p.package_versions(); "
            "print(sorted(m for m in ('torch', 'shap', 'radiomics', 'torchvision', 'xgboost', 'lightgbm', "
            "'matplotlib', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_center_split_study_is_described():
    counts = {"total": 100, "excluded": {"read": 2},
              "parts": {"train": {"n": 60, "positive": 20}, "internal": {"n": 15, "positive": 5},
                        "external": {"n": 23, "positive": 9}}}
    features = {"image_types": ["Original", "Wavelet", "LoG"], "feature_classes": ["firstorder", "glcm"],
                "bin_width": 25, "n_features": 851, "icc_threshold": 0.75}
    text = methods_paragraph(_study(CENTER_SPLIT), VERSIONS, {
        "counts": counts, "features": features, "selection": ["z-score", "Mann-Whitney U p < 0.05", "LASSO"],
        "models": ["logistic regression", "SVM", "XGBoost"], "models_tuning": "5-fold cross-validation",
        "deep": {"backbone": "ResNet-50", "weights": "ImageNet", "input_size": "224 x 224", "mode": "frozen"}})
    for expected in ("hospital_1 and hospital_2", "hospital_3", "20% of the training patients", "seed 2025",
                     "clnm", "positive class: clnm = 1", "age (numeric; years)", "calcification (binary)",
                     "site (categorical)", "Wavelet", "glcm", "fixed bin width of 25", "851 features",
                     "ICC below 0.75", "z-score; Mann-Whitney U p < 0.05; LASSO", "logistic regression, SVM, and XGBoost",
                     "Of 100 lesion images, 2 were excluded", "60 in the training cohort (20 positive, 33.3%)",
                     "DeLong", "Youden", "training cohort, applied unchanged", "Hosmer-Lemeshow",
                     "decision curve analysis", "PyRadiomics 3.0.1", "Python 3.11.9", "ResNet-50",
                     "PyTorch 2.5.0"):
        assert expected in text, expected
    assert "SHAP" not in text  # not installed in VERSIONS: not claimed
    assert text.count("\n\n") >= 4


def test_patient_split_and_no_split():
    text = methods_paragraph(_study({"by": "patient", "test_fraction": 0.3, "seed": 11}), VERSIONS)
    assert "30% of the patients" in text and "seed 11" in text
    assert "Radiomic features" not in text  # no feature summary given: nothing invented
    text = methods_paragraph(_study(None), VERSIONS)
    assert "single training cohort" in text


def test_statistics_follow_the_methods_used():
    text = methods_paragraph(_study(None), VERSIONS, {"statistics": ["delong", "dca"], "statistics_note": "Extra."})
    assert "DeLong" in text and "decision curve" in text and "Extra." in text
    assert "Hosmer-Lemeshow" not in text and "Youden" not in text


def test_bad_extra_is_named():
    with pytest.raises(ValueError, match="unknown keys featurs"):
        methods_paragraph(_study(None), VERSIONS, {"featurs": {}})
    with pytest.raises(ValueError, match="unknown methods roc"):
        methods_paragraph(_study(None), VERSIONS, {"statistics": ["roc"]})
    with pytest.raises(TypeError, match="StudyConfig"):
        methods_paragraph({"name": "x"}, VERSIONS)


ROIS = {"n_automatic": 7, "n_rois": 30, "n_excluded": 2, "n_proposed": 9,
        "by_cohort": {"train": {"automatic": 0, "rois": 20}, "external": {"automatic": 7, "rois": 10}},
        "segmenter": {"encoder": "efficientnet_lite0", "n_cases": 120, "n_patients": 60, "val_dice_median": 0.912,
                      "weights_sha256": "ab" * 32}}


def test_automatic_rois_are_said_with_the_segmenter_they_came_from():
    study = _study(CENTER_SPLIT)
    text = methods_paragraph(study, versions=VERSIONS, extra={"automatic_rois": ROIS})
    assert "Of the 30 lesion ROIs analysed, 7 were proposed by a box-prompted segmentation network" in text
    assert "trained on 120 manually delineated images of 60 patients" in text and "median Dice 0.912" in text
    assert "by cohort: training 0 of 20; external validation 7 of 10" in text
    assert "23 were drawn by hand" in text and "2 proposals were flagged" in text and "abababababab" in text
    assert "proposed by a box-prompted" not in methods_paragraph(study, versions=VERSIONS)
    missing = {**ROIS, "segmenter": {"n_cases": 120}}
    assert "not available: not recorded in segmenter.json" in methods_paragraph(
        study, versions=VERSIONS, extra={"automatic_rois": missing})
