"""Box-prompted baselines a segmenter has to beat: the box, the inscribed ellipse, GrabCut, the random walker.

Each takes the image shape (and the image, for GrabCut) and a box ``(x0, y0, x1, y1)`` in pixels
(see :mod:`sonorad.imaging.boxes`) and returns a boolean mask of the image's shape. A pixel
belongs to a shape when its centre ``(col + 0.5, row + 0.5)`` lies inside it.
"""

from __future__ import annotations

import numpy as np

from sonorad.imaging.boxes import Box
from sonorad.segment.data import crop_window, window_pixels

__all__ = ["box_mask", "ellipse_mask", "grabcut_mask", "random_walker_mask", "BASELINES"]


def _centres(shape):
    h, w = int(shape[0]), int(shape[1])
    return np.arange(h)[:, None] + 0.5, np.arange(w)[None, :] + 0.5


def box_mask(shape, box: Box) -> np.ndarray:
    """The box itself as the lesion mask.

    Examples
    --------
    >>> box_mask((3, 4), (1, 0, 3, 2)).astype(int)
    array([[0, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]])
    """
    rows, cols = _centres(shape)
    x0, y0, x1, y1 = box
    return (cols > x0) & (cols < x1) & (rows > y0) & (rows < y1)


def ellipse_mask(shape, box: Box) -> np.ndarray:
    """The ellipse inscribed in the box (axes parallel to the image's, touching the four sides).

    Examples
    --------
    >>> ellipse_mask((4, 4), (0, 0, 4, 4)).astype(int)
    array([[0, 1, 1, 0],
           [1, 1, 1, 1],
           [1, 1, 1, 1],
           [0, 1, 1, 0]])
    """
    rows, cols = _centres(shape)
    x0, y0, x1, y1 = box
    a, b = (x1 - x0) / 2.0, (y1 - y0) / 2.0
    if a <= 0 or b <= 0:
        return np.zeros((int(shape[0]), int(shape[1])), dtype=bool)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return ((cols - cx) / a) ** 2 + ((rows - cy) / b) ** 2 <= 1.0


def grabcut_mask(image, box: Box, iterations: int = 5, margin: float = 0.3) -> np.ndarray:
    """GrabCut (OpenCV) initialised with the box: outside the box is background, inside is "probably lesion".

    The image is cropped to the box enlarged by ``margin`` of its sides first (the background model
    needs a ring around the box, not the whole screen), then the foreground is pasted back.

    Parameters
    ----------
    image : ndarray (H, W)
        Gray image, any range (scaled to 8 bits).
    box : Box
    iterations : int
        GrabCut iterations.
    margin : float
        Ring kept around the box, a fraction of its width / height.

    Returns
    -------
    ndarray of bool (H, W)
    """
    import cv2

    image = np.asarray(image, dtype=np.float32)
    h, w = image.shape
    x0, y0, x1, y1 = box
    r0, r1, c0, c1 = window_pixels(crop_window(box, margin), image.shape)
    crop = image[r0:r1, c0:c1]
    peak = float(crop.max()) if crop.size else 0.0
    scaled = np.clip(crop / (peak if peak > 0 else 1.0) * 255.0, 0, 255).astype(np.uint8)
    bgr = np.ascontiguousarray(np.repeat(scaled[:, :, None], 3, axis=2))
    rx0, ry0 = int(round(x0)) - c0, int(round(y0)) - r0
    rect = (max(rx0, 0), max(ry0, 0), max(int(round(x1 - x0)), 1), max(int(round(y1 - y0)), 1))
    mask = np.zeros(crop.shape, np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    out = np.zeros((h, w), dtype=bool)
    try:
        cv2.grabCut(bgr, mask, rect, bgd, fgd, int(iterations), cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return out  # a box filling the whole crop leaves no background to model
    out[r0:r1, c0:c1] = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return out


def random_walker_mask(image, box: Box, margin: float = 0.3, beta: float = 130.0, max_side: int = 128) -> np.ndarray:
    """Random walker (scikit-image) seeded from the box: lesion seeds in the box's centre, background outside it.

    Seeds: the ellipse inscribed in the box shrunk to half its axes is lesion; every pixel of the
    crop outside the box is background; the pixels between are labelled by the random walker
    (Grady 2006) on the gray levels. The crop (box plus ``margin`` of its sides) is smoothed and
    shrunk to at most ``max_side`` pixels first, which bounds the time per image; the labels are
    enlarged back (nearest).

    Returns
    -------
    ndarray of bool (H, W)
    """
    from scipy import ndimage
    from skimage.segmentation import random_walker

    image = np.asarray(image, dtype=np.float32)
    h, w = image.shape
    x0, y0, x1, y1 = box
    r0, r1, c0, c1 = window_pixels(crop_window(box, margin), image.shape)
    crop = image[r0:r1, c0:c1]
    scale = min(1.0, max_side / max(crop.shape))
    small = ndimage.zoom(ndimage.gaussian_filter(crop, 1.0), scale, order=1)
    sh, sw = small.shape
    local = ((x0 - c0) * scale, (y0 - r0) * scale, (x1 - c0) * scale, (y1 - r0) * scale)
    lx0, ly0, lx1, ly1 = local
    cx, cy, a, b = (lx0 + lx1) / 2, (ly0 + ly1) / 2, (lx1 - lx0) / 4, (ly1 - ly0) / 4
    inner = ellipse_mask((sh, sw), (cx - a, cy - b, cx + a, cy + b))
    seeds = np.where(box_mask((sh, sw), local), 0, 2).astype(np.int32)
    seeds[inner] = 1
    out = np.zeros((h, w), dtype=bool)
    if not inner.any() or not (seeds == 2).any():
        return ellipse_mask((h, w), box) if not inner.any() else out
    import warnings

    spread = float(small.std()) or 1.0
    with warnings.catch_warnings():  # "probability range outside [0, 1]" at this tolerance: labels are unaffected
        warnings.simplefilter("ignore", UserWarning)
        labels = random_walker((small - small.mean()) / spread, seeds, beta=beta, mode="cg_j", tol=1e-3)
    zoom = (crop.shape[0] / sh, crop.shape[1] / sw)
    out[r0:r1, c0:c1] = ndimage.zoom((labels == 1).astype(np.uint8), zoom, order=0)[: crop.shape[0], : crop.shape[1]] > 0
    return out


#: Name -> function(image, box) -> mask, in the order reports list them.
BASELINES = {
    "box": lambda image, box: box_mask(np.shape(image), box),
    "ellipse": lambda image, box: ellipse_mask(np.shape(image), box),
    "grabcut": grabcut_mask,
    "random_walker": random_walker_mask,
}
