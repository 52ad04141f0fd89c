"""PyRadiomics parameters and one-case extraction (sonorad.features.radiomics)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from sonorad.errors import CaseError, ConfigError
from sonorad.features.radiomics import extract_case, load_params, params_hash

# A small parameter set for the geometry tests: Original image only, a few classes.
SMALL = {
    "setting": {"binWidth": 5, "label": 1, "force2D": False, "additionalInfo": False},
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": None, "shape2D": None, "glcm": ["Contrast", "JointEntropy"]},
}


def _image(pixels, spacing=(1.0, 1.0)):
    # extract_case only needs .pixels and .spacing (sonorad.imaging.UltrasoundImage has both)
    return SimpleNamespace(pixels=np.asarray(pixels, dtype=np.float32), spacing=spacing)


def _lesion_case(shape=(64, 64), seed=0):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    mask = ((rows - shape[0] / 2) / (shape[0] / 4)) ** 2 + ((cols - shape[1] / 2) / (shape[1] / 3)) ** 2 < 1
    pixels = rng.normal(90, 25, shape) + 40 * mask
    return np.clip(pixels, 0, 255).round().astype(np.float32), mask


def _direct_pyradiomics(pixels, mask, params, spacing_xy=(1.0, 1.0)):
    import SimpleITK as sitk
    from radiomics import featureextractor

    image = sitk.GetImageFromArray(pixels.astype(np.float32))
    label = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.SetSpacing(spacing_xy)
    label.SetSpacing(spacing_xy)
    result = featureextractor.RadiomicsFeatureExtractor(params).execute(image, label)
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


# ---------------------------------------------------------------- parameters
def test_shipped_params_are_the_documented_2d_choices():
    params = load_params()
    setting = params["setting"]
    assert setting["binWidth"] == 5 and setting["normalize"] is False
    assert setting["force2D"] is False and setting["label"] == 1 and setting["correctMask"] is False
    assert setting["minimumROIDimensions"] == 2 and setting["minimumROISize"] == 16
    assert set(params["imageType"]) == {"Original", "Wavelet", "LoG"}
    assert params["imageType"]["LoG"]["sigma"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    classes = params["featureClass"]
    assert set(classes) == {"firstorder", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm"}
    assert "shape" not in classes and "SumAverage" not in classes["glcm"]


def test_load_params_accepts_a_mapping_and_returns_a_copy():
    params = load_params(SMALL)
    params["setting"]["binWidth"] = 99
    assert SMALL["setting"]["binWidth"] == 5


def test_load_params_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")


def test_load_params_names_the_bad_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("setting:\n  binWidth: 5\n  binwidht: 3\n")
    with pytest.raises(ConfigError, match="binwidht"):
        load_params(path)
    path.write_text("setting:\n  binWidth: -1\n")
    with pytest.raises(ConfigError, match="binWidth"):
        load_params(path)
    path.write_text("imageType:\n  Wavelets: {}\n")
    with pytest.raises(ConfigError, match="Wavelets"):
        load_params(path)


def test_load_params_not_yaml_or_empty(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("setting: [unclosed\n")
    with pytest.raises(ConfigError, match="not readable YAML"):
        load_params(path)
    path.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_params(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_params(path)


def test_force2d_with_another_slice_axis_is_refused():
    with pytest.raises(ConfigError, match="force2Ddimension"):
        load_params({"setting": {"force2D": True, "force2Ddimension": 2}})


def test_params_hash_ignores_key_order_and_tracks_values():
    a = {"setting": {"binWidth": 5, "label": 1}, "imageType": {"Original": {}}}
    b = {"imageType": {"Original": {}}, "setting": {"label": 1, "binWidth": 5}}
    c = {"setting": {"binWidth": 10, "label": 1}, "imageType": {"Original": {}}}
    assert params_hash(a) == params_hash(b)
    assert params_hash(a) != params_hash(c)
    assert len(params_hash(a)) == 64


# ---------------------------------------------------------------- extraction
@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")  # pykwalify, in the direct call
def test_matches_a_direct_pyradiomics_call():
    pixels, mask = _lesion_case()
    ours = extract_case(_image(pixels), mask, SMALL, case_id="c1")
    direct = _direct_pyradiomics(pixels, mask, SMALL)
    assert list(ours) == list(direct)
    for name in ("original_firstorder_Mean", "original_shape2D_Elongation", "original_glcm_Contrast"):
        assert ours[name] == pytest.approx(direct[name], rel=1e-12)
    # and an independent known answer
    assert ours["original_firstorder_Mean"] == pytest.approx(pixels[mask].mean(), rel=1e-6)
    assert ours["original_shape2D_PixelSurface"] == pytest.approx(mask.sum())
    assert all(isinstance(v, float) for v in ours.values())


def test_spacing_is_row_col_in_mm():
    # 20 rows x 40 cols with 0.5 mm rows and 0.25 mm columns: a 10 mm x 10 mm square
    pixels = np.random.default_rng(1).uniform(0, 255, (40, 60)).astype(np.float32)
    mask = np.zeros(pixels.shape, bool)
    mask[10:30, 10:50] = True

    def elongation(row_mm, col_mm):  # sqrt of the ratio of the pixel-centre variances along each axis
        var_rows, var_cols = (20**2 - 1) / 12 * row_mm**2, (40**2 - 1) / 12 * col_mm**2
        return np.sqrt(min(var_rows, var_cols) / max(var_rows, var_cols))

    feats = extract_case(_image(pixels, spacing=(0.5, 0.25)), mask, SMALL)
    assert feats["original_shape2D_PixelSurface"] == pytest.approx(20 * 40 * 0.5 * 0.25)
    assert feats["original_shape2D_Elongation"] == pytest.approx(elongation(0.5, 0.25), rel=1e-9)  # 0.999
    swapped = extract_case(_image(pixels, spacing=(0.25, 0.5)), mask, SMALL)  # 5 mm x 20 mm
    assert swapped["original_shape2D_Elongation"] == pytest.approx(elongation(0.25, 0.5), rel=1e-9)  # 0.25


def test_default_params_give_over_400_named_features():
    pixels, mask = _lesion_case(shape=(280, 380), seed=2)
    feats = extract_case(_image(pixels), mask, case_id="real-size")
    assert len(feats) >= 400
    prefixes = {name.split("_")[0] for name in feats}
    assert prefixes == {"original", "wavelet-LL", "wavelet-LH", "wavelet-HL", "wavelet-HH"} | {
        f"log-sigma-{s}-0-mm-3D" for s in range(1, 6)
    }
    assert {name.split("_")[1] for name in feats} == {"firstorder", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm"}
    assert not any(name.startswith("diagnostics") for name in feats)
    assert np.isfinite(feats["wavelet-LH_glcm_SumEntropy"])


def test_wavelet_band_letters_are_columns_then_rows():
    # intensity changes only down the rows: the high-pass-along-rows band (second letter H) sees it
    pixels = np.tile(np.where(np.arange(48) % 4 < 2, 200.0, 20.0)[:, None], (1, 48)).astype(np.float32)
    mask = np.zeros(pixels.shape, bool)
    mask[8:40, 8:40] = True
    params = {"setting": {"binWidth": 5}, "imageType": {"Wavelet": {}}, "featureClass": {"firstorder": ["Variance"]}}
    feats = extract_case(_image(pixels), mask, params)
    assert feats["wavelet-LH_firstorder_Variance"] > 100
    assert feats["wavelet-HL_firstorder_Variance"] < 1e-6
    assert feats["wavelet-HH_firstorder_Variance"] < 1e-6


def test_force2d_params_use_a_one_slice_volume():
    pixels, mask = _lesion_case()
    as_volume = {**SMALL, "setting": {**SMALL["setting"], "force2D": True, "force2Ddimension": 0}}
    a = extract_case(_image(pixels), mask, SMALL)
    b = extract_case(_image(pixels), mask, as_volume)
    # same in-plane texture and shape either way
    for name in ("original_glcm_Contrast", "original_glcm_JointEntropy", "original_shape2D_Perimeter"):
        assert b[name] == pytest.approx(a[name], rel=1e-9)


def test_bad_inputs_raise_case_errors_naming_the_case():
    pixels, mask = _lesion_case()
    with pytest.raises(CaseError, match=r"case c7.*mask shape \(64, 63\)"):
        extract_case(_image(pixels), mask[:, :63], SMALL, case_id="c7")
    with pytest.raises(CaseError, match="case c8.*empty"):
        extract_case(_image(pixels), np.zeros_like(mask), SMALL, case_id="c8")
    tiny = np.zeros_like(mask)
    tiny[10:13, 10:13] = True  # 9 pixels < minimumROISize 16 of the shipped file
    with pytest.raises(CaseError, match="case c9.*PyRadiomics"):
        extract_case(_image(pixels), tiny, case_id="c9")
    with pytest.raises(TypeError, match="UltrasoundImage"):
        extract_case(pixels, mask, SMALL)


def test_bad_parameters_are_a_config_error_not_a_case_error():
    pixels, mask = _lesion_case()
    with pytest.raises(ConfigError, match="binwidth"):
        extract_case(_image(pixels), mask, {"setting": {"binwidth": 5}}, case_id="c1")


def test_integer_01_masks_are_accepted_and_others_refused():
    pixels, mask = _lesion_case()
    a = extract_case(_image(pixels), mask.astype(np.uint8), SMALL)
    assert a == extract_case(_image(pixels), mask, SMALL)
    with pytest.raises(CaseError, match="0/1"):
        extract_case(_image(pixels), mask.astype(np.uint8) * 255, SMALL, case_id="c1")


def test_radiomics_logger_level_is_restored():
    logger = logging.getLogger("radiomics")
    before = logger.level
    pixels, mask = _lesion_case()
    extract_case(_image(pixels), mask, SMALL)
    assert logger.level == before


# ---------------------------------------------------------------- the study's spacing rule
def _spaced(pixels, spacing, source="given"):
    return SimpleNamespace(pixels=np.asarray(pixels, dtype=np.float32), spacing=spacing,
                           meta={"spacing_source": source, "format": "png"})


def test_pixels_rule_ignores_every_spacing():
    from sonorad.features.radiomics import spacing_params

    pixels, mask = _lesion_case()
    params = spacing_params(SMALL, "pixels")
    at_mm = extract_case(_spaced(pixels, (0.1, 0.2)), mask, params)
    assert at_mm == extract_case(_image(pixels), mask, SMALL)
    assert at_mm["original_shape2D_PixelSurface"] == pytest.approx(mask.sum())


def test_resample_rule_puts_every_image_on_one_spacing():
    from sonorad.features.radiomics import spacing_params

    pixels, mask = _lesion_case((96, 96))
    params = spacing_params(SMALL, "resample", 0.2)
    direct = _direct_pyradiomics(pixels, mask, {**SMALL, "setting": {**SMALL["setting"],
                                 "resampledPixelSpacing": [0.2, 0.2], "interpolator": "sitkBSpline"}},
                                 spacing_xy=(0.1, 0.1))
    feats = extract_case(_spaced(pixels, (0.1, 0.1)), mask, params)
    assert feats == pytest.approx(direct, rel=1e-12)
    assert feats["original_shape2D_PixelSurface"] == pytest.approx(mask.sum() * 0.01, rel=0.05)  # in mm²
    # a lesion twice as large in pixels at half the pixel size is the same lesion in mm
    big = np.kron(pixels, np.ones((2, 2), np.float32)), np.kron(mask, np.ones((2, 2), bool))
    twice = extract_case(_spaced(big[0], (0.05, 0.05)), big[1], params)
    assert twice["original_shape2D_MajorAxisLength"] == pytest.approx(feats["original_shape2D_MajorAxisLength"],
                                                                       rel=0.03)
    # without the rule the two differ by the pixel size
    as_given = extract_case(_spaced(big[0], (1.0, 1.0)), big[1], SMALL)
    assert as_given["original_shape2D_MajorAxisLength"] > 5 * feats["original_shape2D_MajorAxisLength"]


def test_resample_rule_refuses_an_image_without_spacing():
    from sonorad.features.radiomics import spacing_params

    pixels, mask = _lesion_case()
    with pytest.raises(CaseError) as err:
        extract_case(_spaced(pixels, (1.0, 1.0), source="none"), mask, spacing_params(SMALL, "resample", 0.1),
                     case_id="c7")
    assert err.value.problem.case_id == "c7" and "no pixel spacing" in err.value.problem.message
    assert "spacing_mm" in err.value.problem.fix


def test_resample_rule_on_a_one_slice_volume():
    from sonorad.features.radiomics import spacing_params

    pixels, mask = _lesion_case()
    params = spacing_params({**SMALL, "setting": {**SMALL["setting"], "force2D": True}}, "resample", 0.2)
    assert params["setting"]["resampledPixelSpacing"] == [0.2, 0.2, 0.0]
    feats = extract_case(_spaced(pixels, (0.1, 0.1)), mask, params)
    assert feats["original_shape2D_PixelSurface"] == pytest.approx(mask.sum() * 0.01, rel=0.05)


def test_spacing_rule_in_parameters_and_their_hash():
    from sonorad.features.radiomics import spacing_params

    plain = load_params(SMALL)
    assert spacing_params(SMALL, None) == plain
    assert params_hash(spacing_params(None, None)) == params_hash(load_params())
    hashes = {params_hash(spacing_params(SMALL, *rule)) for rule in [(None,), ("pixels",), ("resample", 0.1),
                                                                       ("resample", 0.2)]}
    assert len(hashes) == 4
    kept = load_params(spacing_params(SMALL, "resample", 0.1))
    assert kept["sonorad"] == {"spacing": "resample", "spacing_mm": 0.1}
    with pytest.raises(ConfigError, match="sonorad"):
        load_params({**SMALL, "sonorad": {"spacing": "millimetres"}})
    with pytest.raises(ConfigError, match="features.spacing"):
        spacing_params(SMALL, "resample", None)


def test_a_parameter_file_with_an_alias_bomb_is_refused_quickly(tmp_path):
    import time

    lines = ['  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "params.yaml"
    path.write_text("setting:\n  binWidth: 25\nvoxelSetting:\n" + "\n".join(lines) + "\n")
    start = time.monotonic()
    with pytest.raises(ConfigError, match="voxelSetting") as info:
        load_params(path)
    assert time.monotonic() - start < 5
    assert "Fix: write the settings out plainly" in str(info.value)


# ---------------------------------------------------------------- the extractor, built once
@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")  # pykwalify, in the direct call
def test_extractor_is_built_once_per_parameter_set_and_shared_by_threads(monkeypatch):
    """Building a PyRadiomics extractor validates its parameters (tens of milliseconds); a calculator
    scores one case at a time, so the extractor of a parameter set is kept. Reusing it, from several
    threads at once, gives exactly the values of a freshly built one."""
    from concurrent.futures import ThreadPoolExecutor

    from radiomics import featureextractor

    built = []
    real = featureextractor.RadiomicsFeatureExtractor

    class Counting(real):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(featureextractor, "RadiomicsFeatureExtractor", Counting)
    params = {**SMALL, "setting": {**SMALL["setting"], "binWidth": 7}}  # a set no other test used
    cases = [_lesion_case(seed=s) for s in (3, 4, 5, 6)]
    with ThreadPoolExecutor(4) as pool:
        ours = list(pool.map(lambda c: extract_case(_image(c[0]), c[1], params), cases * 2))
    assert len(built) == 1
    monkeypatch.setattr(featureextractor, "RadiomicsFeatureExtractor", real)
    for (pixels, mask), feats in zip(cases * 2, ours):
        assert feats == _direct_pyradiomics(pixels, mask, params)  # bit-identical, not approximately


def test_prepare_builds_the_extractor_before_the_first_case(monkeypatch):
    from radiomics import featureextractor

    from sonorad.features.radiomics import prepare

    params = {**SMALL, "setting": {**SMALL["setting"], "binWidth": 9}}  # a set no other test used
    prepare(params)
    monkeypatch.setattr(featureextractor, "RadiomicsFeatureExtractor",
                        lambda *a, **k: pytest.fail("the extractor was built again"))
    pixels, mask = _lesion_case(seed=7)
    assert extract_case(_image(pixels), mask, params)["original_shape2D_PixelSurface"] == mask.sum()
