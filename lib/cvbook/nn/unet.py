"""A small U-Net (Ronneberger et al. 2015): an encoder-decoder with skip connections,
configurable depth and width, for image-to-image maps (the image-translation chapter's
image -> skeleton network Phi, Unsup3D's depth and albedo nets).

Written here: torchvision has no U-Net, and the chapters need a small, configurable one
(GroupNorm for Unsup3D, BatchNorm elsewhere).
"""

from __future__ import annotations

import torch
from torch import nn

from cvbook.core.validate import check_choice, check_int, check_tensor
from cvbook.nn.blocks import ACTIVATIONS, NORMS, conv_norm_act, make_norm

__all__ = ["UNet", "conv_norm_act", "make_norm"]  # the blocks re-exported for old imports


class _Double(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str, activation: str) -> None:
        super().__init__(conv_norm_act(cin, cout, norm=norm, activation=activation),
                         conv_norm_act(cout, cout, norm=norm, activation=activation))


class UNet(nn.Module):
    """U-Net: ``depth`` 2x down-samplings, widths ``width * 2**level`` (capped at
    ``max_width``), two 3x3 conv-norm-act per level, bilinear up-sampling + 1x1 conv,
    skip concatenation, and a 1x1 output conv (no activation: logits / raw values).

    Args:
        in_channels, out_channels: image and output channels.
        depth: number of down-samplings (``>= 1``); inputs need ``H, W`` divisible by
            ``2 ** depth``.
        width: channels at full resolution.
        max_width: cap on the channels (``None``: no cap).
        norm: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
        activation: ``"relu"`` or ``"leaky_relu"`` (slope 0.2).

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.

    Parameter counts (tested): ``UNet(3, 1)`` (depth 4, width 32, batch norm) has
    7,240,801; ``UNet(3, 1, depth=3, width=16)`` has 450,481.

    >>> UNet(3, 2, depth=2, width=8)(torch.zeros(1, 3, 12, 16)).shape
    torch.Size([1, 2, 12, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, *, depth: int = 4,
                 width: int = 32, max_width: int | None = None, norm: str = "batch",
                 activation: str = "relu") -> None:
        super().__init__()
        cin = check_int(in_channels, "in_channels", min_value=1)
        cout = check_int(out_channels, "out_channels", min_value=1)
        self.depth = check_int(depth, "depth", min_value=1)
        self.in_channels = cin
        width = check_int(width, "width", min_value=1)
        cap = check_int(max_width, "max_width", min_value=1) if max_width is not None else None
        check_choice(norm, "norm", NORMS)
        check_choice(activation, "activation", ACTIVATIONS)
        chans = [min(width * 2**i, cap) if cap else width * 2**i for i in range(self.depth + 1)]
        self.down = nn.ModuleList([_Double(cin, chans[0], norm, activation)])
        self.down.extend(_Double(chans[i - 1], chans[i], norm, activation)
                         for i in range(1, self.depth + 1))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                          nn.Conv2d(chans[i], chans[i - 1], 1))
            for i in range(self.depth, 0, -1))
        self.merge = nn.ModuleList(_Double(2 * chans[i - 1], chans[i - 1], norm, activation)
                                   for i in range(self.depth, 0, -1))
        self.head = nn.Conv2d(chans[0], cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", shape=(None, self.in_channels, None, None))
        m = 2**self.depth
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"x must have H and W divisible by 2**depth = {m}; got "
                             f"{tuple(x.shape[-2:])}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat((up(x), skips.pop()), dim=1))
        return self.head(x)
