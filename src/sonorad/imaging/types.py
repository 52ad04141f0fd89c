"""The imaging layer's shared types: decoded pixels, the read error, the frame rule.

:class:`RawImage` is what every per-format reader (Pillow, SimpleITK, pydicom) decodes before the
gray conversion; :class:`ImageReadError` is how any of them says a file cannot be used; and
:func:`select_frame` is the one rule for choosing a frame of a multi-frame file. The readers
(:mod:`sonorad.imaging.readers`, :mod:`sonorad.imaging.dicom`), format detection
(:mod:`sonorad.imaging.formats`) and the masks all build on this module, which imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sonorad.errors import SonoradError

__all__ = ["ImageReadError", "RawImage", "select_frame"]


class ImageReadError(SonoradError):
    """An image or mask file cannot be read or does not fit the request.

    Parameters
    ----------
    path : str or Path
        The file concerned.
    message : str
        What is wrong, in plain words (the path is prepended).
    fix : str, optional
        What the user can do about it.
    kind : str, optional
        A short machine-readable category: ``"missing"``, ``"corrupt"``, ``"unsupported"``,
        ``"frame"``, ``"label"`` or ``"content"``.
    """

    def __init__(self, path, message: str, fix: str = "", kind: str = "corrupt"):
        self.path = str(path)
        self.message = message
        self.fix = fix
        self.kind = kind
        text = f"{self.path}: {message}"
        super().__init__(f"{text} Fix: {fix}" if fix else text)

    def __reduce__(self):
        # Rebuild from the fields, so the error survives a trip through a worker process.
        return (type(self), (self.path, self.message, self.fix, self.kind))


@dataclass
class RawImage:
    """Decoded pixels before the gray conversion (what the per-format readers return).

    ``channels`` is one of ``"L"``, ``"LA"``, ``"RGB"``, ``"RGBA"``; ``array`` has shape (rows, cols)
    for ``"L"`` and (rows, cols, n_channels) otherwise, in the source's numeric type.
    """

    array: np.ndarray
    channels: str
    spacing: tuple[float, float]
    meta: dict


def select_frame(path, frame, n_frames: int, what: str = "frames") -> int:
    """Return the frame index to read, or raise :class:`ImageReadError` naming the valid range."""
    if n_frames < 1:
        raise ImageReadError(path, f"the file holds no {what}", "check the file", kind="content")
    if frame is None:
        if n_frames == 1:
            return 0
        raise ImageReadError(
            path,
            f"the file holds {n_frames} {what}; sonorad reads one 2D image",
            f"choose one with frame=0..{n_frames - 1} (the `frame` column of cases.csv)",
            kind="frame",
        )
    if not 0 <= frame < n_frames:
        raise ImageReadError(
            path,
            f"frame {frame} is out of range: the file holds {n_frames} {what}, valid frames are 0..{n_frames - 1}",
            f"use a frame between 0 and {n_frames - 1}",
            kind="frame",
        )
    return frame
