"""DICOM ultrasound images through pydicom.

Handled: MONOCHROME2; MONOCHROME1 (inverted so that bright is high); RGB; YBR_FULL and YBR_FULL_422
(converted to RGB by pydicom, native or JPEG-compressed); PALETTE COLOR (expanded through its lookup
table; a file without one is an error saying so); multi-frame cine loops (one ``frame`` chosen); a
Modality LUT rescale when present. Other colour models (HSV, ARGB, CMYK) are refused, not read as RGB.

Pixel spacing, in order of preference:

1. the Sequence of Ultrasound Regions (0018,6011): ``PhysicalDeltaY`` / ``PhysicalDeltaX`` of a region
   whose ``PhysicalUnitsY/XDirection`` is 3 (cm), converted to mm; a 2D tissue region
   (``RegionSpatialFormat`` 1) is preferred, and among several the largest;
2. ``PixelSpacing`` (0028,0030), then ``ImagerPixelSpacing`` (0018,1164), both (row, col) in mm;
3. (1.0, 1.0) otherwise (``meta["spacing_source"] == "none"``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sonorad.imaging.types import ImageReadError, RawImage, select_frame

__all__ = ["read_dicom_raw", "ultrasound_region_spacing"]

_CM = 3  # PhysicalUnitsX/YDirection code for centimetres (PS3.3 C.8.5.5.1.15)


def ultrasound_region_spacing(ds) -> tuple[float, float] | None:
    """Pixel spacing (row, col) in mm from a Sequence of Ultrasound Regions, or None.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        Dataset that may hold ``SequenceOfUltrasoundRegions``.

    Returns
    -------
    tuple of float or None
        ``(10 * |PhysicalDeltaY|, 10 * |PhysicalDeltaX|)`` of the chosen region, or None when no
        region is calibrated in cm.
    """
    regions = ds.get("SequenceOfUltrasoundRegions")
    if not regions:
        return None
    candidates = []
    for item in regions:
        units = (item.get("PhysicalUnitsXDirection"), item.get("PhysicalUnitsYDirection"))
        dx, dy = item.get("PhysicalDeltaX"), item.get("PhysicalDeltaY")
        if units != (_CM, _CM) or dx is None or dy is None or float(dx) == 0 or float(dy) == 0:
            continue
        is_2d = item.get("RegionSpatialFormat") == 1
        try:
            area = (int(item.RegionLocationMaxX1) - int(item.RegionLocationMinX0)) * (
                int(item.RegionLocationMaxY1) - int(item.RegionLocationMinY0))
        except AttributeError:
            area = 0
        candidates.append((is_2d, area, abs(float(dy)) * 10.0, abs(float(dx)) * 10.0))
    if not candidates:
        return None
    best = max(candidates, key=lambda c: (c[0], c[1]))
    return best[2], best[3]


def _spacing(ds) -> tuple[tuple[float, float], str]:
    region = ultrasound_region_spacing(ds)
    if region is not None:
        return region, "ultrasound_region"
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2 and all(float(v) > 0 for v in value):
            return (float(value[0]), float(value[1])), keyword
    return (1.0, 1.0), "none"


def _invert_monochrome1(arr: np.ndarray, ds) -> np.ndarray:
    """Invert stored values within their representable range, so the scale is kept."""
    bits = int(ds.get("BitsStored", arr.dtype.itemsize * 8))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        lo_plus_hi = -1  # -2**(b-1) + 2**(b-1) - 1
    else:
        lo_plus_hi = (1 << bits) - 1
    return lo_plus_hi - arr.astype(np.int64)


def _read_dataset(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, force=path.suffix.lower() in (".dcm", ".dicom", ".ima", ""))
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ImageReadError(
            path,
            f"cannot read the DICOM file, it is corrupt, truncated or not DICOM ({type(exc).__name__}: {exc})",
            "re-export the image from the PACS or scanner",
            kind="corrupt",
        ) from exc


def _looks_like_dicom(ds) -> bool:
    """A file read with force=True may be anything: require a preamble or real image elements."""
    if getattr(ds, "preamble", None) is not None:
        return True
    try:
        return any(key in ds for key in ("SOPClassUID", "Modality", "Rows", "PixelData"))
    except Exception:  # garbage bytes can fail while pydicom parses lazily
        return False


def _decode(ds, path: Path, index: int, n_frames: int):
    from pydicom.pixels import get_decoder

    file_meta = getattr(ds, "file_meta", None)
    tsyntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if tsyntax is None:
        raise ImageReadError(path, "the DICOM file has no Transfer Syntax UID in its file meta information",
                             "re-export the image as a standard DICOM Part 10 file", kind="corrupt")
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as exc:
        raise ImageReadError(path, f"pixel data in transfer syntax {tsyntax.name} cannot be decoded ({exc})",
                             "export the image uncompressed or as JPEG baseline", kind="unsupported") from exc
    if not decoder.is_available:
        raise ImageReadError(
            path,
            f"no installed plugin decodes pixel data in transfer syntax {tsyntax.name}",
            "install pylibjpeg with pylibjpeg-libjpeg and pylibjpeg-openjpeg (or python-gdcm), "
            "or export the image uncompressed",
            kind="unsupported",
        )
    try:
        return decoder.as_array(ds, index=index if n_frames > 1 else None, as_rgb=True)
    except Exception as exc:  # pydicom raises many types (ValueError, RuntimeError, plugin errors)
        raise ImageReadError(
            path,
            f"cannot decode the DICOM pixel data ({type(exc).__name__}: {exc}); the file is corrupt or truncated",
            "re-export the image from the PACS or scanner",
            kind="corrupt",
        ) from exc


#: Photometric interpretations read: gray, RGB, palette, and the YCbCr models that pydicom (or the
#: JPEG / JPEG 2000 decoders) convert to RGB. Others (HSV, ARGB, CMYK: retired from the standard)
#: are refused rather than read as RGB, which would give wrong gray levels.
READ_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422",
                    "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")


def _colour_model_error(path: Path, pi: str) -> ImageReadError:
    return ImageReadError(
        path,
        f"the DICOM pixel data has photometric interpretation {pi!r}, which sonorad does not read (it reads "
        f"{', '.join(READ_PHOTOMETRIC[:4])} and YBR colour); reading it as RGB would give wrong gray levels",
        "export the image from the scanner or PACS as MONOCHROME2 or RGB",
        kind="unsupported",
    )


_PALETTE_ELEMENTS = ("RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
                     "BluePaletteColorLookupTableDescriptor")


def _apply_palette(arr: np.ndarray, ds, path: Path) -> np.ndarray:
    """Expand PALETTE COLOR indices through the file's lookup table, or say that it has none."""
    from pydicom.pixels import apply_color_lut

    absent = [name.replace("PaletteColorLookupTableDescriptor", "") for name in _PALETTE_ELEMENTS if name not in ds]
    fix = ("export the image again with its palette (the Red/Green/Blue Palette Color Lookup Table "
           "Descriptor and Data elements), or as RGB or MONOCHROME2")
    if absent:
        raise ImageReadError(path, f"the DICOM image is PALETTE COLOR but has no palette for "
                                   f"{'/'.join(absent)}: its pixels are indices into a colour table the file "
                                   "does not hold", fix, kind="content")
    try:
        return apply_color_lut(arr, ds)
    except (ValueError, KeyError, AttributeError, IndexError, TypeError) as exc:
        raise ImageReadError(path, f"the DICOM image is PALETTE COLOR but its palette cannot be used "
                                   f"({type(exc).__name__}: {exc})", fix, kind="content") from exc


