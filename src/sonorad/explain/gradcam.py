"""Grad-CAM heatmaps of the DL model, and overlays saved per case for the report.

Grad-CAM (Selvaraju et al., ICCV 2017): the feature map ``A`` of the last convolutional block is
weighted channel-wise by the spatial mean of the gradient of the score with respect to ``A``;
the heatmap is ``ReLU(sum_k w_k A_k)``, upsampled to the input and scaled to [0, 1]. The score is
the positive-class logit (or its negative for the negative class).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # torch is imported where a heatmap is computed, so importing this module stays light
    import torch

    from sonorad.deep.backbones import Backbone

__all__ = ["gradcam", "gradcam_crop", "save_overlay", "save_gradcams"]


def gradcam(model: Backbone, image: torch.Tensor, *, target: int = 1) -> np.ndarray:
    """Grad-CAM heatmap of one normalised input image.

    Parameters
    ----------
    model : Backbone
        A network with a ``trunk`` (hooked) and a one-logit head, e.g. a fine-tuned model.
    image : torch.Tensor, shape (3, S, S) or (1, 3, S, S)
        Input already normalised for ``model``.
    target : {1, 0}
        Explain the positive (1) or the negative (0) class.

    Returns
    -------
    ndarray of float32, shape (S, S), values in [0, 1]
        All zeros when no location increases the score.
    """
    import torch

    x = image.unsqueeze(0) if image.dim() == 3 else image
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"image must have shape (3, S, S) or (1, 3, S, S), got {tuple(image.shape)}")
    captured: dict[str, torch.Tensor] = {}
    handle = model.trunk.register_forward_hook(lambda _m, _i, out: captured.__setitem__("fmap", out))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().to(next(model.parameters()).device)
            logit = model(x)[0]
            score = logit if target == 1 else -logit
            (grad,) = torch.autograd.grad(score, captured["fmap"])
        fmap = captured["fmap"].detach()
        weights = grad.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * fmap).sum(dim=1, keepdim=True))
        cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    finally:
        handle.remove()
        model.train(was_training)
    peak = float(cam.max())
    return (cam / peak if peak > 0 else cam).clamp(0, 1).cpu().numpy().astype(np.float32)


def gradcam_crop(model: Backbone, crop: np.ndarray, *, input_size: int | None = None, target: int = 1) -> np.ndarray:
    """Grad-CAM of a gray crop in [0, 1], resized back to the crop's shape (H, W)."""
    import torch

    from sonorad.deep.inputs import normalize, resize_gray

    size = int(input_size or model.input_size)
    x = normalize(resize_gray([crop], size), model.spec.mean, model.spec.std)
    cam = torch.from_numpy(gradcam(model, x, target=target))[None, None]
    back = torch.nn.functional.interpolate(cam, size=crop.shape, mode="bilinear", align_corners=False)
    return back[0, 0].clamp(0, 1).numpy()


def save_overlay(
    image: np.ndarray,
    mask: np.ndarray | None,
    heatmap: np.ndarray,
    path: str | Path,
    *,
    alpha: float = 0.4,
    title: str | None = None,
) -> Path:
    """Save the image with the heatmap (jet colormap) and the lesion contour drawn over it.

    Parameters
    ----------
    image : ndarray (H, W)
        Gray image (any range).
    mask : ndarray of bool (H, W) or None
        Lesion mask, drawn as a contour.
    heatmap : ndarray (h, w) in [0, 1]
        Resized to (H, W) if needed.
    path : str or Path
        Output PNG.
    alpha : float
        Heatmap opacity.
    title : str, optional

    Returns
    -------
    Path
    """
    from matplotlib.figure import Figure  # no pyplot: a plain Figure draws on the Agg canvas

    image = np.asarray(image, dtype=np.float32)
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != image.shape:
        import torch

        t = torch.from_numpy(heat)[None, None]
        heat = torch.nn.functional.interpolate(t, size=image.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
    fig = Figure(figsize=(4, 4 * image.shape[0] / max(image.shape[1], 1)), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image, cmap="gray", interpolation="nearest")
    ax.imshow(heat, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0, interpolation="bilinear")
    if mask is not None and np.any(mask):
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="white", linewidths=1.0)
    if title:
        ax.text(0.02, 0.98, title, color="white", fontsize=9, va="top", transform=ax.transAxes)
    ax.set_axis_off()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def save_gradcams(
    model: Backbone,
    table: pd.DataFrame,
    out_dir: str | Path,
    *,
    margin: float = 0.1,
    mask_background: bool = False,
    input_size: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Grad-CAM overlay of every case of a cohort table, saved as ``out_dir/<case_id>.png``.

    The overlay shows the lesion crop the network saw, with the crop's mask contour.

    Returns
    -------
    saved : DataFrame
        Index ``case_id``, column ``path``.
    failures : DataFrame
        Columns ``case_id, stage, error, fix`` (stage ``gradcam``); bad cases are skipped.
    """
    from sonorad.deep.extractor import FAILURE_COLUMNS, _failure
    from sonorad.deep.inputs import case_crop_with_mask, case_ids

    out_dir = Path(out_dir)
    saved, failures = {}, []
    for cid, (_, row) in zip(case_ids(table), table.iterrows()):
        try:
            crop, crop_mask = case_crop_with_mask(row, cid, margin=margin, mask_background=mask_background)
            heat = gradcam_crop(model, crop, input_size=input_size)
            saved[cid] = str(save_overlay(crop, crop_mask, heat, out_dir / f"{cid}.png", title=str(cid)))
        except Exception as exc:  # noqa: BLE001 - one bad case never stops the others
            failures.append(_failure(cid, "gradcam", exc))
    return (
        pd.DataFrame({"path": pd.Series(saved, dtype=object)}).rename_axis("case_id"),
        pd.DataFrame(failures, columns=FAILURE_COLUMNS),
    )

