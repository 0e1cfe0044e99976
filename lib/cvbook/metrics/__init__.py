"""Evaluation metrics shared by the chapters: pointing game (:mod:`.pointing`),
clustering (:mod:`.clustering`), 3D pose (:mod:`.pose`), keypoints (%IOD, image-size error,
PCK: :mod:`.keypoints`), depth (SIDE, MAD: :mod:`.depth`) and segmentation (IoU:
:mod:`.segmentation`)."""

from cvbook.metrics.depth import mad, side
from cvbook.metrics.keypoints import image_size_error, iod_error, pck, swap_min
from cvbook.metrics.segmentation import confusion_matrix, iou_per_class, mask_iou, mean_iou

__all__ = [
    "confusion_matrix",
    "image_size_error",
    "iod_error",
    "iou_per_class",
    "mad",
    "mask_iou",
    "mean_iou",
    "pck",
    "side",
    "swap_min",
]
