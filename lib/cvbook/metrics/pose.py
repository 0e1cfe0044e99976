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

from collections.abc import Sequence

import torch

from cvbook.core.validate import Shapes, check_choice, check_int, check_tensor

__all__ = ["best_flip", "canonical_consistency", "compose_depth", "depth_metrics",
           "global_flip", "group_mean", "mpjpe", "pose_errors", "stress"]

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
        means over the samples (0-dim tensors) of :func:`mpjpe` as predicted
        (``"mpjpe_orig"``, also under its old name ``"mpjpe"``) and with the per-sample
        best of the depth flip (``"mpjpe_best"``), of :func:`stress` (``"stress"``), and
        the fraction of samples whose depth reflection is the closer one
        (``"flipped_fraction"``).
    """
    s = Shapes()
    s.check(gt, "gt", "N K 3", floating=True)
    s.check(depth, "depth", "N K", floating=True)
    P = torch.cat([gt[..., :2], depth[..., None].to(gt.dtype)], -1)
    e, ef = _mpjpe(P, gt, "none"), _mpjpe(P, gt, "flipped")
    return {"mpjpe": e.mean(), "mpjpe_orig": e.mean(), "mpjpe_best": torch.minimum(e, ef).mean(),
            "stress": _stress(P, gt).mean(), "flipped_fraction": (ef < e).to(gt.dtype).mean()}


def pose_errors(pred: torch.Tensor, gt: torch.Tensor, *, root: int | None = None,
                scale: torch.Tensor | float | None = None) -> dict[str, torch.Tensor]:
    """The official evaluation of C3DPO per sample (``calc_3d_errs`` of the release's
    ``dataset/eval_zoo.py``): predicted points ``pred`` and ground truth ``gt``, both
    ``(N, K, 3)`` in the camera frame (depth last).

    * ``root`` given (Human3.6M: the hip, joint 0): both shapes are translated so that
      joint ``root`` is at the origin (the release subtracts it from the prediction and
      stores a hip-centred ground truth); ``root=None`` (PASCAL3D+, Up3D): only the mean
      depth of each shape is set to 0.
    * ``mpjpe_orig``: mean over joints of ``||p_k - g_k||``; ``mpjpe_flip``: the same for
      the depth reflection ``z -> -z`` of the (centred) prediction; ``mpjpe_best``: their
      per-sample minimum; ``stress``: mean over pairs ``i < j`` of
      ``| ||p_i - p_j|| - ||g_i - g_j|| |`` (invariant to rotations and reflections).
    * ``scale`` ``(N,)`` or a number multiplies every error (Human3.6M: the per-sample
      factor to millimetres, ``h36m_info["scale"]``).

    Returns:
        ``{"mpjpe_orig", "mpjpe_flip", "mpjpe_best", "stress"}``, each ``(N,)``.

    >>> gt = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 2.0]]])
    >>> e = pose_errors(gt * torch.tensor([1.0, 1.0, -1.0]), gt, root=0, scale=10.0)
    >>> [round(float(e[k][0]), 3) for k in ("mpjpe_orig", "mpjpe_best", "stress")]
    [20.0, 0.0, 0.0]
    """
    s = Shapes()
    pred = s.check(pred, "pred", "N K 3", floating=True)
    gt = s.check(gt, "gt", "N K 3", floating=True)
    if root is not None:
        root = check_int(root, "root", min_value=0, max_value=s["K"] - 1)
        pred = pred - pred[:, root:root + 1]
        gt = gt - gt[:, root:root + 1]
    else:
        zero = pred.new_tensor([0.0, 0.0, 1.0])
        pred = pred - pred.mean(1, keepdim=True) * zero
        gt = gt - gt.mean(1, keepdim=True) * zero
    e = (pred - gt).norm(dim=-1).mean(-1)
    ef = (pred * pred.new_tensor(_FLIP) - gt).norm(dim=-1).mean(-1)
    out = {"mpjpe_orig": e, "mpjpe_flip": ef, "mpjpe_best": torch.minimum(e, ef),
           "stress": _stress(pred, gt)}
    if scale is not None:
        sc = torch.as_tensor(scale, dtype=pred.dtype, device=pred.device)
        if sc.ndim not in (0, 1) or (sc.ndim == 1 and sc.shape[0] != s["N"]):
            raise ValueError(f"scale must be a number or have shape (N,) with N = {s['N']} "
                             f"as in pred; got {tuple(sc.shape)}")
        out = {k: v * sc for k, v in out.items()}
    return out


def group_mean(values: torch.Tensor, groups: Sequence[object] | torch.Tensor
               ) -> tuple[torch.Tensor, dict[object, torch.Tensor]]:
    """Mean per group, then the mean of the group means (the official Human3.6M number
    averages over the 15 actions, PASCAL3D+'s over the 12 classes).

    Args:
        values: ``(N,)`` per-sample errors.
        groups: ``N`` labels (action names, class indices).

    Returns:
        ``(mean over groups, {group: mean of its samples})`` (groups in first-seen order).

    >>> group_mean(torch.tensor([1.0, 3.0, 10.0]), ["a", "a", "b"])[0]
    tensor(6.)
    """
    values = check_tensor(values, "values", ndim=1, floating=True)
    labels = groups.tolist() if isinstance(groups, torch.Tensor) else list(groups)
    if len(labels) != values.shape[0]:
        raise ValueError(f"groups must hold N = {values.shape[0]} labels as in values; got "
                         f"{len(labels)}")
    if not labels:
        raise ValueError("values must hold at least one sample")
    index: dict[object, int] = {}
    idx = torch.tensor([index.setdefault(g, len(index)) for g in labels], device=values.device)
    sums = torch.zeros(len(index), dtype=values.dtype, device=values.device).index_add_(
        0, idx, values)
    counts = torch.bincount(idx, minlength=len(index)).to(values.dtype)
    means = sums / counts
    return means.mean(), dict(zip(index, means))


def global_flip(depth: torch.Tensor, gt: torch.Tensor) -> float:
    """One depth sign for a whole method, chosen on (training) samples with ground truth:
    ``-1.0`` when reflecting every prediction lowers the mean MPJPE of ``depth``
    ``(N, K)`` (on ``gt``'s ``x, y``) against ``gt`` ``(N, K, 3)``, else ``+1.0``.

    Orthographic data cannot tell a whole reconstruction from its mirror image, so one
    global sign is a fair (one bit of supervision) fix; the per-sample best of the flip
    (``mpjpe_best``) is an oracle that also repairs samples whose sign is wrong.

    >>> gt = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.0, -1.0]]])
    >>> global_flip(-gt[..., 2], gt)
    -1.0
    """
    s = Shapes()
    s.check(gt, "gt", "N K 3", floating=True)
    s.check(depth, "depth", "N K", floating=True)
    P = torch.cat([gt[..., :2], depth[..., None].to(gt.dtype)], -1)
    keep = _mpjpe(P, gt, "none").mean() <= _mpjpe(P, gt, "flipped").mean()
    return 1.0 if bool(keep) else -1.0


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
