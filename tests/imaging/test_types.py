"""Shared imaging types: the read error, decoded pixels, the frame rule (sonorad.imaging.types)."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from sonorad.imaging.types import ImageReadError, RawImage, select_frame


def test_select_frame_rule():
    assert select_frame("a.dcm", None, 1) == 0
    assert select_frame("a.dcm", 2, 3) == 2
    with pytest.raises(ImageReadError, match="frame=0..2") as err:
        select_frame("a.dcm", None, 3)
    assert err.value.kind == "frame"
    with pytest.raises(ImageReadError, match="valid frames are 0..2"):
        select_frame("a.dcm", 3, 3)
    with pytest.raises(ImageReadError, match="holds no slices") as err:
        select_frame("a.nii", None, 0, what="slices")
    assert err.value.kind == "content"


def test_read_error_fields_message_and_pickling():
    err = ImageReadError("x.png", "is broken.", "re-export it", kind="corrupt")
    assert str(err) == "x.png: is broken. Fix: re-export it"
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.message, back.fix, back.kind) == ("x.png", "is broken.", "re-export it", "corrupt")


def test_raw_image_holds_channels():
    raw = RawImage(np.zeros((2, 3, 3), np.uint8), "RGB", (0.1, 0.2), {"format": "png"})
    assert raw.channels == "RGB" and raw.array.shape == (2, 3, 3)


def test_dicom_and_readers_import_in_either_order():
    for first in ("sonorad.imaging.dicom", "sonorad.imaging.readers", "sonorad.imaging.formats"):
        subprocess.run([sys.executable, "-c", f"import {first}"], check=True)
