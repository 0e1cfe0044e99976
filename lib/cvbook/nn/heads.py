"""Prediction heads on feature maps: heat maps, dense descriptors, and DVE's landmark
regressor (virtual keypoints -> soft-argmax -> bias-free linear map).

* :class:`HeatmapHead`: a 1x1 convolution to ``K`` maps (scores; turn them into points
  with :func:`cvbook.geometry.soft_argmax` or :func:`~cvbook.geometry.marginal_soft_argmax`).
* :class:`DescriptorHead`: a 1x1 convolution to ``C``-dimensional per-pixel descriptors,
  optionally L2-normalised and scaled (DVE's Hourglass uses unit descriptors x 20, a
  softmax temperature of 1/20 on their dot products).
* :class:`KeypointRegressor`: a bias-free linear map from ``K`` keypoints to ``L``
  landmarks, on the ``2K`` coordinates (DVE's evaluation, after Thewlis et al. 2017: frozen
  descriptors, learnt virtual keypoints, a linear regressor; no bias, so the map has no
  preferred position of its own).
* :class:`VirtualKeypointRegressor`: the three chained, as DVE's evaluation uses it (50
  virtual keypoints per landmark by default).

Written here: small ``torch.nn`` compositions; the soft-argmax is
:mod:`cvbook.geometry.subpix`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvbook.core.validate import Shapes, check_float, check_int, check_tensor
from cvbook.geometry.subpix import soft_argmax

__all__ = ["DescriptorHead", "HeatmapHead", "KeypointRegressor", "VirtualKeypointRegressor"]


class HeatmapHead(nn.Module):
    """``(B, C, H, W) -> (B, K, H, W)`` heat-map scores by a 1x1 convolution
    (``C K + K`` parameters).

    >>> HeatmapHead(16, 5)(torch.zeros(2, 16, 6, 6)).shape
    torch.Size([2, 5, 6, 6])
    """

    def __init__(self, in_channels: int, num_maps: int) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", min_value=1)
        self.conv = nn.Conv2d(self.in_channels, check_int(num_maps, "num_maps", min_value=1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", shape=(None, self.in_channels, None, None))
        return self.conv(x)


class DescriptorHead(nn.Module):
    """``(B, C, H, W) -> (B, D, H, W)`` descriptors by a 1x1 convolution; with
    ``normalize=True`` each descriptor is L2-normalised, then multiplied by ``scale``
    (``C D + D`` parameters).

    >>> y = DescriptorHead(8, 4, normalize=True, scale=20.0)(torch.randn(1, 8, 3, 3))
    >>> bool(torch.allclose(y.norm(dim=1), torch.full((1, 3, 3), 20.0)))
    True
    """

    def __init__(self, in_channels: int, dim: int, *, normalize: bool = False,
                 scale: float = 1.0) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", min_value=1)
        self.conv = nn.Conv2d(self.in_channels, check_int(dim, "dim", min_value=1), 1)
        self.normalize = bool(normalize)
        self.scale = check_float(scale, "scale", min_value=0.0, open_min=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", shape=(None, self.in_channels, None, None))
        y = self.conv(x)
        return self.scale * F.normalize(y, dim=1) if self.normalize else self.scale * y


class KeypointRegressor(nn.Module):
    """Bias-free linear map ``(B, K, 2) -> (B, L, 2)`` on the flattened ``(x, y)``
    coordinates (``4 K L`` parameters). Initialised so every landmark starts at the mean
    of the ``K`` keypoints.

    >>> r = KeypointRegressor(3, 2)
    >>> r(torch.tensor([[[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]]]))
    tensor([[[1., 1.],
             [1., 1.]]], grad_fn=<ViewBackward0>)
    """

    def __init__(self, num_keypoints: int, num_landmarks: int, *, blocks: bool = False) -> None:
        super().__init__()
        k = check_int(num_keypoints, "num_keypoints", min_value=1)
        n_l = check_int(num_landmarks, "num_landmarks", min_value=1)
        if blocks and k % n_l:
            raise ValueError(f"num_keypoints must be a multiple of num_landmarks = {n_l} "
                             f"with blocks=True; got {k}")
        self.num_keypoints, self.num_landmarks = k, n_l
        self.blocks = bool(blocks)
        self.linear = nn.Linear(2 * k, 2 * n_l, bias=False)
        # blocks=True: landmark l reads only its own K / L keypoints (DVE's official
        # regressor: one bias-free Linear(2 K/L, 2) per landmark); the mask is a
        # non-persistent buffer, so the state-dict keys are the same in both modes
        mask = torch.zeros(n_l, 2, k, 2)
        per = k // n_l if self.blocks else k
        for j in range(n_l):
            lo = j * per if self.blocks else 0
            mask[j, :, lo:lo + per, :] = 1.0
        self.register_buffer("mask", mask.reshape(2 * n_l, 2 * k), persistent=False)
        with torch.no_grad():
            w = torch.zeros(n_l, 2, k, 2)
            w[:, 0, :, 0] = 1.0 / per
            w[:, 1, :, 1] = 1.0 / per
            self.linear.weight.copy_(w.reshape(2 * n_l, 2 * k) * self.mask)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        Shapes(K=self.num_keypoints).check(points, "points", "B K 2", floating=True)
        w = self.linear.weight * self.mask if self.blocks else self.linear.weight
        return F.linear(points.flatten(1), w).view(points.shape[0], self.num_landmarks, 2)


class VirtualKeypointRegressor(nn.Module):
    """DVE's landmark regressor on (frozen) features: ``L * per_landmark`` virtual
    keypoints by a :class:`HeatmapHead`, spatial soft-argmax at ``temperature``, then a
    :class:`KeypointRegressor` to ``L`` landmarks.

    Shapes: ``(B, C, H, W) -> (B, L, 2)``, ``(x, y)`` in feature-grid pixels (multiply by
    the backbone's stride, or pass ``normalized=True`` for ``[-1, 1]``, which is
    resolution-free). Parameters: ``C M + M + 4 M L`` with ``M = L * per_landmark``
    (C = 64, L = 5, 50 per landmark: 21,250). DVE's official regressor
    (``IntermediateKeypointPredictor``) multiplies the scores by 100 before the spatial
    softmax (``temperature=0.01``) and maps each landmark from its own virtual keypoints
    only (``blocks=True``); the heat maps' bias cancels in the softmax.

    >>> VirtualKeypointRegressor(16, 5, per_landmark=2)(torch.randn(2, 16, 8, 8)).shape
    torch.Size([2, 5, 2])
    """

    def __init__(self, in_channels: int, num_landmarks: int, *, per_landmark: int = 50,
                 temperature: float = 1.0, normalized: bool = False,
                 blocks: bool = False) -> None:
        super().__init__()
        n_l = check_int(num_landmarks, "num_landmarks", min_value=1)
        m = n_l * check_int(per_landmark, "per_landmark", min_value=1)
        self.temperature = check_float(temperature, "temperature", min_value=0.0,
                                       open_min=True)
        self.normalized = bool(normalized)
        self.heatmaps = HeatmapHead(in_channels, m)
        self.regressor = KeypointRegressor(m, n_l, blocks=blocks)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pts = soft_argmax(self.heatmaps(features), self.temperature, normalized=self.normalized)
        return self.regressor(pts)
