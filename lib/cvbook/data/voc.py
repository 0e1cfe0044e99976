"""PASCAL VOC 2007 for the attribution chapters' ``full`` presets (pointing game).

torchvision reads the files (:class:`torchvision.datasets.VOCDetection`; nothing is
downloaded unless asked). This adapter turns each image into pointing-game *trials*,
one per class present: the union of that class's boxes as the ground-truth mask, and the
"difficult" flag of the extremal-perturbation paper's subset (the class's objects cover
less than a quarter of the image and another class is present).

torchvision ships ImageNet classifiers only, so :data:`IMAGENET_FOR_VOC` maps each VOC
class to ImageNet classes and :func:`voc_reward` scores a VOC class as the log-sum-exp of
their logits (a reward callable for :mod:`cvbook.attribution`). The mapping is a
hand-made approximation ("person" has no ImageNet class; a few people-centric classes
stand in).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from cvbook.core.validate import check_int
from cvbook.data.imagenet import IMAGENET_MEAN, IMAGENET_STD, normalize_imagenet  # noqa: F401

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor")

IMAGENET_FOR_VOC: dict[str, tuple[int, ...]] = {
    "aeroplane": (404, 895), "bicycle": (444, 671),
    "bird": tuple(range(7, 25)) + tuple(range(80, 101)) + tuple(range(127, 147)),
    "boat": (472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 914),
    "bottle": (440, 720, 737, 898, 907), "bus": (654, 779, 874),
    "car": (436, 468, 511, 609, 627, 656, 661, 717, 751, 817), "cat": (281, 282, 283, 284, 285),
    "chair": (423, 559, 765, 857), "cow": (345, 346, 347), "diningtable": (532,),
    "dog": tuple(range(151, 269)), "horse": (339, 603), "motorbike": (665, 670),
    "person": (981, 982, 983), "pottedplant": (738,), "sheep": (348, 349), "sofa": (831,),
    "train": (466, 547, 565, 705, 820), "tvmonitor": (664, 782, 851),
}



def voc_reward(labels: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A reward callable: for ``(N, 1000)`` ImageNet logits, the log-sum-exp of the
    logits of the ImageNet classes of each image's VOC class ``labels (N,)``."""
    table = torch.full((len(VOC_CLASSES), 1000), float("-inf"))
    for c, name in enumerate(VOC_CLASSES):
        table[c, list(IMAGENET_FOR_VOC[name])] = 0.0

    def score(logits: torch.Tensor) -> torch.Tensor:
        lab = labels.to(logits.device)
        if logits.shape[0] != lab.shape[0]:  # repeated rows (areas, masks): blocks
            lab = lab.repeat_interleave(logits.shape[0] // lab.shape[0])
        return (logits.float() + table.to(logits.device)[lab]).logsumexp(1)

    return score


def annotation_trials(annotation: dict[str, Any], size: int, *,
                      tolerance: float | None = None, skip_all_difficult: bool = False
                      ) -> list[dict[str, Any]]:
    """Pointing trials of one VOC annotation (the dict ``VOCDetection`` returns).

    Args:
        tolerance: ``None`` (default): ``mask`` is the union of the class's boxes on the
            ``size × size`` grid (score it with a tolerance in grid pixels). A number:
            ``mask`` is the *hit region* of TorchRay's pointing game at the image's
            original resolution: grid pixels whose centre, mapped back to the original
            image, lies strictly within ``tolerance`` original pixels of one of the boxes
            (score it with tolerance 0).
        skip_all_difficult: drop classes whose boxes are all flagged PASCAL-difficult (as
            TorchRay's ``PointingGameBenchmark`` does); default keeps them.

    Returns:
        one dict per class present: ``label`` (int), ``mask`` ``(size, size)`` bool (see
        ``tolerance``), ``difficult`` (bool: the class covers under a quarter of the
        image, summing box areas, and the image holds another class).
    """
    ann = annotation["annotation"]
    W, H = float(ann["size"]["width"]), float(ann["size"]["height"])
    objs = ann["object"] if isinstance(ann["object"], list) else [ann["object"]]
    present = sorted({VOC_CLASSES.index(o["name"]) for o in objs})
    ys = (torch.arange(size) + 0.5) * H / size
    xs = (torch.arange(size) + 0.5) * W / size
    trials = []
    for c in present:
        mine = [o for o in objs if VOC_CLASSES.index(o["name"]) == c]
        if skip_all_difficult and all(str(o.get("difficult", "0")) == "1" for o in mine):
            continue
        mask = torch.zeros(size, size, dtype=torch.bool)
        area = 0.0
        for o in mine:
            b = o["bndbox"]
            x0, y0, x1, y1 = (float(b[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
            if tolerance is None:
                mask |= ((ys[:, None] >= y0 - 1) & (ys[:, None] <= y1)
                         & (xs[None] >= x0 - 1) & (xs[None] <= x1))
            else:  # distance (original pixels, 1-based box coordinates) to the box
                dy = torch.clamp(torch.maximum(y0 - 1 - ys, ys - y1), min=0.0)
                dx = torch.clamp(torch.maximum(x0 - 1 - xs, xs - x1), min=0.0)
                mask |= (dy[:, None] ** 2 + dx[None] ** 2) < float(tolerance) ** 2
            area += (x1 - x0 + 1) * (y1 - y0 + 1)
        trials.append({"label": c, "mask": mask,
                       "difficult": bool(area < 0.25 * W * H and len(present) > 1)})
    return trials


def voc_pointing_set(root: str, *, year: str = "2007", image_set: str = "test",
                     size: int = 224, limit: int | None = None, download: bool = False,
                     tolerance: float | None = None, skip_all_difficult: bool = False
                     ) -> dict[str, torch.Tensor]:
    """Load VOC pointing-game trials with torchvision. ``tolerance`` and
    ``skip_all_difficult``: see :func:`annotation_trials` (defaults: boxes on the
    ``size × size`` grid, every class present).

    Returns:
        ``{"images": (T, 3, size, size) ImageNet-normalised, "masks": (T, size, size),
        "labels": (T,), "difficult": (T,)}``, one row per (image, class present).
    """
    from torchvision.datasets import VOCDetection
    from torchvision.transforms.v2 import functional as TF

    size = check_int(size, "size", min_value=8)
    ds = VOCDetection(root, year=year, image_set=image_set, download=download)
    n = len(ds) if limit is None else min(len(ds), check_int(limit, "limit", min_value=1))
    images, masks, labels, difficult = [], [], [], []
    for i in range(n):
        img, ann = ds[i]
        x = TF.to_dtype(TF.to_image(img), torch.float32, scale=True)
        x = normalize_imagenet(TF.resize(x, [size, size], antialias=True))
        for t in annotation_trials(ann, size, tolerance=tolerance,
                                   skip_all_difficult=skip_all_difficult):
            images.append(x)
            masks.append(t["mask"])
            labels.append(t["label"])
            difficult.append(t["difficult"])
    return {"images": torch.stack(images), "masks": torch.stack(masks),
            "labels": torch.tensor(labels), "difficult": torch.tensor(difficult)}


def torchvision_classifier(name: str, *, weights: str | None = "DEFAULT"):
    """``vgg16`` or ``resnet50`` from torchvision (ImageNet weights are downloaded only
    when ``weights`` is not ``None``), in eval mode."""
    import torchvision

    if name not in ("vgg16", "resnet50"):
        raise ValueError(f"name must be 'vgg16' or 'resnet50', got {name!r}")
    return getattr(torchvision.models, name)(weights=weights).eval()


def load_full_preset(name: str, root: str, *, limit: int | None = None,
                     device: torch.device | str = "cpu", weights: str | None = "DEFAULT"):
    """The attribution chapters' full preset: ``(model, trials)`` (see above)."""
    model = torchvision_classifier(name, weights=weights).to(device)
    trials = {k: v.to(device) for k, v in voc_pointing_set(root, limit=limit).items()}
    return model, trials
