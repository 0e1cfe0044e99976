"""The presets of chapter 07 (C3DPO): the puppet world on a CPU, the paper's network on
the official release's keypoints on a GPU.

Example:
    >>> from cvbook.core import select_preset
    >>> cfg = select_preset(PRESETS, "cpu", steps=300)
    >>> cfg.steps, cfg.n_basis
    (300, 5)
    >>> select_preset(PRESETS, "full")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: the full preset needs data_root: the path of a keypoint JSON file ...
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from cvbook.core.validate import check_float, check_int

__all__ = ["PRESETS", "C3DPOConfig"]


@dataclass(frozen=True)
class C3DPOConfig:
    """Settings of chapter 07.

    Attributes:
        steps: training steps per model (Adam, one-cycle schedule; 100 steps an epoch).
        batch_size, lr: mini-batch size and peak learning rate.
        n_basis: ``D``, the size of the shape basis (10 in the paper; 5 on the puppet, see
            the notebook's "what does not reproduce").
        width, n_blocks: the networks' trunk (1024 and 6 in the paper).
        eps: the pseudo-Huber scale (Sec. 3.1).
        inplane: maximum in-plane rotation of the augmentation (Sec. 3.3; pi/8 in the
            paper; 0 turns it off).
        occlusion, noise, spread: the puppet world's fraction of missing keypoints, 2D
            noise (fraction of the figure's height) and pose spread.
        n_train, n_test: puppet training and test set sizes.
        data_root: a keypoint JSON file of the official release (the full preset); the
            puppet world when ``None``.
        real_data: the preset trains on ``data_root`` (the full preset), which must then
            be given and exist.
    """

    steps: int = 1500
    batch_size: int = 256
    lr: float = 3e-3
    n_basis: int = 5
    width: int = 128
    n_blocks: int = 3
    eps: float = 0.01
    inplane: float = 0.0
    occlusion: float = 0.2
    noise: float = 0.005
    spread: float = 0.7
    n_train: int = 20000
    n_test: int = 2000
    data_root: str | None = None
    real_data: bool = False

    def validate(self) -> None:
        check_int(self.steps, "steps", min_value=1)
        check_int(self.batch_size, "batch_size", min_value=2)
        check_float(self.lr, "lr", min_value=0.0, open_min=True)
        check_int(self.n_basis, "n_basis", min_value=1)
        check_int(self.width, "width", min_value=8)
        check_int(self.n_blocks, "n_blocks", min_value=0)
        check_float(self.eps, "eps", min_value=0.0, open_min=True)
        check_float(self.inplane, "inplane", min_value=0.0, max_value=math.pi)
        check_float(self.occlusion, "occlusion", min_value=0.0, max_value=0.9)
        check_float(self.noise, "noise", min_value=0.0)
        check_float(self.spread, "spread", min_value=0.0, open_min=True)
        check_int(self.n_train, "n_train", min_value=self.batch_size)
        check_int(self.n_test, "n_test", min_value=1)
        if self.real_data and self.data_root is None:
            raise ValueError("the full preset needs data_root: the path of a keypoint JSON "
                             "file of the official C3DPO release (e.g. h36m_train.json)")
        if self.data_root is not None:
            if not isinstance(self.data_root, (str, os.PathLike)):
                raise TypeError(f"data_root must be a path, got {type(self.data_root).__name__}")
            if not Path(self.data_root).expanduser().is_file():
                raise ValueError(f"data_root={self.data_root!r} must be a keypoint JSON file "
                                 "of the official C3DPO release (facebookresearch/"
                                 "c3dpo_nrsfm, e.g. h36m_train.json); no such file")


PRESETS: dict[str, C3DPOConfig] = {
    "cpu": C3DPOConfig(),
    # the paper's setting on real data: width 1024, 6 blocks, D = 10, batch 1024, GPU
    "full": C3DPOConfig(steps=100_000, batch_size=1024, lr=1e-3, n_basis=10, width=1024,
                        n_blocks=6, inplane=math.pi / 8, real_data=True),
}
