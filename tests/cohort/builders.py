"""Tiny cohort tables written into a temporary folder, shared by the cohort tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sonorad.study import StudyConfig

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # a PNG signature is all the cheap check reads


def write_files(folder: Path, names) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PNG_BYTES)


def make_cohort(folder: Path, rows: list[dict], files: bool = True) -> Path:
    """Write cases.csv (and a dummy PNG for every image/mask path) into ``folder``."""
    table = pd.DataFrame(rows)
    if files:
        for column in ("image", "mask", "mask2"):
            if column in table:
                paths = [p for cell in table[column].dropna() for p in str(cell).split(";") if p]
                write_files(folder, [p for p in paths if not Path(p).is_absolute()])
    csv = folder / "cases.csv"
    table.to_csv(csv, index=False)
    return csv


def rows_of(n_patients=12, centers=("A", "B", "C"), images_per_patient=2, **extra) -> list[dict]:
    """Patients spread over centers, alternating labels, each with several images."""
    rows = []
    for p in range(n_patients):
        center = centers[p % len(centers)]
        for i in range(images_per_patient):
            row = {"case_id": f"c{p:02d}_{i}", "patient_id": f"p{p:02d}", "center": center,
                   "image": f"img/c{p:02d}_{i}.png", "mask": f"msk/c{p:02d}_{i}.png", "label": (p // 3) % 2}
            row.update({k: v[p] if isinstance(v, list) else v for k, v in extra.items()})
            rows.append(row)
    return rows


def study_of(**kw) -> StudyConfig:
    return StudyConfig.from_dict({"name": "t", **kw})


def messages(problems) -> str:
    return "\n".join(str(p) for p in problems)


def four_center_rows(negative_center="C"):
    rows = rows_of(n_patients=12, centers=("A", "B", "C", "D"), images_per_patient=1)
    for row in rows:
        if row["center"] == negative_center:
            row["label"] = 0
    return rows


def patient_parts(cohort) -> pd.Series:
    frame = pd.DataFrame({"patient": cohort.table["patient_id"], "part": cohort.split_labels()})
    per_patient = frame.groupby("patient")["part"].nunique()
    assert (per_patient == 1).all(), "a patient is in two parts"
    return frame.groupby("patient")["part"].first()
