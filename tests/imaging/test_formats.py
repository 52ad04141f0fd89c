"""Format detection from leading bytes and from files (sonorad.imaging.formats)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from sonorad.imaging.formats import SIGNATURE_BYTES, detect_format, format_from_bytes
from sonorad.imaging.types import ImageReadError

NIFTI1 = np.array([348], "<i4").tobytes() + bytes(340) + b"n+1\x00" + bytes(200)
SIGNATURES = {
    "png": b"\x89PNG\r\n\x1a\n" + bytes(40),
    "jpeg": b"\xff\xd8\xff\xe0" + bytes(40),
    "bmp": b"BM" + bytes(40),
    "tiff": b"II*\x00" + bytes(40),
    "dicom": bytes(128) + b"DICM" + bytes(40),
    "nrrd": b"NRRD0004\n" + bytes(40),
    "nifti": NIFTI1,
}


@pytest.mark.parametrize("fmt", sorted(SIGNATURES))
def test_each_signature_is_known_from_bytes_and_from_a_file(fmt, tmp_path):
    assert format_from_bytes(SIGNATURES[fmt]) == fmt
    path = tmp_path / "no_extension_rule.xyz"
    path.write_bytes(SIGNATURES[fmt])
    assert detect_format(path) == fmt  # content wins over the extension


def test_unknown_bytes_are_none_and_only_the_leading_bytes_count():
    assert format_from_bytes(b"GIF89a" + bytes(40)) is None
    assert format_from_bytes(b"") is None
    assert format_from_bytes(bytes(SIGNATURE_BYTES) + b"\x89PNG\r\n\x1a\n") is None
    assert format_from_bytes(memoryview(SIGNATURES["png"])) == "png"


def test_extension_rules_for_files_without_a_signature(tmp_path):
    bare = tmp_path / "scan"
    bare.write_bytes(b"\x08\x00\x05\x00CS" + bytes(40))  # DICOM without its preamble
    assert detect_format(bare) == "dicom"
    gz = tmp_path / "vol.nii.gz"
    gz.write_bytes(gzip.compress(NIFTI1))
    assert detect_format(gz) == "nifti"
    fake = tmp_path / "image.png"
    fake.write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="not a valid PNG") as err:
        detect_format(fake)
    assert err.value.kind == "corrupt"
    odd = tmp_path / "image.gif"
    odd.write_bytes(b"GIF89a" + bytes(40))
    with pytest.raises(ImageReadError, match="supported formats") as err:
        detect_format(odd)
    assert err.value.kind == "unsupported"
