"""DVE's descriptor networks: SmallNet (the default preset) and a stacked hourglass with
unit descriptors (the ``full`` preset).

* :class:`SmallNet` (lives in :mod:`cvbook.nn.backbones`, re-exported here, so that the
  zoo can build it; Thewlis et al. 2019, Sec. 4): conv5(20) -> max-pool 2 -> conv5(48) ->
  conv5 dilation 2 (64) -> conv3 dilation 4 (80) -> conv3 dilation 2 (256) -> 1x1 (C),
  each but the last followed by batch norm and LeakyReLU(0.2). Stride 2, raw dot products
  as the softmax's logits. 337,748 parameters at C = 16 (tested).
* :class:`HourglassDescriptor`: :class:`cvbook.nn.hourglass.StackedHourglass`'s last
  prediction, **raw**, as the official ``HourglassNet`` returns it; the loss
  L2-normalises the descriptors and scales them by 20 (``loss_normalize = 20``: a
  softmax temperature of 1/20 on cosine similarities, the official
  ``normalize_vectors``), while matching and the landmark regressor read the raw
  descriptors, as the official evaluation does. Stride 4 by default (the official
  ``HourglassNet``: one stack, 256 channels, depth 4, stride 2; the full preset's).

Both expose ``stride`` (input pixels per feature cell) and ``dim``, the two facts the
loss and the evaluation need, and ``loss_normalize`` (``None`` for SmallNet: raw dot
products in the loss), which :func:`cvbook.dve.train.train_descriptor` passes to it.
"""

from __future__ import annotations

import torch
from torch import nn

from cvbook.core.validate import check_float, check_int
from cvbook.nn.backbones import SmallNet
from cvbook.nn.hourglass import StackedHourglass

__all__ = ["HourglassDescriptor", "SmallNet"]


class HourglassDescriptor(nn.Module):
    """``(B, 3, H, W) -> (B, dim, H/stride, W/stride)`` raw descriptors from a stacked
    hourglass (``H, W`` divisible by ``stride * 2**depth``); ``loss_normalize = scale``
    tells the loss to use unit descriptors x ``scale``.

    >>> net = HourglassDescriptor(8, stacks=1, depth=2, width=16, stride=2)
    >>> with torch.no_grad():
    ...     y = net(torch.zeros(1, 3, 16, 16))
    >>> y.shape, net.loss_normalize
    (torch.Size([1, 8, 8, 8]), 20.0)
    """

    def __init__(self, dim: int = 64, *, stacks: int = 1, depth: int = 4, width: int = 256,
                 stride: int = 4, scale: float = 20.0) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", min_value=1)
        self.net = StackedHourglass(3, self.dim, stacks=stacks, depth=depth, width=width,
                                    stride=stride)
        self.stride = self.net.stride
        self.scale = check_float(scale, "scale", min_value=0.0, open_min=True)
        self.loss_normalize: float | None = self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[-1]
