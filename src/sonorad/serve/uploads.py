"""Uploaded image and mask files: type from content, size limits before decoding, sonorad's readers.

Every upload is hostile until checked. The order of the checks is what makes them safe:

1. the byte count (the request body is capped before it is parsed, see :mod:`sonorad.serve.guard`);
2. the format, from the file's first bytes (its signature, by
   :func:`sonorad.imaging.formats.format_from_bytes`, the rule the readers use), never from its name;
3. the pixel count, from the header alone (PNG IHDR read directly; JPEG SOF and BMP info header via
   Pillow's lazy ``Image.open``; DICOM Rows x Columns via pydicom with ``stop_before_pixels``), so a decompression
   bomb -- a 20000 x 20000 PNG of a few hundred KB -- is refused before a single row is decoded;
4. only then the decoding, by :func:`sonorad.imaging.read_image` / :func:`sonorad.imaging.read_mask`,
   the same readers (colour rule, DICOM spacing rule) as ``sonorad run``.

The readers take a path. So that nothing is written to disk, the bytes are handed to them as an
anonymous in-memory file (Linux ``memfd_create``) opened through ``/proc/self/fd/N``; with
``--keep DIR`` the file is written to DIR instead and read from there.
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonorad.errors import SonoradError
from sonorad.imaging.formats import format_from_bytes

__all__ = [
    "PIXEL_SIZE_FIELD",
    "with_pixel_size",
    "ALLOWED_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "UploadError",
    "UploadLimits",
    "check_upload",
    "header_size",
    "in_memory_path",
    "read_uploaded_image",
    "read_uploaded_mask",
]

#: Default cap on one request body (image + mask + form), in bytes.
DEFAULT_MAX_UPLOAD_BYTES = 32 * 1024 * 1024
#: Default cap on the decoded pixel count of one image (rows x cols x frames).
DEFAULT_MAX_PIXELS = 16 * 1024 * 1024

#: Formats the calculator accepts, with the words used in messages.
ALLOWED_FORMATS = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP", "dicom": "DICOM"}
_ALLOWED_TEXT = "PNG, JPEG, BMP or DICOM (Part 10, with the 'DICM' signature)"


class UploadError(SonoradError):
    """An upload is refused; ``status`` is the HTTP status, ``field`` the form field concerned."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422, fix: str = ""):
        self.message = message
        self.field = field
        self.status = status
        self.fix = fix
        super().__init__(f"{message} Fix: {fix}" if fix else message)


@dataclass(frozen=True)
class UploadLimits:
    """Limits applied to every request.

    Attributes
    ----------
    max_upload_bytes : int
        Largest request body accepted (HTTP 413 above it).
    max_pixels : int
        Largest decoded image, rows x cols (x frames for a DICOM cine), checked from the header.
    max_inflight : int
        Uploads handled at once; one more is answered 503 (bounds memory, see
        :class:`sonorad.serve.guard.Guard`).
    """

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_inflight: int = 16

    def __post_init__(self):
        if self.max_upload_bytes < 1 or self.max_pixels < 1 or self.max_inflight < 1:
            raise ValueError(f"upload limits must be positive, got {self}")


def _pillow_header_size(data: bytes, field: str) -> tuple[int, int, int]:
    from PIL import Image, UnidentifiedImageError

    # Image.open reads the header only; decoding waits for load(), which is never called here.
    # Pillow's own bomb check (MAX_IMAGE_PIXELS) fires in open() for huge headers: same answer.
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            frames = int(getattr(im, "n_frames", 1))
    except Image.DecompressionBombError as exc:
        raise UploadError(f"the {field} has too many pixels to be decoded safely ({exc})", field=field,
                          status=413, fix="upload a single 2D ultrasound image at its native size") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadError(f"the {field} file cannot be read: its header is corrupt or truncated "
                          f"({type(exc).__name__}: {exc})", field=field, fix="re-export the file") from exc
    return height, width, frames


