"""The segmentation network's prediction: mirror averaging (``lesion_probability``)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def net():
    from sonorad.segment.model import build_segmenter_net

    torch.manual_seed(0)
    return build_segmenter_net("efficientnet_lite0", weights=None).eval()


@pytest.fixture(scope="module")
def crops():
    return torch.rand((2, 1, 32, 32), generator=torch.Generator().manual_seed(1))


def test_mirror_average_is_the_mean_of_both_views(net, crops):
    from sonorad.segment.model import lesion_probability

    with torch.inference_mode():
        plain = net(crops).sigmoid()
        mirrored_back = net(crops.flip(-1)).sigmoid().flip(-1)
    assert torch.allclose(lesion_probability(net, crops, False), plain)
    assert torch.allclose(lesion_probability(net, crops, True), 0.5 * (plain + mirrored_back), atol=1e-6)


def test_a_mirrored_crop_gets_the_mirrored_map_only_with_mirror_averaging(net, crops):
    from sonorad.segment.model import lesion_probability

    averaged = lesion_probability(net, crops, True)
    assert torch.allclose(lesion_probability(net, crops.flip(-1), True), averaged.flip(-1), atol=1e-6)
    # The network alone is not mirror-symmetric, so the check above is not true by construction.
    assert not torch.allclose(lesion_probability(net, crops.flip(-1), False),
                              lesion_probability(net, crops, False).flip(-1), atol=1e-4)


def test_segmenters_saved_before_mirror_averaging_predict_as_they_did(net, crops):
    from sonorad.segment.model import Segmenter, lesion_probability

    old = Segmenter(net, {"image_size": 32, "margin": 0.2, "encoder": "efficientnet_lite0"})
    new = Segmenter(net, {"image_size": 32, "margin": 0.2, "encoder": "efficientnet_lite0", "mirror_average": True})
    assert not old.mirror_average and new.mirror_average
    assert torch.allclose(old.probabilities(crops), lesion_probability(net, crops, False))
    assert torch.allclose(new.probabilities(crops), lesion_probability(net, crops, True))
