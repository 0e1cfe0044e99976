"""A small VGG-style classifier with global average pooling, for the scenes world.

``SceneCNN`` is the network the attribution chapters (01 extremal perturbations, 02
NormGrad) explain. Its layers have stable names, so that attribution code can probe
them by name (``"features.relu3"``):

====================  ==========  ===========
layer                 channels    resolution
====================  ==========  ===========
features.conv1/relu1  w           S
features.pool1        w           S/2
features.conv2/relu2  2w          S/2
features.pool2        2w          S/4
features.conv3/relu3  4w          S/4
features.pool3        4w          S/8
features.conv4/relu4  8w          S/8
features.conv5/relu5  8w          S/8
pool (GAP), fc        classes
====================  ==========  ===========

Every convolution is followed by batch normalisation and an *in-place* ReLU, on
purpose: torchvision's VGG and ResNet use in-place ReLUs too, and attribution code must
cope with them (and put them back).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cvbook.core._validate import check_int, check_tensor

#: Names of the ReLU outputs, shallow to deep: the layers the chapters probe.
SCENE_CNN_LAYERS: tuple[str, ...] = tuple(f"features.relu{i}" for i in range(1, 6))


class SceneCNN(nn.Module):
    """Five 3x3 conv-BN-ReLU blocks, three max-pools, global average pooling, a linear
    classifier.

    Args:
        num_classes: number of output classes (>= 2).
        width: channels of the first block (the others are 2, 4, 8, 8 times it).

    Shapes:
        input ``(N, 3, S, S)`` with ``S`` a multiple of 8; output logits ``(N, num_classes)``.
    """

    def __init__(self, num_classes: int = 6, width: int = 8) -> None:
        super().__init__()
        check_int(num_classes, "num_classes", min_value=2)
        check_int(width, "width", min_value=1)
        chans = [3, width, 2 * width, 4 * width, 8 * width, 8 * width]
        layers: list[tuple[str, nn.Module]] = []
        for i in range(1, 6):
            layers += [(f"conv{i}", nn.Conv2d(chans[i - 1], chans[i], 3, padding=1, bias=False)),
                       (f"bn{i}", nn.BatchNorm2d(chans[i])),
                       (f"relu{i}", nn.ReLU(inplace=True))]
            if i <= 3:
                layers.append((f"pool{i}", nn.MaxPool2d(2)))
        self.features = nn.Sequential(OrderedDict(layers))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(chans[-1], num_classes)
        self.num_classes = num_classes
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` images in [0, 1] -> ``(N, num_classes)`` logits."""
        check_tensor(x, "x", ndim=4, floating=True)
        return self.fc(self.pool(self.features(x)).flatten(1))