def read_dicom_raw(path, frame=None) -> RawImage:
    """Decode one frame of a DICOM file into a :class:`~sonorad.imaging.types.RawImage`.

    Parameters
    ----------
    path : str or Path
        DICOM Part 10 file (with or without preamble).
    frame : int, optional
        Frame of a multi-frame (cine) file, 0-based; required when there are several.

    Returns
    -------
    RawImage
        Channels ``"L"`` or ``"RGB"``, spacing (row, col) in mm, and ``meta`` with ``modality``,
        ``mode`` (photometric interpretation as stored), ``bit_depth``, ``n_frames``, ``frame``,
        ``transfer_syntax``, ``spacing_source``.
    """
    from pydicom.pixels import apply_modality_lut

    path = Path(path)
    ds = _read_dataset(path)
    if not _looks_like_dicom(ds):
        raise ImageReadError(
            path,
            "not a valid DICOM file: no 'DICM' signature and no DICOM image elements; it is corrupt, "
            "truncated or not DICOM",
            "re-export the image from the PACS or scanner",
            kind="corrupt",
        )
    if "PixelData" not in ds:
        raise ImageReadError(path, "the DICOM file has no pixel data (it may be a report or presentation state)",
                             "point to the DICOM image file", kind="content")
    stored_pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if stored_pi not in READ_PHOTOMETRIC:
        raise _colour_model_error(path, stored_pi)
    n_frames = int(ds.get("NumberOfFrames") or 1)
    index = select_frame(path, frame, n_frames)
    arr, props = _decode(ds, path, index, n_frames)
    pi = str(props.get("photometric_interpretation", stored_pi))
    if pi in ("YBR_FULL", "YBR_FULL_422") and arr.ndim == 3:
        from pydicom.pixels import convert_color_space

        arr, pi = convert_color_space(arr, pi, "RGB"), "RGB"
    if arr.ndim == 3 and pi != "RGB":  # a colour model the decoder left unconverted
        raise _colour_model_error(path, pi)
    if pi == "PALETTE COLOR":
        arr, channels = _apply_palette(arr, ds, path), "RGB"
    elif arr.ndim == 3 and arr.shape[-1] == 3:
        channels = "RGB"
    elif arr.ndim == 2:
        channels = "L"
        if pi == "MONOCHROME1":
            arr = _invert_monochrome1(arr, ds)
        if "RescaleSlope" in ds or "RescaleIntercept" in ds:
            arr = apply_modality_lut(arr, ds)
    else:
        raise ImageReadError(path, f"unsupported DICOM pixel layout {arr.shape} with photometric interpretation {pi}",
                             "export a gray or RGB 2D image", kind="unsupported")
    spacing, source = _spacing(ds)
    meta = {
        "format": "dicom",
        "mode": stored_pi,
        "decoded_as": pi,
        "modality": str(ds.get("Modality", "")),
        "bit_depth": int(ds.get("BitsStored", 8)),
        "n_frames": n_frames,
        "frame": index,
        "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
        "spacing_source": source,
    }
    return RawImage(np.array(arr), channels, spacing, meta)
