"""PyRadiomics feature extraction for one 2D ultrasound case.

The parameter file is a plain PyRadiomics parameter file (``setting`` / ``imageType`` /
``featureClass``), validated with PyRadiomics' own schema, so a study can share and cite it. The
image is handed to PyRadiomics as a true 2D SimpleITK image with the pixel spacing the study's spacing
rule gives it (:mod:`sonorad.imaging.spacing`: resampled to one spacing, in pixels, or, when the study
has not chosen, the image's own spacing); feature names
are PyRadiomics' own (``original_firstorder_Mean``, ``wavelet-LH_glcm_SumEntropy``,
``log-sigma-2-0-mm-3D_glszm_ZoneEntropy``). See ``docs/radiomics.md`` for the choices.

Intensity scale
---------------
Gray levels are binned with a fixed ``binWidth`` in 8-bit display units, so every image is put on
the 0-255 scale first (:func:`to_8bit_scale`): an image with ``b`` bits per sample, 8 < b <= 16
(16-bit PNG / TIFF, 12-bit DICOM), is mapped linearly by ``v * 255 / (2**b - 1)``, without rounding.
A 16-bit export of an 8-bit image (``v * 257``) thus gives exactly the 8-bit features. Images of
8 bits or fewer, and float images, are left as they are. The work per case is then bounded: when the
ROI of the original image would need more than ``MAX_GRAY_LEVELS`` bins (a float or 32-bit image, or
a very small ``binWidth``), the case is refused with an error that says how to fix the parameters,
rather than building texture matrices that take minutes and gigabytes.

PyRadiomics is imported inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import threading
import warnings
from collections.abc import Iterator, Mapping
from importlib import metadata
from importlib import resources
from pathlib import Path

import numpy as np

from sonorad.errors import CaseError, ConfigError
from sonorad.provenance import sha256_bytes

__all__ = ["DEFAULT_PARAMS", "MAX_GRAY_LEVELS", "load_params", "spacing_params", "original_only", "params_hash", "extract_case", "gray_levels",
           "prepare", "to_8bit_scale"]

#: The parameter file shipped with sonorad (``features/params/radiomics_2d.yaml``).
DEFAULT_PARAMS = "radiomics_2d.yaml"

_TOP_LEVEL_KEYS = ("setting", "imageType", "featureClass", "voxelSetting")

#: Most gray-level bins an ROI may need on the original image (PyRadiomics advises 30-130; texture
#: matrices grow with the square of this number).
MAX_GRAY_LEVELS = 512


def _default_params_path() -> Path:
    return Path(str(resources.files("sonorad.features").joinpath("params", DEFAULT_PARAMS)))


@contextlib.contextmanager
def _quiet_logger(name: str, level: int) -> Iterator[None]:
    """Raise one logger's level for the duration of a block and restore it afterwards.

    Only the named logger's level changes; its handlers and every other logger are left alone.
    PyRadiomics' schema validation (pykwalify) loads its extension file with the deprecated
    ``load_module``; that one DeprecationWarning is ignored inside the block too.
    """
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"the load_module\(\) method is deprecated",
                                    category=DeprecationWarning)
            yield
    finally:
        logger.setLevel(previous)


def _validate_params(params: Mapping, source: str) -> dict:
    """Check ``params`` against PyRadiomics' parameter schema; return a plain, deep-copied dict."""
    import pykwalify.core
    import radiomics

    if not isinstance(params, Mapping):
        raise ConfigError(
            f"{source}: a PyRadiomics parameter file must be a mapping with the keys "
            f"{', '.join(_TOP_LEVEL_KEYS)}; got {type(params).__name__}. "
            "Fix: start from sonorad's features/params/radiomics_2d.yaml."
        )
    params = copy.deepcopy(dict(params))
    schema_file, schema_funcs = radiomics.getParameterValidationFiles()
    # pykwalify logs every schema problem at ERROR level before raising; the exception carries the
    # same text, so its logger is silenced while validating.
    with _quiet_logger("pykwalify", logging.CRITICAL):
        core = pykwalify.core.Core(source_data=params, schema_files=[schema_file], extensions=[schema_funcs])
        try:
            core.validate(raise_exception=True)
        except Exception as exc:  # pykwalify SchemaError, or ValueError from PyRadiomics' schema functions
            message = getattr(exc, "msg", None) or str(exc)
            raise ConfigError(
                f"{source} is not a valid PyRadiomics parameter file: {message.strip()} "
                "Fix: correct the key or value named above (allowed keys and ranges: PyRadiomics "
                "documentation, 'Customizing the extraction')."
            ) from None
    settings = params.get("setting") or {}
    if settings.get("force2D") and settings.get("force2Ddimension", 0) != 0:
        raise ConfigError(
            f"{source}: setting force2Ddimension={settings.get('force2Ddimension')!r} is not supported: "
            "sonorad passes a 2D image as a one-slice volume whose slice axis is 0. "
            "Fix: set force2Ddimension: 0 (or force2D: false, the default for 2D images)."
        )
    return params


