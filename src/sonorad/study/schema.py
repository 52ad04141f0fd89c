"""Every key of the study file, declared once.

The declaration below is the one source of the study file's rules: :class:`~sonorad.study.StudyConfig`
checks the study's own sections with it, :func:`sonorad.runner.run_config` checks the ``features``,
``models`` and ``evaluation`` sections with it, each design adds its own ``models`` keys
(:meth:`sonorad.designs.design.Design.keys`), ``study.schema.json`` (the JSON Schema editors read) is
generated from it (:func:`study_json_schema`), and so are the key tables of ``docs/study-file.md`` and
``docs/running-a-study.md`` (:func:`docs_table`).

Examples
--------
>>> values, problems = check_study({"name": "s", "seed": -1})
>>> [(p.column, p.message) for p in problems]
[('seed', 'must be a non-negative integer, got -1')]
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from pathlib import Path

from sonorad.errors import Problem
from sonorad.defaults import DEFAULT_DESIGN, RUNNER_MODEL_KEYS
from sonorad.study.describe import json_schema, key_rows
from sonorad.keys import Checker, Key, lazy, show
from sonorad.variables import UNSEEN_POLICIES, VARIABLE_ROLES, VARIABLE_TYPES

__all__ = ["DEFAULT_DESIGN", "RESERVED_COLUMNS", "SPLIT_BY", "STUDY", "LABEL", "VARIABLE",
           "VARIABLES", "MASKS", "SPLIT", "FEATURES", "MODELS", "CNN", "EVALUATION", "RUNNER_MODEL_KEYS", "check_models_section",
           "check_study", "check_runner_sections", "study_json_schema", "SCHEMA_PATH", "write_json_schema",
           "docs_table", "DOCS_TABLES", "render_key_tables"]

#: The design of a study file without ``models.design``.
#: Cohort-table columns with a fixed meaning; a variable cannot take one of these names.
RESERVED_COLUMNS = ("case_id", "patient_id", "center", "image", "mask", "mask2", "frame", "spacing_mm", "mask_label",
                    "box", "label")
#: How cases are split (``split.by``).
SPLIT_BY = ("center", "patient")
#: Largest seed: numpy's and scikit-learn's random states take 0 <= seed < 2**32.
MAX_SEED = 2**32 - 1
#: The shipped JSON Schema of the study file.
SCHEMA_PATH = Path(__file__).with_name("study.schema.json")


# -- rules across keys ---------------------------------------------------------------------------------
def _reserved(name: str, siblings: dict):
    reserved = set(RESERVED_COLUMNS) | {siblings.get("label", {}).get("column", "label")}
    if name in reserved:
        return (f"{name!r} is a reserved cohort column, not a variable; reserved: {', '.join(sorted(reserved))}",
                "remove it from variables")
    return None


def _variable_levels(values: dict, raw: dict, path: str, c: Checker) -> None:
    levels, order = values.get("levels"), values.get("order")
    if values.get("type") == "binary" and levels is not None and len(levels) != 2:
        c.add(f"{path}.levels", f"a binary variable has exactly 2 levels, got {len(levels)}: {show(raw['levels'])}",
              "list the negative level then the positive one, e.g. [no, yes], or use type: categorical")
    if values.get("type") == "ordinal" and order is not None and len(order) < 2:
        c.add(f"{path}.order", f"an ordinal variable needs at least 2 levels, got {list(order)}")


def _disjoint_centers(values: dict, raw: dict, path: str, c: Checker) -> None:
    for center in sorted(set(values.get("train", ())) & set(values.get("external", ()))):
        c.add(f"{path}.external", f"center {center!r} is in both split.train and split.external",
              "a center is either training or external validation; remove it from one list")


def _dl_backbones(values: dict, raw: dict, path: str, c: Checker) -> None:
    deep = values.get("deep") or ()
    if "deep" in values and "dl_backbone" not in raw:
        values["dl_backbone"] = deep
    dl = values.get("dl_backbone") or ()
    if "deep" in values:
        for name in dl:
            if name not in deep:
                c.add(f"{path}.dl_backbone", f"{name!r} is not one of features.deep {list(deep)}",
                      "name extracted backbones only")
    if len(set(dl)) < len(dl):
        c.add(f"{path}.dl_backbone", f"lists a backbone twice: {list(dl)}", "name each backbone once")
    if values.get("radiomics") is False and "deep" in values and not deep:
        c.add(path, "radiomics is off and no deep backbone is given: nothing to extract",
              "set radiomics: true or list backbones under deep")


def _spacing_mm(values: dict, raw: dict, path: str, c: Checker) -> None:
    if raw.get("spacing_mm") is not None and raw.get("spacing") != "resample":
        c.add(f"{path}.spacing_mm", "is the target of `spacing: resample` and is only allowed with it",
              "set features.spacing: resample, or remove spacing_mm")


def _cv_folds(values: dict, raw: dict, path: str, c: Checker) -> None:
    if raw.get("cv_folds") == 1 and not isinstance(raw["cv_folds"], bool):
        c.add(f"{path}.cv_folds", "must be 0 (no training cross-validation) or at least 2, got 1")


def _design_registry():
    """The design registry, :mod:`sonorad.designs`, found by name when a ``models:`` section is checked.

    Designs declare their own ``models:`` keys with this module's :class:`Key`, so they sit above it;
    like the backbone and model lists (:func:`~sonorad.keys.lazy`), the registry is a plug-in
    looked up at check time, never imported by this module.
    """
    return importlib.import_module("sonorad.designs")


def _design_keys(name: str) -> tuple[Key, ...]:
    return _design_registry().get_design(name).keys()


# -- the study's own sections ----------------------------------------------------------------------------
LABEL = Key("label", "mapping", "the outcome", keys=(
    Key("column", "text", "cohort column with the outcome; it becomes a required column of the table",
        default="label"),
    Key("positive", "scalar", "the value meaning positive (metastatic, malignant...), e.g. `1` or `malignant`",
        default="1", default_doc="`1`", blank_ok=False, expect="the value meaning positive (a number or text)",
        fix="e.g. `positive: 1` or `positive: malignant`"),
    Key("description", "text", "the positive outcome in words (`cervical lymph node metastasis`): the calculator "
                               "and the model card say \"probability of <description>\""),
))

VARIABLE = Key("variable", "mapping", "a declared variable, or its type alone (`age: numeric`)", shorthand="type",
               discriminator="type", variant_noun="variable", rules=(_variable_levels,), keys=(
    Key("type", "choice", "the variable's type", required=True, choices=VARIABLE_TYPES, noun="type",
        fix="e.g. `type: numeric`, or the short form `{parent}: numeric`"),
    Key("levels", "levels", "allowed values. Binary: exactly two, **negative first** (the second is coded 1); "
        "without `levels` a binary column must hold 0/1. Categorical: without `levels` any value is accepted",
        when=("categorical", "binary"), blank_ok=False,
        when_fix={"ordinal": "use `order: [...]` (lowest first)", "*": "remove it"}),
    Key("order", "levels", "the levels, **lowest first**, at least two", when=("ordinal",), blank_ok=False,
        required_when=("ordinal",), required_fix="list its levels lowest first, e.g. `order: [2, 3, 4, 5]`",
        when_fix="use `type: ordinal`, or `levels: [...]` for an unordered variable"),
    Key("role", "choice", "`clinical` or `ultrasound` (radiologist-scored), used to build the clinical and US "
        "models", choices=VARIABLE_ROLES, noun="role"),
    Key("description", "text", "free text for reports"),
    Key("unit", "text", "unit of a numeric variable (`years`, `mm`), shown beside the calculator's field, in "
        "reports and in messages about its values", when=("numeric",)),
    Key("range", "range", "`[low, high]`, the plausible values (both included); a value outside is an error "
        "naming the case, and `predict` and the calculator refuse it. Without it, a value more than 10 "
        "interquartile ranges outside the quartiles is a warning in `validate`; `predict` and the calculator "
        "refuse a value more than 10 interquartile ranges outside the training quartiles (or negative when no "
        "training value was): declare the range to accept such values when they are truly plausible",
        when=("numeric",), blank_ok=False, fix="e.g. `range: [18, 100]` for an age in years"),
    Key("unseen", "choice", "`error` (default) or `other`: what to do with a value that training never saw",
        default="error", choices=UNSEEN_POLICIES, noun="policy", plural="", when=("categorical",), blank_ok=False,
        when_fix="remove it (binary and ordinal variables have fixed levels)",
        fix="`unseen: error` refuses a case with a new value, `unseen: other` codes it as 'other'"),
))

VARIABLES = Key("variables", "mapping", "clinical and ultrasound columns, see below", entries=VARIABLE,
                entry_rule=_reserved)

MASKS = Key("masks", "mapping", "the lesion's label in label-map masks, what to do with disjoint lesions and "
            "the segmenter that proposes missing masks, see below", keys=(
    Key("label", "integer", "the lesion's label (a whole number > 0) in label-map masks, for the whole cohort. A "
        "`mask_label` column in cases.csv overrides it per case. Without either, a mask holding several labels is "
        "an error naming the case and the labels found", minimum=1,
        expect="the lesion's label, a whole number > 0",
        fix="e.g. `label: 1`; the labels of a label-map mask are listed by `sonorad extract`"),
    Key("lesions", "choice", "`union` (join disjoint regions into one ROI), `largest` (keep the largest region) or "
        "`per-lesion` (each region its own case, `<case_id>-lesion<k>`). Without it, disjoint regions are joined "
        "with a warning naming the case", choices=lazy("sonorad.imaging.roi:LESION_POLICIES"), noun="value", plural="",
        fix="`union` joins disjoint regions, `largest` keeps the largest, `per-lesion` makes one case each"),
    Key("segmenter", "path", "a box-prompted segmenter folder (written by `sonorad segment train`), relative to the "
        "study file's folder or absolute: cases with a `box` (x0,y0,x1,y1 in pixels) and no `mask` get their mask "
        "from it before extraction (`docs/segmentation.md`, \"In a study\"). `validate` loads it and checks every "
        "box first; a flagged proposal excludes its case", resolve=True, default_doc="none: every case needs a mask",
        fix="give the folder written by `sonorad segment train` (with segmenter.json and segmenter.pt)"),
))

SPLIT = Key("split", "mapping", "train / internal / external assignment, see below. Without it every case is "
            "`train`", discriminator="by", rules=(_disjoint_centers,), keys=(
    Key("by", "choice", "`center` (training and external centers) or `patient` (random patient-grouped hold-out)",
        required=True, choices=SPLIT_BY, noun="value", plural="",
        fix="`by: center` (train / external centers) or `by: patient` (random patient-grouped split)"),
    Key("train", "centers", "non-empty list of centers (the `center` column)", when=("center",),
        required_when=("center",), required_fix="list the centers, e.g. `train: [C1, C2]`"),
    Key("external", "centers", "non-empty list of centers, disjoint from `train`", when=("center",),
        required_when=("center",), required_fix="list the centers, e.g. `external: [C1, C2]`"),
    Key("internal_fraction", "fraction", "fraction (0 < f < 1) of the training centers' patients held out as "
        "`internal`, stratified by center and label", when=("center",), fix="e.g. 0.3 for 30%"),
    Key("test_fraction", "fraction", "fraction (0 < f < 1) of patients held out as `internal`, stratified by center "
        "and label", when=("patient",), required_when=("patient",), fix="e.g. 0.3 for 30%",
        required_fix="add `test_fraction: 0.3` (a fraction between 0 and 1)"),
    Key("seed", "integer", "seed of the split (default: the study `seed`)", maximum=MAX_SEED, fix="e.g. `seed: 42`"),
))

# -- the runner's sections ---------------------------------------------------------------------------------
_BACKBONES = lazy("sonorad.deep.backbones:available_backbones")

FEATURES = Key("features", "section", "what to extract (PyRadiomics parameters, CNN backbones, cache); checked "
               "by `sonorad run`, see `docs/running-a-study.md`", opaque=True, rules=(_dl_backbones, _spacing_mm),
               keys=(
    Key("radiomics", "boolean", "extract PyRadiomics 2D features", default=True),
    Key("params", "path", "PyRadiomics parameter file, relative to the study file's folder", nullable=True,
        default=None, default_doc="sonorad's 2D file", must_exist=True,
        fix="give a path relative to the study file's folder, or leave the key out for sonorad's default"),
    Key("spacing", "choice", "the pixel-spacing rule of every image (`docs/imaging.md`, \"Pixel spacing\"): "
        "`resample` (PyRadiomics resamples each image to one in-plane spacing, `spacing_mm`; every image needs a "
        "spacing, from its file or the `spacing_mm` column) or `pixels` (spacing ignored, features in pixels)",
        nullable=True, default=None, choices=("resample", "pixels"), noun="spacing rule",
        default_doc="each image at its own spacing; `validate` refuses centers that mix spacings"),
    Key("spacing_mm", "number", "target in-plane pixel size (mm) of `spacing: resample`", nullable=True,
        default=None, low=0.001, high=10.0, default_doc="the training cohort's median spacing"),
    Key("deep", "names", "backbones for frozen ImageNet CNN features (one name or a list; `[]` for none)",
        nullable=True, default=("efficientnet_lite0",), choices=_BACKBONES, noun="backbone"),
    Key("dl_backbone", "names", "the backbone(s) whose features feed the DL-score(s) / `dl` families (one name or "
        "a list, each listed in `deep`; `[]`: none). The score-fusion design fits one DL-score per backbone "
        "(`models.dl_scores`); the feature-families design puts their features side by side", nullable=True,
        default_doc="every backbone of `deep`"),
    Key("jobs", "integer", "worker processes for radiomics extraction and the training cross-validation",
        default=1, minimum=1),
    Key("cache", "path", "per-case feature cache folder (share one between runs), relative to the study file",
        nullable=True, default=None, default_doc="`OUT/features/.cache`"),
    Key("icc", "toggle", "`true` or `{n_cases: 30, threshold: 0.75}`: ICC(3,1) on training cases (`mask2`, else "
        "perturbed masks) and an ICC filter before the Rad-score (score fusion) or in the imaging selection "
        "(feature families)", nullable=True, default=None, default_doc="off", keys=(
            Key("n_cases", "integer", "training cases re-segmented or perturbed", default=30, minimum=3),
            Key("threshold", "number", "lowest ICC kept", default=0.75, low=0.0, high=1.0))),
    Key("margin", "number", "CNN crop margin around the mask bounding box (fraction, 0-2)", default=0.1,
        low=0.0, high=2.0),
    Key("mask_background", "boolean", "blank the image outside the mask in CNN crops", default=False),
    Key("batch_size", "integer", "batch size of the frozen CNN extraction", default=32, minimum=1),
    Key("executor", "any", "where extraction runs: `local`, a Dask scheduler address, `slurm` / `slurm:N`, or a "
        "mapping (`docs/scaling.md`); `--scheduler` and `SONORAD_SCHEDULER` override it", default_doc="local"),
))

CNN = Key("cnn", "mapping", "fine-tuned CNN classifiers, one model `cnn_<backbone>` per backbone (below)",
          nullable=True, keys=(
    Key("backbones", "names", "backbones to fine-tune (names as in `features.deep`)",
        default=("efficientnet_lite0",), choices=_BACKBONES,
        noun="backbone"),
    Key("weights", "path", "`default` (ImageNet), `random`, or a weights file relative to the study file",
        nullable=True, words=("default", "random"), default_doc="`default`"),
    Key("epochs", "any", "maximum epochs", default_doc="`10`"),
    Key("batch_size", "any", "training batch size", default_doc="`16`"),
    Key("lr", "any", "AdamW learning rate", default_doc="`0.001`"),
    Key("patience", "any", "epochs without improvement of the validation AUC before stopping", default_doc="`3`"),
    Key("val_fraction", "any", "share of training patients held out for early stopping (0-0.5)",
        default_doc="`0.2`"),
    Key("augment", "choice", "`scanner_shift`: flip, small rotation / scale / shift, gain, contrast, speckle-like "
        "noise, then the look of another scanner (dynamic range, gain offset, time-gain compensation, resolution, "
        "speckle grain; see [deep features](deep-features.md#fine-tuning-and-the-dl-model)); `true`: without the "
        "scanner look; `false`: none",
        choices=(True, False, "scanner_shift"), default_doc="`scanner_shift`"),
    Key("margin", "any", "crop margin (independent of `features:`)", default_doc="`0.1`"),
    Key("mask_background", "any", "blank the image outside the mask (independent of `features:`)",
        default_doc="`false`"),
    Key("input_size", "any", "network input side", default_doc="the backbone's"),
    Key("device", "any", "e.g. `cpu`, `cuda`", default_doc="CUDA if present, else CPU"),
))

MODELS = Key("models", "section", "the design (`score_fusion`, `feature_families`, `radiomics_nomogram`), zoo "
             "models, tuning, fine-tuned CNNs; checked by `sonorad run`", opaque=True, discriminator="design",
             variants=_design_keys, keys=(
    Key("design", "choice", "the design: `score_fusion`, `feature_families` or `radiomics_nomogram` (`study1` and "
        "`study2`, the old names of the first two, are still accepted)", default=DEFAULT_DESIGN, noun="design",
        choices=lazy("sonorad.designs:accepted_design_names"), display=lazy("sonorad.designs:available_designs"),
        fix="correct its spelling"),
    CNN,
    Key("bundle_exclude", "names", "models left out of the model bundle (e.g. `[knn, svm]`, which keep training "
        "feature vectors)", nullable=True, default=()),
))

EVALUATION = Key("evaluation", "section", "training cross-validation, CI level, SHAP, nomogram, Grad-CAM; checked "
                 "by `sonorad run`", opaque=True, rules=(_cv_folds,), keys=(
    Key("cv_folds", "integer", "folds of the training cross-validation of the whole pipeline; `0`: none (`1` is "
        "an error)", default=5),
    Key("level", "number", "confidence level of every interval", default=0.95, low=0.5, high=0.999),
    Key("shap", "boolean", "SHAP explanations of the chosen model", default=True),
    Key("shap_cases", "integer", "cases explained (a seeded sample of the primary cohort)", default=100, minimum=1),
    Key("gradcam", "integer", "cases in the Grad-CAM gallery (half positive, half negative); `0`: none", default=8),
    Key("nomogram", "boolean", "nomogram of the stage-2 logistic regression", default=True),
    Key("highlight", "names", "models drawn in ROC, calibration and decision-curve figures (names as in "
        "`predictions.csv`); default: the scores, `logistic_regression` and the best model by training CV AUC "
        "(feature families: each family's best), plus the CNNs", nullable=True, default=None,
        default_doc="see meaning"),
    Key("bootstrap", "integer", "bootstrap resamples of the optimism-corrected internal validation of the chosen "
        "model (Harrell; `rms::validate` / `rms::calibrate`); `0`: none. Every resample refits the **whole design** "
        "(selection, scores, tuning, the choice of model) on a resample of training patients, so each costs about "
        "one `fit` stage; use 200 or more for a paper. Runs `features.jobs` / `--jobs` resamples in parallel; each "
        "finished resample is saved under `models/bootstrap_<hash>/`, so an interrupted run resumes with identical "
        "numbers",
        default=0),
    Key("per_center", "boolean", "every metric per center of the internal and external cohorts and pooled, with "
        "Cochran's Q test of equal AUCs and I² (TRIPOD+AI 12d, 23b)", default=True),
))

STUDY = Key("study", "mapping", "a sonorad study file", keys=(
    Key("name", "text", "short study name, used in reports and output folders", required=True),
    Key("description", "text", "free text"),
    Key("cohort", "path", "the cohort table (`cases.csv`), relative to **the study file's folder** or absolute. "
        "May be left out when the table is given on the command line", resolve=True),
    Key("seed", "integer", "the one seed every random choice derives from (split, cross-validation folds, models)",
        default=0, maximum=MAX_SEED, fix="e.g. `seed: 42`"),
    LABEL, VARIABLES, MASKS, SPLIT, FEATURES, MODELS, EVALUATION,
))


# -- checking ------------------------------------------------------------------------------------------------
def check_study(data, source: Path | None = None) -> tuple[dict | None, list[Problem]]:
    """Check a parsed study file's own sections (``features``, ``models``, ``evaluation`` kept as mappings).

    Returns
    -------
    values : dict or None
        The checked values by key (``None`` when the file is not a mapping).
    problems : list of Problem
        Every problem found; ``Problem.column`` is the key path.
    """
    checker = Checker(source=source, null_is_missing=True, deep=False)
    if not isinstance(data, Mapping):
        checker.add("(top level)", f"the study file must be a mapping of keys, got {type(data).__name__}",
                    "start the file with `name: my_study`; allowed top-level keys: "
                    + ", ".join(k.name for k in STUDY.keys))
        return None, checker.problems
    return checker.check(STUDY, data, ""), checker.problems


def check_runner_sections(features: dict, models: dict, evaluation: dict, source: Path | None = None
                          ) -> tuple[dict, list[Problem]]:
    """Check the ``features``, ``models`` and ``evaluation`` sections, the design's own keys included.

    Returns
    -------
    values : dict
        ``{"features": ..., "models": ..., "evaluation": ...}``: each section's checked values, defaults
        filled in (a section with problems holds its valid keys only).
    problems : list of Problem
    """
    checker = Checker(source=source)
    values = {key.name: checker.check(key, section, key.name)
              for key, section in ((FEATURES, features), (MODELS, models), (EVALUATION, evaluation))}
    return values, checker.problems


# -- the declaration for editors and readers -------------------------------------------------------------------
def check_models_section(section: dict) -> list[Problem]:
    """Every problem of a ``models:`` section (design name, keys, model names, selection keys)."""
    checker = Checker()
    checker.check(MODELS, section, "models")
    return checker.problems


def study_json_schema() -> dict:
    """The JSON Schema of the study file (the designs' own ``models`` keys included)."""
    schema = json_schema(STUDY, blank=True)
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": "sonorad study file", **schema}


def write_json_schema(path: str | Path | None = None) -> Path:
    """Write :func:`study_json_schema` to ``path`` (default: the shipped ``study.schema.json``)."""
    path = Path(path) if path is not None else SCHEMA_PATH
    path.write_text(json.dumps(study_json_schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


#: The docs' key tables: marker name -> the declared mapping they list.
DOCS_TABLES = {"study": STUDY, "label": LABEL, "variables": VARIABLE, "masks": MASKS, "split": SPLIT,
               "features": FEATURES, "models": MODELS, "cnn": CNN, "evaluation": EVALUATION}


def docs_table(name: str) -> str:
    """The Markdown table of the keys under ``DOCS_TABLES[name]`` (``models``: with every design's keys)."""
    key = DOCS_TABLES[name]
    rows = key_rows(key)
    if key.variants is not None:
        registry = _design_registry()
        available_designs, get_design = registry.available_designs, registry.get_design
        seen: dict[str, list[str]] = {}
        declared: dict[str, Key] = {}
        for design in available_designs():
            for k in get_design(design).keys():
                seen.setdefault(k.name, []).append(design)
                declared.setdefault(k.name, k)
        own = []
        for name, designs in seen.items():
            (row,) = key_rows(Key("designs", "mapping", keys=(declared[name],)))
            applies = "all" if len(designs) == len(available_designs()) else ", ".join(f"`{d}`" for d in designs)
            own.append((row[0], applies, row[2], row[3]))
        # the design, then the keys every design reads, then each design's own, then the runner's keys
        own.sort(key=lambda row: row[1] != "all")
        rows = rows[:1] + own + rows[1:]
    if all(a == "all" for _, a, _, _ in rows):
        return "| key | default | meaning |\n|---|---|---|\n" + "\n".join(f"| {k} | {d} | {m} |" for k, _, d, m in rows)
    applies = "design" if key.variants is not None else f"`{key.discriminator}`"
    return (f"| key | {applies} | default | meaning |\n|---|---|---|---|\n"
            + "\n".join(f"| {k} | {a} | {d} | {m} |" for k, a, d, m in rows))


_TABLE = re.compile(r"(<!-- keys: (\w+) -->\n).*?(<!-- /keys -->)", re.S)


def render_key_tables(text: str) -> str:
    """``text`` (Markdown) with each ``<!-- keys: NAME -->`` ... ``<!-- /keys -->`` block set to :func:`docs_table`.

    The docs hold their key tables between such markers; ``docs/study-file.md`` and
    ``docs/running-a-study.md`` are kept current with
    ``python -c "from sonorad.study.schema import render_key_tables as r; from pathlib import Path as P;
    [p.write_text(r(p.read_text())) for p in map(P, ['docs/study-file.md', 'docs/running-a-study.md'])]"``.
    """
    return _TABLE.sub(lambda m: m.group(1) + docs_table(m.group(2)) + "\n" + m.group(3), text)
