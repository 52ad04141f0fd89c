"""Imaging: read ultrasound images and lesion masks, check ROIs, crop, perturb masks.

See ``docs/imaging.md`` for the formats, the colour rule, the mask rules and the errors.
"""

from sonorad.imaging.formats import SUPPORTED_FORMATS, detect_format, format_from_bytes
from sonorad.imaging.masks import binarize_mask, read_mask
from sonorad.imaging.perturb import perturb_mask, perturbed_masks
from sonorad.imaging.readers import UltrasoundImage, probe_bit_depth, read_image, rgb_to_gray, to_sitk
from sonorad.imaging.roi import (
    LESION_POLICIES,
    MIN_ROI_PIXELS,
    bounding_box,
    crop_to_roi,
    lesion_components,
    load_lesion_rois,
    load_roi,
)
from sonorad.imaging.types import ImageReadError

__all__ = [
    "LESION_POLICIES",
    "MIN_ROI_PIXELS",
    "SUPPORTED_FORMATS",
    "ImageReadError",
    "UltrasoundImage",
    "binarize_mask",
    "bounding_box",
    "crop_to_roi",
    "detect_format",
    "format_from_bytes",
    "lesion_components",
    "load_lesion_rois",
    "load_roi",
    "perturb_mask",
    "perturbed_masks",
    "probe_bit_depth",
    "read_image",
    "read_mask",
    "rgb_to_gray",
    "to_sitk",
]
