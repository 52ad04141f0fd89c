"""The model card of a bundle: what the model is for, what it was validated on, what it keeps.

:func:`complete_card` adds to the study's card (intended use, cohorts, external AUC with CI,
calibration) what the bundle itself knows: the models it holds, the chosen model and its cut-off,
which models keep training feature vectors (k-NN, SVM), and which models were left out.
:func:`card_markdown` renders it as ``card.md``; an ``acquisition`` entry (the training centers'
:func:`sonorad.cohort.acquisition.acquisition_table` as records) is shown as a table of image
format, pixel spacing, image size, bit depth and scanner per center.

``card.json`` keeps its machine-readable keys (``citl``, ``hl_p``, a model's class path). What a
person reads says them in words, from one vocabulary here: :data:`CARD_SECTIONS` (section titles),
:data:`CARD_WORDS` (field names), :func:`card_key_text`, :func:`card_value_text` (a p-value below
0.001 as ``< 0.001``, a class path as the model type in words) and :func:`model_type`;
:func:`readable_card` gives the whole card as sections of sentences, lists and tables, which the
calculator's model-card page and ``card.md`` render.
"""

from __future__ import annotations

import json
import math
import re

__all__ = ["CARD_SECTIONS", "CARD_WORDS", "card_key_text", "card_markdown", "card_value_text", "complete_card",
           "model_type", "readable_card"]

_KNOWN = ("title", "intended_use", "not_intended_for", "cohorts", "acquisition", "external_auc", "calibration",
          "limitations")


def complete_card(card: dict, *, models: dict[str, dict], chosen: str, cutoffs: dict, excluded: list[str],
                  study: dict, sonorad_version: str) -> dict:
    """The card as written to ``card.json``: the study's entries plus the bundle's own."""
    out = json.loads(json.dumps(card, default=str))  # a JSON-able copy
    out.setdefault("title", f"sonorad model: {study.get('name', 'study')}")
    out["bundle"] = {
        "sonorad_version": sonorad_version,
        "chosen_model": chosen,
        "cutoff": cutoffs.get(chosen),
        "models": {name: {"class": info["class"], "cutoff": cutoffs.get(name),
                          "keeps_training_vectors": info["keeps_training_vectors"]}
                   for name, info in models.items()},
        "excluded_models": list(excluded),
        "models_keeping_training_vectors": [n for n, i in models.items() if i["keeps_training_vectors"]],
    }
    return out


# --- the card in words -------------------------------------------------------------------------------

#: Section titles, in the order a reader meets them.
CARD_SECTIONS = {
    "intended_use": "Intended use",
    "not_intended_for": "Not intended for",
    "cohorts": "Patients the model was developed and validated on",
    "design": "How the model is built",
    "chosen_model": "Chosen model",
    "external_auc": "External validation: how well the model separates patients (AUC, 95% CI)",
    "calibration": "Calibration: do the predicted risks match what was observed?",
    "acquisition": "Acquisition of the training images",
    "limitations": "Limitations",
    "bundle": "Models in this bundle",
}

#: Field names of ``card.json`` in words.
CARD_WORDS = {
    "cohort": "cohort",
    "citl": "calibration-in-the-large (ideal 0; above 0: the predicted risks are too low on average, below 0: "
            "too high)",
    "intercept": "calibration intercept (ideal 0)",
    "slope": "calibration slope (ideal 1; below 1: the predicted risks are too extreme, above 1: too moderate)",
    "brier": "Brier score (mean squared error of the predicted risks; lower is better)",
    "eavg": "average absolute calibration error (Eavg)",
    "emax": "largest absolute calibration error (Emax)",
    "e90": "90th percentile of the absolute calibration error (E90)",
    "hl_p": "Hosmer-Lemeshow test p-value (a small value: the predicted risks do not fit the observed rates)",
    "auc": "AUC",
    "low": "lower 95% confidence limit",
    "high": "upper 95% confidence limit",
    "model": "model",
    "cases": "cases",
    "positives": "positive cases",
    "n": "cases",
    "events": "positive cases",
    "centers": "centers",
    "sonorad_version": "sonorad version",
    "chosen_model": "chosen model",
    "cutoff": "cut-off (a probability at or above it: high-risk group)",
    "models": "models",
    "class": "model type",
    "keeps_training_vectors": "keeps training patients' feature values",
    "excluded_models": "models fitted but left out of the bundle",
    "models_keeping_training_vectors": "models that keep training patients' feature values",
}

#: Designs (``card["design"]``) in words.
DESIGN_WORDS = {
    "score_fusion": "score fusion: a Rad-score from the radiomics features and a DL-score from the deep-learning "
                    "features, combined with the clinical and ultrasound variables",
    "radiomics_nomogram": "radiomics nomogram: a Rad-score from the radiomics features, combined with the clinical "
                          "and ultrasound variables in a logistic regression",
    "feature_families": "feature families: models on the ultrasound variables, the radiomics features, the "
                        "deep-learning features and their combinations",
}

