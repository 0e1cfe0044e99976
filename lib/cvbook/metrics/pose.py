"""3D pose metrics for non-rigid structure from motion (C3DPO protocol, Sec. 4).

No Procrustes alignment: the ``x, y`` coordinates of a prediction come from the 2D
input, only depth is predicted, so both shapes are simply centred. Orthographic
reconstructions are ambiguous up to a reflection of depth (``z -> -z``), hence the
"best of the flip" variant.

Example:
    >>> import torch
    >>> gt = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.0, -1.0]]])  # (N=1, K=2, 3)
    >>> mirrored = gt * torch.tensor([1.0, 1.0, -1.0])
    >>> mpjpe(mirrored, gt, flip="none"), mpjpe(mirrored, gt, flip="best")
    (tensor([2.]), tensor([0.]))
    >>> mpjpe(gt, gt[:, :1])
    Traceback (most recent call last):
        ...
    ValueError: gt must have shape (..., K, 3) with K = 2 as in pred (..., K, 3); got (1, 1, 3)
"""

from __future__ import annotations

import torch

from cvbook.core.validate import Shapes, check_choice, check_tensor

__all__ = ["best_flip", "canonical_consistency", "compose_depth", "depth_metrics", "mpjpe",
           "stress"]

_FLIP = (1.0, 1.0, -1.0)


def _pair(pred: object, gt: object) -> tuple[torch.Tensor, torch.Tensor]:
    s = Shapes()
    return (s.check(pred, "pred", "... K 3", floating=True),
            s.check(gt, "gt", "... K 3", floating=True))


def compose_depth(xy: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Points ``(..., K, 3)`` from input coordinates ``(..., K, 2)`` and predicted
    depths ``(..., K)``.

    >>> compose_depth(torch.zeros(4, 19, 2), torch.ones(4, 19)).shape
    torch.Size([4, 19, 3])
    """
    s = Shapes()
    s.check(depth, "depth", "... K", floating=True)
    s.check(xy, "xy", "... K 2", floating=True)
    return torch.cat([xy, depth[..., None]], -1)


def _mpjpe(p: torch.Tensor, g: torch.Tensor, flip: str) -> torch.Tensor:
    p = p - p.mean(-2, keepdim=True)
    g = g - g.mean(-2, keepdim=True)
    if flip == "flipped":
        p = p * p.new_tensor(_FLIP)
    e = (p - g).norm(dim=-1).mean(-1)
    if flip == "best":
        return torch.minimum(e, (p * p.new_tensor(_FLIP) - g).norm(dim=-1).mean(-1))
    return e


def mpjpe(pred: torch.Tensor, gt: torch.Tensor, *, flip: str = "best") -> torch.Tensor:
    """Mean per-joint position error of each sample, ``(..., K, 3)`` -> ``(...)``.

    Both shapes are centred on their mean point first.

    Args:
        flip: ``"none"`` (as predicted), ``"best"`` (per-sample minimum over the
            prediction and its depth reflection ``z -> -z``: MPJPE_best of the paper)
            or ``"flipped"`` (reflection only).
    """
    pred, gt = _pair(pred, gt)
    return _mpjpe(pred, gt, check_choice(flip, "flip", ("none", "best", "flipped")))


def _stress(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    K = pred.shape[-2]
    i, j = torch.triu_indices(K, K, 1, device=pred.device)
    dp = (pred[..., i, :] - pred[..., j, :]).norm(dim=-1)
    dg = (gt[..., i, :] - gt[..., j, :]).norm(dim=-1)
    return (dp - dg).abs().mean(-1)


def stress(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean over pairs ``i < j`` of ``| ||X_i - X_j|| - ||X^_i - X^_j|| |``, per sample,
    ``(..., K, 3)`` -> ``(...)``. Invariant to rotations and reflections."""
    pred, gt = _pair(pred, gt)
    if pred.shape[-2] < 2:
        raise ValueError("stress needs at least 2 points")
    return _stress(pred, gt)


def depth_metrics(depth: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """The C3DPO protocol for one method: its depths ``(N, K)`` composed with the
    ground truth's ``x, y`` (:func:`compose_depth`) against ``gt`` ``(N, K, 3)``.

    Returns:
        ``{"mpjpe": ..., "mpjpe_best": ..., "stress": ...}``: means over the samples
        (0-dim tensors) of :func:`mpjpe` without and with the depth flip and of
        :func:`stress`.
    """
    s = Shapes()
    s.check(gt, "gt", "N K 3", floating=True)
    s.check(depth, "depth", "N K", floating=True)
    P = torch.cat([gt[..., :2], depth[..., None].to(gt.dtype)], -1)
    return {"mpjpe": _mpjpe(P, gt, "none").mean(), "mpjpe_best": _mpjpe(P, gt, "best").mean(),
            "stress": _stress(P, gt).mean()}


def best_flip(depth: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """The prediction (depths ``(N, K)`` on the ground truth's ``x, y``) or its depth
    reflection, whichever is closer to ``gt`` ``(N, K, 3)`` in MPJPE: ``(N, K, 3)``
    points, for showing a reconstruction next to the ground truth."""
    s = Shapes()
    s.check(gt, "gt", "N K 3", floating=True)
    s.check(depth, "depth", "N K", floating=True)
    P = torch.cat([gt[..., :2], depth[..., None].to(gt.dtype)], -1)
    keep = _mpjpe(P, gt, "none") <= _mpjpe(P, gt, "flipped")
    return torch.where(keep[..., None, None], P, P * P.new_tensor(_FLIP))


def canonical_consistency(shapes: torch.Tensor) -> torch.Tensor:
    """Spread of the canonical shapes predicted for one instance seen from many views.

    Args:
        shapes: ``(..., V, K, 3)``: ``V`` canonical reconstructions of the same instance.

    Returns:
        ``(...)``: mean over views and points of the distance to the mean over views
        (0 when every view gives the same canonical shape). Shapes are centred first.
    """
    check_tensor(shapes, "shapes", shape="... V K 3", floating=True)
    s = shapes - shapes.mean(-2, keepdim=True)
    return (s - s.mean(-3, keepdim=True)).norm(dim=-1).mean((-1, -2))
