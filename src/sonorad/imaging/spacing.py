"""The pixel-spacing rule: what spacing each image is handed to PyRadiomics with.

A study decides once how pixel spacing is treated (``features.spacing`` in the study file), and the
same rule is applied by feature extraction, ``sonorad predict``, ``sonorad recalibrate`` and the
calculator (``sonorad serve``), because it travels with the PyRadiomics parameters (and so with the
model bundle's ``radiomics_params.yaml``) under the top-level key ``sonorad: {spacing: ...}``:

``resample``
    Every image is resampled by PyRadiomics (``setting: resampledPixelSpacing``) to one in-plane
    spacing ``spacing_mm`` (by default the training cohort's median), so shape and texture features are
    in millimetres for every center. Each image must have a spacing: from its file (DICOM, NIfTI,
    NRRD) or from the cases table's ``spacing_mm`` (PNG, JPEG, BMP, TIFF carry none); an image without
    one is refused with an error naming the case.
``pixels``
    Every spacing is ignored: each image goes to PyRadiomics at 1 x 1 (features in pixels), even when
    its file or ``spacing_mm`` gives one.
not chosen (no ``features.spacing``)
    Each image goes with its own spacing (the file's, ``spacing_mm``, or 1 x 1 when neither says);
    ``sonorad validate`` refuses a cohort whose centers mix spacings (see
    :mod:`sonorad.cohort.acquisition`).

PyRadiomics 3.0.1 resamples a 2D image natively: ``resampledPixelSpacing`` has one value per image
axis, ``[t, t]`` for a true 2D image and ``[t, t, 0]`` for the one-slice volume of ``force2D`` (0
keeps the slice axis as it is). It then also crops image and mask to the ROI's bounding box plus
``padDistance`` (5 pixels) before filtering, whatever ``preCrop`` says.

The header readers here (:func:`header_info`) read no pixels: DICOM with
``stop_before_pixels=True``, NIfTI / NRRD through SimpleITK's ``ReadImageInformation``, and the
Pillow formats (no spacing) through their header only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SPACING_RULES", "SPACING_KEY", "RESAMPLE_INTERPOLATOR", "SpacingRule", "rule_of", "with_rule",
           "pyradiomics_params", "radiomics_spacing", "has_spacing", "header_info", "file_spacing",
           "median_spacing"]

#: The values of ``features.spacing``.
SPACING_RULES = ("resample", "pixels")
#: The parameter-file key holding the rule (next to ``setting`` / ``imageType`` / ``featureClass``).
SPACING_KEY = "sonorad"
#: PyRadiomics' default interpolator for resampling (B-spline), written into the parameters.
RESAMPLE_INTERPOLATOR = "sitkBSpline"

_FIX_CHOOSE = "set `features.spacing: resample` (or `pixels`) in the study file"


@dataclass(frozen=True)
class SpacingRule:
    """A study's spacing decision.

    Attributes
    ----------
    mode : str or None
        ``"resample"``, ``"pixels"``, or ``None`` (not chosen: each image keeps its own spacing).
    spacing_mm : float or None
        The in-plane target spacing of ``resample`` (mm); ``None`` otherwise.
    """

    mode: str | None = None
    spacing_mm: float | None = None

    def __post_init__(self):
        if self.mode not in (None, *SPACING_RULES):
            raise ValueError(f"spacing rule {self.mode!r} is not one of {', '.join(SPACING_RULES)}")
        if self.mode == "resample":
            value = self.spacing_mm
            if value is None or isinstance(value, bool) or not (isinstance(value, (int, float))
                                                                and math.isfinite(value) and value > 0):
                raise ValueError(f"spacing: resample needs a positive spacing_mm, got {value!r}")
            object.__setattr__(self, "spacing_mm", float(value))
        elif self.spacing_mm is not None:
            raise ValueError(f"spacing_mm ({self.spacing_mm!r}) goes with spacing: resample only")

    @property
    def needs_spacing(self) -> bool:
        """Whether every image must come with a pixel spacing (``resample``)."""
        return self.mode == "resample"

    def as_dict(self) -> dict:
        """The rule as written in the parameters and the bundle (``{}`` when not chosen)."""
        if self.mode is None:
            return {}
        return {"spacing": self.mode, **({"spacing_mm": self.spacing_mm} if self.mode == "resample" else {})}

    def describe(self) -> str:
        """One phrase for logs and messages."""
        if self.mode == "resample":
            return f"every image resampled to {self.spacing_mm:g} x {self.spacing_mm:g} mm"
        if self.mode == "pixels":
            return "every image in pixels (spacing ignored)"
        return "each image at its own spacing (no study-wide rule)"


def rule_of(params: Mapping | None) -> SpacingRule:
    """The spacing rule recorded in PyRadiomics parameters (``SpacingRule()`` when none is)."""
    section = (params or {}).get(SPACING_KEY) or {}
    if not isinstance(section, Mapping):
        raise ValueError(f"the parameters' {SPACING_KEY!r} entry must be a mapping, got {section!r}")
    unknown = set(section) - {"spacing", "spacing_mm"}
    if unknown:
        raise ValueError(f"unknown key(s) under {SPACING_KEY!r}: {', '.join(sorted(map(str, unknown)))}; "
                         "allowed: spacing, spacing_mm")
    return SpacingRule(section.get("spacing"), section.get("spacing_mm"))


def with_rule(params: Mapping, rule: SpacingRule) -> dict:
    """PyRadiomics parameters carrying ``rule``: the ``sonorad`` entry, and for ``resample`` the
    ``resampledPixelSpacing`` (and B-spline interpolator unless one is set) PyRadiomics will use.

    Raises
    ------
    ValueError
        The parameter file already sets ``resampledPixelSpacing`` and the rule disagrees with it.
    """
    out = {k: v for k, v in dict(params).items() if k != SPACING_KEY}
    setting = dict(out.get("setting") or {})
    given = setting.get("resampledPixelSpacing")
    if rule.mode is None:
        return out
    wanted = _resampled(rule, setting) if rule.mode == "resample" else None
    if given is not None and (wanted is None or [float(v) for v in given] != wanted):
        raise ValueError(f"the PyRadiomics parameter file sets resampledPixelSpacing {list(given)}, which "
                         f"contradicts the study's spacing rule ({rule.describe()}); remove it from the parameter "
                         "file and choose the spacing with features.spacing / features.spacing_mm")
    if wanted is not None:
        setting["resampledPixelSpacing"] = wanted
        setting.setdefault("interpolator", RESAMPLE_INTERPOLATOR)
    out["setting"] = setting
    out[SPACING_KEY] = rule.as_dict()
    return out


def _resampled(rule: SpacingRule, setting: Mapping) -> list[float]:
    t = float(rule.spacing_mm)
    return [t, t, 0.0] if setting.get("force2D") else [t, t]


def pyradiomics_params(params: Mapping) -> dict:
    """The parameters PyRadiomics itself is given: without sonorad's ``sonorad`` entry."""
    return {k: v for k, v in dict(params).items() if k != SPACING_KEY}


