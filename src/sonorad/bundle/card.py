"""The model card of a bundle: what the model is for, what it was validated on, what it keeps.

:func:`complete_card` adds to the study's card (intended use, cohorts, external AUC with CI,
calibration) what the bundle itself knows: the models it holds, the chosen model and its cut-off,
which models keep training feature vectors (k-NN, SVM), and which models were left out.
:func:`card_markdown` renders it as ``card.md``; an ``acquisition`` entry (the training centers'
:func:`sonorad.cohort.acquisition.acquisition_table` as records) is shown as a table of image
format, pixel spacing, image size, bit depth and scanner per center.
"""

from __future__ import annotations

import json

__all__ = ["complete_card", "card_markdown"]

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
        lines += ["## Calibration", "", *_mapping_lines(card["calibration"]), ""]
    lines += ["## Models in this bundle", "",
              f"Chosen model: **{b['chosen_model']}**, cut-off {_fmt(b['cutoff'], 4) if b['cutoff'] is not None else 'none'} "
              "(probability at or above it: high risk group).", "",
              "| model | class | cut-off | keeps training feature vectors |", "|---|---|---|---|"]
    for name, info in b["models"].items():
        cut = _fmt(info["cutoff"], 4) if info["cutoff"] is not None else ""
        lines.append(f"| {name} | {info['class']} | {cut} | {'yes' if info['keeps_training_vectors'] else 'no'} |")
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
        lines += ["## Other", "", *[f"- {k}: {json.dumps(v, default=str)}" for k, v in extra.items()], ""]
    lines.append(f"Written by sonorad {b['sonorad_version']}.")
    return "\n".join(lines) + "\n"