#: Model-name parts (``family/model``, score columns) and estimator classes in words.
_MODEL_WORDS = {
    "rad_score": "Rad-score alone (a weighted sum of radiomics features)",
    "dl_score": "DL-score alone (a weighted sum of deep-learning features)",
    "clinical_reference": "Clinical reference: logistic regression on the clinical and ultrasound variables alone",
    "us": "ultrasound variables", "radiomics": "radiomics features", "dl": "deep-learning features",
    "radiomics_dl": "radiomics and deep-learning features",
    "combined": "radiomics and deep-learning features with the ultrasound variables",
    "rad_clin": "Rad-score with the clinical variables", "stack": "scores",
}
_CLASS_WORDS = {
    "LogisticRegression": "Logistic regression", "SVC": "Support vector machine",
    "KNeighborsClassifier": "k-nearest neighbours", "RandomForestClassifier": "Random forest",
    "ExtraTreesClassifier": "Extra trees", "XGBClassifier": "XGBoost", "LGBMClassifier": "LightGBM",
    "MLPClassifier": "Multilayer perceptron", "AdaBoostClassifier": "AdaBoost",
    "GradientBoostingClassifier": "Gradient boosting", "GaussianNB": "Gaussian naive Bayes",
    "DecisionTreeClassifier": "Decision tree", "ScoreStack": "Model on scores", "ColumnModel": "Score",
    "FeatureBlocks": "Model on feature blocks", "Pipeline": "Model",
}
_SNAKE = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")


def _zoo_label(part: str) -> str | None:
    from sonorad.models import MODEL_ZOO

    spec = MODEL_ZOO.get(part)
    return None if spec is None else spec.label


def model_type(name: str, class_path: str | None = None) -> str:
    """What kind of model ``name`` is, in words (never a class path).

    Examples
    --------
    >>> model_type("logistic_regression", "sonorad.designs.base.ScoreStack")
    'Logistic regression'
    >>> model_type("radiomics/knn", "sklearn.pipeline.Pipeline")
    'k-nearest neighbours on the radiomics features'
    >>> model_type("mine", "pkg.module.LogisticRegression")
    'Logistic regression'
    """
    parts = str(name).split("/")
    last, family = parts[-1], parts[:-1]
    words = _MODEL_WORDS.get(last) or _zoo_label(last)
    if words is None and last.startswith("dl_score_"):
        words = f"DL-score of the {last[len('dl_score_'):]} network alone"
    if words is None:
        short = str(class_path or "").rsplit(".", 1)[-1]
        spaced = re.sub(r"(?<!^)(?=[A-Z])", " ", short)
        words = _CLASS_WORDS.get(short) or (spaced[:1] + spaced[1:].lower() if short else "Model")
    if family:
        words += " on the " + " / ".join(_MODEL_WORDS.get(f, f.replace("_", " ")) for f in family)
    return words


def card_key_text(key) -> str:
    """A ``card.json`` field name in words: :data:`CARD_WORDS`, else a snake-case name with spaces;
    anything else (a model or center name) as it is."""
    text = str(key)
    if text in CARD_WORDS:
        return CARD_WORDS[text]
    return text.replace("_", " ") if _SNAKE.fullmatch(text) else text


def _is_p_value(key) -> bool:
    key = str(key)
    return key in ("p", "p_value", "pvalue") or key.endswith(("_p", "_p_value"))


