"""Small synthetic multicenter cohorts shared by the design tests and ``benchmarks/bench_families.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sonorad.designs import FeatureColumns, model_input_table

#: Centers whose patients form the training cohort of :func:`split`.
TRAIN_CENTERS = ["C1", "C2"]
#: Declared clinical and ultrasound variables of the cohort.
CLINICAL = {"age": "continuous", "sex": "binary"}
US = {"tumour_edge": "binary", "calcification": "binary", "us_ln_positive": "binary"}


def make_score_fusion_cohort(n_patients=214, n_radiomics=1000, n_deep=1280, n_informative=5, signal=1.0,
                             center_shift=0.0, seed=0):
    """A multicenter cohort shaped for the score-fusion design: 4 centers (72, 72, 35, 35 patients), one image each.

    Returns ``(tables, y, patients, centers)``. The first ``n_informative`` radiomics and deep
    columns, age and the three US variables depend on the label; every other column is noise.
    ``center_shift`` adds a per-center location offset to every imaging feature.
    """
    rng = np.random.default_rng(seed)
    sizes = np.round(np.array([72, 72, 35, 35]) * n_patients / 214).astype(int)
    sizes[-1] = n_patients - sizes[:-1].sum()
    centers = np.repeat(["C1", "C2", "C3", "C4"], sizes)
    ids = pd.Index([f"case{i:04d}" for i in range(n_patients)], name="case_id")
    y = (rng.normal(size=n_patients) + rng.normal(scale=0.8, size=n_patients) > 0.6).astype(int)
    lat = np.where(y == 1, 1.0, -1.0) * signal
    offsets = {"C1": 0.0, "C2": 1.0, "C3": -1.0, "C4": 0.5}
    shift = np.array([offsets[c] for c in centers]) * center_shift
    R = rng.normal(size=(n_patients, n_radiomics)) + shift[:, None]
    R[:, :n_informative] += 0.5 * lat[:, None]
    D = rng.normal(size=(n_patients, n_deep)) + shift[:, None]
    D[:, :n_informative] += 0.5 * lat[:, None]
    radiomics = pd.DataFrame(np.exp(0.3 * R), index=ids,
                             columns=[f"original_glcm_Feature{i}" for i in range(n_radiomics)])
    deep = pd.DataFrame(D, index=ids, columns=[f"resnet50_{i}" for i in range(n_deep)])
    clinical = pd.DataFrame({"age": 50 + 10 * rng.normal(size=n_patients) + 4 * lat,
                             "sex": rng.choice(["F", "M"], n_patients)}, index=ids)
    clinical.loc[ids[rng.choice(n_patients, 5, replace=False)], "age"] = np.nan
    us = pd.DataFrame({
        "tumour_edge": np.where(rng.random(n_patients) < 0.3 + 0.15 * lat, "irregular", "smooth"),
        "calcification": (rng.random(n_patients) < 0.3 + 0.1 * lat).astype(int),
        "us_ln_positive": (rng.random(n_patients) < 0.3 + 0.15 * lat).astype(int),
    }, index=ids)
    patients = pd.Series([f"p{i:04d}" for i in range(n_patients)], index=ids)
    tables = {"radiomics": radiomics, "deep": deep, "clinical": clinical, "us": us}
    return tables, pd.Series(y, index=ids), patients, pd.Series(centers, index=ids)


def split(tables, y, patients, centers):
    """``(train tables, external tables, y_train, y_external, patients_train, centers_train, centers_external)``."""
    train = centers.isin(TRAIN_CENTERS)
    tr = {k: v[train] for k, v in tables.items()}
    ex = {k: v[~train] for k, v in tables.items()}
    return tr, ex, y[train], y[~train], patients[train], centers[train], centers[~train]


def model_inputs(tables, centers):
    """The model input table of a cohort and its :class:`~sonorad.designs.FeatureColumns`."""
    variables = pd.concat([tables["clinical"], tables["us"]], axis=1)
    X = model_input_table(tables["radiomics"].index, radiomics=tables["radiomics"], deep=tables["deep"],
                          variables=variables, centers=pd.Series(np.asarray(centers), index=tables["radiomics"].index))
    columns = FeatureColumns(radiomics=tuple(tables["radiomics"].columns), deep=tuple(tables["deep"].columns),
                             clinical=tuple(tables["clinical"].columns), us=tuple(tables["us"].columns))
    return X, columns


def design_cohort():
    """``(tables, y, patients, centers, X, columns)``: 120 patients, the input of a design's ``fit``."""
    tables, y, patients, centers = make_score_fusion_cohort(n_patients=120, n_radiomics=40, n_deep=30)
    X, columns = model_inputs(tables, centers)
    return (tables, y, pd.Series(np.asarray(patients), index=y.index), pd.Series(np.asarray(centers), index=y.index),
            X, columns)