def has_spacing(image) -> bool:
    """Whether an image's spacing is known (its file or ``spacing_mm`` gave one).

    ``meta["spacing_source"] == "none"`` (a PNG, JPEG, BMP or TIFF, or a DICOM without a calibrated
    spacing) means unknown; an image built in memory without that entry counts as known.
    """
    return (getattr(image, "meta", None) or {}).get("spacing_source") != "none"


def radiomics_spacing(rule: SpacingRule, image) -> tuple[float, float] | str:
    """The (row, col) spacing in mm an image goes to PyRadiomics with under ``rule``.

    Returns
    -------
    tuple of float or str
        The spacing; or, when ``rule`` needs a spacing the image does not have, the message saying so
        (the caller raises it, naming the case).
    """
    if rule.mode == "pixels":
        return (1.0, 1.0)
    if rule.mode == "resample" and not has_spacing(image):
        fmt = ((getattr(image, "meta", None) or {}).get("format") or "image").upper()
        return (f"the {fmt} file has no pixel spacing, and the study's spacing rule ({rule.describe()}) needs "
                "one")
    return tuple(float(s) for s in image.spacing)


def median_spacing(spacings) -> float | None:
    """The median in-plane pixel size (mm) of (row, col) spacings, each the mean of its two axes;
    ``None`` when none is given."""
    values = [0.5 * (float(r) + float(c)) for r, c in (s for s in spacings if s is not None)]
    return float(np.median(values)) if values else None


# ------------------------------------------------------------------------------------- headers
def header_info(path) -> dict:
    """What an image file's header says, without decoding its pixels.

    Returns
    -------
    dict
        ``format``; ``spacing`` ((row, col) mm, or ``None`` when the file has none); ``rows``,
        ``cols``, ``bit_depth`` (``None`` when the header does not say); ``manufacturer`` and
        ``model`` (DICOM ``Manufacturer`` / ``ManufacturerModelName``, else ``None``).

    Raises
    ------
    ImageReadError
        The file is missing or its format is not recognised.
    """
    from sonorad.imaging.formats import detect_format
    from sonorad.imaging.readers import probe_bit_depth

    path = Path(path)
    fmt = detect_format(path)
    info = {"format": fmt, "spacing": None, "rows": None, "cols": None, "bit_depth": None,
            "manufacturer": None, "model": None}
    if fmt == "dicom":
        info.update(_dicom_header(path))
    elif fmt in ("nifti", "nrrd"):
        info.update(_sitk_header(path))
    else:
        info.update(_pillow_header(path))
        info["bit_depth"] = probe_bit_depth(path)
    return info


def file_spacing(path) -> tuple[float, float] | None:
    """The (row, col) spacing in mm an image file records, or ``None`` (header read only)."""
    return header_info(path)["spacing"]


def _dicom_header(path: Path) -> dict:
    import pydicom

    from sonorad.imaging.dicom import _spacing

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
        spacing, source = _spacing(ds)
    except Exception:  # noqa: BLE001 - an unreadable header is reported by the reader at extraction
        return {}

    def text(keyword):
        value = ds.get(keyword)
        return str(value).strip() or None if value is not None else None

    def number(keyword):
        value = ds.get(keyword)
        return int(value) if value is not None else None

    return {"spacing": None if source == "none" else spacing, "rows": number("Rows"), "cols": number("Columns"),
            "bit_depth": number("BitsStored"), "manufacturer": text("Manufacturer"),
            "model": text("ManufacturerModelName")}


def _sitk_header(path: Path) -> dict:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return {}
    size, spacing = reader.GetSize(), reader.GetSpacing()
    dims = [i for i, n in enumerate(size) if n > 1][:2] if len(size) > 2 else [0, 1]
    if len(dims) < 2:
        dims = [0, 1]
    x, y = dims
    bits = {"8": 8, "16": 16, "32": 32, "64": 64}
    pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    depth = next((b for key, b in bits.items() if key in pixel), 8 if "8-bit" in pixel else None)
    return {"spacing": (float(spacing[y]), float(spacing[x])), "rows": int(size[y]), "cols": int(size[x]),
            "bit_depth": depth}


def _pillow_header(path: Path) -> dict:
    from PIL import Image

    try:
        with Image.open(path) as im:
            cols, rows = im.size
    except Exception:  # noqa: BLE001 - reported by the reader at extraction
        return {}
    return {"rows": int(rows), "cols": int(cols)}
