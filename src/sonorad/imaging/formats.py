"""Image-format detection: one rule, from a file's leading bytes (its signature).

:func:`format_from_bytes` reads a signature from the first :data:`SIGNATURE_BYTES` bytes; it is
what both the file readers (through :func:`detect_format`, which adds the extension rules for files
without a signature) and the calculator's upload checks (:mod:`sonorad.serve.uploads`) decide by,
so a file is never taken for one format when it is checked and read as another.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from sonorad.imaging.types import ImageReadError

__all__ = ["SIGNATURE_BYTES", "SUPPORTED_FORMATS", "detect_format", "format_from_bytes"]

#: Leading bytes that decide a format (the NIfTI-2 header is 540 bytes, plus its magic).
SIGNATURE_BYTES = 544

#: Human-readable list used in error messages.
SUPPORTED_FORMATS = (
    "PNG (.png), JPEG (.jpg, .jpeg), BMP (.bmp), TIFF (.tif, .tiff), DICOM (.dcm or no extension), "
    "NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr)"
)

_EXTENSIONS = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".bmp": "bmp",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".ima": "dicom",
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
}


def _looks_like_nifti(head: bytes) -> bool:
    if len(head) >= 348:
        for order in ("<", ">"):
            size = int(np.frombuffer(head[:4], dtype=f"{order}i4")[0])
            if size == 348 and head[344:347] in (b"n+1", b"ni1"):
                return True
            if size == 540 and head[4:7] in (b"n+2", b"ni2"):
                return True
    return False


def format_from_bytes(head: bytes) -> str | None:
    """Format of an image from its leading bytes, or ``None`` when they carry no known signature.

    Parameters
    ----------
    head : bytes
        The file's first bytes; :data:`SIGNATURE_BYTES` are enough, more are ignored.

    Returns
    -------
    str or None
        ``"png"``, ``"jpeg"``, ``"bmp"``, ``"tiff"``, ``"dicom"`` (Part 10, ``DICM`` at byte 128),
        ``"nrrd"`` or ``"nifti"`` (uncompressed); ``None`` otherwise (also for gzip data and for
        DICOM without its preamble, which only :func:`detect_format` can place, by extension).

    Examples
    --------
    >>> format_from_bytes(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(20))
    'png'
    >>> format_from_bytes(b"GIF89a") is None
    True
    """
    head = bytes(head[:SIGNATURE_BYTES])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"NRRD"):
        return "nrrd"
    if _looks_like_nifti(head):
        return "nifti"
    return None


def _extension(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def detect_format(path) -> str:
    """Return the format of an image file from its content, falling back to its extension.

    The leading bytes decide (:func:`format_from_bytes`); a gzip file named ``.nii.gz`` is opened
    to check for NIfTI, and a file without a signature is DICOM when its extension is a DICOM one
    or empty (DICOM without the 128-byte preamble; pydicom decides when reading).

    Parameters
    ----------
    path : str or Path
        An existing file.

    Returns
    -------
    str
        One of ``"png"``, ``"jpeg"``, ``"bmp"``, ``"tiff"``, ``"dicom"``, ``"nifti"``, ``"nrrd"``.

    Raises
    ------
    ImageReadError
        When the file is empty, its content does not match its extension, or neither content nor
        extension is a supported format (the message lists the supported formats).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(SIGNATURE_BYTES)
    if not head:
        raise ImageReadError(path, "the file is empty (0 bytes)", "re-export or re-copy the file", kind="corrupt")
    fmt = format_from_bytes(head)
    if fmt is not None:
        return fmt
    ext = _extension(path)
    if head.startswith(b"\x1f\x8b") and ext == ".nii.gz":
        try:
            with gzip.open(path, "rb") as fh:
                if _looks_like_nifti(fh.read(SIGNATURE_BYTES)):
                    return "nifti"
        except (OSError, EOFError):
            pass
        raise ImageReadError(path, "the file is not a valid gzip-compressed NIfTI image (corrupt or truncated)",
                             "re-export the NIfTI file", kind="corrupt")
    expected = _EXTENSIONS.get(ext)
    if expected == "dicom" or ext == "":
        return "dicom"  # DICOM without the 128-byte preamble has no signature; pydicom decides
    if expected is not None:
        raise ImageReadError(
            path,
            f"the file has extension {ext!r} but its content is not a valid {expected.upper()} file "
            f"(it starts with {head[:8]!r}); it is corrupt, truncated or mislabelled",
            "re-export the image, or give it the extension of its real format",
            kind="corrupt",
        )
    raise ImageReadError(
        path,
        f"unsupported image format {ext!r}; supported formats: {SUPPORTED_FORMATS}",
        "convert the file to one of the supported formats",
        kind="unsupported",
    )
