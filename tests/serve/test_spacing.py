"""One pixel-spacing rule everywhere: a bundle that resamples every image scores the same pixels at the
same spacing identically as PNG + spacing_mm, as DICOM with PixelSpacing, and through the calculator."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from sonorad.imaging import read_image
from sonorad.serve.app import create_app

from .conftest import dicom_bytes, png_bytes

BASE = "http://127.0.0.1:8000"
TARGET_MM = 0.1
SPACING_MM = 0.15  # the images' own pixel size: not the target, so PyRadiomics really resamples
SHAPE_COLUMNS = ["original_shape2D_MajorAxisLength", "original_shape2D_Perimeter", "original_firstorder_Mean"]


@pytest.fixture(scope="module")
def resample_bundle(small_bundle, tmp_path_factory):
    """A tiny bundle whose PyRadiomics parameters carry ``spacing: resample`` to 0.1 mm; its one model
    reads two shape features (mm under this rule) and the mean gray level."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from sonorad.bundle import load_bundle, write_bundle
    from sonorad.imaging.spacing import SpacingRule, with_rule

    X = small_bundle.training_input
    y = small_bundle.labels.loc[X.index].astype(int).to_numpy()
    model = Pipeline([("select", ColumnTransformer([("rad", "passthrough", SHAPE_COLUMNS)])),
                      ("scale", StandardScaler()), ("model", LogisticRegression())]).fit(X, y)
    params = with_rule(small_bundle.params, SpacingRule("resample", TARGET_MM))
    card = {"intended_use": "Test bundle on a synthetic cohort; not for clinical use.",
            "cohorts": [{"cohort": "training", "n": len(X), "events": int(y.sum())}],
            "external_auc": {"auc": 0.5, "low": 0.3, "high": 0.7, "cohort": "synthetic external"},
            "calibration": {"intercept": 0.0, "slope": 1.0}}
    path = write_bundle(tmp_path_factory.mktemp("resample_bundle") / "model", models={"lr": model}, chosen="lr",
                        cutoffs={"lr": 0.5}, features={"radiomics_params": params, "deep": None},
                        variables=small_bundle.variables, training_input=X, training_rois=None, card=card,
                        study={"name": "resample", "label": {"column": "label", "positive": 1}})
    return load_bundle(path)


@pytest.fixture(scope="module")
def files(small_bundle, tmp_path_factory):
    """Two external cases written as PNG (no spacing) and as DICOM (PixelSpacing 0.15 mm), same pixels."""
    root = tmp_path_factory.mktemp("spacing_files")
    out = []
    for cid in small_bundle.external_ids[:2]:
        row = small_bundle.table.loc[cid]
        pixels = read_image(row["image"]).pixels.astype(np.uint8)
        png, dcm = root / f"{cid}.png", root / f"{cid}.dcm"
        png.write_bytes(png_bytes(pixels))
        dcm.write_bytes(dicom_bytes(pixels, PixelSpacing=[SPACING_MM, SPACING_MM]))
        values = {k: row[k] for k in small_bundle.variables}
        out.append({"case_id": cid, "png": png, "dcm": dcm, "mask": row["mask"], "values": values,
                    "center": row["center"], "patient_id": row["patient_id"]})
    return out


def _table(files, image: str, spacing: str | None) -> pd.DataFrame:
    rows = [{"case_id": f["case_id"], "patient_id": f["patient_id"], "center": f["center"], "image": str(f[image]),
             "mask": str(f["mask"]), **f["values"], **({"spacing_mm": spacing} if spacing is not None else {})}
            for f in files]
    return pd.DataFrame(rows).set_index("case_id", drop=False)


def _post(client, f, image_key: str, pixel_size=None):
    data = {"variables": json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in f["values"].items()}),
            "case_id": f["case_id"]}
    if pixel_size is not None:
        data["pixel_size_mm"] = pixel_size
    name = "scan.png" if image_key == "png" else "scan.dcm"
    return client.post("/api/predict", data=data, files={"image": (name, f[image_key].read_bytes()),
                                                         "mask": ("mask.png", open(f["mask"], "rb").read())})


def test_bundle_records_the_rule_with_the_pyradiomics_parameters(resample_bundle):
    params = resample_bundle.radiomics_params
    assert params["sonorad"] == {"spacing": "resample", "spacing_mm": TARGET_MM}
    assert params["setting"]["resampledPixelSpacing"] == [TARGET_MM, TARGET_MM]
    assert resample_bundle.features["radiomics"]["spacing"] == {"spacing": "resample", "spacing_mm": TARGET_MM}


def test_png_with_spacing_mm_dicom_and_calculator_score_identically(resample_bundle, files):
    as_png = resample_bundle.predict(_table(files, "png", str(SPACING_MM)), explain=False).probabilities()["lr"]
    as_dicom = resample_bundle.predict(_table(files, "dcm", None), explain=False).probabilities()["lr"]
    assert len(as_png) == len(files) == len(as_dicom)
    np.testing.assert_allclose(as_png.to_numpy(), as_dicom.reindex(as_png.index).to_numpy(), rtol=0, atol=1e-6)
    # the spacing matters: the same PNG said to be at twice the pixel size scores differently
    other = resample_bundle.predict(_table(files, "png", str(2 * SPACING_MM)), explain=False).probabilities()["lr"]
    assert np.abs(other.reindex(as_png.index).to_numpy() - as_png.to_numpy()).max() > 1e-3

    with TestClient(create_app(resample_bundle), base_url=BASE) as client:
        for f in files:
            png = _post(client, f, "png", pixel_size=str(SPACING_MM))
            dcm = _post(client, f, "dcm")
            assert png.status_code == 200, png.json()
            assert dcm.status_code == 200, dcm.json()
            assert png.json()["inputs"]["image"]["spacing_mm"] == [SPACING_MM, SPACING_MM]
            assert png.json()["result"]["probability"] == pytest.approx(as_png[f["case_id"]], abs=1e-6)
            assert dcm.json()["result"]["probability"] == pytest.approx(as_png[f["case_id"]], abs=1e-6)


def test_calculator_asks_for_the_pixel_size_and_refuses_a_png_without_it(resample_bundle, files):
    with TestClient(create_app(resample_bundle), base_url=BASE) as client:
        spacing = client.get("/api/schema").json()["spacing"]
        assert spacing["asks_pixel_size"] is True and spacing["field"] == "pixel_size_mm"
        assert spacing["spacing"] == "resample" and spacing["spacing_mm"] == TARGET_MM
        response = _post(client, files[0], "png")
        assert response.status_code == 422
        body = response.json()
        assert body["field"] == "pixel_size_mm"
        assert "pixel size" in body["error"] and "PNG" in body["error"] and "0.1 mm" in body["error"]
        bad = _post(client, files[0], "png", pixel_size="wide")
        assert bad.status_code == 422 and bad.json()["field"] == "pixel_size_mm"


def test_predict_refuses_a_png_without_spacing_by_case(resample_bundle, files):
    result = resample_bundle.predict(_table(files, "png", None), explain=False)
    failures = result.failures.set_index("case_id")
    assert set(failures.index) == {f["case_id"] for f in files}
    assert all("no pixel spacing" in e for e in failures["error"])
    assert all("spacing_mm" in fix for fix in failures["fix"])


def test_bundle_without_a_rule_does_not_ask(small_bundle):
    from sonorad.bundle import load_bundle

    with TestClient(create_app(load_bundle(small_bundle.path)), base_url=BASE) as client:
        spacing = client.get("/api/schema").json()["spacing"]
    assert spacing["asks_pixel_size"] is False and spacing["spacing"] is None
