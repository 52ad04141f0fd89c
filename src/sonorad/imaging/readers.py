"""Read 2D ultrasound images from PNG, JPEG, BMP, TIFF, DICOM, NIfTI and NRRD files.

Every reader returns the same thing: an :class:`UltrasoundImage` whose ``pixels`` are a 2D
``float32`` gray image on the intensity scale of the source (8-bit files stay in 0..255, 16-bit
files in 0..65535; nothing is rescaled) and whose ``spacing`` is the physical pixel size in mm.

Colour rule
-----------
Colour pixels become gray by ITU-R BT.601 luma, ``0.299 R + 0.587 G + 0.114 B``, computed exactly as
Pillow's ``"L"`` conversion does for integer data (fixed-point weights, rounded to the nearest
integer) and in floating point for float data. Alpha is ignored for images (premultiplying would
darken the image) and palette images are expanded to RGB first. Masks use the same conversion, except
that a varying alpha channel counts as coverage (see :mod:`sonorad.imaging.masks`).

The format is decided by the file's content (its signature bytes) and, when the content has no
signature (DICOM without preamble), by its extension (:func:`sonorad.imaging.formats.detect_format`).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sonorad.imaging.formats import detect_format
from sonorad.imaging.types import ImageReadError, RawImage, select_frame

__all__ = [
    "UltrasoundImage",
    "probe_bit_depth",
    "read_image",
    "read_raw",
    "symlink_loop",
    "rgb_to_gray",
    "to_sitk",
]

# Fixed-point BT.601 weights used by Pillow's RGB -> L conversion (Convert.c): they sum to 2**16.
_LUMA_FIXED = (19595, 38470, 7471)
_LUMA_FLOAT = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class UltrasoundImage:
    """A 2D gray ultrasound image with its pixel size.

    Attributes
    ----------
    pixels : numpy.ndarray
        Gray image, shape (rows, cols), ``float32``, on the intensity scale of the source file.
    spacing : tuple of float
        Pixel size (row, col) in mm; (1.0, 1.0) when the file does not record one.
    path : str
        The file the image was read from ("" when built in memory).
    meta : dict
        What the reader learnt about the file: ``format``, ``mode`` (original colour mode or DICOM
        photometric interpretation), ``bit_depth``, ``n_frames``, ``frame``, ``spacing_source``...
    """

    pixels: np.ndarray
    spacing: tuple[float, float] = (1.0, 1.0)
    path: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        pixels = np.asarray(self.pixels)
        if pixels.ndim != 2:
            raise ValueError(f"UltrasoundImage.pixels must be 2D (rows, cols), got shape {pixels.shape}")
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 2 or not all(s > 0 and math.isfinite(s) for s in spacing):
            raise ValueError(f"UltrasoundImage.spacing must be two positive mm values (row, col), got {self.spacing}")
        object.__setattr__(self, "pixels", pixels.astype(np.float32, copy=False))
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "path", str(self.path))

    @property
    def shape(self) -> tuple[int, int]:
        """Image size (rows, cols)."""
        return self.pixels.shape


# --------------------------------------------------------------------------------------- colour


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """Convert RGB pixels to gray with ITU-R BT.601 luma (Pillow's ``"L"`` rule).

    Parameters
    ----------
    rgb : numpy.ndarray
        Array of shape (..., 3) (extra trailing channels such as alpha are ignored).

    Returns
    -------
    numpy.ndarray
        Gray values, shape ``rgb.shape[:-1]``. Integer input gives integers on the same scale,
        rounded exactly as Pillow does (``(19595 R + 38470 G + 7471 B + 32768) >> 16``); float input
        gives ``0.299 R + 0.587 G + 0.114 B``.

    Examples
    --------
    >>> rgb_to_gray(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)).tolist()
    [[76, 150, 29]]
    """
    rgb = np.asarray(rgb)
    if rgb.ndim < 1 or rgb.shape[-1] < 3:
        raise ValueError(f"rgb_to_gray expects an array of shape (..., 3), got {rgb.shape}")
    if np.issubdtype(rgb.dtype, np.integer) or rgb.dtype == bool:
        # 8-bit sums stay below 2**24, so int32 is exact and twice as fast as int64.
        wide = np.int32 if rgb.dtype.itemsize == 1 else np.int64
        out = np.full(rgb.shape[:-1], 1 << 15, dtype=wide)
        for i, weight in enumerate(_LUMA_FIXED):
            channel = rgb[..., i].astype(wide)
            channel *= weight
            out += channel
        out >>= 16
        return out
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return _LUMA_FLOAT[0] * r + _LUMA_FLOAT[1] * g + _LUMA_FLOAT[2] * b


def _gray_ignoring_alpha(raw: RawImage) -> np.ndarray:
    if raw.channels == "L":
        return raw.array
    if raw.channels == "LA":
        return raw.array[..., 0]
    return rgb_to_gray(raw.array[..., :3])


# ------------------------------------------------------------------------------- files, frames


def _check_frame(frame):
    """Normalise ``frame``: None (or NaN from a cohort table) -> None, integral number -> int."""
    if frame is None:
        return None
    if isinstance(frame, bool):
        raise TypeError(f"frame must be a non-negative integer or None, got {frame!r}")
    if isinstance(frame, numbers.Integral):
        return int(frame)
    if isinstance(frame, numbers.Real):
        if math.isnan(frame):
            return None
        if float(frame).is_integer():
            return int(frame)
    raise TypeError(f"frame must be a non-negative integer or None, got {frame!r}")


def symlink_loop(path) -> str | None:
    """Why ``path`` cannot be followed when it is a symbolic-link loop or a dangling link, else None.

    ``os.path.exists`` answers False for both, which would otherwise be reported as "does not exist".
    """
    import errno
    import os

    path = os.fspath(path)
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link that loops back on itself (too many levels of symbolic links)"
        if os.path.islink(path):
            return f"is a symbolic link to {os.readlink(path)!r}, which does not exist (a dangling link)"
    return None


def _too_large(path, exc) -> ImageReadError:
    return ImageReadError(
        path,
        f"is too large to decode safely ({exc}); the file is not corrupt, but an ultrasound "
        "frame is normally below 10 megapixels, so this is probably a wrong file (a whole-slide scan, a "
        "mosaic) or a file crafted to exhaust memory",
        "check that the cell points to the ultrasound image; downsample or crop a genuine large image "
        "to the region of interest",
        kind="content",
    )


def probe_bit_depth(path) -> int | None:
    """Bits per gray sample of an image file, read from its header only (pixels are not decoded).

    Parameters
    ----------
    path : str or Path
        An image file.

    Raises
    ------
    ImageReadError
        When the header announces an image too large to decode safely (Pillow's decompression-bomb
        limit), kind ``"content"``.

    Returns
    -------
    int or None
        8 or 16 (or 1, 32) for PNG / JPEG / BMP / TIFF (Pillow header) and DICOM (``BitsStored``);
        ``None`` when the header does not say or the file cannot be probed (NIfTI / NRRD store a
        sample type, not a depth). A colour 8-bit file is 8.
    """
    path = Path(path)
    try:
        fmt = detect_format(path)
    except (ImageReadError, OSError):
        return None
    if fmt in ("png", "jpeg", "bmp", "tiff"):
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a large header is reported when the file is decoded
                with Image.open(path) as im:
                    mode = im.mode
        except Image.DecompressionBombError as exc:
            raise _too_large(path, exc) from exc
        except Exception:  # noqa: BLE001 - an unreadable header is reported by the reader
            return None
        header = _png_header(path) if fmt == "png" else None
        if header is not None:  # Pillow reports 16-bit colour PNGs as 8-bit RGB
            return 16 if header[0] == 16 else 8
        if mode.startswith("I;16"):
            return 16
        return {"1": 1, "I": 32, "F": 32}.get(mode, 8)
    if fmt == "dicom":
        try:
            import pydicom

            ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
            bits = ds.get("BitsStored")
            return int(bits) if bits is not None else None
        except Exception:  # noqa: BLE001
            return None
    return None


# ------------------------------------------------------------------------------------- readers


def _png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG IHDR chunk, or None when unreadable."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


_PILLOW_DIRECT = {"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA"}
_PILLOW_CONVERT = {"La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}


def _pillow_pixels(im, path: Path) -> tuple[np.ndarray, str, int]:
    """Pixels of one Pillow frame as (array, channels, bit depth) without losing precision."""
    mode = im.mode
    if mode == "1":
        # Pillow's own "1" -> "L" conversion maps set pixels to 255.
        return np.asarray(im, dtype=bool).astype(np.uint8) * 255, "L", 1
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16), "L", 16
    if mode == "I":
        return np.asarray(im).astype(np.int32), "L", 32
    if mode == "F":
        return np.asarray(im).astype(np.float32), "L", 32
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        target = "RGBA" if has_alpha else "RGB"
        return np.asarray(im.convert(target)), target, 8
    if mode in _PILLOW_DIRECT:
        return np.asarray(im), mode, 8
    if mode in _PILLOW_CONVERT:
        target = _PILLOW_CONVERT[mode]
        return np.asarray(im.convert(target)), target, 8
    try:
        return np.asarray(im.convert("RGB")), "RGB", 8
    except (ValueError, OSError) as exc:
        raise ImageReadError(path, f"unsupported Pillow image mode {mode!r} ({exc})",
                             "convert the image to 8- or 16-bit gray or RGB", kind="unsupported") from exc


def _read_pillow(path: Path, fmt: str, frame) -> RawImage:
    from PIL import Image, UnidentifiedImageError

    if fmt == "png":
        header = _png_header(path)
        if header is not None and header[0] == 16 and header[1] in (2, 4, 6):
            # Pillow reduces 16-bit colour PNGs to 8 bits; ITK keeps all 16.
            raw = _read_sitk(path, "png16", frame)
            raw.meta.update(format="png", bit_depth=16)
            return raw
    try:
        with Image.open(path) as im:
            n_frames = int(getattr(im, "n_frames", 1))
            index = select_frame(path, frame, n_frames)
            if index:
                im.seek(index)
            im.load()
            array, channels, bit_depth = _pillow_pixels(im, path)
            meta = {"format": fmt, "mode": im.mode, "bit_depth": bit_depth, "n_frames": n_frames, "frame": index}
            if "dpi" in im.info:
                # Screen resolution, not the probe's pixel size: recorded, never used as spacing.
                meta["dpi"] = tuple(float(d) for d in im.info["dpi"])
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise _too_large(path, exc) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(
            path,
            f"cannot decode the {fmt.upper()} file, it is corrupt or truncated ({type(exc).__name__}: {exc})",
            "re-export or re-copy the file",
            kind="corrupt",
        ) from exc
    meta["spacing_source"] = "none"
    return RawImage(np.array(array), channels, (1.0, 1.0), meta)


_SITK_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _read_sitk(path: Path, fmt: str, frame) -> RawImage:
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = next((line for line in first if "ERROR" in line or "Exception" in line), first[0] if first else "")
        raise ImageReadError(
            path,
            f"SimpleITK cannot read the {fmt.upper()} file, it is corrupt or truncated ({detail.strip()[:200]})",
            "re-export the file (a .nhdr header also needs its data file next to it)",
            kind="corrupt",
        ) from exc
    n_comp = img.GetNumberOfComponentsPerPixel()
    if n_comp not in _SITK_CHANNELS:
        raise ImageReadError(path, f"pixels have {n_comp} components; expected 1 (gray), 3 (RGB) or 4 (RGBA)",
                             "store a gray or RGB image", kind="unsupported")
    array = sitk.GetArrayFromImage(img)  # (z, y, x[, c]) / (y, x[, c])
    sx, sy = img.GetSpacing()[:2]
    dim = img.GetDimension()
    spatial = array.shape[:dim]
    meta = {"format": fmt, "mode": _SITK_CHANNELS[n_comp], "dtype": str(array.dtype),
            "bit_depth": array.dtype.itemsize * 8, "dimension": dim}
    if dim == 2:
        index, n_frames = select_frame(path, frame, 1), 1
    elif dim == 3:
        ones = [axis for axis, size in enumerate(spatial) if size == 1]
        if ones and spatial[0] != 1 and len(ones) == 1:
            # A 2D image stored with a singleton row or column axis: keep the two long axes.
            array = np.squeeze(array, axis=ones[0])
            sizes = [s for i, s in enumerate(img.GetSpacing()[::-1]) if i != ones[0]]
            sy, sx = sizes
            index, n_frames = select_frame(path, frame, 1), 1
        else:
            n_frames = spatial[0]
            index = select_frame(path, frame, n_frames, what="slices")
            array = array[index]
    else:
        raise ImageReadError(path, f"the file is a {dim}D image; sonorad reads 2D images or one slice of a 3D volume",
                             "export one 2D slice", kind="unsupported")
    meta.update(n_frames=n_frames, frame=index, spacing_source="header")
    return RawImage(np.array(array), _SITK_CHANNELS[n_comp], (float(sy), float(sx)), meta)


def read_raw(path, *, frame=None) -> RawImage:
    """Decode a file into :class:`RawImage` (channels kept); shared by :func:`read_image` and masks."""
    frame = _check_frame(frame)
    path = Path(path)
    if not path.exists():
        loop = symlink_loop(path)
        if loop is not None:
            raise ImageReadError(path, loop, "point the link (or the cell) at the real file", kind="missing")
        raise ImageReadError(path, "file not found", "check the path (relative paths in cases.csv are resolved "
                             "against the folder of cases.csv)", kind="missing")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file", "point to the image file itself", kind="missing")
    fmt = detect_format(path)
    if fmt == "dicom":
        from sonorad.imaging.dicom import read_dicom_raw

        return read_dicom_raw(path, frame)
    if fmt in ("nifti", "nrrd"):
        return _read_sitk(path, fmt, frame)
    return _read_pillow(path, fmt, frame)


def read_image(path, *, frame=None) -> UltrasoundImage:
    """Read a 2D ultrasound image as gray ``float32`` pixels with its pixel spacing.

    Parameters
    ----------
    path : str or Path
        PNG, JPEG, BMP, TIFF, DICOM, NIfTI (.nii, .nii.gz) or NRRD (.nrrd, .nhdr) file.
    frame : int, optional
        Frame (DICOM cine, TIFF page) or slice (NIfTI / NRRD volume) to read, starting at 0.
        Required when the file holds more than one; a one-slice volume is read as 2D.

    Returns
    -------
    UltrasoundImage
        ``pixels`` (rows, cols) float32 on the source's intensity scale; colour is converted by
        BT.601 luma, alpha ignored; ``spacing`` (row, col) in mm, (1.0, 1.0) when the file has none.

    Raises
    ------
    ImageReadError
        Missing, empty, corrupt or unsupported file, a frame out of range, or a float image with NaN
        or infinite pixels; the message names the file and says what to do.

    Examples
    --------
    >>> img = read_image("images/case001.png")  # doctest: +SKIP
    >>> img.pixels.shape, img.spacing  # doctest: +SKIP
    ((485, 537), (1.0, 1.0))
    """
    raw = read_raw(path, frame=frame)
    gray = _gray_ignoring_alpha(raw)
    if gray.dtype.kind == "f":  # integer data cannot hold NaN or infinity
        bad = int(gray.size - np.count_nonzero(np.isfinite(gray)))
        if bad:
            raise ImageReadError(path, f"the image holds {bad} non-finite pixels (NaN or infinite) among its "
                                       f"{gray.size}; radiomics features cannot be computed on them",
                                 "export it again without NaN/inf (write the background value in those pixels)",
                                 kind="content")
    meta = dict(raw.meta)
    meta.setdefault("channels", raw.channels)
    return UltrasoundImage(pixels=gray, spacing=raw.spacing, path=str(path), meta=meta)


def to_sitk(array: np.ndarray, spacing=(1.0, 1.0)):
    """Wrap a 2D array as a SimpleITK image with its (row, col) mm spacing (ITK order is x, y).

    Parameters
    ----------
    array : numpy.ndarray
        2D image or mask, shape (rows, cols); bool masks become ``uint8`` 0/1.
    spacing : tuple of float
        Pixel size (row, col) in mm, e.g. ``UltrasoundImage.spacing``.

    Returns
    -------
    SimpleITK.Image
    """
    import SimpleITK as sitk

    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"to_sitk expects a 2D array (rows, cols), got shape {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    img = sitk.GetImageFromArray(np.ascontiguousarray(array))
    img.SetSpacing((float(spacing[1]), float(spacing[0])))
    return img
