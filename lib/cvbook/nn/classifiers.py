"""Image classifiers: convolutional features, a global pooling and a linear classifier.

* :class:`SceneCNN`: the VGG-style network the attribution chapters (01 extremal
  perturbations, 02 NormGrad) explain, with stable layer names; the shipped checkpoint
  ``zoo/scenes_cnn.pt`` holds its weights.
* :class:`ConvNet`: the small classifier of the FixRes chapter (03), whose head mirrors a
  ResNet's (a last BatchNorm + ReLU, global pooling, one linear layer).
* :class:`Classifier`: any feature backbone (``out_dim`` attribute, see
  :mod:`cvbook.nn.backbones`) followed by a linear head (DTC's supervised pre-training).

All convolutional layers are :func:`cvbook.nn.blocks.conv_bn_relu` blocks.

**SceneCNN.** Its layers have stable names, so that attribution code can probe
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

**ConvNet.** Conv-BN-ReLU stages separated by 2x2 max-pooling. Its structure mirrors
a ResNet's head in the way FixRes cares about: a final BatchNorm + ReLU on the last
feature map, a global pooling (so any input resolution works) and one linear
classifier. FixRes fine-tuning touches exactly :attr:`ConvNet.last_bn` and
:attr:`ConvNet.fc`.

Why global *max* pooling by default: on the scenes world (random colours, textures and
sizes; the class is the shape), a network this small learns the shapes within a CPU
budget only with max pooling; with average pooling it needs many more steps (measured:
~60% vs ~97% training accuracy after the same 8 epochs on 4 shapes). ResNet-50 in the
``full`` presets keeps its average pooling.

Example:
    >>> import torch
    >>> SceneCNN(num_classes=4, width=4)(torch.rand(2, 3, 16, 16)).shape
    torch.Size([2, 4])
    >>> ConvNet(3, widths=(4, 8))(torch.rand(1, 3, 16, 16)).shape
    torch.Size([1, 3])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cvbook.core.validate import check_choice, check_int, check_tensor
from cvbook.nn.blocks import conv_bn_relu

__all__ = ["SCENE_CNN_LAYERS", "Classifier", "ConvNet", "SceneCNN"]

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
            conv, bn, relu = conv_bn_relu(chans[i - 1], chans[i])
            layers += [(f"conv{i}", conv), (f"bn{i}", bn), (f"relu{i}", relu)]
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


class ConvNet(nn.Module):
    """A small classifier for 16-128 px images.

    Args:
        num_classes: number of classes.
        widths: channels of each stage; stages after the first start with a 2x2
            max-pooling, so the feature map is ``H / 2**(len(widths)-1)``.
        in_channels: input channels.
        global_pool: ``"max"`` or ``"avg"``.

    Shapes:
        ``(N, in_channels, H, W)`` -> logits ``(N, num_classes)``; :meth:`pooled`
        returns the ``(N, widths[-1])`` pooled features.
    """

    def __init__(self, num_classes: int, widths: Sequence[int] = (32, 64, 128),
                 in_channels: int = 3, global_pool: str = "max") -> None:
        super().__init__()
        num_classes = check_int(num_classes, "num_classes", min_value=2)
        if len(widths) < 1:
            raise ValueError(f"widths must list at least one stage, got {widths!r}")
        widths = [check_int(w, "widths[i]", min_value=1) for w in widths]
        self.in_channels = check_int(in_channels, "in_channels", min_value=1)
        check_choice(global_pool, "global_pool", ("max", "avg"))
        layers: list[nn.Module] = [conv_bn_relu(in_channels, widths[0])]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.MaxPool2d(2), conv_bn_relu(cin, cout)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1) if global_pool == "max" else nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BatchNorm before the pooling (the one FixRes fine-tuning re-estimates)."""
        return self.features[-1][1]

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled features ``(N, C)`` (the classifier's input)."""
        check_tensor(x, "x", shape=(None, self.in_channels, None, None), floating=True)
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pooled(x))


class Classifier(nn.Module):
    """``backbone`` followed by a linear head (supervised pre-training).

    Args:
        backbone: a module mapping images to ``(N, backbone.out_dim)`` features.
        n_classes: number of classes (>= 2).

    Shapes: ``(N, C, H, W) -> (N, n_classes)``.
    """

    def __init__(self, backbone: nn.Module, n_classes: int) -> None:
        super().__init__()
        out_dim = getattr(backbone, "out_dim", None)
        if not isinstance(out_dim, int):
            raise TypeError("backbone must have an int attribute out_dim (its feature size)")
        self.backbone = backbone
        self.head = nn.Linear(out_dim, check_int(n_classes, "n_classes", min_value=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
