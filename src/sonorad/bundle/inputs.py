"""A bundle's inputs: new cases read into feature tables with the bundle's saved settings.

:func:`inputs_from_table` (a cases table; PyRadiomics and deep features extracted with a cache, in
parallel, per-case failures kept) and :func:`inputs_from_case` (one image in memory, for a
calculator) both return a :class:`CaseInputs`; :func:`model_input` turns its feature tables and the
checked variables into the table the models were trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sonorad.bundle.rows import failure_row as _failure
from sonorad.bundle.summary import roi_measures
from sonorad.errors import CaseError, CohortError, Problem

__all__ = ["BatchLabels", "CaseInputs", "NEGATIVE_OF", "batch_labels", "read_cases_for_prediction",
           "inputs_from_table", "inputs_from_case", "model_input"]


@dataclass
class CaseInputs:
    """The cases being scored, read and turned into features.

    Attributes
    ----------
    ids : list of str
        Every case id, in the table's order.
    values : DataFrame
        The declared variables (and ``center``) as given, index = ``ids``.
    radiomics, deep : DataFrame or None
        Radiomics / deep features of the cases whose extraction worked (``None``: the bundle has none).
    rois : DataFrame
        :data:`sonorad.bundle.ROI_COLUMNS` of the cases whose image was read.
    crops : dict
        case id -> ``{(margin, mask_background): (crop, crop_mask)}`` for :attr:`Bundle.crop_settings`.
    failures : list of dict
        Failure rows of the cases that could not be read.
    labels : BatchLabels or None
        The labels (:func:`batch_labels`) when the table carries the study's label column.
    unknown_values : list of str
        Value names given for one case that are not variables of the models.
    centers : Series or None
        The ``center`` of each case when the table has one.
    """

    ids: list
    values: pd.DataFrame
    radiomics: pd.DataFrame | None
    deep: pd.DataFrame | None
    rois: pd.DataFrame
    crops: dict
    failures: list
    labels: BatchLabels | None = None
    unknown_values: list = field(default_factory=list)
    centers: pd.Series | None = None


def _crops_of(pixels, mask, settings) -> dict:
    from sonorad.deep.inputs import roi_crop_with_mask

    return {s: roi_crop_with_mask(pixels, mask, margin=s[0], mask_background=s[1]) for s in settings}


def read_cases_for_prediction(csv_path) -> pd.DataFrame:
    """Read a cases CSV that may have no label column (otherwise as :func:`sonorad.cohort.read_cases`)."""
    from sonorad.cohort import read_cases

    try:
        return read_cases(csv_path, require_label=False)
    except TypeError:  # read_cases without require_label: name a column every table has as the label
        return read_cases(csv_path, label_column="case_id")


def _label_column(bundle) -> tuple[str, str]:
    from sonorad.variables import canonical_value

    label = bundle.study.get("label") or {}
    return str(label.get("column", "label")), canonical_value(label.get("positive", 1))


#: The negative label value that goes with a positive one, when a study's positive value is one of
#: these (compared case-insensitively). A positive value outside this list has as its negative the
#: one other label value of the batch, as in training ("the other value of the column").
NEGATIVE_OF = {"1": "0", "true": "false", "yes": "no", "y": "n", "positive": "negative", "pos": "neg",
               "malignant": "benign", "present": "absent", "metastatic": "non-metastatic"}


@dataclass
class BatchLabels:
    """The labels of a batch being scored, as the metrics read them.

    Attributes
    ----------
    y : Series
        1 for the positive value, 0 for a negative value, NaN for an empty cell or a refused value.
    positive : str
        The study's positive value (canonical text).
    negatives : list of str
        The values read as negative.
    refused : dict of str -> str
        Case id -> label value that is neither the positive value nor a negative one: the case is
        scored but left out of the metrics.
    """

    y: pd.Series
    positive: str
    negatives: list
    refused: dict

    def note(self, column: str) -> str | None:
        """One line naming the refused cases and the allowed values, or ``None``."""
        if not self.refused:
            return None
        from sonorad.variables import cases_text

        values = ", ".join(repr(v) for v in dict.fromkeys(self.refused.values()))
        allowed = ", ".join(repr(v) for v in [self.positive, *self.negatives])
        return (f"{column}: {len(self.refused)} case(s) have a label value that is neither the positive value nor "
                f"a negative one ({values}): {cases_text(self.refused)}; they are scored but left out of the "
                f"metrics. Allowed label values: {allowed} (positive {self.positive!r}). Fix: recode those labels")


def batch_labels(bundle, table: pd.DataFrame, ids) -> BatchLabels | None:
    """The batch's labels when the table has the study's label column with at least one value.

    A value is positive when it is the study's positive value, negative when it is the negative value
    that goes with it (:data:`NEGATIVE_OF`; for any other positive value, the one other value of the
    batch), and refused otherwise (a third value, or ``yes``/``no`` when the positive value is ``1``).
    """
    from sonorad.variables import canonical_value

    column, positive = _label_column(bundle)
    if column not in table.columns or column == "case_id":
        return None
    text = pd.Series(table[column].map(canonical_value).to_numpy(), index=list(ids), dtype=object)
    if text.isna().all():
        return None
    paired = NEGATIVE_OF.get(str(positive).lower())
    others = [v for v in dict.fromkeys(text.dropna()) if v != positive]
    if paired is not None:
        negatives = [v for v in others if v.lower() == paired] or [paired]
    else:
        negatives = others if len(others) == 1 else []
    y = pd.Series(np.nan, index=text.index, name="label")
    y[text == positive] = 1.0
    y[text.isin(negatives)] = 0.0
    refused = {str(c): str(v) for c, v in text.items() if pd.notna(v) and v != positive and v not in negatives}
    if paired is None and not negatives:
        negatives = ["(the one other value of the batch)"]
    return BatchLabels(y, str(positive), negatives, refused)


def _variable_columns(bundle) -> list[str]:
    """The declared variables (and ``center``) among the model input columns."""
    kinds = bundle.features["column_kinds"]
    return [c for c in bundle.features["input_columns"] if kinds[c] in ("variable", "center")]


def _check_table(bundle, table: pd.DataFrame) -> list[str]:
    """The case ids of a cases table, after checking its columns and that no id repeats."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"cases must be a DataFrame (sonorad.cohort.read_cases) or a CSV path, got {type(table).__name__}")
    ids = [str(c) for c in (table["case_id"] if "case_id" in table.columns else table.index)]
    problems = [Problem(f"column {c!r} is missing", fix="add it (the image and lesion-mask paths of each case)", column=c)
                for c in ("image", "mask") if c not in table.columns]
    for column in _variable_columns(bundle):
        if column not in table.columns:
            what = "the center of each case" if column == "center" else "a variable the models use"
            problems.append(Problem(f"column {column!r} ({what}) is missing",
                                    fix="add the column; leave a cell empty where the value is unknown "
                                        "(it is then imputed)", column=column))
    seen, repeated = set(), []
    for cid in ids:
        if cid in seen:
            repeated.append(cid)
        seen.add(cid)
    problems += [Problem("case id appears more than once", fix="give every lesion image its own case_id",
                         case_id=cid, column="case_id") for cid in dict.fromkeys(repeated)]
    if problems:
        raise CohortError(problems, source="cases table")
    return ids


