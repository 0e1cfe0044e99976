r"""DVE's evaluations: matching landmarks by nearest descriptor, and a landmark regressor
on frozen descriptors.

**Matching** (the official README's "same / different identity" errors). For a source
image with known landmarks and a target image: take the source descriptor at each
landmark (bilinear, on the feature grid), find the target feature cell of largest dot
product, and report the distance, in input pixels, between that cell's centre
(:func:`cvbook.dve.loss.feature_positions`) and the target's true landmark. "Same
identity": the target is a warped copy of the source; "different identity": another
person's face. The error has a floor: a cell's centre is up to ``stride / sqrt(2)`` from
the true point.

**Landmark regression** (Thewlis et al. 2017, DVE Sec. 4.2): with the descriptor network
frozen, :class:`cvbook.nn.heads.VirtualKeypointRegressor` learns 50 virtual keypoints per
landmark (1x1 filters, spatial softmax, soft-argmax) and a bias-free linear map to the
landmarks, by smooth-L1 in input pixels; the error is reported as %IOD
(:func:`cvbook.metrics.keypoints.iod_error`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cvbook.core.batched import batched_forward
from cvbook.core.validate import Shapes, check_float, check_int
from cvbook.dve.loss import feature_positions
from cvbook.geometry.coords import normalized_to_pixel
from cvbook.geometry.warp import sample_at
from cvbook.metrics.keypoints import iod_error
from cvbook.nn.heads import VirtualKeypointRegressor

__all__ = ["LandmarkRegressor", "describe", "fit_landmark_regressor", "iod_percent",
           "match_points", "matching_error"]


def describe(net: nn.Module, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """``(N, 3, H, W) -> (N, C, h, w)`` descriptors in eval mode, without gradients."""
    return batched_forward(net, images, batch_size=batch_size)


def match_points(source: torch.Tensor, target: torch.Tensor, points: torch.Tensor, *,
                 stride: int) -> torch.Tensor:
    """Where each source point's descriptor matches best in the target.

    Args:
        source, target: ``(B, C, h, w)`` descriptors.
        points: ``(B, K, 2)`` input-pixel ``(x, y)`` in the source images.
        stride: input pixels per feature cell.

    Returns:
        ``(B, K, 2)`` input-pixel centres of the best-matching target cells.
    """
    s = Shapes()
    s.check(source, "source", "B C h w", floating=True)
    s.check(target, "target", "B C h w", floating=True)
    s.check(points, "points", "B K 2", floating=True)
    stride = check_int(stride, "stride", min_value=1)
    return _match(source, target, points, stride)


def _match(source: torch.Tensor, target: torch.Tensor, points: torch.Tensor,
           stride: int) -> torch.Tensor:
    h, w = source.shape[-2:]
    desc = sample_at(source, (points + 0.5) / stride - 0.5)  # (B, K, C), feature pixels
    idx = torch.bmm(desc, target.flatten(2)).argmax(-1)  # (B, K)
    pos = feature_positions((h, w), stride, device=source.device, dtype=points.dtype)
    return pos[idx]


def matching_error(source: torch.Tensor, target: torch.Tensor, source_points: torch.Tensor,
                   target_points: torch.Tensor, *, stride: int) -> torch.Tensor:
    """``(B, K)`` pixel distances between the matches of the source points
    (:func:`match_points`) and the true target points ``(B, K, 2)``."""
    Shapes(B=source.shape[0]).check(target_points, "target_points", "B K 2", floating=True)
    return (match_points(source, target, source_points, stride=stride) - target_points).norm(dim=-1)


class LandmarkRegressor(nn.Module):
    """Frozen descriptors ``(B, C, h, w)`` -> landmarks ``(B, L, 2)`` in input pixels of an
    ``image_size`` image (the feature grid spans the image, so its normalised
    coordinates are the image's)."""

    def __init__(self, dim: int, num_landmarks: int, image_size: tuple[int, int], *,
                 per_landmark: int = 50) -> None:
        super().__init__()
        self.image_size = (check_int(image_size[0], "image_size[0]", min_value=1),
                           check_int(image_size[1], "image_size[1]", min_value=1))
        self.head = VirtualKeypointRegressor(dim, num_landmarks, per_landmark=per_landmark,
                                             normalized=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return normalized_to_pixel(self.head(features), self.image_size)


def fit_landmark_regressor(features: torch.Tensor, landmarks: torch.Tensor,
                           image_size: tuple[int, int], *, steps: int = 300,
                           batch_size: int = 64, lr: float = 1e-2, per_landmark: int = 50,
                           generator: torch.Generator | None = None,
                           callback: Callable[[int, float], None] | None = None
                           ) -> LandmarkRegressor:
    """Train a :class:`LandmarkRegressor` on frozen descriptors (Adam, smooth-L1 with
    ``beta = 1`` input pixel).

    Args:
        features: ``(N, C, h, w)`` descriptors (detached).
        landmarks: ``(N, L, 2)`` input-pixel targets.
        image_size: ``(H, W)`` of the input images.
        steps, batch_size, lr: the optimisation.
        per_landmark: virtual keypoints per landmark (DVE: 50).
        generator: for the mini-batch draws (on the features' device).
        callback: called as ``callback(step, loss)`` every 50 steps (``.item()`` there
            only).

    Returns:
        the trained regressor, in eval mode.
    """
    s = Shapes()
    s.check(features, "features", "N C h w", floating=True)
    s.check(landmarks, "landmarks", "N L 2", floating=True)
    steps = check_int(steps, "steps", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_float(lr, "lr", min_value=0.0, open_min=True)
    model = LandmarkRegressor(s["C"], s["L"], image_size, per_landmark=per_landmark)
    model.to(features.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    feats = features.detach()
    n = s["N"]
    for step in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=generator,
                            device=features.device)
        loss = F.smooth_l1_loss(model(feats[idx]), landmarks[idx], beta=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if callback is not None and (step % 50 == 0 or step == steps - 1):
            callback(step, loss.item())
    return model.eval()


def iod_percent(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(N,)`` mean landmark error as a percentage of the inter-ocular distance (landmarks
    0 and 1 are the eyes, MAFL's order): 100 x :func:`cvbook.metrics.keypoints.iod_error`."""
    return 100 * iod_error(pred, target, eyes=(0, 1))
