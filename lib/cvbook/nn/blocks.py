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

from cvbook.core.validate import check_int

__all__ = ["ResidualMLPBlock", "conv_bn_relu"]


def conv_bn_relu(cin: int, cout: int, stride: int = 1, *, kernel_size: int = 3,
                 inplace: bool = True) -> nn.Sequential:
    """``Conv2d(cin, cout, kernel_size, stride, padding=kernel_size//2, bias=False)``,
    ``BatchNorm2d(cout)``, ``ReLU(inplace)`` as a ``Sequential`` (children ``0, 1, 2``;
    unpack it, ``conv, bn, relu = conv_bn_relu(...)``, to name the layers yourself).

    Shapes: ``(N, cin, H, W) -> (N, cout, ceil(H / stride), ceil(W / stride))``.
    """
    cin = check_int(cin, "cin", min_value=1)
    cout = check_int(cout, "cout", min_value=1)
    stride = check_int(stride, "stride", min_value=1)
    kernel_size = check_int(kernel_size, "kernel_size", min_value=1)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
    return nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride=stride,
                                   padding=kernel_size // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=inplace))


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


