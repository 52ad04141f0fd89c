"""Grad-CAM: a model trained where the lesion carries the signal looks at the lesion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sonorad.deep.finetune import finetune
from sonorad.explain.gradcam import gradcam, gradcam_crop, save_overlay


def test_gradcam_mass_is_higher_inside_the_lesion(make_images):
    # Full images (not crops): the lesion covers ~10 % of the frame and the focal signal lives in it.
    images, masks, y, patient = make_images(80, size=48, seed=2, signal=0.6, equalize=False)
    result = finetune("small_cnn", list(images[:50]), y[:50], groups=patient[:50], weights=None,
                      input_size=48, epochs=8, batch_size=8, lr=3e-3, patience=5, random_state=0,
                      augment=False)
    ratios = []
    for i in np.flatnonzero(y[50:] == 1) + 50:
        heat = gradcam_crop(result.model, images[i])
        assert heat.shape == images[i].shape and 0 <= heat.min() and heat.max() <= 1
        inside, outside = heat[masks[i]].mean(), heat[~masks[i]].mean()
        ratios.append(inside / max(outside, 1e-9))
    assert np.median(ratios) > 1.5
    assert np.mean(np.array(ratios) > 1) >= 0.8


def test_gradcam_input_checks_and_zero_map():
    torch.manual_seed(0)
    from sonorad.deep.backbones import load_backbone

    net = load_backbone("small_cnn", weights=None)
    with pytest.raises(ValueError, match="must have shape"):
        gradcam(net, torch.zeros(2, 3, 16, 16))
    with torch.no_grad():
        net.head[1].weight.zero_()  # no location can raise the score
    heat = gradcam(net, torch.randn(3, 32, 32))
    assert heat.shape == (32, 32) and not heat.any()
    assert not net.training


def test_save_overlay_writes_a_png(tmp_path):
    from PIL import Image

    image = np.random.default_rng(0).uniform(0, 255, (30, 40))
    mask = np.zeros((30, 40), bool)
    mask[10:20, 10:25] = True
    path = save_overlay(image, mask, np.random.default_rng(1).uniform(0, 1, (8, 8)), tmp_path / "c1.png",
                        title="c1")
    with Image.open(path) as im:
        assert im.size[0] == 400 and im.size[1] == 300


def test_save_gradcams_per_case(png_cohort, tmp_path):
    from sonorad.deep.backbones import load_backbone
    from sonorad.explain.gradcam import save_gradcams

    table = png_cohort.iloc[:3].copy()
    table.loc["c01", "mask"] = "/nonexistent/mask.png"
    saved, failures = save_gradcams(load_backbone("small_cnn", weights=None), table, tmp_path / "cams")
    assert list(saved.index) == ["c00", "c02"]
    assert all((tmp_path / "cams" / f"{c}.png").is_file() for c in saved.index)
    assert failures["case_id"].tolist() == ["c01"] and failures["stage"].tolist() == ["gradcam"]
