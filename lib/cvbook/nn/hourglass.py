"""Stacked hourglass networks (Newell, Yang & Deng 2016), as DVE's full preset and Slim
DensePose's backbone use them, with a small configuration for the CPU presets.

An hourglass of depth ``n`` at ``c`` channels: a residual branch at the current
resolution plus max-pool -> residual -> (hourglass of depth ``n - 1``, or a residual) ->
residual -> nearest up-sampling, summed. Residual units are pre-activation bottlenecks
(BN-ReLU-1x1 to ``c/2``, BN-ReLU-3x3, BN-ReLU-1x1 to ``c``). A stem brings the image to
``1/stride`` resolution; each stack ends in a 1x1 prediction head, and all but the last
feed their features and predictions back (intermediate supervision: the forward pass
returns every stack's prediction).

Written here: neither torchvision nor kornia ships an hourglass.
"""

from __future__ import annotations

import torch
from torch import nn

from cvbook.core.validate import check_choice, check_int, check_tensor

__all__ = ["Hourglass", "Residual", "StackedHourglass"]


class Residual(nn.Module):
    """Pre-activation bottleneck residual unit ``(B, cin, H, W) -> (B, cout, H, W)``.

    >>> Residual(8, 16)(torch.zeros(1, 8, 4, 4)).shape
    torch.Size([1, 16, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = max(out_channels // 2, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, mid, 1),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1))
        self.skip = nn.Identity() if in_channels == out_channels \
            else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` halvings at ``channels`` channels; shape-preserving for
    ``H, W`` divisible by ``2 ** depth``.

    >>> Hourglass(2, 8)(torch.zeros(1, 8, 8, 8)).shape
    torch.Size([1, 8, 8, 8])
    """

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        depth = check_int(depth, "depth", min_value=1)
        self.up1 = Residual(channels, channels)
        self.low1 = nn.Sequential(nn.MaxPool2d(2), Residual(channels, channels))
        self.low2 = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        self.low3 = Residual(channels, channels)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up1(x) + self.up2(self.low3(self.low2(self.low1(x))))


class StackedHourglass(nn.Module):
    """Stacked hourglass network.

    Args:
        in_channels: image channels.
        out_channels: prediction channels of each stack's head (heat maps, descriptors,
            part logits...).
        stacks: number of hourglasses.
        depth: halvings inside each hourglass.
        width: feature channels (Newell et al.: 256).
        stride: the stem's down-sampling, 4 (Newell et al.: 7x7/2 conv, residual, max-pool),
            2 (no max-pool) or 1 (a 3x3 conv at full resolution, for small images).

    Shapes: ``(B, in_channels, H, W)`` with ``H, W`` divisible by ``stride * 2**depth``
    -> a list of ``stacks`` tensors ``(B, out_channels, H / stride, W / stride)``; the last
    is the final prediction.

    Parameter counts (tested): :meth:`full` with ``out_channels=64`` and 2 stacks has
    6,607,360 (Newell's widths); :meth:`small` with ``out_channels=16`` has 47,264.

    >>> net = StackedHourglass.small(3, 16)
    >>> [o.shape for o in net(torch.zeros(1, 3, 32, 32))]
    [torch.Size([1, 16, 16, 16])]
    """

    def __init__(self, in_channels: int, out_channels: int, *, stacks: int = 2,
                 depth: int = 4, width: int = 256, stride: int = 4) -> None:
        super().__init__()
        cin = check_int(in_channels, "in_channels", min_value=1)
        cout = check_int(out_channels, "out_channels", min_value=1)
        self.stacks = check_int(stacks, "stacks", min_value=1)
        self.depth = check_int(depth, "depth", min_value=1)
        width = check_int(width, "width", min_value=2)
        self.stride = int(check_choice(str(stride), "stride", ("1", "2", "4")))
        self.in_channels = cin
        half = max(width // 2, 1)
        if self.stride == 1:
            stem = [nn.Conv2d(cin, half, 3, padding=1), nn.BatchNorm2d(half),
                    nn.ReLU(inplace=True), Residual(half, width)]
        else:
            stem = [nn.Conv2d(cin, max(width // 4, 1), 7, stride=2, padding=3),
                    nn.BatchNorm2d(max(width // 4, 1)), nn.ReLU(inplace=True),
                    Residual(max(width // 4, 1), half)]
            if self.stride == 4:
                stem.append(nn.MaxPool2d(2))
            stem += [Residual(half, half), Residual(half, width)]
        self.stem = nn.Sequential(*stem)
        self.hourglasses = nn.ModuleList(Hourglass(self.depth, width) for _ in range(stacks))
        self.features = nn.ModuleList(
            nn.Sequential(Residual(width, width), nn.Conv2d(width, width, 1),
                          nn.BatchNorm2d(width), nn.ReLU(inplace=True))
            for _ in range(stacks))
        self.heads = nn.ModuleList(nn.Conv2d(width, cout, 1) for _ in range(stacks))
        self.remap_features = nn.ModuleList(nn.Conv2d(width, width, 1)
                                            for _ in range(stacks - 1))
        self.remap_preds = nn.ModuleList(nn.Conv2d(cout, width, 1) for _ in range(stacks - 1))

    @classmethod
    def full(cls, in_channels: int, out_channels: int, *, stacks: int = 2) -> StackedHourglass:
        """Newell et al.'s configuration: width 256, depth 4, stride 4 (inputs divisible
        by 64), ``stacks`` hourglasses (the caller's choice; the chapter's full preset
        states it)."""
        return cls(in_channels, out_channels, stacks=stacks, depth=4, width=256, stride=4)

    @classmethod
    def small(cls, in_channels: int, out_channels: int, *, stacks: int = 1) -> StackedHourglass:
        """A CPU-sized one: width 32, depth 3, stride 2 (inputs divisible by 16)."""
        return cls(in_channels, out_channels, stacks=stacks, depth=3, width=32, stride=2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        check_tensor(x, "x", shape=(None, self.in_channels, None, None))
        m = self.stride * 2**self.depth
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"x must have H and W divisible by stride * 2**depth = {m}; got "
                             f"{tuple(x.shape[-2:])}")
        x = self.stem(x)
        preds = []
        for i in range(self.stacks):
            feat = self.features[i](self.hourglasses[i](x))
            pred = self.heads[i](feat)
            preds.append(pred)
            if i < self.stacks - 1:
                x = x + self.remap_features[i](feat) + self.remap_preds[i](pred)
        return preds
