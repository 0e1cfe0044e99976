"""The correction network of AutoCorrect and its inputs and losses.

Notation (the brief's, :doc:`papers/10_autocorrect`; Sec. 3 of the paper could not be
read in this session's sources, see the package docstring): ``a`` a true annotation,
``ã = n · a`` its noisy version, ``t`` a sampled similarity, ``Φ(x, ·)`` the network.
Transforms are similarities about the annotation's centroid with parameters
``(tx, ty, theta, log_s)`` (:mod:`cvbook.geometry.polygon`), in which composition is
addition and the inverse is negation, so ``t · n · a`` is ``(t + n) · a`` whatever the
order.

* :func:`object_inputs`: the network's input for a batch of annotations, a ``crop x crop``
  window around each annotation's centroid (rounded to a pixel, so that cropping is an
  exact copy) with 5 channels: the image (3), the annotation's soft mask (1) and the
  spatial memory (1): the other annotations of the tile, read from a tile-level map
  ``M = sum_j coverage(P_j)`` minus the annotation's own coverage.
* :class:`AutoCorrectNet`: a small CNN, ``(B, 5, crop, crop) -> (B, 4)``, whose outputs
  are scaled by the range of ``t`` so that they are O(1).
* :func:`annotation_loss`: the discrepancy between the corrected annotation ``Φ · Q`` and
  the target annotation, in annotation space (the mean squared difference of their soft
  masks in the crop: the soft area of their symmetric difference over the crop's area),
  which is invariant to every transform that leaves the annotation unchanged (a square's
  quarter turn, a shift along a rail that outruns the crop); :func:`parameter_loss`: the
  squared error on the parameters, normalised by the range of ``t`` (the ablation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cvbook.core.validate import Shapes, check_float, check_int
from cvbook.geometry.polygon import _centroid, _similarity, _soft_raster
from cvbook.nn.blocks import conv_bn_relu

__all__ = [
    "AutoCorrectNet",
    "annotation_loss",
    "crop_origin",
    "object_inputs",
    "parameter_loss",
]


class AutoCorrectNet(nn.Module):
    """``Φ(x, ã)``: a crop of the image, the annotation's mask and (optionally) the memory
    channel in, the similarity that corrects the annotation out.

    Four stages of 3x3 conv-BN-ReLU with stride 2 (``crop / 16`` cells), average pooling
    to 3 x 3 cells, a hidden layer and a linear head, whose output is multiplied by
    ``scale`` (the half-ranges of ``t``).

    Args:
        in_channels: 5 with the memory channel, 4 without.
        width: channels of the first stage (then ``2 w``, ``4 w``, ``4 w``).
        scale: ``(tx, ty, theta, log_s)`` output scale.

    Shapes:
        ``(B, in_channels, H, W) -> (B, 4)``.
    """

    def __init__(self, in_channels: int = 5, width: int = 16,
                 scale: Sequence[float] = (8.0, 8.0, 0.26, 0.14)) -> None:
        super().__init__()
        in_channels = check_int(in_channels, "in_channels", min_value=4, max_value=5)
        width = check_int(width, "width", min_value=1)
        if len(scale) != 4:
            raise ValueError(f"scale must hold 4 numbers (tx, ty, theta, log_s), got {scale!r}")
        w = width
        self.in_channels = in_channels
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, w, 2), conv_bn_relu(w, 2 * w, 2),
            conv_bn_relu(2 * w, 4 * w, 2), conv_bn_relu(4 * w, 4 * w, 2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 9, 8 * w), nn.ReLU(inplace=True),
                                  nn.Linear(8 * w, 4))
        self.pool = nn.AdaptiveAvgPool2d(3)
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)  # start at the identity transform
        self.register_buffer("scale", torch.tensor([float(s) for s in scale]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x))) * self.scale


def crop_origin(polygons: torch.Tensor, crop: int) -> torch.Tensor:
    """Integer top-left pixel of the ``crop x crop`` window centred on each polygon's
    centroid: ``round(c) - crop // 2``; ``(..., V, 2) -> (..., 2)`` (float)."""
    return torch.round(_centroid(polygons.detach())) - crop // 2


def _crop(maps: torch.Tensor, index: torch.Tensor, origin: torch.Tensor, crop: int
          ) -> torch.Tensor:
    """Windows ``(B, C, crop, crop)`` of ``maps[index]`` at integer ``origin`` (zeros
    outside the map), gathered pixel by pixel (an exact copy)."""
    n, c, h, w = maps.shape
    j = torch.arange(crop, device=maps.device)
    o = origin.long()
    xs, ys = o[:, 0, None] + j, o[:, 1, None] + j  # (B, crop)
    inside = ((ys >= 0) & (ys < h))[:, :, None] & ((xs >= 0) & (xs < w))[:, None, :]
    flat = ys.clamp(0, h - 1)[:, :, None] * w + xs.clamp(0, w - 1)[:, None, :]  # (B, cr, cr)
    chan = (index[:, None] * c + torch.arange(c, device=maps.device)) * (h * w)  # (B, C)
    out = maps.reshape(-1)[chan[:, :, None, None] + flat[:, None]]  # (B, C, crop, crop)
    return out * inside[:, None]