def card_value_text(key, value) -> str:
    """A scalar card value in words, for the field ``key``.

    A p-value below 0.001 is ``< 0.001``; a model's class path is its type in words; a cut-off has 4
    decimals, other numbers 3; booleans are yes / no; a missing value is ``not available``.

    Examples
    --------
    >>> card_value_text("hl_p", 0.0000312), card_value_text("slope", 1.13841), card_value_text("cutoff", 0.317067)
    ('< 0.001', '1.138', '0.3171')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "not available"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and _is_p_value(key):
        return "< 0.001" if value < 0.001 else f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:.4f}" if str(key) == "cutoff" else f"{value:.3f}"
    if str(key) == "class":
        return model_type("", str(value))
    if str(key) in ("chosen_model", "model"):
        return f"{model_type(str(value))} ({value})"
    if str(key) == "design":
        return DESIGN_WORDS.get(str(value), str(value).replace("_", " "))
    return str(value)


def _auc_sentence(auc) -> str:
    if not isinstance(auc, dict) or "auc" not in auc:
        return card_value_text("external_auc", auc)
    ci = (f" (95% CI {card_value_text('auc', auc['low'])} to {card_value_text('auc', auc['high'])})"
          if "low" in auc and "high" in auc else "")
    where = f" on the {auc['cohort']} cohort" if "cohort" in auc else ""
    model = f", {card_value_text('model', auc['model'])}" if "model" in auc else ""
    return (f"AUC {card_value_text('auc', auc['auc'])}{ci}{where}{model}. The AUC is the chance that the model "
            "gives a random patient with the outcome a higher risk than a random patient without it "
            "(0.5: no better than chance, 1: always).")


def _label(key) -> str:
    """A field name in words, as a label: its first letter capitalised."""
    text = card_key_text(key)
    return text[:1].upper() + text[1:]


def _table(records: list[dict]) -> dict:
    keys = list(dict.fromkeys(k for r in records for k in r))
    return {"table": [_label(k) for k in keys],
            "rows": [[card_value_text(k, r.get(k)) if k in r else "" for k in keys] for r in records]}


def _block(key, value):
    """One card value as a sentence (str), a list of sentences, a table or (label, value) pairs."""
    if isinstance(value, dict):
        return {"pairs": [(_label(k), _block(k, v)) for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, dict) for v in value):
            return _table(list(value))
        return [card_value_text(key, v) if not isinstance(v, (dict, list, tuple)) else _block(key, v)
                for v in value] or "none"
    return card_value_text(key, value)


def _bundle_blocks(b: dict) -> list:
    models = b.get("models") or {}
    chosen = b.get("chosen_model")
    blocks = [f"Chosen model: {card_value_text('chosen_model', chosen)}; cut-off "
              f"{card_value_text('cutoff', b.get('cutoff'))}: a probability at or above it puts a patient in the "
              "high-risk group."]
    blocks.append({"table": ["Model", "Type", "Cut-off", "Keeps training patients' feature values"],
                   "rows": [[name, model_type(name, info.get("class")), card_value_text("cutoff", info.get("cutoff")),
                             card_value_text("keeps_training_vectors", bool(info.get("keeps_training_vectors")))]
                            for name, info in models.items()]})
    kept = b.get("models_keeping_training_vectors") or []
    if kept:
        blocks.append(f"Models that keep training patients' feature values by their nature: {', '.join(kept)} "
                      "(k-nearest neighbours keeps every training patient's predictors, a support vector machine "
                      "its support vectors).")
    if b.get("excluded_models"):
        blocks.append(f"Models fitted but left out of the bundle: {', '.join(b['excluded_models'])}.")
    blocks.append("The bundle holds no patient identifier and no training patient's row, only summaries of the "
                  "training cohort (quantiles, ranges, categories seen) and averages of at least 5 patients.")
    if b.get("sonorad_version"):
        blocks.append(f"Written by sonorad {b['sonorad_version']}.")
    return blocks


def readable_card(card: dict) -> list[dict]:
    """The card as a person reads it: sections of sentences, lists and tables, with every key in words.

    Parameters
    ----------
    card : dict
        ``card.json``.

    Returns
    -------
    list of dict
        One per section, in the order of :data:`CARD_SECTIONS` then any other entry: ``key``,
        ``title`` and ``blocks``, a list whose items are a sentence (str), a list of sentences,
        ``{"table": header, "rows": rows}`` (text cells) or ``{"pairs": [(label, block), ...]}``.
        The ``title`` entry is not a section.
    """
    card = json.loads(json.dumps(card, default=str))
    order = [k for k in CARD_SECTIONS if k in card] + [k for k in card if k not in CARD_SECTIONS and k != "title"]
    sections = []
    for key in order:
        value = card[key]
        if key == "external_auc":
            blocks = [_auc_sentence(value)]
        elif key == "calibration" and isinstance(value, dict):
            blocks = [{"pairs": [(_label(k), card_value_text(k, v)) for k, v in value.items()]}]
        elif key == "acquisition":
            blocks = [_acquisition_block(value)]
        elif key == "bundle" and isinstance(value, dict):
            blocks = _bundle_blocks(value)
        elif key in ("chosen_model", "design"):
            blocks = [card_value_text(key, value)]
        else:
            blocks = [_block(key, value)]
        title = CARD_SECTIONS.get(key) or _label(key)
        sections.append({"key": key, "title": title, "blocks": blocks})
    return sections


def _acquisition_block(records):
    from sonorad.report.acquisition import acquisition_display

    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return _block("acquisition", records)
    shown = acquisition_display(records)
    return {"table": ["Center", *map(str, shown.columns)],
            "rows": [[str(c), *map(str, row)] for c, row in zip(shown.index, shown.itertuples(index=False))]}


def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cohort_lines(cohorts) -> list[str]:
    if isinstance(cohorts, dict):
        cohorts = [{"cohort": k, **(v if isinstance(v, dict) else {"n": v})} for k, v in cohorts.items()]
    if not isinstance(cohorts, list) or not cohorts:
        return [str(cohorts)]
    keys = list(dict.fromkeys(k for c in cohorts for k in c))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(c.get(k, "")) for k in keys) + " |" for c in cohorts]
    return lines


def _acquisition_lines(records) -> list[str]:
    """The training centers' acquisition (records of ``acquisition_table``) as a markdown table."""
    from sonorad.report.acquisition import acquisition_display

    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return [str(records)]
    shown = acquisition_display(records)

    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| Center | " + " | ".join(shown.columns) + " |", "|" + "---|" * (len(shown.columns) + 1)]
    lines += ["| " + " | ".join(cell(v) for v in (center, *row)) + " |"
              for center, row in zip(shown.index, shown.itertuples(index=False))]
    return lines


