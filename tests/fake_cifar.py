"""Tiny CIFAR-10 / CIFAR-100 folders in the format torchvision downloads (the official
python pickles), for the DTC ``full`` presets' tests: no download, a few images per
class, random pixels."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def make_fake_cifar10(root: str | Path, per_class: int = 4, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with ``data_batch_1..5``, ``test_batch`` and
    ``batches.meta``; the training images spread over the five batches."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    labels = np.repeat(np.arange(10), per_class)
    rng.shuffle(labels)
    data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    for i, idx in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        _dump(base / f"data_batch_{i}", {"batch_label": f"training batch {i} of 5",
                                         "labels": labels[idx].tolist(), "data": data[idx],
                                         "filenames": [f"{j}.png" for j in idx]})
    _dump(base / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": [0],
                                "data": data[:1], "filenames": ["0.png"]})
    _dump(base / "batches.meta", {"label_names": [f"class{c}" for c in range(10)],
                                  "num_cases_per_batch": 10000, "num_vis": 3072})
    return Path(root)


def make_fake_cifar100(root: str | Path, per_class: int = 2, seed: int = 0) -> Path:
    """``root/cifar-100-python`` with ``train``, ``test`` and ``meta``."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    fine = np.repeat(np.arange(100), per_class)
    data = rng.integers(0, 256, (len(fine), 3072), dtype=np.uint8)
    entry = {"fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist(),
             "data": data, "filenames": [f"{j}.png" for j in range(len(fine))]}
    _dump(base / "train", entry)
    _dump(base / "test", {**entry, "data": data[:100], "fine_labels": list(range(100)),
                          "coarse_labels": [c // 5 for c in range(100)]})
    _dump(base / "meta", {"fine_label_names": [f"f{c}" for c in range(100)],
                          "coarse_label_names": [f"c{c}" for c in range(20)]})
    return Path(root)
