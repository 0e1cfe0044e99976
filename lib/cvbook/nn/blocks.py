"""Building blocks shared by the networks of every chapter.

* :func:`conv_bn_relu`: 3x3 convolution (no bias) -> BatchNorm -> ReLU, the one way the
  library builds that block (the classifiers and backbones all use it, so their layers
  have the same structure and their state-dict keys stay what they were).
* :class:`ResidualMLPBlock`: a fully connected bottleneck residual block
  ``w -> w/4 -> w/4 -> w`` with batch norm (C3DPO's trunk, Novotny et al. ICCV 2019).

Example:
    >>> import torch
    >>> conv_bn_relu(3, 8)(torch.rand(2, 3, 5, 5)).shape
    torch.Size([2, 8, 5, 5])
    >>> ResidualMLPBlock(32)(torch.rand(3, 32)).shape
    torch.Size([3, 32])
"""

from __future__ import annotations

import torch
from torch import nn

from cvbook.core.validate import check_choice, check_int

NORMS = ("batch", "group", "instance", "none")
ACTIVATIONS = ("relu", "leaky_relu")

__all__ = ["ResidualMLPBlock", "conv_bn_relu"]


def make_norm(kind: str, channels: int) -> nn.Module:
    """A normalisation layer by name: ``"batch"``, ``"group"`` (8 groups, or fewer for
    narrow layers), ``"instance"`` (affine) or ``"none"``.

    >>> make_norm("group", 12).num_groups
    4
    """
    kind = check_choice(kind, "norm", NORMS)
    channels = check_int(channels, "channels", min_value=1)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def conv_norm_act(in_channels: int, out_channels: int, kernel_size: int = 3, *,
                  norm: str = "batch", activation: str = "relu", stride: int = 1,
                  dilation: int = 1, inplace: bool = True) -> nn.Sequential:
    """The one convolution block of the library: ``Conv2d`` with 'same' padding (odd
    kernels only; no bias before a norm) -> norm -> ReLU / LeakyReLU(0.2), as a
    ``Sequential`` with children ``0, 1, 2``.

    Shapes: ``(N, in, H, W) -> (N, out, ceil(H / stride), ceil(W / stride))``.

    >>> conv_norm_act(3, 8)(torch.zeros(2, 3, 5, 5)).shape
    torch.Size([2, 8, 5, 5])
    """
    in_channels = check_int(in_channels, "in_channels", min_value=1)
    out_channels = check_int(out_channels, "out_channels", min_value=1)
    kernel_size = check_int(kernel_size, "kernel_size", min_value=1)
    stride = check_int(stride, "stride", min_value=1)
    dilation = check_int(dilation, "dilation", min_value=1)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
    check_choice(norm, "norm", NORMS)
    check_choice(activation, "activation", ACTIVATIONS)
    pad = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=pad,
                  dilation=dilation, bias=norm == "none"),
        make_norm(norm, out_channels),
        nn.ReLU(inplace=inplace) if activation == "relu"
        else nn.LeakyReLU(0.2, inplace=inplace),
    )


def conv_bn_relu(cin: int, cout: int, stride: int = 1, *, kernel_size: int = 3,
                 inplace: bool = True) -> nn.Sequential:
    """``Conv2d(cin, cout, kernel_size, stride, padding=kernel_size//2, bias=False)``,
    ``BatchNorm2d(cout)``, ``ReLU(inplace)``: :func:`conv_norm_act` with batch norm, the
    block of the classifiers and backbones (children ``0, 1, 2``; unpack it,
    ``conv, bn, relu = conv_bn_relu(...)``, to name the layers yourself).

    Shapes: ``(N, cin, H, W) -> (N, cout, ceil(H / stride), ceil(W / stride))``.
    """
    return conv_norm_act(cin, cout, kernel_size, stride=stride, inplace=inplace)


class ResidualMLPBlock(nn.Module):
    """``relu(x + body(x))`` with ``body`` = Linear-BN-ReLU ``w -> h``, Linear-BN-ReLU
    ``h -> h``, Linear-BN ``h -> w``, ``h = max(w // 4, 8)``.

    Args:
        width: ``w``, the input and output size.

    Shapes: ``(N, w) -> (N, w)``.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        width = check_int(width, "width", min_value=1)
        h = max(width // 4, 8)
        self.width = width
        self.body = nn.Sequential(
            nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True),
            nn.Linear(h, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True),
            nn.Linear(h, width), nn.BatchNorm1d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


