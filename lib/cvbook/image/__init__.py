"""Image operations shared by the chapters, batched on the device: Gaussian filters and
the blur pyramid (:mod:`~cvbook.image.filters`), batched crops and RandomResizedCrop
(:mod:`~cvbook.image.crops`), colour jitter (:mod:`~cvbook.image.jitter`), small
per-image augmentations (:mod:`~cvbook.image.augment`)."""

from cvbook.image.augment import gaussian_noise, random_hflip, random_translate, shift_flip_noise
from cvbook.image.crops import (
    RESIZE_RATIO,
    RRC_RATIO,
    RRC_SCALE,
    center_crop,
    center_crop_boxes,
    crop_resize,
    random_resized_crop,
    resize_size,
    sample_rrc_boxes,
)
from cvbook.image.filters import blur_pyramid, gaussian_blur, gaussian_kernel1d
from cvbook.image.jitter import color_jitter, sample_jitter_factors

__all__ = [
    "RESIZE_RATIO",
    "RRC_RATIO",
    "RRC_SCALE",
    "blur_pyramid",
    "center_crop",
    "center_crop_boxes",
    "color_jitter",
    "crop_resize",
    "gaussian_blur",
    "gaussian_kernel1d",
    "gaussian_noise",
    "random_hflip",
    "random_translate",
    "shift_flip_noise",
    "random_resized_crop",
    "resize_size",
    "sample_jitter_factors",
    "sample_rrc_boxes",
]