def _auc_text(auc) -> str:
    if isinstance(auc, dict) and "auc" in auc:
        ci = f" (95% CI {_fmt(auc['low'])}-{_fmt(auc['high'])})" if "low" in auc and "high" in auc else ""
        where = f" on {auc['cohort']}" if "cohort" in auc else ""
        model = f", {auc['model']}" if "model" in auc else ""
        return f"AUC {_fmt(auc['auc'])}{ci}{where}{model}"
    return str(auc)


def _mapping_lines(value) -> list[str]:
    if isinstance(value, dict):
        return [f"- {k}: {_fmt(v)}" for k, v in value.items()]
    if isinstance(value, list):
        return [f"- {v}" for v in value]
    return [str(value)]


def card_markdown(card: dict) -> str:
    """``card.md``: the card as a short readable document."""
    b = card["bundle"]
    lines = [f"# {card['title']}", ""]
    if card.get("intended_use"):
        lines += ["## Intended use", "", str(card["intended_use"]), ""]
    if card.get("not_intended_for"):
        lines += ["## Not intended for", "", *_mapping_lines(card["not_intended_for"]), ""]
    if card.get("cohorts"):
        lines += ["## Cohorts", "", *_cohort_lines(card["cohorts"]), ""]
    if card.get("acquisition"):
        lines += ["## Acquisition of the training data", "",
                  "Per training center: image format, pixel spacing (mean of row and column spacing; range and "
                  "median) and where it came from, image size in pixels, bit depth and scanner.", "",
                  *_acquisition_lines(card["acquisition"]), ""]
    if card.get("external_auc") is not None:
        lines += ["## External validation", "", _auc_text(card["external_auc"]), ""]
    if card.get("calibration") is not None:
        calibration = card["calibration"]
        lines += ["## Calibration", "",
                  *([f"- {_label(k)}: {card_value_text(k, v)}" for k, v in calibration.items()]
                    if isinstance(calibration, dict) else _mapping_lines(calibration)), ""]
    lines += ["## Models in this bundle", "",
              f"Chosen model: **{b['chosen_model']}**, cut-off {_fmt(b['cutoff'], 4) if b['cutoff'] is not None else 'none'} "
              "(probability at or above it: high risk group).", "",
              "| model | type | cut-off | keeps training feature vectors |", "|---|---|---|---|"]
    for name, info in b["models"].items():
        cut = _fmt(info["cutoff"], 4) if info["cutoff"] is not None else ""
        lines.append(f"| {name} | {model_type(name, info['class'])} | {cut} | "
                     f"{'yes' if info['keeps_training_vectors'] else 'no'} |")
    lines.append("")
    kept = b["models_keeping_training_vectors"]
    lines += ["## Training data in this bundle", "",
              "The bundle holds no case id and no training row; it keeps aggregate summaries of the training "
              "cohort (feature quantiles, variable ranges, category levels seen, ROI-size quantiles) and SHAP "
              "background centroids, each the mean of at least 5 training cases."]
    if kept:
        lines += ["", f"Models that keep training feature vectors by their nature: {', '.join(kept)} "
                      "(k-NN keeps every training case's predictors, an SVM keeps its support vectors). "
                      "Leave them out of the bundle (exclude=) when the bundle leaves the hospital."]
    if b["excluded_models"]:
        lines += ["", f"Models fitted but left out of the bundle: {', '.join(b['excluded_models'])}."]
    lines.append("")
    if card.get("limitations"):
        lines += ["## Limitations", "", *_mapping_lines(card["limitations"]), ""]
    extra = {k: v for k, v in card.items() if k not in _KNOWN and k != "bundle"}
    if extra:
        lines += ["## Other", "", *[f"- {_label(k)}: " + (card_value_text(k, v) if not isinstance(v, (dict, list))
                                                          else json.dumps(v, default=str))
                                    for k, v in extra.items()], ""]
    lines.append(f"Written by sonorad {b['sonorad_version']}.")
    return "\n".join(lines) + "\n"