def object_inputs(images: torch.Tensor, memory: torch.Tensor | None, index: torch.Tensor,
                  polygons: torch.Tensor, own: torch.Tensor | None = None, *, crop: int = 48,
                  softness: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's inputs for a batch of annotations.

    Args:
        images: ``(N, 3, S, S)`` tiles.
        memory: ``(N, S, S)`` memory maps (the sum of the soft coverages of the tile's
            current annotations), or ``None`` for no memory channel.
        index: ``(B,)`` int64 tile of each annotation.
        polygons: ``(B, V, 2)`` the annotations to correct (tile pixel coordinates).
        own: ``(B, V, 2)`` the annotations' entries in ``memory`` (subtracted from it so
            that the memory shows the *other* annotations); ``polygons`` when ``None``.
        crop: window side (pixels); softness: edge width of the masks.

    Returns:
        ``(B, 5 or 4, crop, crop)`` inputs and ``(B, 2)`` window origins (pixels).
    """
    s = Shapes()
    s.check(images, "images", "N 3 S S", floating=True)
    s.check(index, "index", "B", dtype=torch.int64)
    s.check(polygons, "polygons", "B V 2", floating=True)
    if memory is not None:
        s.check(memory, "memory", "N S S", floating=True)
    if own is not None:
        s.check(own, "own", "B V 2", floating=True)
    crop = check_int(crop, "crop", min_value=4)
    softness = check_float(softness, "softness", min_value=0.0, open_min=True)
    return _inputs(images, memory, index, polygons, own, crop, softness)


def _inputs(images, memory, index, polygons, own, crop, softness):
    origin = crop_origin(polygons, crop)
    local = polygons - origin[:, None, :]
    mask = _soft_raster(local, crop, crop, softness)[:, None]  # (B, 1, crop, crop)
    if memory is None:
        return torch.cat([_crop(images, index, origin, crop), mask], 1), origin
    maps = torch.cat([images, memory[:, None]], 1)
    win = _crop(maps, index, origin, crop)
    own_local = local if own is None else own - origin[:, None, :]
    mine = _soft_raster(own_local, crop, crop, softness)
    # outside the tile the map is zero but the raster is not: clamp
    others = (win[:, 3] - mine).clamp(0, 1)[:, None]
    return torch.cat([win[:, :3], mask, others], 1), origin


def annotation_loss(pred: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor,
                    origin: torch.Tensor, crop: int, *, softness: float = 1.0,
                    stride: int = 1) -> torch.Tensor:
    """Annotation-space loss: ``mean_pixels (m(Φ · Q) - m(T))^2`` over the crop, ``m`` the
    soft mask (edge ``softness`` pixels), ``Q`` the input annotation, ``T`` the target.

    With ``Q = t · ã`` and ``T = ã`` it is the consistency loss on noisy annotations;
    with ``Q = t · a`` and ``T = a`` the self-supervised loss on clean ones.

    Args:
        pred: ``(B, 4)`` predicted corrections; inputs, targets: ``(B, V, 2)`` polygons;
        origin: ``(B, 2)`` window origins (:func:`object_inputs`); crop: window side.
        softness: the masks' edge width (pixels).
        stride: sample the masks every ``stride`` pixels (``crop`` must be a multiple):
            ``stride**2`` times cheaper, the same loss up to the sampling.

    Returns:
        ``(B,)`` losses in [0, 1]; differentiable in ``pred``.
    """
    s = Shapes()
    s.check(pred, "pred", "B 4", floating=True)
    s.check(inputs, "inputs", "B V 2", floating=True)
    s.check(targets, "targets", "B * 2", floating=True)
    s.check(origin, "origin", "B 2", floating=True)
    crop = check_int(crop, "crop", min_value=4)
    softness = check_float(softness, "softness", min_value=0.0, open_min=True)
    stride = check_int(stride, "stride", min_value=1)
    if crop % stride:
        raise ValueError(f"crop ({crop}) must be a multiple of stride, got stride={stride}")
    return _annotation_loss(pred, inputs, targets, origin, crop, softness, stride)


def _annotation_loss(pred, inputs, targets, origin, crop, softness, stride=1):
    # at a stride k the masks are sampled every k pixels (the polygons scaled by 1/k)
    o = origin[:, None, :] + (stride - 1) / 2
    n = crop // stride
    a = _soft_raster((_similarity(inputs, pred) - o) / stride, n, n, softness / stride)
    b = _soft_raster((targets - o) / stride, n, n, softness / stride)
    return ((a - b) ** 2).mean((-2, -1))


def parameter_loss(pred: torch.Tensor, target: torch.Tensor, scale: torch.Tensor
                   ) -> torch.Tensor:
    """Parameter-space loss ``mean_i ((pred_i - target_i) / scale_i)^2``.

    Args:
        pred, target: ``(B, 4)``; scale: ``(4,)`` normalisers (the half-ranges of ``t``).

    Returns:
        ``(B,)``.
    """
    s = Shapes()
    s.check(pred, "pred", "B 4", floating=True)
    s.check(target, "target", "B 4", floating=True)
    s.check(scale, "scale", "4", floating=True)
    return (((pred - target) / scale) ** 2).mean(-1)