def load_params(path: str | Path | Mapping | None = None) -> dict:
    """Read and validate a PyRadiomics parameter file.

    Parameters
    ----------
    path : str, Path, mapping or None
        A YAML (or JSON) PyRadiomics parameter file; ``None`` for sonorad's shipped 2D ultrasound
        file (``features/params/radiomics_2d.yaml``). A mapping is validated and returned as a copy.

    Returns
    -------
    dict
        The parameters, with the keys ``setting``, ``imageType`` and ``featureClass`` (each may be absent,
        meaning PyRadiomics' defaults).

    Raises
    ------
    ConfigError
        The file is missing, is not YAML, or does not pass PyRadiomics' parameter schema
        (the message names the offending key).

    Examples
    --------
    >>> params = load_params()
    >>> params["setting"]["binWidth"]
    5
    """
    if isinstance(path, Mapping):
        return _with_spacing_rule(path, "parameters")
    import yaml

    file = _default_params_path() if path is None else Path(path)
    if not file.is_file():
        raise ConfigError(
            f"PyRadiomics parameter file {str(file)!r} does not exist. "
            "Fix: give the path of an existing .yaml file, or leave --params out for sonorad's default."
        )
    from sonorad.study.loading import YamlTooLarge, bounded_loader

    try:
        params = yaml.load(file.read_text(encoding="utf-8"), Loader=bounded_loader())  # noqa: S506 (SafeLoader)
    except YamlTooLarge as exc:
        raise ConfigError(
            f"PyRadiomics parameter file {str(file)!r}, line {exc.line}: `{exc.key}` {exc.reason}. "
            "Fix: write the settings out plainly (no deep nesting, no alias repeated inside another alias)."
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"PyRadiomics parameter file {str(file)!r} is not readable YAML: {exc}. "
            "Fix: check the indentation and quoting (PyRadiomics' examples/exampleSettings show the format)."
        ) from None
    if params is None:
        raise ConfigError(f"PyRadiomics parameter file {str(file)!r} is empty. Fix: add setting / imageType / featureClass.")
    return _with_spacing_rule(params, f"parameter file {str(file)!r}")


def _with_spacing_rule(params, source: str) -> dict:
    """Validate ``params``; sonorad's spacing entry (``sonorad: {spacing: ...}``, see
    :mod:`sonorad.imaging.spacing`) is checked on its own and kept, not shown to PyRadiomics' schema."""
    from sonorad.imaging.spacing import SPACING_KEY, pyradiomics_params, rule_of

    if not isinstance(params, Mapping) or SPACING_KEY not in params:
        return _validate_params(params, source)
    try:
        rule = rule_of(params)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}. Fix: write `{SPACING_KEY}: {{spacing: resample, spacing_mm: 0.1}}` "
                          f"or `{SPACING_KEY}: {{spacing: pixels}}`, or choose features.spacing in the study "
                          "file") from None
    out = _validate_params(pyradiomics_params(params), source)
    if rule.mode is not None:
        out[SPACING_KEY] = rule.as_dict()
    return out


def spacing_params(params: str | Path | Mapping | None, spacing: str | None, spacing_mm: float | None = None) -> dict:
    """PyRadiomics parameters with a study's spacing rule (:mod:`sonorad.imaging.spacing`).

    Parameters
    ----------
    params : mapping, str, Path or None
        As for :func:`load_params`.
    spacing : {"resample", "pixels"} or None
        ``features.spacing``; ``None`` returns the parameters unchanged.
    spacing_mm : float, optional
        The target of ``resample`` (required with it).

    Raises
    ------
    ConfigError
        The rule is incomplete, or the parameter file's own ``resampledPixelSpacing`` contradicts it.

    Examples
    --------
    >>> spacing_params(None, "resample", 0.1)["setting"]["resampledPixelSpacing"]
    [0.1, 0.1]
    """
    from sonorad.imaging.spacing import SpacingRule, with_rule

    params = load_params(params)
    try:
        return load_params(with_rule(params, SpacingRule(spacing, spacing_mm)))
    except ValueError as exc:
        raise ConfigError(f"features.spacing: {exc}. Fix: set features.spacing_mm to the pixel size (mm) to "
                          "resample to, or correct the PyRadiomics parameter file") from None


