"""Transfer learning on the training cohort: fine-tuning, the DL model, backbone comparison.

Fine-tuning recipe (:func:`finetune`): ultrasound-suited augmentation (horizontal flip, small
rotation / scale / shift, gain and contrast jitter, multiplicative speckle-like noise; no vertical
flip, because depth runs top to bottom in every ultrasound image), by default followed by the
imitation of another scanner (:func:`scanner_shift_batch`), a class-weighted loss, AdamW
with a smaller learning rate for pretrained layers than for the new head, and early stopping on
the AUC (or loss) of a patient-grouped, stratified inner validation split carved out of the training cases.
Everything random is drawn from generators seeded with ``random_state``; on the CPU two runs give
identical weights.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import roc_auc_score
from sklearn.utils.validation import check_is_fitted

from sonorad.deep._runtime import deterministic, resolve_device
from sonorad.deep.backbones import Backbone, load_backbone
from sonorad.deep.inputs import collect_crops, groups_of, normalize, resize_gray
from sonorad.errors import SonoradError


@dataclass
class FineTuneResult:
    """Outcome of :func:`finetune`.

    Attributes
    ----------
    model : Backbone
        The network at its best validation epoch, in eval mode, on the CPU.
    history : DataFrame
        One row per epoch: ``epoch, train_loss, val_loss, val_auc, seconds``.
    best_epoch : int
        Epoch (1-based) whose weights were kept.
    train_index, val_index : ndarray
        Positions of the cases used to train and for early stopping.
    """

    model: Backbone
    history: pd.DataFrame
    best_epoch: int
    train_index: np.ndarray = field(repr=False)
    val_index: np.ndarray = field(repr=False)

    @property
    def seconds_per_epoch(self) -> float:
        """Mean wall-clock seconds of one epoch (training pass plus validation)."""
        return float(self.history["seconds"].mean())


def augment_batch(gray: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random ultrasound-suited augmentation of a gray batch (N, 1, S, S) in [0, 1].

    Horizontal flip (p = 0.5), rotation within +-10 degrees, scale 0.9-1.1, shift within +-6 % of
    the side, gain 0.8-1.2, gamma 0.8-1.25 and multiplicative noise (sd 0.05). All draws come from
    ``generator``.
    """
    n = gray.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    angle = torch.deg2rad(uniform(-10.0, 10.0))
    scale = uniform(0.9, 1.1)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    tx, ty = uniform(-0.12, 0.12), uniform(-0.12, 0.12)  # affine_grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    )
    grid = torch.nn.functional.affine_grid(theta, list(gray.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(gray, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    gain = uniform(0.8, 1.2).view(n, 1, 1, 1)
    gamma = torch.exp(uniform(np.log(0.8), np.log(1.25))).view(n, 1, 1, 1)
    noise = 1.0 + 0.05 * torch.randn(out.shape, generator=generator)
    return (out.clamp(0.0, 1.0) ** gamma * gain * noise).clamp(0.0, 1.0)


def scanner_shift_batch(gray: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random imitation of another scanner's image formation, per image of a batch (N, 1, S, S) in [0, 1].

    Each draw stands for a setting that differs between machines and operators:

    - dynamic range (log compression): ``log1p(c x) / log1p(c)`` or its inverse
      ``expm1(c x) / expm1(c)``, ``c`` uniform in 0-1.5 (0 leaves the image as it is);
    - overall gain: an offset uniform in +-0.08 (the display is log-compressed, so gain adds);
    - time-gain compensation: brightness ``exp(a (r - 1/2))`` along the depth ``r`` (top 0 to
      bottom 1), ``a`` uniform in +-0.6;
    - lateral/axial resolution: with probability 0.5 the image is shrunk by a factor uniform in
      1-2.5 (area average) and enlarged back (bilinear);
    - speckle: multiplicative noise ``1 + s n``, ``n`` standard normal on a grid of 1-3 pixel grains
      (enlarged to the image, nearest), ``s`` uniform in 0-0.15.

    All draws come from ``generator``; the result is clipped to [0, 1]. Applied after
    :func:`augment_batch` when fine-tuning with ``augment="scanner_shift"`` (the default).
    """
    n, _, h, w = gray.shape
    fn = torch.nn.functional

    def uniform(lo: float, hi: float, shape=(n,)) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=generator)

    c = uniform(0.0, 1.5).view(n, 1, 1, 1) + 1e-6
    compress = (torch.rand(n, generator=generator) < 0.5).view(n, 1, 1, 1)
    out = torch.where(compress, torch.log1p(c * gray) / torch.log1p(c), torch.expm1(c * gray) / torch.expm1(c))
    out = out + uniform(-0.08, 0.08).view(n, 1, 1, 1)
    depth = torch.linspace(0.0, 1.0, h).view(1, 1, h, 1) - 0.5
    out = out * torch.exp(uniform(-0.6, 0.6).view(n, 1, 1, 1) * depth)
    blur = torch.rand(n, generator=generator) < 0.5
    factor = uniform(1.0, 2.5)
    grain = torch.randint(1, 4, (n,), generator=generator)
    sd = uniform(0.0, 0.15)
    images = []
    for i in range(n):
        x = out[i : i + 1]
        if blur[i]:
            small = (max(2, round(h / float(factor[i]))), max(2, round(w / float(factor[i]))))
            x = fn.interpolate(fn.interpolate(x, size=small, mode="area"), size=(h, w), mode="bilinear",
                               align_corners=False)
        g = int(grain[i])
        noise = torch.randn((1, 1, -(-h // g), -(-w // g)), generator=generator)
        noise = fn.interpolate(noise, scale_factor=g, mode="nearest")[..., :h, :w]
        images.append(x * (1.0 + float(sd[i]) * noise))
    return torch.cat(images).clamp(0.0, 1.0)


def is_augment(value) -> bool:
    """Whether ``value`` is an ``augment`` setting of :func:`finetune`: ``True``, ``False`` or ``"scanner_shift"``."""
    return isinstance(value, bool) or value == "scanner_shift"


def _augmenter(augment):
    """The batch transform of an ``augment`` value (None for no augmentation)."""
    if not is_augment(augment):
        raise SonoradError(f"augment must be true, false or 'scanner_shift', got {augment!r}")
    if augment == "scanner_shift":
        return lambda gray, gen: scanner_shift_batch(augment_batch(gray, gen), gen)
    return augment_batch if augment else None


def inner_split(
    y: np.ndarray, groups: np.ndarray | None, val_fraction: float, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """Patient-grouped, stratified train/validation split of the training cases.

    Uses the first fold of ``StratifiedGroupKFold(round(1 / val_fraction))``; no patient is on
    both sides. Raises :class:`SonoradError` when a side would lack one of the classes.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0.0 < val_fraction < 0.5:
        raise SonoradError(f"val_fraction must be in (0, 0.5), got {val_fraction}")
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    n_splits = max(2, int(round(1.0 / val_fraction)))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    try:
        train, val = next(splitter.split(np.zeros(len(y)), y, groups))
    except ValueError:  # a class with fewer members than folds
        train = val = np.zeros(0, dtype=int)
    if len(np.unique(y[train])) < 2 or len(np.unique(y[val])) < 2:
        raise SonoradError(
            f"cannot make a patient-grouped validation split with both classes from {len(y)} cases "
            f"({int(y.sum())} positive); use more training cases or a larger val_fraction"
        )
    return train, val


def _binary_labels(y) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    classes = np.unique(y)
    if len(classes) != 2:
        raise SonoradError(f"y must have exactly two classes, got {len(classes)}: {classes[:5].tolist()}")
    return classes, (y == classes[1]).astype(np.float32)


def _param_groups(net: Backbone, lr: float, pretrained: bool) -> list[dict]:
    # Pretrained layers move slowly (lr / 10) so fine-tuning adapts rather than erases them.
    trunk_lr = lr / 10.0 if pretrained else lr
    return [
        {"params": [p for p in net.trunk.parameters() if p.requires_grad], "lr": trunk_lr},
        {"params": list(net.pool.parameters()) + list(net.head.parameters()), "lr": lr},
    ]


def _logits(net: Backbone, gray: torch.Tensor, dev: torch.device, batch_size: int) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for start in range(0, len(gray), batch_size):
            x = normalize(gray[start : start + batch_size].to(dev), net.spec.mean, net.spec.std)
            out.append(net(x.contiguous(memory_format=torch.channels_last)).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def _improved(monitor: str, auc: float, loss: float, best_auc: float, best_loss: float) -> bool:
    if monitor == "loss":
        return loss < best_loss - 1e-6
    # AUC saturates on small validation sets, so equal AUCs are ranked by loss.
    return auc > best_auc + 1e-9 or (abs(auc - best_auc) <= 1e-9 and loss < best_loss - 1e-6)


def finetune(
    backbone: str,
    crops: Sequence[np.ndarray],
    y,
    *,
    groups=None,
    weights="default",
    input_size: int | None = None,
    epochs: int = 10,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    patience: int = 3,
    val_fraction: float = 0.2,
    monitor: str = "auc",
    augment: bool | str = "scanner_shift",
    random_state: int = 0,
    device=None,
    progress: bool = False,
) -> FineTuneResult:
    """Fine-tune ``backbone`` with a one-logit head on training crops.

    Parameters
    ----------
    backbone : str
        Registry name.
    crops : sequence of ndarray (H, W) in [0, 1]
        Lesion crops of the training cases only.
    y : array-like of shape (n,)
        Binary labels; the larger value is the positive class.
    groups : array-like of shape (n,), optional
        Patient ids: the inner validation split never separates a patient's images.
    weights : {"default", "random", None} or path
        Starting weights (see :func:`sonorad.deep.backbones.load_backbone`).
    input_size : int, optional
        Network input side; default the backbone's own.
    epochs, batch_size, lr, weight_decay : training settings (AdamW).
    patience : int
        Stop after this many epochs without improvement of the monitored validation metric.
    val_fraction : float
        Share of patients held out for early stopping.
    monitor : {"auc", "loss"}
        Early-stopping metric on the inner validation split: AUC (ties broken by the lower
        loss; robust to the over-confidence of small validation sets) or the class-weighted loss.
    augment : {"scanner_shift", True, False}
        ``"scanner_shift"`` (default): apply :func:`augment_batch`, then :func:`scanner_shift_batch`
        (dynamic range, gain, time-gain compensation, resolution, speckle) to training batches;
        ``True``: :func:`augment_batch` only (the recipe before scanner shift was added);
        ``False``: no augmentation. The default was chosen by leave-one-scanner-out AUC on the
        breast-ultrasound benchmark (``docs/modeling.md``, *Site robustness*).
    random_state : int
        Seeds initialisation, the split, the batch order, augmentation and dropout.
    device : str, optional
        Default CUDA when present, else CPU (deterministic on the CPU).
    progress : bool
        Print one line per epoch.

    Returns
    -------
    FineTuneResult
    """
    if len(crops) != len(y):
        raise SonoradError(f"{len(crops)} crops but {len(y)} labels")
    if monitor not in ("auc", "loss"):
        raise SonoradError(f"monitor must be 'auc' or 'loss', got {monitor!r}")
    if epochs < 1 or patience < 1 or batch_size < 2:
        raise SonoradError(
            f"need epochs >= 1, patience >= 1 and batch_size >= 2; got {epochs}, {patience}, {batch_size}"
        )
    transform = _augmenter(augment)
    _, target = _binary_labels(y)
    train_idx, val_idx = inner_split(target.astype(int), groups, val_fraction, random_state)
    dev = resolve_device(device)

    with deterministic(random_state) as gen:
        net = load_backbone(backbone, weights)
        size = int(input_size or net.input_size)
        pretrained = net.weights_id != "random"
        gray = resize_gray(crops, size)
        t = torch.from_numpy(target)
        n_pos = float(target[train_idx].sum())
        pos_weight = torch.tensor((len(train_idx) - n_pos) / max(n_pos, 1.0), device=dev)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        # channels-last: 2-3x faster convolutions on CPU (oneDNN) and on tensor-core GPUs.
        net = net.to(dev, memory_format=torch.channels_last)
        opt = torch.optim.AdamW(_param_groups(net, lr, pretrained), weight_decay=weight_decay)

        best_auc, best_loss, best_state, best_epoch, stale = -np.inf, np.inf, copy.deepcopy(net.state_dict()), 0, 0
        history = []
        train_t = torch.as_tensor(train_idx)
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            net.train()
            order = train_t[torch.randperm(len(train_t), generator=gen)]
            total = 0.0
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size]
                if len(idx) < 2:  # BatchNorm cannot train on a single image
                    continue
                xb = transform(gray[idx], gen) if transform else gray[idx]
                xb = normalize(xb.to(dev), net.spec.mean, net.spec.std).contiguous(memory_format=torch.channels_last)
                loss = loss_fn(net(xb), t[idx].to(dev))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            net.eval()
            val_logits = _logits(net, gray[val_idx], dev, batch_size)
            val_loss = float(torch.nn.functional.binary_cross_entropy_with_logits(
                val_logits, t[val_idx], pos_weight=pos_weight.cpu()))
            val_auc = float(roc_auc_score(target[val_idx], val_logits.numpy()))
            history.append({
                "epoch": epoch, "train_loss": total / max(len(order), 1), "val_loss": val_loss,
                "val_auc": val_auc, "seconds": time.perf_counter() - start,
            })
            if progress:
                print(f"{backbone} epoch {epoch}: train loss {history[-1]['train_loss']:.4f}, "
                      f"val loss {val_loss:.4f}, val AUC {val_auc:.3f}")
            if _improved(monitor, val_auc, val_loss, best_auc, best_loss):
                best_auc, best_loss, best_epoch, stale = val_auc, val_loss, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                stale += 1
                if stale >= patience:
                    break
        net.load_state_dict(best_state)
        net.input_size = size
    return FineTuneResult(net.cpu().eval(), pd.DataFrame(history), best_epoch, train_idx, val_idx)


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """The fine-tuned CNN's own probability as a model (the "DL model").

    Parameters
    ----------
    backbone : str, default "efficientnet_lite0"
    weights : {"default", "random", None} or path, default "default"
    margin, mask_background : crop settings (see :func:`sonorad.deep.inputs.roi_crop`).
    input_size : int, optional
    epochs, batch_size, lr, patience, val_fraction, augment : see :func:`finetune`.
    random_state : int, default 0
    device : str, optional

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    model_ : Backbone
    history_ : DataFrame
    best_epoch_ : int

    Notes
    -----
    ``X`` is a cohort DataFrame (``image``, ``mask``, optional ``patient_id``) or crops (N, H, W).
    """

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        weights="default",
        margin: float = 0.1,
        mask_background: bool = False,
        input_size: int | None = None,
        epochs: int = 10,
        batch_size: int = 16,
        lr: float = 1e-3,
        patience: int = 3,
        val_fraction: float = 0.2,
        augment: bool | str = "scanner_shift",
        random_state: int = 0,
        device=None,
    ):
        self.backbone = backbone
        self.weights = weights
        self.margin = margin
        self.mask_background = mask_background
        self.input_size = input_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.augment = augment
        self.random_state = random_state
        self.device = device

    def fit(self, X, y, groups=None):
        """Fine-tune on the training cases ``X`` with labels ``y``."""
        self.classes_, _ = _binary_labels(y)
        result = finetune(
            self.backbone, collect_crops(X, margin=self.margin, mask_background=self.mask_background),
            np.asarray(y), groups=groups_of(X, groups), weights=self.weights, input_size=self.input_size,
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, patience=self.patience,
            val_fraction=self.val_fraction, augment=self.augment, random_state=self.random_state,
            device=self.device,
        )
        self.model_, self.history_, self.best_epoch_ = result.model, result.history, result.best_epoch
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logit of the positive class, shape (n,)."""
        check_is_fitted(self, "model_")
        crops = collect_crops(X, margin=self.margin, mask_background=self.mask_background)
        gray = resize_gray(crops, int(self.input_size or self.model_.input_size))
        dev = resolve_device(self.device)
        logits = _logits(self.model_.to(dev).eval(), gray, dev, self.batch_size)
        self.model_.cpu()
        return logits.double().numpy()

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, shape (n, 2); column 1 is ``classes_[1]``."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """Class with probability >= 0.5."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


@dataclass
class BackboneComparison:
    """Inner-cross-validation AUC of several fine-tuned backbones on the training cohort.

    Attributes
    ----------
    fold_auc : DataFrame
        One row per backbone, one column per fold.
    best : str
        Backbone with the highest mean AUC (first in the given order on ties).
    n_splits : int
    """

    fold_auc: pd.DataFrame
    best: str
    n_splits: int

    def to_frame(self) -> pd.DataFrame:
        """``backbone, auc_mean, auc_sd, fold_1..fold_k`` sorted by decreasing mean AUC."""
        out = pd.DataFrame({
            "auc_mean": self.fold_auc.mean(axis=1),
            "auc_sd": self.fold_auc.std(axis=1, ddof=1),
        })
        out = out.join(self.fold_auc.add_prefix("fold_"))
        return out.sort_values("auc_mean", ascending=False, kind="stable").rename_axis("backbone").reset_index()


def compare_backbones(
    X, y, backbones: Sequence[str], *, groups=None, n_splits: int = 3, random_state: int = 0, **classifier_params
) -> BackboneComparison:
    """Pick the backbone whose fine-tuned :class:`CNNClassifier` has the best grouped inner-CV AUC.

    Call it on the training cohort only; the external test set plays no part.

    Parameters
    ----------
    X, y : training cases and labels (see :class:`CNNClassifier`).
    backbones : sequence of str
    groups : array-like, optional
        Patient ids (default: ``X["patient_id"]`` when X is a DataFrame).
    n_splits : int
        Folds of ``StratifiedGroupKFold`` (same folds for every backbone).
    random_state : int
        Seeds the folds and every fine-tuning.
    **classifier_params
        Passed to :class:`CNNClassifier` (``epochs``, ``weights``, ``input_size``, ...).

    Returns
    -------
    BackboneComparison
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(y)
    if not backbones:
        raise SonoradError("compare_backbones needs at least one backbone")
    g = groups_of(X, groups)
    g = np.arange(len(y)) if g is None else g
    folds = list(StratifiedGroupKFold(n_splits, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y, g))
    take = (lambda idx: X.iloc[idx]) if isinstance(X, pd.DataFrame) else (lambda idx: [X[i] for i in idx])
    scores = {}
    for name in backbones:
        proto = CNNClassifier(backbone=name, random_state=random_state, **classifier_params)
        row = []
        for train, test in folds:
            model = clone(proto).fit(take(train), y[train], groups=g[train])
            row.append(roc_auc_score(y[test], model.decision_function(take(test))))
        scores[name] = row
    table = pd.DataFrame.from_dict(scores, orient="index", columns=[str(i + 1) for i in range(n_splits)])
    return BackboneComparison(table, str(table.mean(axis=1).idxmax()), n_splits)