def inputs_from_table(bundle, table: pd.DataFrame, *, jobs: int, cache, progress: bool) -> CaseInputs:
    """Read every case of a cases table and compute its features with the bundle's saved settings.

    Each image and mask is read (ROI measures and lesion crops kept), PyRadiomics runs with the
    saved parameters (``cache`` reused, ``jobs`` processes) and every saved backbone embeds the
    crops after its weights hash is checked. A case that fails a step gets a failure row and the
    others go on.

    Raises
    ------
    CohortError
        A column the models need is missing, or a case id repeats (before any work).
    BundleError
        A backbone's installed weights are not those the models were trained on.
    """
    from sonorad.features.extract import cases_from_table
    from sonorad.imaging import load_roi

    ids = _check_table(bundle, table)
    table = table.copy()
    table.index = pd.Index(ids, name="case_id")
    table["case_id"] = ids
    cases = cases_from_table(table)
    settings = bundle.crop_settings
    failures, rois, crops = [], {}, {}
    for case in cases:
        try:
            if not case.masks:
                raise CaseError(case.case_id, "no mask file given", "fill the mask column with the lesion mask's path")
            image, mask = load_roi(case.image, list(case.masks), case_id=case.case_id, frame=case.frame,
                                   spacing=case.spacing)
            rois[case.case_id] = roi_measures(image, mask)
            crops[case.case_id] = _crops_of(image.pixels, mask, settings)
        except CaseError as exc:
            failures.append(_failure(case.case_id, "image", exc.problem.message, exc.problem.fix))
        except Exception as exc:  # noqa: BLE001 - one unreadable case never stops the others
            failures.append(_failure(case.case_id, "image", f"{type(exc).__name__}: {exc}",
                                     "check that the image opens and the mask outlines the lesion on it"))
    ok = [c for c in ids if c in rois]
    radiomics = deep = None
    if ok and bundle.features.get("radiomics") is not None:
        from sonorad.features.extract import extract_radiomics

        radiomics, failed = extract_radiomics(table.loc[ok], params=bundle.radiomics_params, cache=cache,
                                              jobs=jobs, progress=progress)
        failures += failed.to_dict("records")
        ok = [c for c in ok if c in radiomics.index]
    settings_deep = bundle.features.get("deep") or []
    if ok and settings_deep:
        from sonorad.deep.extractor import extract_deep
        from sonorad.features.engine import as_cache

        for settings in settings_deep:
            bundle.backbone(settings)  # checks the weights hash before anything is embedded
        tables = []
        for settings in settings_deep:
            table_deep, failed = extract_deep(table.loc[ok], settings["backbone"], cache=as_cache(cache),
                                              batch_size=settings["batch_size"], margin=settings["margin"],
                                              mask_background=settings["mask_background"],
                                              weights=settings.get("weights", "default"), progress=progress)
            failures += failed.to_dict("records")
            tables.append(table_deep)
        deep = pd.concat(tables, axis=1)  # a case that one backbone failed on: NaNs there, and its failure row
    values = table.reindex(columns=_variable_columns(bundle))
    centers = table["center"] if "center" in table.columns else None
    return CaseInputs(ids, values, radiomics, deep, pd.DataFrame.from_dict(rois, orient="index"), crops, failures,
                      batch_labels(bundle, table, ids), centers=centers)


