"""Proposing lesion masks from boxes: one image (:func:`propose_mask`) or a cohort table (:func:`segment_cases`).

Every proposal comes with a confidence and flags, so that an implausible mask is never used silently:

- ``confidence``: the soft Dice between the network's probability map and the final mask (1 when
  every pixel is decided with certainty, lower when the map is diffuse; 0 for an empty mask);
- flags (a proposal with any flag should be looked at before use):

  - ``empty``: fewer than :data:`MIN_LESION_PIXELS` lesion pixels: no lesion-like region found in the box;
  - ``box_edge_all_round``: the mask covers at least half of each of the box's four sides: it is
    the box rather than a lesion outline, or the lesion is larger than the box;
  - ``several_blobs``: the network found more than one region (only the largest is kept);
  - ``low_confidence``: confidence under :data:`LOW_CONFIDENCE`;
  - ``low_contrast``: the mask's mean intensity differs from that of the ring around it by less than
    :data:`MIN_CONTRAST` standard deviations of the crop: no lesion-like region stands out.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sonorad.errors import FAILURE_COLUMNS, CaseError
from sonorad.imaging.boxes import Box, box_from_mask, check_box, format_box, parse_box
from sonorad.segment.data import crop_batch, crop_window, paste_back, to_unit_gray, window_pixels
from sonorad.segment.metrics import dice_score, hd95

__all__ = ["FLAGS", "LOW_CONFIDENCE", "MIN_CONTRAST", "MIN_LESION_PIXELS", "Proposal", "as_gray", "propose_mask", "segment_cases",
           "SegmentationResult"]

FLAGS = ("empty", "box_edge_all_round", "several_blobs", "low_confidence", "low_contrast")
#: Fewer lesion pixels than this is an empty proposal (and a smaller region is a speck, not a second lesion).
MIN_LESION_PIXELS = 10
#: Confidence under which a proposal is flagged ``low_confidence``.
LOW_CONFIDENCE = 0.8
#: Smallest |mean inside - mean of the surrounding ring| / sd of the crop for a lesion-like region.
MIN_CONTRAST = 0.25


@dataclass
class Proposal:
    """One proposed lesion mask: ``mask`` (bool, H x W), ``confidence`` in [0, 1], ``flags`` (subset of FLAGS)."""

    mask: np.ndarray = field(repr=False)
    confidence: float
    flags: list[str]

    def __iter__(self):  # mask, confidence, flags = propose_mask(...)
        return iter((self.mask, self.confidence, self.flags))


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return mask, 0
    sizes = np.bincount(labels.ravel())[1:]
    # Specks (under MIN_LESION_PIXELS, or 5 % of the largest region) are noise, not a second lesion.
    real = int(((sizes >= MIN_LESION_PIXELS) & (sizes >= 0.05 * sizes.max())).sum())
    return labels == (int(np.argmax(sizes)) + 1), real


def _edge_all_round(mask: np.ndarray, box: Box) -> bool:
    h, w = mask.shape
    x0, y0, x1, y1 = box
    c0, c1 = min(max(int(np.floor(x0)), 0), w - 1), min(max(int(np.ceil(x1)) - 1, 0), w - 1)
    r0, r1 = min(max(int(np.floor(y0)), 0), h - 1), min(max(int(np.ceil(y1)) - 1, 0), h - 1)
    sides = [mask[r0, c0 : c1 + 1], mask[r1, c0 : c1 + 1], mask[r0 : r1 + 1, c0], mask[r0 : r1 + 1, c1]]
    return all(side.size and side.mean() >= 0.5 for side in sides)


def _contrast(gray: np.ndarray, mask: np.ndarray, window: Box) -> float:
    from scipy import ndimage

    r0, r1, c0, c1 = window_pixels(window, gray.shape)
    crop, inside = gray[r0:r1, c0:c1], mask[r0:r1, c0:c1]
    ring = ndimage.binary_dilation(inside, iterations=max(2, int(0.1 * max(inside.shape)))) & ~inside
    if not inside.any() or not ring.any():
        return float("nan")
    sd = float(crop.std())
    return 0.0 if sd == 0 else abs(float(crop[inside].mean()) - float(crop[ring].mean())) / sd


def as_gray(image) -> np.ndarray:
    """Gray pixels in [0, 1] (float32, H x W) of an image array or UltrasoundImage (RGB(A) converted)."""
    from sonorad.imaging import rgb_to_gray

    pixels = getattr(image, "pixels", image)
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        pixels = rgb_to_gray(pixels[..., :3])
    if pixels.ndim != 2:
        raise ValueError(f"image must be 2D gray (H, W) or RGB (H, W, 3), got shape {pixels.shape}")
    return to_unit_gray(pixels)


def propose_mask(segmenter, image, box: Box, *, case_id=None) -> Proposal:
    """Propose a lesion mask inside ``box`` of one in-memory image.

    Parameters
    ----------
    segmenter : Segmenter
        From :func:`sonorad.segment.io.load_segmenter` or :func:`sonorad.segment.train.train_segmenter`.
    image : ndarray or UltrasoundImage
        Gray (H, W) or RGB(A) (H, W, 3|4) pixels, any range.
    box : tuple of 4 float
        ``(x0, y0, x1, y1)`` in pixels (see :mod:`sonorad.imaging.boxes`).
    case_id : str, optional
        Named in errors.

    Returns
    -------
    Proposal
        Unpacks as ``mask, confidence, flags``; ``mask`` has the image's shape. An empty mask is
        returned only with the ``empty`` flag.

    Raises
    ------
    CaseError
        A box outside the image, degenerate, or smaller than ``MIN_BOX_SIDE`` pixels.
    """
    gray = as_gray(image)
    box = check_box(tuple(float(v) for v in box), gray.shape, case_id)
    window = crop_window(box, segmenter.margin)
    x = crop_batch([gray], [window], segmenter.image_size)
    prob_crop = segmenter.probabilities(x)[0, 0].numpy()
    prob = paste_back(prob_crop, window, gray.shape)
    raw = prob > segmenter.threshold
    mask, n_regions = _components(raw)
    flags = []
    if int(mask.sum()) < MIN_LESION_PIXELS:
        return Proposal(np.zeros(gray.shape, dtype=bool), 0.0, ["empty"])
    if _edge_all_round(mask, box):
        flags.append("box_edge_all_round")
    if n_regions > 1:
        flags.append("several_blobs")
    confidence = float(2.0 * (prob * mask).sum() / (prob.sum() + mask.sum()))
    if confidence < LOW_CONFIDENCE:
        flags.append("low_confidence")
    contrast = _contrast(gray, mask, window)
    if not contrast >= MIN_CONTRAST:
        flags.append("low_contrast")
    return Proposal(mask, confidence, flags)


#: Columns of the per-case table (``segmentation.csv``).
CASE_COLUMNS = ["case_id", "status", "box", "box_source", "confidence", "flags", "lesion_pixels",
                "dice_vs_mask", "hd95_vs_mask_px", "mask_file", "error", "fix"]
_BOX_SOURCES = ("auto", "box", "mask")


@dataclass
class SegmentationResult:
    """What :func:`segment_cases` wrote.

    Attributes
    ----------
    cases : DataFrame
        The new cohort table: the input's rows whose proposed mask is not empty, ``mask`` pointing to
        the proposed mask (relative to the output folder, where the table is written), ``mask_manual`` to the original one when there was one,
        ``box`` the box used.
    per_case : DataFrame
        One row per input case (:data:`CASE_COLUMNS`): ``status`` is ``ok``, ``flagged`` or ``failed``.
    failures : DataFrame
        Cases without a usable mask (``case_id, stage, error, fix``).
    paths : dict
        ``cases``, ``per_case``, ``failures``: the files written.
    """

    cases: pd.DataFrame
    per_case: pd.DataFrame
    failures: pd.DataFrame
    paths: dict

    def summary(self) -> str:
        status = self.per_case["status"].value_counts()
        line = (f"{len(self.per_case)} case(s): {status.get('ok', 0)} ok, {status.get('flagged', 0)} flagged, "
                f"{status.get('failed', 0)} failed")
        dice = pd.to_numeric(self.per_case["dice_vs_mask"], errors="coerce").dropna()
        if len(dice):
            q1, med, q3 = np.percentile(dice, [25, 50, 75])
            line += f"; Dice vs the existing masks: median {med:.3f} (IQR {q1:.3f}-{q3:.3f}, n={len(dice)})"
        return line


def _has(row, column) -> bool:
    cell = row.get(column)
    return cell is not None and not (isinstance(cell, float) and np.isnan(cell)) and str(cell).strip() != ""


def _case_box(row, gray_shape, source: str, manual, case_id) -> tuple[Box, str]:
    if source in ("auto", "box") and _has(row, "box"):
        return parse_box(row["box"], case_id), "box"
    if source == "box":
        raise CaseError(case_id, "the 'box' cell is empty", "give the box as x0,y0,x1,y1 in pixels")
    if manual is None:
        raise CaseError(case_id, "neither a box nor a mask to derive one from",
                        "give the lesion's box in a 'box' column as x0,y0,x1,y1 in pixels")
    return box_from_mask(manual), "mask"


def _manual_mask(row, case_id, frame):
    from sonorad.imaging import load_roi

    if not _has(row, "mask"):
        return None
    return load_roi(row["image"], row["mask"], case_id=case_id, frame=frame, lesions="union")[1]


def _safe_name(case_id: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", case_id).strip("._") or "case"


def _one_case(segmenter, row, source: str, masks_dir: Path) -> dict:
    from PIL import Image

    from sonorad.imaging import ImageReadError, read_image

    case_id = str(row["case_id"])
    frame = int(row["frame"]) if _has(row, "frame") else None
    try:
        image = read_image(row["image"], frame=frame)
    except ImageReadError as err:
        raise CaseError(case_id, f"image {row['image']}: {err}", "check the image file") from err
    needs_mask = source == "mask" or (source == "auto" and not _has(row, "box"))
    manual = _manual_mask(row, case_id, frame) if (needs_mask or _has(row, "mask")) else None
    box, used = _case_box(row, image.shape, source, manual, case_id)
    proposal = propose_mask(segmenter, image, box, case_id=case_id)
    record = {"case_id": case_id, "box": format_box(box), "box_source": used,
              "confidence": round(proposal.confidence, 4), "flags": ";".join(proposal.flags),
              "lesion_pixels": int(proposal.mask.sum()), "status": "flagged" if proposal.flags else "ok"}
    if manual is not None and manual.shape == proposal.mask.shape:
        record["dice_vs_mask"] = round(dice_score(proposal.mask, manual), 4)
        record["hd95_vs_mask_px"] = round(hd95(proposal.mask, manual), 3)
    if "empty" in proposal.flags:
        record.update(error="no lesion-like region found in the box: the proposed mask is empty",
                      fix="check the box (it should enclose the lesion) or draw the ROI by hand")
        return record
    name = f"{_safe_name(case_id)}_auto.png"
    Image.fromarray(proposal.mask.astype(np.uint8) * 255).save(masks_dir / name)
    record["mask_file"] = f"{masks_dir.name}/{name}"  # relative to the output folder, as cases.csv resolves it
    return record


def segment_cases(segmenter, cases, out, *, boxes: str = "auto", progress: bool = False) -> SegmentationResult:
    """Propose a mask for every case of a cohort table and write a new table pointing to them.

    Parameters
    ----------
    segmenter : Segmenter
    cases : str, Path or DataFrame
        A cases.csv (read with :func:`sonorad.cohort.read_cases`, labels optional) or its table.
        ``image`` is required; each case needs a ``box`` cell or a ``mask`` to derive the box from.
    out : str or Path
        Output folder: ``masks/<case_id>_auto.png``, ``cases.csv``, ``segmentation.csv``, ``failures.csv``.
    boxes : {"auto", "box", "mask"}
        Where boxes come from: ``"auto"`` the ``box`` cell when filled, else the mask's tight box;
        ``"box"`` only the ``box`` column; ``"mask"`` always the mask's box (to measure agreement:
        Dice and HD95 against the mask are reported whenever a mask is given).
    progress : bool
        A line every 25 cases on stderr.

    Returns
    -------
    SegmentationResult
        A case that fails (bad box, unreadable image) is recorded with its error and fix, and the
        others go on; an empty proposal is flagged and left out of the new table.
    """
    from sonorad.cohort import read_cases
    from sonorad.errors import ConfigError
    from sonorad.provenance import atomic_write

    if boxes not in _BOX_SOURCES:
        raise ConfigError(f"boxes must be one of {', '.join(_BOX_SOURCES)}, got {boxes!r}")
    table = cases if isinstance(cases, pd.DataFrame) else read_cases(Path(cases), require_label=False)
    out = Path(out)
    masks_dir = out / "masks"
    masks_dir.mkdir(parents=True, exist_ok=True)
    records, failures = [], []
    for k, (_, row) in enumerate(table.iterrows(), start=1):
        try:
            record = _one_case(segmenter, row, boxes, masks_dir)
        except CaseError as err:
            record = {"case_id": str(row["case_id"]), "status": "failed", "error": err.problem.message,
                      "fix": err.problem.fix}
        records.append(record)
        if record.get("error"):
            failures.append({"case_id": record["case_id"], "stage": "segment", "error": record["error"],
                             "fix": record.get("fix", "")})
        if progress and (k % 25 == 0 or k == len(table)):
            print(f"sonorad segment predict: {k}/{len(table)} cases", file=sys.stderr, flush=True)
    per_case = pd.DataFrame(records).reindex(columns=CASE_COLUMNS)
    written = per_case.dropna(subset=["mask_file"]).set_index("case_id")
    new = table[table["case_id"].astype(str).isin(written.index)].copy()
    if "mask" in new.columns:
        new["mask_manual"] = new["mask"]
    new["mask"] = new["case_id"].astype(str).map(written["mask_file"])
    new["box"] = new["case_id"].astype(str).map(written["box"])
    failures = pd.DataFrame(failures, columns=FAILURE_COLUMNS)
    paths = {"cases": out / "cases.csv", "per_case": out / "segmentation.csv", "failures": out / "failures.csv"}
    atomic_write(paths["cases"], lambda p: new.to_csv(p, index=False))
    atomic_write(paths["per_case"], lambda p: per_case.to_csv(p, index=False))
    atomic_write(paths["failures"], lambda p: failures.to_csv(p, index=False))
    return SegmentationResult(new.reset_index(drop=True), per_case, failures, paths)
