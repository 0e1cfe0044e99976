"""3D pose metrics for non-rigid structure from motion (C3DPO protocol, Sec. 4).

No Procrustes alignment: the ``x, y`` coordinates of a prediction come from the 2D
input, only depth is predicted, so both shapes are simply centred. Orthographic
reconstructions are ambiguous up to a reflection of depth (``z -> -z``), hence the
"best of the flip" variant.
"""

from __future__ import annotations

import torch

from cvbook.core._validate import check_choice, check_tensor

__all__ = ["canonical_consistency", "compose_depth", "mpjpe", "stress"]


def _pair(pred: object, gt: object) -> tuple[torch.Tensor, torch.Tensor]:
    pred = check_tensor(pred, "pred", floating=True)
    gt = check_tensor(gt, "gt", floating=True)
    if pred.ndim < 2 or pred.shape[-1] != 3:
        raise ValueError(f"pred must have shape (..., K, 3), got {tuple(pred.shape)}")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got {tuple(pred.shape)} "
                         f"and {tuple(gt.shape)}")
    return pred, gt


def compose_depth(xy: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Points ``(..., K, 3)`` from input coordinates ``(..., K, 2)`` and predicted
    depths ``(..., K)``."""
    check_tensor(xy, "xy", floating=True)
    check_tensor(depth, "depth", floating=True)
    if xy.shape[-1] != 2 or xy.shape[:-1] != depth.shape:
        raise ValueError(f"xy must be (..., K, 2) and depth (..., K), got {tuple(xy.shape)} "
                         f"and {tuple(depth.shape)}")
    return torch.cat([xy, depth[..., None]], -1)


def mpjpe(pred: torch.Tensor, gt: torch.Tensor, *, flip: str = "best") -> torch.Tensor:
    """Mean per-joint position error of each sample, ``(..., K, 3)`` -> ``(...)``.

    Both shapes are centred on their mean point first.

    Args:
        flip: ``"none"`` (as predicted), ``"best"`` (per-sample minimum over the
            prediction and its depth reflection ``z -> -z``: MPJPE_best of the paper)
            or ``"flipped"`` (reflection only).
    """
    pred, gt = _pair(pred, gt)
    flip = check_choice(flip, "flip", ("none", "best", "flipped"))
    p = pred - pred.mean(-2, keepdim=True)
    g = gt - gt.mean(-2, keepdim=True)
    sign = torch.tensor([1.0, 1.0, -1.0], dtype=p.dtype, device=p.device)
    e = (p - g).norm(dim=-1).mean(-1)
    ef = (p * sign - g).norm(dim=-1).mean(-1)
    if flip == "none":
        return e
    if flip == "flipped":
        return ef
    return torch.minimum(e, ef)


def stress(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean over pairs ``i < j`` of ``| ||X_i - X_j|| - ||X^_i - X^_j|| |``, per sample,
    ``(..., K, 3)`` -> ``(...)``. Invariant to rotations and reflections."""
    pred, gt = _pair(pred, gt)
    K = pred.shape[-2]
    if K < 2:
        raise ValueError("stress needs at least 2 points")
    i, j = torch.triu_indices(K, K, 1, device=pred.device)
    dp = (pred[..., i, :] - pred[..., j, :]).norm(dim=-1)
    dg = (gt[..., i, :] - gt[..., j, :]).norm(dim=-1)
    return (dp - dg).abs().mean(-1)


def canonical_consistency(shapes: torch.Tensor) -> torch.Tensor:
    """Spread of the canonical shapes predicted for one instance seen from many views.

    Args:
        shapes: ``(..., V, K, 3)``: ``V`` canonical reconstructions of the same instance.

    Returns:
        ``(...)``: mean over views and points of the distance to the mean over views
        (0 when every view gives the same canonical shape). Shapes are centred first.
    """
    check_tensor(shapes, "shapes", floating=True)
    if shapes.ndim < 3 or shapes.shape[-1] != 3:
        raise ValueError(f"shapes must have shape (..., V, K, 3), got {tuple(shapes.shape)}")
    s = shapes - shapes.mean(-2, keepdim=True)
    return (s - s.mean(-3, keepdim=True)).norm(dim=-1).mean((-1, -2))
