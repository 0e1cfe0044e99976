"""Labelled image sources with one interface (``train_batches(k)``, ``test_batches(k)``,
``num_classes``), so a chapter's training and evaluation code runs unchanged on a
synthetic world held on the device (:class:`TensorSource`) or on an ImageNet-style
folder read by torchvision (:class:`FolderSource`, the ``full`` presets).

Both yield ``(images, labels)`` batches at a requested resolution ``k``: training
batches through ``RandomResizedCrop(k)`` + flip, test batches through
``Resize(int(256/224·k)) + CenterCrop(k)`` (batched on the device by
:mod:`cvbook.image.crops` for tensors, torchvision's v2 transforms for folders).

Example:
    >>> import torch
    >>> x, y = torch.rand(10, 3, 32, 32), torch.arange(10) % 2
    >>> src = TensorSource(x, y, x, y, num_classes=2, batch_size=4)
    >>> xb, yb = next(iter(src.test_batches(16)))
    >>> xb.shape, len(src.test_batches(16))
    (torch.Size([4, 3, 16, 16]), 3)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from cvbook.core.validate import Shapes, check_choice, check_int
from cvbook.data.imagenet import IMAGENET_MEAN, IMAGENET_STD
from cvbook.data.loaders import TensorBatches
from cvbook.image.crops import (
    TEST_RESIZE_RULES,
    center_crop,
    random_resized_crop,
    resize_size,
)

__all__ = ["IMAGE_EXTENSIONS", "FolderSource", "ResizeHeight", "TensorSource",
           "check_image_folder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class TensorSource:
    """Images held as one tensor on the device; transforms run batched on the device.

    Args:
        train_images, train_labels: ``(N, C, H, W)`` float in [0, 1] and ``(N,)`` int64.
        test_images, test_labels: the held-out split ``(M, C, H, W)``, ``(M,)``.
        num_classes: number of classes.
        batch_size: mini-batch size.
        seed: seed of the generator used for shuffling and augmentation.
        mean, std: per-channel normalisation applied after the transforms.
        train_boxes: optional ``(N, 4)`` ground-truth boxes of the training images
            (used by the apparent-size Monte Carlo of the FixRes chapter).
        test_resize: the test transform's resize rule, ``"shorter"`` (torchvision) or
            ``"height"`` (the FixRes release; :func:`cvbook.image.crops.center_crop`).
    """

    def __init__(self, train_images: torch.Tensor, train_labels: torch.Tensor,
                 test_images: torch.Tensor, test_labels: torch.Tensor, *, num_classes: int,
                 batch_size: int = 128, seed: int = 0,
                 mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.25, 0.25, 0.25),
                 train_boxes: torch.Tensor | None = None,
                 test_resize: str = "shorter") -> None:
        self.test_resize = check_choice(test_resize, "test_resize", TEST_RESIZE_RULES)
        s = Shapes()
        s.check(train_images, "train_images", "N C H W", floating=True)
        s.check(train_labels, "train_labels", "N")
        s.check(test_images, "test_images", "M C * *", floating=True)
        s.check(test_labels, "test_labels", "M")
        for name, x in (("train_images", train_images), ("test_images", test_images)):
            if x.shape[0] == 0:
                raise ValueError(f"{name} is empty")
        self.num_classes = check_int(num_classes, "num_classes", min_value=2)
        for y in (train_labels, test_labels):
            if int(y.min()) < 0 or int(y.max()) >= num_classes:
                raise ValueError(f"labels must lie in [0, {num_classes})")
        if train_boxes is not None:
            s.check(train_boxes, "train_boxes", "N 4")
        self.train_boxes = train_boxes
        self.train_images, self.train_labels = train_images, train_labels
        self.test_images, self.test_labels = test_images, test_labels
        self.batch_size = check_int(batch_size, "batch_size", min_value=1)
        dev = train_images.device
        self.generator = torch.Generator(device=dev).manual_seed(check_int(seed, "seed",
                                                                           min_value=0))
        self.mean = torch.tensor(mean, device=dev).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=dev).view(1, -1, 1, 1)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[-2:])  # type: ignore[return-value]

    def _batches(self, x: torch.Tensor, y: torch.Tensor, shuffle: bool, transform
                 ) -> TensorBatches:
        return TensorBatches(x, y, batch_size=self.batch_size, shuffle=shuffle,
                             generator=self.generator,
                             transform=lambda b: (transform(b) - self.mean) / self.std)

    def train_batches(self, k: int, *, augment: bool = True) -> TensorBatches:
        """Training batches at resolution ``k``: RRC + flip when ``augment``, else the
        test transform (as FixRes fine-tuning uses)."""
        check_int(k, "k", min_value=1)
        if augment:
            tf = lambda x: random_resized_crop(x, k, generator=self.generator)  # noqa: E731
        else:
            tf = lambda x: center_crop(x, k, test_resize=self.test_resize)  # noqa: E731
        return self._batches(self.train_images, self.train_labels, True, tf)

    def test_batches(self, k: int) -> TensorBatches:
        """Held-out batches at resolution ``k`` (test transform), in a fixed order."""
        check_int(k, "k", min_value=1)
        return self._batches(self.test_images, self.test_labels, False,
                             lambda x: center_crop(x, k, test_resize=self.test_resize))


def check_image_folder(root: str | os.PathLike, splits: Sequence[str] = ("train", "val")
                       ) -> list[str]:
    """Check that ``root`` is an ImageNet-style folder ``root/<split>/<class>/<image>``
    with the same classes in every split; return the sorted class names.

    Raises:
        FileNotFoundError: ``root`` or a split is missing.
        ValueError: a split has no class folders, a class has no images, or the splits'
            classes differ.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"data_root {str(root)!r} does not exist; point it to an ImageNet-style folder "
            f"with {'/ and '.join(splits)}/ sub-folders, each holding one folder per class")
    for split in splits:
        if not (root / split).is_dir():
            raise FileNotFoundError(f"{root / split} is missing: expected "
                                    f"{root}/{split}/<class>/<image>")
    classes_per_split = {}
    for split in splits:
        d = root / split
        classes = sorted(p.name for p in d.iterdir() if p.is_dir())
        if not classes:
            raise ValueError(f"{d} has no class sub-folders: expected {d}/<class>/<image>")
        for c in classes:
            if not any(f.suffix.lower() in IMAGE_EXTENSIONS for f in (d / c).iterdir()):
                raise ValueError(f"{d / c} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        classes_per_split[split] = classes
    first = classes_per_split[splits[0]]
    for split, classes in classes_per_split.items():
        if classes != first:
            raise ValueError(f"the class folders of {root / split} differ from those of "
                             f"{root / splits[0]}")
    return first


class FolderSource:
    """An ImageNet-style folder read with torchvision (the ``full`` presets).

    Training batches use ``v2.RandomResizedCrop(K)`` + flip, test batches
    ``v2.Resize(int(256/224·K)) + v2.CenterCrop(K)``, both followed by ImageNet
    normalisation, in DataLoader worker processes.

    Args:
        root: folder with ``train/`` and ``val/`` sub-folders of class folders.
        batch_size: mini-batch size.
        workers: DataLoader worker processes.
        seed: seed for shuffling.
    """

    def __init__(self, root: str | os.PathLike, *, batch_size: int = 64, workers: int = 8,
                 seed: int = 0, test_resize: str = "shorter") -> None:
        self.test_resize = check_choice(test_resize, "test_resize", TEST_RESIZE_RULES)
        self.classes = check_image_folder(root)
        self.root = Path(root).expanduser()
        self.num_classes = len(self.classes)
        self.batch_size = check_int(batch_size, "batch_size", min_value=1)
        self.workers = check_int(workers, "workers", min_value=0)
        self.seed = check_int(seed, "seed", min_value=0)

    def _loader(self, split: str, transform, shuffle: bool):
        from torch.utils.data import DataLoader
        from torchvision.datasets import ImageFolder

        ds = ImageFolder(str(self.root / split), transform=transform)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.workers, pin_memory=torch.cuda.is_available(),
                          generator=torch.Generator().manual_seed(self.seed),
                          persistent_workers=False)

    @staticmethod
    def _finish():
        from torchvision.transforms import v2

        return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]

    def train_batches(self, k: int, *, augment: bool = True):
        from torchvision.transforms import v2

        check_int(k, "k", min_value=1)
        if augment:
            tf = [v2.RandomResizedCrop(k, antialias=True), v2.RandomHorizontalFlip()]
        else:
            tf = [self._resize(k), v2.CenterCrop(k)]
        return self._loader("train", v2.Compose(tf + self._finish()), True)

    def _resize(self, k: int):
        from torchvision.transforms import v2

        if self.test_resize == "height":
            return ResizeHeight(resize_size(k))
        return v2.Resize(resize_size(k), antialias=True)

    def test_batches(self, k: int):
        from torchvision.transforms import v2

        check_int(k, "k", min_value=1)
        tf = [self._resize(k), v2.CenterCrop(k)]
        return self._loader("val", v2.Compose(tf + self._finish()), False)


class ResizeHeight:
    """Resize an image so that its **height** is ``size`` and its aspect is kept (width
    ``int(size·W/H)``), whatever its orientation: the FixRes release's test-time
    ``Resize`` (``imnet_finetune/transforms.py``, ``largest=False``). torchvision's
    ``Resize(int)`` sets the shorter side instead; the two differ on portrait images.
    A picklable callable for ``v2.Compose`` (DataLoader workers)."""

    def __init__(self, size: int) -> None:
        self.size = check_int(size, "size", min_value=1)

    def __call__(self, img):
        from torchvision.transforms.v2 import functional as TF

        h, w = TF.get_size(img)
        return TF.resize(img, [self.size, int(self.size * w / h)], antialias=True)