def original_only(params: str | Path | Mapping | None = None) -> dict:
    """A parameter set with the original image only (no wavelet or LoG images): about 100 features
    instead of about 900, several times faster; for quick runs and scale tests.

    ``params`` as for :func:`load_params` (default: sonorad's shipped file).
    """
    out = load_params(params)
    out["imageType"] = {"Original": {}}
    return out


def params_hash(params: Mapping) -> str:
    """Fingerprint of the parameters and the PyRadiomics version, for the feature cache.

    Two parameter sets that differ only in key order or YAML formatting get the same hash; a
    changed value or another PyRadiomics version gives a different one, so cached features are
    never reused across settings that change them.

    Parameters
    ----------
    params : mapping
        Parameters as returned by :func:`load_params`.

    Returns
    -------
    str
        sha256 hex digest.
    """
    payload = {
        "params": params,
        "pyradiomics": metadata.version("pyradiomics"),
        # bump when the way sonorad hands images to PyRadiomics changes
        "sonorad_geometry": 1,
        "sonorad_intensity": "8-bit scale, v * 255 / (2**bits - 1) for 9-16 bits",
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(text.encode("utf-8"))


def _to_sitk(pixels: np.ndarray, mask: np.ndarray, spacing: tuple[float, float], one_slice: bool):
    """Image and 0/1 mask as SimpleITK images on the same grid, spacing (row, col) mm -> (x, y)."""
    import SimpleITK as sitk

    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    labels = np.ascontiguousarray(mask, dtype=np.uint8)
    sitk_spacing = (float(spacing[1]), float(spacing[0]))  # SimpleITK orders axes (x=col, y=row)
    if one_slice:  # what PyRadiomics' force2D expects: a volume whose axis 0 (numpy order) has size 1
        pixels, labels = pixels[None], labels[None]
        sitk_spacing = sitk_spacing + (1.0,)
    image, label_map = sitk.GetImageFromArray(pixels), sitk.GetImageFromArray(labels)
    image.SetSpacing(sitk_spacing)
    label_map.SetSpacing(sitk_spacing)
    return image, label_map


def _check_inputs(image, mask, case_id) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    pixels = getattr(image, "pixels", None)
    spacing = getattr(image, "spacing", (1.0, 1.0))
    if pixels is None:
        raise TypeError(
            f"image must be a sonorad.imaging.UltrasoundImage (with .pixels and .spacing), got {type(image).__name__}"
        )
    pixels = np.asarray(pixels)
    mask = np.asarray(mask)
    if pixels.ndim != 2:
        raise CaseError(case_id, f"image pixels must be 2D (rows, cols), got shape {pixels.shape}",
                        "pass a gray 2D image (sonorad.imaging.read_image converts colour to gray)")
    if mask.shape != pixels.shape:
        raise CaseError(case_id, f"mask shape {mask.shape} differs from image shape {pixels.shape}",
                        "use the mask drawn on this image, at the image's size")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise CaseError(case_id, f"mask must be bool or 0/1, got dtype {mask.dtype} with other values",
                            "threshold the mask first (sonorad.imaging.read_mask does)")
        mask = mask.astype(bool)
    if not mask.any():
        raise CaseError(case_id, "mask is empty", "draw the lesion in the mask file")
    if mask.all():
        from sonorad.imaging.roi import WHOLE_IMAGE_FIX, whole_image_message

        raise CaseError(case_id, whole_image_message("the mask", "", mask.shape).replace("  ", " "), WHOLE_IMAGE_FIX)
    spacing = (float(spacing[0]), float(spacing[1]))
    if not all(s > 0 and math.isfinite(s) for s in spacing):
        raise CaseError(case_id, f"pixel spacing {spacing} is not two positive mm values", "fix the image's pixel size")
    return pixels, mask, spacing


def to_8bit_scale(pixels: np.ndarray, bit_depth: int | None) -> np.ndarray:
    """Put gray levels on the 0-255 scale the default ``binWidth`` is meant for.

    Parameters
    ----------
    pixels : numpy.ndarray
        Gray image on its source scale.
    bit_depth : int or None
        Bits per sample of the source file (``UltrasoundImage.meta["bit_depth"]``).

    Returns
    -------
    numpy.ndarray
        ``pixels * 255 / (2**bit_depth - 1)`` (float32) when ``8 < bit_depth <= 16``, else ``pixels``.

    Examples
    --------
    >>> to_8bit_scale(np.array([0, 257, 65535], dtype=np.float32), 16).tolist()
    [0.0, 1.0, 255.0]
    >>> to_8bit_scale(np.array([0, 4095], dtype=np.float32), 12).tolist()
    [0.0, 255.0]
    """
    if bit_depth is None or not 8 < int(bit_depth) <= 16:
        return pixels
    return (np.asarray(pixels, dtype=np.float64) * (255.0 / (2 ** int(bit_depth) - 1))).astype(np.float32)


def gray_levels(pixels: np.ndarray, mask: np.ndarray, settings: Mapping) -> int:
    """Number of gray-level bins PyRadiomics will use for the ROI of the original image.

    ``binCount`` when set; otherwise the bins of width ``binWidth`` (default 25, PyRadiomics' own)
    spanning the ROI's range, counted as PyRadiomics' fixed-width discretisation does (edges at
    multiples of the width).
    """
    if settings.get("binCount"):
        return int(settings["binCount"])
    width = float(settings.get("binWidth", 25))
    values = np.asarray(pixels)[np.asarray(mask, dtype=bool)]
    lo, hi = float(values.min()), float(values.max())
    return int(math.floor(hi / width) - math.floor(lo / width)) + 1


def _check_work(pixels, mask, settings, case_id, bit_depth) -> None:
    n = gray_levels(pixels, mask, settings)
    if n <= MAX_GRAY_LEVELS:
        return
    values = np.asarray(pixels)[mask]
    raise CaseError(
        case_id,
        f"the ROI's gray levels span {float(values.min()):g} to {float(values.max()):g} "
        f"({bit_depth or 'unknown'}-bit image), which is {n} bins of binWidth "
        f"{settings.get('binWidth', 25)}: more than the {MAX_GRAY_LEVELS} sonorad allows, since texture "
        "matrices grow with the square of the bin count (minutes and gigabytes per case)",
        "export the image as 8- or 16-bit gray (both are put on the 0-255 scale), or set a larger binWidth "
        "or a binCount (e.g. binCount: 64) in the PyRadiomics parameter file",
    )


#: Parameter sets whose validated copy and PyRadiomics extractor are kept per process (the oldest
#: is dropped beyond this many).
_CACHE_SIZE = 8
_cache_lock = threading.Lock()
# Validation (pykwalify, ruamel.yaml) is not thread-safe: parameter sets are validated and extractors
# built one at a time.
_build_lock = threading.Lock()
_validated: dict[str, dict] = {}
_extractors: dict[str, object] = {}


def _cache_key(params: Mapping) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=repr)


