"""Class splits of a labelled image set for discovering novel classes: *known* classes
keep their labels, *unknown* ones are handed over unlabelled (their labels kept for
evaluation only), optional *probe* classes are held out labelled (DTC, Han et al. ICCV
2019, §3.3; any chapter that clusters novel classes can use them).

Sources: scikit-learn's 8x8 digits (bundled, offline: :func:`load_digits_split`) and any
torchvision CIFAR-style dataset (:func:`dataset_to_tensors`).

Example:
    >>> import torch
    >>> x, y = torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> s = split_novel(x, y, known=(0,), unknown=(1, 2))
    >>> s.x_lab.shape, s.y_unlab.tolist()
    (torch.Size([2, 1, 4, 4]), [0, 1, 0, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cvbook.core.validate import Shapes, check_int

__all__ = ["NovelSplit", "check_classes", "dataset_to_tensors", "load_digits",
           "load_digits_split", "split_novel"]


def check_classes(known: Sequence[int], unknown: Sequence[int],
                  probes: Sequence[int] = ()) -> None:
    """Raise ``ValueError`` unless ``known`` is non-empty, ``unknown`` has >= 2 classes
    and the three lists are disjoint."""
    if len(known) == 0:
        raise ValueError("known must list at least one labelled class")
    if len(unknown) < 2:
        raise ValueError(f"unknown must list at least 2 classes to cluster, got {unknown}")
    groups = {"known": set(known), "unknown": set(unknown), "probes": set(probes)}
    for a in groups:
        for b in groups:
            if a < b and groups[a] & groups[b]:
                raise ValueError(f"{a} and {b} classes must be disjoint, both contain "
                                 f"{sorted(groups[a] & groups[b])}")


@dataclass
class NovelSplit:
    """Labelled known classes and unlabelled novel classes.

    Attributes:
        x_lab: ``(N_l, C, H, W)`` float images in [0, 1] of the known classes.
        y_lab: ``(N_l,)`` labels re-numbered ``0..len(known)-1``.
        x_unlab: ``(N_u, C, H, W)`` images of the unknown classes.
        y_unlab: ``(N_u,)`` their true classes ``0..len(unknown)-1`` (evaluation only).
        x_probe, y_probe: optional held-out labelled classes (``0..len(probes)-1``).
        known, unknown, probes: the original class ids.
    """

    x_lab: torch.Tensor
    y_lab: torch.Tensor
    x_unlab: torch.Tensor
    y_unlab: torch.Tensor
    known: tuple[int, ...]
    unknown: tuple[int, ...]
    probes: tuple[int, ...] = ()
    x_probe: torch.Tensor | None = None
    y_probe: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> NovelSplit:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return NovelSplit(move(self.x_lab), move(self.y_lab), move(self.x_unlab),
                          move(self.y_unlab), self.known, self.unknown, self.probes,
                          move(self.x_probe), move(self.y_probe))


def split_novel(images: torch.Tensor, labels: torch.Tensor, known: Sequence[int],
                unknown: Sequence[int], probes: Sequence[int] = (), *,
                max_per_class: int = 0) -> NovelSplit:
    """Split a labelled dataset into known (labelled), probe and unknown (unlabelled) parts.

    Args:
        images: ``(N, C, H, W)`` float images.
        labels: ``(N,)`` integer class ids.
        known, unknown, probes: disjoint lists of class ids.
        max_per_class: keep at most this many images per class (0: all), the first ones.
    """
    s = Shapes()
    s.check(images, "images", "N C H W", floating=True)
    s.check(labels, "labels", "N")
    if labels.is_floating_point():
        raise TypeError(f"labels must be integer class ids, got {labels.dtype}")
    if images.shape[0] == 0:
        raise ValueError("images is empty")
    known, unknown, probes = tuple(map(int, known)), tuple(map(int, unknown)), \
        tuple(map(int, probes))
    check_classes(known, unknown, probes)
    max_per_class = check_int(max_per_class, "max_per_class", min_value=0)

    def take(classes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        cls = torch.tensor(classes, device=labels.device)
        hit = labels[:, None] == cls[None, :]                       # (N, C)
        if max_per_class:
            rank = hit.long().cumsum(0) * hit                        # 1-based rank in class
            hit = hit & (rank <= max_per_class)
        keep = hit.any(1)
        present = hit.any(0)
        if not bool(present.all()):
            missing = [c for c, ok in zip(classes, present.tolist()) if not ok]
            raise ValueError(f"no images of classes {missing} in labels")
        return images[keep], hit[keep].float().argmax(1)

    x_l, y_l = take(known)
    x_u, y_u = take(unknown)
    x_p = y_p = None
    if probes:
        x_p, y_p = take(probes)
    return NovelSplit(x_l, y_l, x_u, y_u, known, unknown, probes, x_p, y_p)


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits (bundled, offline): ``(N, 1, 8, 8)`` float images
    (values 0..16 scaled to [0, 1]) and ``(N,)`` int64 labels."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    y = torch.from_numpy(d.target.astype(np.int64))
    return x, y


def load_digits_split(known: Sequence[int] = (0, 1, 2, 3, 4),
                      unknown: Sequence[int] = (5, 6, 7, 8, 9)) -> NovelSplit:
    """:func:`load_digits` split into known and unknown digits. Images ``(N, 1, 8, 8)``."""
    x, y = load_digits()
    return split_novel(x, y, known, unknown)


def dataset_to_tensors(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A torchvision CIFAR-style dataset (``.data`` ``(N, H, W, 3)`` uint8, ``.targets``)
    -> ``(N, 3, H, W)`` float images in [0, 1] and ``(N,)`` int64 labels."""
    data = getattr(ds, "data", None)
    targets = getattr(ds, "targets", None)
    if data is None or targets is None:
        raise TypeError("ds must have .data (N, H, W, C) uint8 and .targets like "
                        "torchvision's CIFAR datasets")
    arr = np.asarray(data)
    if arr.ndim != 4 or arr.dtype != np.uint8:
        raise ValueError(f"ds.data must be (N, H, W, C) uint8, got {arr.shape} {arr.dtype}")
    x = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)
    y = torch.as_tensor(np.asarray(targets), dtype=torch.int64)
    return x, y