def _dicom_header_size(data: bytes, field: str) -> tuple[int, int, int]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames") or 1)
    except (InvalidDicomError, AttributeError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise UploadError(f"the {field} is not a readable DICOM image: no Rows/Columns in its header "
                          f"({type(exc).__name__}: {exc})", field=field,
                          fix="export the ultrasound image from the PACS or scanner as DICOM Part 10") from exc
    return rows, cols, frames


def _png_header_size(data: bytes, field: str) -> tuple[int, int, int]:
    # IHDR is the first chunk: length (4), b"IHDR", width (4), height (4), ... (PNG spec 11.2.2).
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise UploadError(f"the {field} file cannot be read: its PNG header is corrupt or truncated",
                          field=field, fix="re-export the file")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return height, width, 1


def header_size(data: bytes, fmt: str, *, field: str = "image") -> tuple[int, int, int]:
    """(rows, cols, frames) of an upload, read from its header without decoding any pixel."""
    if fmt == "png":
        return _png_header_size(data, field)
    if fmt == "dicom":
        return _dicom_header_size(data, field)
    return _pillow_header_size(data, field)


def check_upload(data: bytes, limits: UploadLimits, *, field: str = "image") -> str:
    """Check an upload before decoding it: not empty, an accepted format, not too many pixels.

    Parameters
    ----------
    data : bytes
        The uploaded file.
    limits : UploadLimits
    field : str
        Form field name, used in messages (``"image"`` or ``"mask"``).

    Returns
    -------
    str
        The format, one of :data:`ALLOWED_FORMATS`.

    Raises
    ------
    UploadError
        Empty file (422), unknown content (415), too many bytes or pixels (413), corrupt header (422).
    """
    if not data:
        raise UploadError(f"the {field} file is empty (0 bytes)", field=field, fix="choose the file again")
    if len(data) > limits.max_upload_bytes:
        raise UploadError(f"the {field} file has {len(data)} bytes, more than the limit of "
                          f"{limits.max_upload_bytes}", field=field, status=413,
                          fix="upload one 2D image, not a cine loop or an archive")
    fmt = format_from_bytes(data)
    if fmt not in ALLOWED_FORMATS:
        raise UploadError(
            f"the {field} file is not an accepted image: its content starts with {data[:8]!r}, which is "
            f"not {_ALLOWED_TEXT} (the file name is not used to decide)",
            field=field, status=415, fix=f"upload a {_ALLOWED_TEXT} file")
    rows, cols, frames = header_size(data, fmt, field=field)
    pixels = rows * cols * max(frames, 1)
    if rows < 1 or cols < 1:
        raise UploadError(f"the {field} header says it is {rows} x {cols} pixels", field=field,
                          fix="re-export the image")
    if pixels > limits.max_pixels:
        raise UploadError(
            f"the {field} is {rows} x {cols} pixels" + (f" x {frames} frames" if frames > 1 else "")
            + f" = {pixels} pixels, more than the limit of {limits.max_pixels}; it was not decoded",
            field=field, status=413, fix="upload a single 2D ultrasound image at its native size")
    return fmt


@contextmanager
def in_memory_path(data: bytes, name: str = "upload"):
    """A path that reads ``data`` from memory: an anonymous ``memfd`` file, closed on exit.

    Raises
    ------
    RuntimeError
        When the system has no ``memfd_create`` (not Linux); start the server with ``--keep DIR``.
    """
    if not hasattr(os, "memfd_create"):
        raise RuntimeError("this system has no memfd_create (Linux only); run sonorad serve with --keep DIR")
    fd = os.memfd_create(name, getattr(os, "MFD_CLOEXEC", 0))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        yield Path(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def memfd_available() -> bool:
    """True when uploads can be read without touching the disk (``os.memfd_create`` exists)."""
    return hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir()


@contextmanager
def _readable(data: bytes, keep_path: Path | None, name: str):
    if keep_path is not None:
        keep_path.write_bytes(data)
        yield keep_path
    else:
        with in_memory_path(data, name) as path:
            yield path


def _read_error(exc, field: str, filename: str) -> UploadError:
    # The reader names its path (/proc/self/fd/N or the kept copy); the user knows the file by its name.
    return UploadError(f"the {field} {filename!r} cannot be used: {exc.message}", field=field,
                       fix=exc.fix or "re-export the file")


def read_uploaded_image(data: bytes, limits: UploadLimits, *, filename: str = "image", keep_path=None,
                        frame=None):
    """Check and decode an uploaded image with sonorad's own reader.

    Parameters
    ----------
    data : bytes
        The uploaded file.
    limits : UploadLimits
    filename : str
        The name the browser gave (only shown in messages; never used for the format or a path).
    keep_path : Path, optional
        Write the file here and read it from there (``--keep``); default: in memory.
    frame : int, optional
        Frame of a multi-frame DICOM.

    Returns
    -------
    UltrasoundImage
        As :func:`sonorad.imaging.read_image` returns it; ``path`` is the upload's file name.
    """
    from sonorad.imaging.readers import UltrasoundImage, read_image
    from sonorad.imaging.types import ImageReadError

    fmt = check_upload(data, limits, field="image")
    try:
        with _readable(data, keep_path, "image") as path:
            image = read_image(path, frame=frame)
    except ImageReadError as exc:
        raise _read_error(exc, "image", filename) from exc
    return UltrasoundImage(image.pixels, image.spacing, filename, {**image.meta, "format": fmt})


def read_uploaded_mask(data: bytes, shape: tuple[int, int], limits: UploadLimits, *, filename: str = "mask",
                       keep_path=None) -> np.ndarray:
    """Check and decode an uploaded mask file with :func:`sonorad.imaging.read_mask` (same mask rules).

    Returns
    -------
    numpy.ndarray
        Boolean mask with the image's ``shape``.

    Raises
    ------
    UploadError
        As :func:`check_upload`, or when the mask's size differs from the image's.
    """
    from sonorad.imaging.masks import read_mask
    from sonorad.imaging.types import ImageReadError

    check_upload(data, limits, field="mask")
    try:
        with _readable(data, keep_path, "mask") as path:
            mask = read_mask(path)
    except ImageReadError as exc:
        raise _read_error(exc, "mask", filename) from exc
    if mask.shape != tuple(shape):
        raise UploadError(f"the mask is {mask.shape[0]} x {mask.shape[1]} pixels but the image is "
                          f"{shape[0]} x {shape[1]} (rows x cols)", field="mask",
                          fix="upload the mask drawn on this image, at the image's size")
    return mask


#: The calculator's form field for the pixel size of an image file that records none.
PIXEL_SIZE_FIELD = "pixel_size_mm"


def with_pixel_size(image, value, rule):
    """The uploaded image with the spacing the bundle's spacing rule needs.

    Parameters
    ----------
    image : UltrasoundImage
        As :func:`read_uploaded_image` returns it.
    value : str or None
        The form's "pixel size (mm)" (:data:`PIXEL_SIZE_FIELD`): one number, or ``row,col``; empty:
        not given. When given it is the image's spacing, as the cases table's ``spacing_mm`` is for
        ``sonorad predict`` (it overrides the file's).
    rule : sonorad.imaging.spacing.SpacingRule
        The bundle's rule (``Bundle.spacing_rule``).

    Raises
    ------
    UploadError
        The value is not a pixel size, or the rule resamples every image and neither the file nor
        the form gives a spacing (422, field ``pixel_size_mm``).
    """
    from sonorad.cohort.reading import parse_spacing
    from sonorad.imaging.readers import UltrasoundImage
    from sonorad.imaging.spacing import has_spacing

    try:
        spacing = parse_spacing(value)
    except ValueError:
        raise UploadError(f"pixel size {value!r} is not a pixel size in mm", field=PIXEL_SIZE_FIELD,
                          fix="enter one positive number (mm per pixel, e.g. 0.1), or 'row,col'") from None
    if spacing is not None:
        return UltrasoundImage(image.pixels, spacing, image.path, {**image.meta, "spacing_source": "given"})
    if rule.needs_spacing and not has_spacing(image):
        fmt = str(image.meta.get("format") or "image").upper()
        raise UploadError(f"this model resamples every image to {rule.spacing_mm:g} mm per pixel, and the {fmt} "
                          "file records no pixel size", field=PIXEL_SIZE_FIELD,
                          fix="enter the pixel size (mm) of the image, as the scanner or the export reports it, "
                              "or upload the DICOM file, which records it")
    return image