def _cached(store: dict, key: str, build):
    """``store[key]``, built by ``build()`` the first time (once, whatever the threads)."""
    with _cache_lock:
        if key in store:
            return store[key]
    with _build_lock:
        with _cache_lock:
            if key in store:
                return store[key]
        value = build()
        with _cache_lock:
            store[key] = value
            while len(store) > _CACHE_SIZE:
                store.pop(next(iter(store)))
    return value


def _checked_params(params: Mapping | str | Path | None) -> dict:
    """:func:`load_params` of ``params``; a mapping is validated once per process and handed out
    as a fresh deep copy (PyRadiomics' schema validation costs tens of milliseconds a call)."""
    if not isinstance(params, Mapping):
        with _build_lock:
            return load_params(params)
    return copy.deepcopy(_cached(_validated, _cache_key(params), lambda: load_params(params)))


def _extractor(params: Mapping):
    """The PyRadiomics extractor of a parameter set, built once per process and parameter set.

    Building one validates the parameters again (pykwalify) and costs tens of milliseconds. A built
    extractor is only read by ``execute`` (which works on a copy of its settings), so threads share it;
    every process builds its own.
    """
    def build():
        from radiomics import featureextractor

        return featureextractor.RadiomicsFeatureExtractor(copy.deepcopy(dict(params)))

    return _cached(_extractors, _cache_key(params), build)


