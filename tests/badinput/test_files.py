"""Bad image and mask files through `sonorad validate` and `sonorad extract`.

One cohort holds good cases and one case per defect. `validate` must list every file problem at
once, by case; `extract` (run as a real subprocess, as a user runs it) must finish with exit code 0,
write the good cases' features, and give each bad case a row in failures.csv saying what is wrong
and what to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
GOOD = ["good0", "good1", "good2", "good3"]


def _sonorad(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sonorad", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


# --- defects visible without decoding: `validate` ---------------------------------------------------

def _file_defects(c) -> dict[str, tuple[str, str]]:
    """Plant the file defects `validate` finds; return case -> (text of the message, text of the fix)."""
    from PIL import Image

    c.add("no_image", image=False)
    c.add("no_mask", mask=False)
    c.add("empty_file", image=False)
    c.path("empty_file.png").write_bytes(b"")
    c.add("folder", image=False, image_name="folder.png")
    c.path("folder.png").mkdir()
    c.add("garbage", image=False)
    c.path("garbage.png").write_bytes(b"this is not an image at all")
    c.add("gif", image=False, image_name="gif.gif")
    Image.fromarray(c.ultrasound_image(0)).save(c.path("gif.gif"))
    c.add("bomb", image=False)
    c.png_claiming_size(c.path("bomb.png"), 30000, 30000)
    c.add("no_mask_cell", mask=False, mask_name="")
    c.rows[-1]["mask"] = ""
    return {
        "no_image": ("does not exist", "check the path"),
        "no_mask": ("mask file", "check the path"),
        "empty_file": ("is empty (0 bytes)", "re-export"),
        "folder": ("is a folder, not a file", "point the cell to the image file"),
        "garbage": ("content is not a valid PNG", "re-export the image"),
        "gif": ("unsupported image format '.gif'", "convert the file"),
        "bomb": ("too large to decode safely", "downsample or crop"),
        "no_mask_cell": ("missing mask", "fill in the 'mask' cell"),
    }


def test_validate_lists_every_file_problem_by_case(corpus, sonorad_cli):
    corpus.add_good(4)
    defects = _file_defects(corpus)
    rc, _, err = sonorad_cli("validate", corpus.write())
    assert rc == 2
    lines = err.splitlines()
    for case, (message, fix) in defects.items():
        line = next((ln for ln in lines if f"[case {case}," in ln), "")
        assert message in line and "Fix: " in line and fix in line.split("Fix: ")[1], f"{case}: {line!r}"
    assert not any(f"case {g}," in err for g in GOOD)
    assert "corrupt or truncated" not in next(ln for ln in lines if "[case bomb," in ln)


def test_mixed_bit_depths_are_named_at_validation(corpus, sonorad_cli):
    corpus.add_good(4)
    corpus.add("deep16", image=corpus.ultrasound_image(9).astype(np.uint16) * 257)
    rc, out, _ = sonorad_cli("validate", corpus.write())
    assert rc == 0
    assert "mix bit depths (8-bit: 4 cases; 16-bit: case deep16)" in out and "same bit depth" in out


# --- defects found when decoding: `extract` ---------------------------------------------------------

def _decode_defects(c) -> dict[str, tuple[str, str]]:
    """Plant the defects found at extraction; return case -> (text of the error, text of the fix)."""
    from PIL import Image

    mask = c.lesion_mask()
    c.add("size_mismatch", mask=mask[:40])
    c.add("transposed", image=c.ultrasound_image(3)[:, :40], mask=mask[:, :40].T.copy())
    c.add("empty_mask", mask=np.zeros_like(mask))
    one = np.zeros_like(mask)
    one[20, 20] = 255
    c.add("one_pixel", mask=one)
    tiny = np.zeros_like(mask)
    tiny[20:23, 20:23] = 255
    c.add("tiny_roi", mask=tiny)
    c.add("truncated", image=False)
    c.save_png(c.path("full.png"), c.ultrasound_image(5))
    c.path("truncated.png").write_bytes(c.path("full.png").read_bytes()[:200])
    c.add("pages", image=False, image_name="pages.tif")
    frames = [Image.fromarray(c.ultrasound_image(k)) for k in range(3)]
    frames[0].save(c.path("pages.tif"), save_all=True, append_images=frames[1:])
    c.add("frame_range", frame=4)
    c.add("whole_mask", mask=np.full_like(mask, 255))
    labels = np.zeros_like(mask)
    labels[5:15, 5:15] = 1
    labels[25:40, 25:40] = 3
    c.add("label_map", mask=labels)
    c.add("bomb", image=False)
    c.png_claiming_size(c.path("bomb.png"), 30000, 30000)
    c.add("float_range", image=False, image_name="float_range.tif")
    Image.fromarray(c.ultrasound_image(7).astype(np.float32) * 400.0).save(c.path("float_range.tif"))
    return {
        "size_mismatch": ("size mismatch", "saved at the image's full size"),
        "transposed": ("looks transposed", "saved at the image's full size"),
        "empty_mask": ("is empty: no lesion pixel", "draw the lesion"),
        "one_pixel": ("only 1 pixel", "cover the whole lesion"),
        "tiny_roi": ("PyRadiomics could not extract features", "minimumROISize"),
        "truncated": ("corrupt or truncated", "re-export"),
        "pages": ("holds 3 frames", "`frame` column"),
        "frame_range": ("frame 4 is out of range", "use a frame between 0 and 0"),
        "whole_mask": ("covers the whole image", "invert"),
        "label_map": ("several labels (1 (100 px), 3 (225 px))", "mask_label"),
        "bomb": ("too large to decode safely", "downsample or crop"),
        "float_range": ("bins of binWidth 5", "binCount"),
    }


def test_extract_records_each_bad_case_and_carries_on(corpus, tmp_path):
    corpus.add_good(4)
    defects = _decode_defects(corpus)
    two = corpus.lesion_mask()
    two[2:8, 2:8] = 255
    corpus.add("two_lesions", mask=two)  # extracted, with a warning naming the case
    corpus.add("sixteen", image=corpus.ultrasound_image(11).astype(np.uint16) * 257)
    csv = corpus.write()
    out = tmp_path / "features"
    done = _sonorad("extract", csv, "--out", out, "--params", corpus.params(), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    features = pd.read_parquet(out / "radiomics.parquet")
    assert sorted(features.index) == sorted(GOOD + ["sixteen", "two_lesions"])
    failures = pd.read_csv(out / "failures.csv").set_index("case_id")
    assert sorted(failures.index) == sorted(defects)
    for case, (message, fix) in defects.items():
        assert message in failures.at[case, "error"], (case, failures.at[case, "error"])
        assert fix in failures.at[case, "fix"], (case, failures.at[case, "fix"])
    assert "case two_lesions: " in done.stderr and "2 disjoint regions" in done.stderr
    assert f"{len(defects)} failed" in done.stdout


def test_bad_parameter_file_stops_extract_with_exit_2(corpus, tmp_path):
    corpus.add_good(2)
    params = corpus.params(params={"setting": {"binWidht": 5}})
    done = _sonorad("extract", corpus.write(), "--out", tmp_path / "f", "--params", params, cwd=tmp_path)
    assert done.returncode == 2
    assert "binWidht" in done.stderr and "Fix:" in done.stderr and "Traceback" not in done.stderr


def test_mask_file_removed_after_validation_is_a_failure_row(corpus, tmp_path):
    from sonorad.cohort import read_cases
    from sonorad.features.extract import extract_radiomics

    corpus.add_good(3)
    table = read_cases(corpus.write())
    os.remove(corpus.path("good1_mask.png"))
    features, failures = extract_radiomics(table, params=corpus.params(), progress=False)
    assert list(features.index) == ["good0", "good2"]
    assert failures["case_id"].tolist() == ["good1"] and "file not found" in failures["error"].iloc[0]


@pytest.mark.parametrize("order", ["good first", "bad first"])
def test_one_bad_case_never_hides_the_others(order, corpus):
    from sonorad.cohort import read_cases
    from sonorad.features.extract import extract_radiomics

    if order == "bad first":
        corpus.add("whole_mask", mask=np.full_like(corpus.lesion_mask(), 255))
    corpus.add_good(2)
    if order == "good first":
        corpus.add("whole_mask", mask=np.full_like(corpus.lesion_mask(), 255))
    features, failures = extract_radiomics(read_cases(corpus.write()), params=corpus.params(), progress=False)
    assert sorted(features.index) == ["good0", "good1"] and failures["case_id"].tolist() == ["whole_mask"]


def test_mask_label_column_chooses_the_lesion_in_a_label_map(corpus):
    from sonorad.cohort import read_cases
    from sonorad.features.extract import extract_radiomics

    labels = np.zeros_like(corpus.lesion_mask())
    labels[5:15, 5:15] = 1
    labels[25:40, 25:40] = 3
    corpus.add_good(2, mask_label="")
    corpus.add("label_map", mask=labels, mask_label=3)
    corpus.add("label_map_1", mask=labels, mask_label=1, image_name="label_map.png", mask_name="label_map_mask.png")
    table = read_cases(corpus.write())
    for _ in range(2):  # the second pass reads the cache: the label is part of the key
        features, failures = extract_radiomics(table, params=corpus.params(), cache=corpus.root / "cache",
                                               progress=False)
        assert failures.empty
        area = features["original_shape2D_PixelSurface"]
        assert area["label_map"] == 225 and area["label_map_1"] == 100


def test_extract_accepts_a_table_without_labels(corpus, tmp_path):
    corpus.add_good(2)
    csv = corpus.write(drop=("label",))
    done = _sonorad("extract", csv, "--out", tmp_path / "f", "--params", corpus.params(), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(pd.read_parquet(tmp_path / "f" / "radiomics.parquet").index) == ["good0", "good1"]
