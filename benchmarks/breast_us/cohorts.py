"""Build the real-data benchmark cohort tables from ../shared/data (BUS-BRA and BrEaST-Lesions-USG).

    python benchmarks/breast_us/cohorts.py

Writes, under benchmarks/_work/breast_us/ (gitignored scratch):

``external/cases.csv``
    One cohort: every BUS-BRA row (training; ``center`` = the scanner: GE-Logiq7, GE-Logiq5,
    Toshiba-Aplio300, U-Systems) and every BrEaST row (external validation; ``center`` = PL-Warsaw).
    Columns: case_id, patient_id, center, image, mask, label (0 benign / 1 malignant), birads,
    birads_fine.

    - ``birads``: coarse BI-RADS, numeric, the same coding in both cohorts: 2, 3, 4, 5
      (BrEaST 4a / 4b / 4c -> 4). The tables hold no BI-RADS 1 or 6 (BrEaST's BI-RADS 1 images are
      the 4 "normal" images that the shared copy leaves out); should one appear it is kept as the
      number 1 or 6 and the script prints a warning (a study declaring ``order: [2, 3, 4, 5]`` then
      rejects it, which is the point).
    - ``birads_fine``: BrEaST only, 4a -> 4.1, 4b -> 4.2, 4c -> 4.3, else the number; empty for
      BUS-BRA. A reference column, never a predictor (it is absent from BUS-BRA, so it cannot train).
    - ``image`` / ``mask``: absolute paths (this table lives away from the data).
    - ``patient_id``: the source ids already carry a dataset prefix (``busbra_<n>``,
      ``breast_<nnn>``); they are checked not to collide (prefixed with the dataset when they do).
      ``case_id`` is checked to be unique across both datasets.

``polish/cases.csv``
    BrEaST rows only, shaped like seed study 1 (clinical + US-semantic variables), center PL-Warsaw.
    Columns: case_id, patient_id, center, image, mask, label, age, tumor_edge, calcification, birads.

    - ``age``: numeric years; missing stays empty (41 cases).
    - ``tumor_edge``: from ``margin``. Values seen: ``circumscribed`` -> 0; every
      ``not circumscribed - <subtypes>`` value (indistinct, angular, microlobulated, spiculated and
      their ``&`` combinations, 13 distinct strings) -> 1. Any other value stops the script.
    - ``calcification``: from ``calcifications``. Values seen: ``no`` -> 0; ``in a mass`` -> 1,
      ``intraductal`` -> 1 (calcifications present); ``indefinable`` -> 0 (not recorded as present;
      2 cases). Any other value stops the script.
    - ``birads``: coarse 2 / 3 / 4 / 5 as above.

Cases whose image or mask is missing or unusable are kept: ``sonorad validate`` / ``extract``
report them by case id. A short summary (cases, patients, % malignant, per center) is printed for
each table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
BUS_BRA = DATA / "bus_bra"
BREAST = DATA / "breast_lesions_usg"
OUT = ROOT / "benchmarks" / "_work" / "breast_us"

BASE = ["case_id", "patient_id", "center", "image", "mask", "label"]
FINE = {"4a": 4.1, "4b": 4.2, "4c": 4.3}
CALCIFICATION = {"no": 0, "in a mass": 1, "intraductal": 1, "indefinable": 0}


def _absolute(folder: Path, column: pd.Series) -> pd.Series:
    """Paths relative to ``folder`` -> absolute strings (several masks are ``;``-separated)."""
    def one(cell):
        if pd.isna(cell) or str(cell).strip() == "":
            return cell
        return ";".join(str((folder / p.strip()).resolve()) for p in str(cell).split(";"))
    return column.map(one)


def _read(folder: Path) -> pd.DataFrame:
    table = pd.read_csv(folder / "cases.csv", dtype=str, keep_default_na=False, na_values=[""])
    missing = [c for c in BASE + ["birads"] if c not in table.columns]
    if missing:
        sys.exit(f"{folder / 'cases.csv'}: missing column(s) {missing}")
    table["image"] = _absolute(folder, table["image"])
    table["mask"] = _absolute(folder, table["mask"])
    table["label"] = pd.to_numeric(table["label"], errors="raise").astype(int)
    if set(table["label"]) - {0, 1}:
        sys.exit(f"{folder.name}: labels other than 0/1: {sorted(set(table['label']))}")
    return table


def _coarse_birads(values: pd.Series, dataset: str) -> pd.Series:
    text = values.astype("string").str.strip().str.lower()
    coarse = pd.to_numeric(text.str.replace(r"^4[abc]$", "4", regex=True), errors="coerce")
    bad = text[coarse.isna() & text.notna()]
    if len(bad):
        sys.exit(f"{dataset}: BI-RADS values not understood: {sorted(set(bad))}")
    odd = coarse[coarse.isin([0, 1, 6])]
    if len(odd):
        print(f"WARNING {dataset}: BI-RADS {sorted(set(odd))} in {len(odd)} case(s), kept as numbers")
    return coarse


def _fine_birads(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.lower()
    return text.map(lambda v: FINE.get(v, v) if pd.notna(v) else np.nan).astype(float)


def _tumor_edge(margin: pd.Series) -> pd.Series:
    text = margin.astype("string").str.strip().str.lower()
    known = text.eq("circumscribed") | text.str.startswith("not circumscribed")
    if (~known.fillna(False)).any():
        sys.exit(f"BrEaST: margin values not understood: {sorted(set(text[~known.fillna(False)].dropna()))}")
    return text.str.startswith("not circumscribed").astype(int)


def _calcification(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.lower()
    unknown = sorted(set(text.dropna()) - set(CALCIFICATION))
    if unknown or text.isna().any():
        sys.exit(f"BrEaST: calcifications values not understood: {unknown} (empty: {int(text.isna().sum())})")
    return text.map(CALCIFICATION).astype(int)


def _summary(name: str, table: pd.DataFrame) -> None:
    print(f"\n{name}: {len(table)} cases, {table['patient_id'].nunique()} patients, "
          f"{100 * table['label'].mean():.1f}% malignant")
    per = table.groupby("center", sort=False).agg(cases=("case_id", "size"), patients=("patient_id", "nunique"),
                                                  malignant=("label", "sum"))
    per["malignant_%"] = (100 * per["malignant"] / per["cases"]).round(1)
    print(per.to_string())
    if "birads" in table:
        print("birads x label:")
        print(pd.crosstab(table["birads"], table["label"]).to_string())


def main() -> None:
    bus = _read(BUS_BRA)
    breast = _read(BREAST)

    bus["birads_fine"] = np.nan
    breast["birads_fine"] = _fine_birads(breast["birads"])
    bus["birads"] = _coarse_birads(bus["birads"], "BUS-BRA")
    breast["birads"] = _coarse_birads(breast["birads"], "BrEaST")

    if set(bus["patient_id"]) & set(breast["patient_id"]):
        bus["patient_id"] = "busbra:" + bus["patient_id"]
        breast["patient_id"] = "breast:" + breast["patient_id"]
    columns = BASE + ["birads", "birads_fine"]
    external = pd.concat([bus[columns], breast[columns]], ignore_index=True)
    dup = external["case_id"][external["case_id"].duplicated(keep=False)]
    if len(dup):
        sys.exit(f"duplicate case_id across the datasets: {sorted(set(dup))[:10]}")
    shared = external.groupby("patient_id")["center"].nunique()
    if (shared > 1).any():
        sys.exit(f"patients under two centers: {list(shared[shared > 1].index[:10])}")

    polish = breast[BASE].copy()
    polish["age"] = pd.to_numeric(breast["age"], errors="raise")
    polish["tumor_edge"] = _tumor_edge(breast["margin"])
    polish["calcification"] = _calcification(breast["calcifications"])
    polish["birads"] = breast["birads"]

    for name, table in (("external", external), ("polish", polish)):
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        table.to_csv(folder / "cases.csv", index=False)
        _summary(f"{name}/cases.csv", table)
    print(f"\npolish: age missing in {int(polish['age'].isna().sum())} cases; "
          f"tumor_edge=1 in {int(polish['tumor_edge'].sum())}; calcification=1 in {int(polish['calcification'].sum())}")
    print(f"written under {OUT}")


if __name__ == "__main__":
    main()