def prepare(params: Mapping | str | Path | None = None) -> None:
    """Validate a parameter set and build its extractor now, so that the first case does not wait for
    it (a calculator's worker does this once at start)."""
    from sonorad.imaging.spacing import pyradiomics_params

    with _quiet_logger("radiomics", logging.WARNING):
        _extractor(pyradiomics_params(_checked_params(params)))


def extract_case(image, mask: np.ndarray, params: Mapping | str | Path | None = None, *,
                 case_id: str | None = None) -> dict[str, float]:
    """PyRadiomics features of one lesion on one 2D ultrasound image.

    Parameters
    ----------
    image : sonorad.imaging.UltrasoundImage
        ``pixels`` 2D float32 gray, ``spacing`` (row, col) in mm.
    mask : numpy.ndarray of bool, shape (rows, cols)
        The lesion ROI on the same grid as ``image.pixels``.
    params : mapping, str, Path or None
        Parameters from :func:`load_params`, a parameter file path, or ``None`` for sonorad's default.
        With ``setting: force2D: true`` the image is passed as a one-slice volume (PyRadiomics'
        force2D convention); otherwise as a 2D image.
    case_id : str, optional
        Named in the error when the case cannot be used.

    Returns
    -------
    dict of str to float
        Feature name (PyRadiomics' own, e.g. ``original_glcm_Contrast``) to value, in PyRadiomics'
        order; ``diagnostics_*`` entries are left out.

    Raises
    ------
    CaseError
        The inputs do not fit (shapes, empty mask, a mask covering the whole image), the ROI needs
        more than ``MAX_GRAY_LEVELS`` bins, or PyRadiomics refused the ROI (e.g. smaller than
        ``minimumROISize``); the message names ``case_id`` and what to do. Images of 9-16 bits are
        put on the 0-255 scale first (module docstring, "Intensity scale"). Under the parameters'
        spacing rule ``resample`` (:mod:`sonorad.imaging.spacing`) an image without a pixel spacing
        is refused too.

    Examples
    --------
    >>> import numpy as np
    >>> from sonorad.imaging import UltrasoundImage
    >>> rng = np.random.default_rng(0)
    >>> img = UltrasoundImage(rng.uniform(0, 255, (64, 64)).astype("float32"))
    >>> roi = np.zeros((64, 64), bool); roi[16:48, 20:44] = True
    >>> feats = extract_case(img, roi)
    >>> round(feats["original_shape2D_PixelSurface"])
    768
    """
    from sonorad.imaging.spacing import pyradiomics_params, radiomics_spacing, rule_of

    params = _checked_params(params)  # a bad mapping is a ConfigError, not a failure of this case
    pixels, mask, spacing = _check_inputs(image, mask, case_id)
    rule = rule_of(params)
    spacing = radiomics_spacing(rule, image)
    if isinstance(spacing, str):
        raise CaseError(case_id, spacing, "give the pixel size in the cases table's spacing_mm column (mm per "
                        "pixel, e.g. 0.1), or use the DICOM export that records it")
    params = pyradiomics_params(params)
    settings = params.get("setting") or {}
    bit_depth = (getattr(image, "meta", None) or {}).get("bit_depth")
    pixels = to_8bit_scale(pixels, bit_depth)
    _check_work(pixels, mask, settings, case_id, bit_depth)
    one_slice = bool(settings.get("force2D", False))
    sitk_image, sitk_mask = _to_sitk(pixels, mask, spacing, one_slice)

    from sonorad.errors import case_warnings

    # PyRadiomics logs progress at INFO on the 'radiomics' logger; keep it to warnings here only.
    # Its warnings (and numpy's) are re-issued naming the case.
    with _quiet_logger("radiomics", logging.WARNING), case_warnings(case_id):
        try:
            result = _extractor(params).execute(sitk_image, sitk_mask)
        except Exception as exc:  # PyRadiomics raises ValueError / RuntimeError / IndexError for bad ROIs
            raise CaseError(
                case_id,
                f"PyRadiomics could not extract features: {type(exc).__name__}: {exc}",
                "check that the mask outlines the lesion on this image (at least minimumROISize pixels, "
                "extending in both axes) and that the parameter file suits 2D images",
            ) from exc
    return {name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")}
