"""Small image backbones that return a feature vector (no classifier head).

* :class:`SmallCNN`: a two-layer CNN for tiny images (8x8 digits) whose flattened,
  L2-normalised feature map transfers well to new classes; fast on a CPU.
* :func:`cifar_resnet18`: torchvision's ResNet-18 adapted to 32x32 inputs (3x3 stem,
  no max-pool), the backbone DTC uses on CIFAR-10 and SVHN, returning 512-d features.

* :class:`SmallNet`: DVE's dense descriptor network (Thewlis et al. 2019): stride 2,
  dilated convolutions, ``dim`` channels per pixel (chapter 05 and the zoo's ``dve_*``).

The first two expose ``out_dim`` (the feature size) so a chapter can put any head on top
(:class:`cvbook.nn.classifiers.Classifier`).

Example:
    >>> import torch
    >>> net = SmallCNN(1, width=4, image_size=8)
    >>> net(torch.rand(3, 1, 8, 8)).shape, net.out_dim
    (torch.Size([3, 64]), 64)
"""

from __future__ import annotations

import torch
from torch import nn

from cvbook.core.validate import check_int, check_tensor
from cvbook.nn.blocks import conv_bn_relu, conv_norm_act

__all__ = ["SmallCNN", "SmallNet", "cifar_resnet18"]


class SmallCNN(nn.Module):
    """Two conv-BN-ReLU layers, 2x2 max-pooling, flattened and L2-normalised.

    The feature map is flattened rather than globally pooled: on tiny images the
    spatial layout of local stroke detectors is what transfers to new classes, while
    a globally pooled, class-specific vector collapses them (measured in the DTC
    chapter). L2 normalisation makes Euclidean k-means on the features a cosine
    k-means, which is insensitive to the overall ink of an image.

    Args:
        in_channels: input channels (1 for digits, 3 for colour).
        width: channels of both conv layers.
        image_size: input height = width (even).

    Shapes:
        ``(N, C, S, S)`` -> ``(N, width * (S // 2) ** 2)``, rows of unit norm.
    """

    def __init__(self, in_channels: int = 1, width: int = 32, image_size: int = 8) -> None:
        super().__init__()
        in_channels = check_int(in_channels, "in_channels", min_value=1)
        width = check_int(width, "width", min_value=1)
        image_size = check_int(image_size, "image_size", min_value=2)
        self.in_channels = in_channels
        self.image_size = image_size
        self.features = nn.Sequential(
            *conv_bn_relu(in_channels, width, inplace=False),
            *conv_bn_relu(width, width, inplace=False), nn.MaxPool2d(2), nn.Flatten())
        self.out_dim = width * (image_size // 2) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", shape=(None, self.in_channels, self.image_size, self.image_size),
                     floating=True)
        return nn.functional.normalize(self.features(x), dim=1)


class _ResNetFeatures(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.out_dim = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", ndim=4, floating=True)
        return self.net(x)


def cifar_resnet18(in_channels: int = 3) -> nn.Module:
    """ResNet-18 for 32x32 images (3x3 stride-1 stem, no max-pool), returning
    ``(N, 512)`` pooled features; randomly initialised."""
    from torchvision.models import resnet18

    in_channels = check_int(in_channels, "in_channels", min_value=1)
    net = resnet18(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return _ResNetFeatures(net)


class SmallNet(nn.Module):
    """``(B, 3, H, W) -> (B, dim, H/2, W/2)`` descriptors (``H, W`` even).

    >>> SmallNet(16)(torch.zeros(2, 3, 48, 48)).shape
    torch.Size([2, 16, 24, 24])
    """

    stride = 2

    def __init__(self, dim: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", min_value=1)
        self.in_channels = check_int(in_channels, "in_channels", min_value=1)

        def block(cin: int, cout: int, k: int, dil: int = 1) -> nn.Sequential:
            return conv_norm_act(cin, cout, k, norm="batch", activation="leaky_relu",
                                 dilation=dil)

        self.features = nn.Sequential(
            block(self.in_channels, 20, 5), nn.MaxPool2d(2),
            block(20, 48, 5), block(48, 64, 5, 2), block(64, 80, 3, 4), block(80, 256, 3, 2))
        self.head = nn.Conv2d(256, self.dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", shape=(None, self.in_channels, None, None))
        return self.head(self.features(x))
