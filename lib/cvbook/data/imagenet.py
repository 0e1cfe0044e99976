"""ImageNet's per-channel normalisation constants (the statistics torchvision's
pretrained classifiers were trained with), defined once for every chapter.

>>> import torch
>>> normalize_imagenet(torch.ones(1, 3, 2, 2))[0, :, 0, 0]
tensor([2.2489, 2.4286, 2.6400])
"""

from __future__ import annotations

import torch

from cvbook.core.validate import check_tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalize_imagenet"]

#: Per-channel RGB mean of ImageNet (images in [0, 1]).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
#: Per-channel RGB standard deviation of ImageNet.
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def normalize_imagenet(images: torch.Tensor) -> torch.Tensor:
    """``(x - mean) / std`` per channel for ``(..., 3, H, W)`` images in [0, 1], on their
    device and in their dtype."""
    check_tensor(images, "images", shape="... 3 * *", floating=True)
    mean = images.new_tensor(IMAGENET_MEAN)[:, None, None]
    std = images.new_tensor(IMAGENET_STD)[:, None, None]
    return (images - mean) / std