def inputs_from_case(bundle, image, mask, values: dict, case_id: str) -> CaseInputs:
    """The features of one case held in memory, with the bundle's saved settings.

    ``values`` keys that are not variables of the models are listed in ``unknown_values``.

    Raises
    ------
    TypeError
        ``values`` is not a dict.
    CaseError
        The image and mask cannot be used together.
    """
    from sonorad.features.radiomics import _check_inputs, extract_case

    if not isinstance(values, dict):
        raise TypeError(f"values must be a dict of variable -> value, got {type(values).__name__}")
    pixels, mask, _ = _check_inputs(image, mask, case_id)
    radiomics = deep = None
    if bundle.features.get("radiomics") is not None:
        feats = extract_case(image, mask, bundle.radiomics_params, case_id=case_id)
        radiomics = pd.DataFrame([feats], index=[case_id], dtype=np.float64)
    crops = {case_id: _crops_of(pixels, mask, bundle.crop_settings)}
    if bundle.features.get("deep"):
        from sonorad.deep.extractor import embed_crops

        tables = []
        for settings in bundle.features["deep"]:
            net = bundle.backbone(settings)
            crop = crops[case_id][(float(settings["margin"]), bool(settings["mask_background"]))][0]
            vec = embed_crops(net, [crop], batch_size=settings["batch_size"])
            tables.append(pd.DataFrame(vec, index=[case_id],
                                       columns=[f"{settings['backbone']}_{i}" for i in range(vec.shape[1])]))
        deep = pd.concat(tables, axis=1)
    columns = _variable_columns(bundle)
    unknown = sorted(set(values) - set(columns) - {"label"})
    row = {c: values.get(c, np.nan) for c in columns}
    frame = pd.DataFrame([row], index=[case_id], columns=columns, dtype=object)
    inputs = CaseInputs([case_id], frame, radiomics, deep, pd.DataFrame([roi_measures(image, mask)], index=[case_id]),
                     crops, [], unknown_values=unknown)
    return inputs


def model_input(bundle, inputs: CaseInputs, values: pd.DataFrame, ok: list) -> tuple[pd.DataFrame, list]:
    """The model input table of the cases in ``ok`` (columns and order as in training), and failure
    rows of the cases that lack a feature the models use (left out of the table)."""
    kinds = bundle.features["column_kinds"]
    columns = bundle.features["input_columns"]
    parts, failures = [], []
    for kind, table in (("radiomics", inputs.radiomics), ("deep", inputs.deep)):
        wanted = [c for c in columns if kinds[c] == kind]
        if not wanted:
            continue
        block = table.reindex(index=ok, columns=wanted) if table is not None else pd.DataFrame(index=ok, columns=wanted)
        parts.append(block.astype(np.float64))
        absent = [c for c in wanted if table is None or c not in table.columns]
        if absent:
            for cid in ok:
                failures.append(_failure(cid, kind, f"{len(absent)} {kind} feature(s) the models use were not "
                                                    f"produced with the saved settings (e.g. {absent[:3]})",
                                         "use the package versions listed in the bundle's manifest.json"))
    parts.append(values.loc[ok, [c for c in columns if kinds[c] in ("variable", "center")]])
    X = pd.concat(parts, axis=1)[columns]
    X.index.name = "case_id"
    bad = {f["case_id"] for f in failures}
    return X.loc[[c for c in ok if c not in bad]], failures
