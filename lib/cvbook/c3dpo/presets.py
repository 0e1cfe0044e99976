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
    ValueError: the full preset needs data_root: the folder holding the official C3DPO ...
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

from cvbook.core.validate import check_choice, check_float, check_int

__all__ = ["DATASETS", "PRESETS", "C3DPOConfig"]

#: the official release's keypoint datasets that the full preset evaluates: Human3.6M with
#: ground-truth or Hourglass 2D keypoints. PASCAL3D+ and Up3D need the release's masks
#: (per-class ``eval_mask``, ``fix_mean_depth``, per-class means), not implemented here.
DATASETS = ("h36m", "h36m_hourglass")


@dataclass(frozen=True)
class C3DPOConfig:
    """Settings of chapter 07.

    Attributes:
        steps: training steps per model.
        batch_size, lr: mini-batch size and (peak) learning rate.
        optimizer: ``"adam"`` (Adam with a one-cycle schedule: converges within the CPU
            budget) or ``"sgd"`` (the official recipe: SGD, momentum 0.9, weight decay
            ``weight_decay``, learning rate divided by 10 after 2/3 and 8/9 of the steps,
            i.e. epochs 60 and 80 of 90).
        weight_decay: L2 weight decay (5e-4 in the official configuration).
        n_basis: ``D``, the size of the shape basis (10 in the official Human3.6M
            configuration, ``cfgs/h36m.yaml``, and the full preset; 5 on the puppet: the
            chapter trains D = 10 on the same batches beside it, and on seeds 0-2 it is no
            better in best-of-flip MPJPE or stress, see ``07_c3dpo.seeds.json``).
        width, n_blocks: the networks' trunk (1024 and 6 in the paper).
        eps: the pseudo-Huber scale (Sec. 3.1).
        inplane: maximum in-plane rotation of the augmentation (Sec. 3.3; pi/8, applied
            twice, in the official configuration; 0 turns it off).
        n_rotations: random rotations per sample fed to Psi (4 in the official
            configuration).
        occlusion, noise, spread, elevation: the puppet world's fraction of missing
            keypoints, 2D noise (in units of the figure's height, 1.75), pose spread
            (:meth:`cvbook.data.puppet.PuppetWorld.sample_angles`) and the largest camera
            elevation (degrees, above and below the horizon).
        n_train, n_test: puppet training and test set sizes.
        data_root: a folder holding the official release's keypoint files
            ``<dataset>_train.json`` and ``<dataset>_val.json`` (the full preset); the
            puppet world when ``None``.
        dataset: the official dataset name (``"h36m"``: the Human3.6M protocol, hip-centred,
            in millimetres, averaged per action).
        real_data: the preset trains on ``data_root`` (the full preset), which must then
            be given and exist.
        reprojection: ``"centred"`` (the reprojection ``Pi R X`` is centred on its visible
            mean, as the input is) or ``"uncentred"`` (the release: ``Pi R X`` as is,
            against the centred input).
        init: ``"default"`` (PyTorch's initialisation; the basis and rotation head as in
            :class:`~cvbook.c3dpo.model.Factoriser`) or ``"official"`` (the release's:
            :func:`~cvbook.c3dpo.model.init_official_`).
    """

    steps: int = 1500
    batch_size: int = 256
    lr: float = 3e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    n_basis: int = 5
    width: int = 128
    n_blocks: int = 3
    eps: float = 0.01
    inplane: float = math.pi / 8
    n_rotations: int = 4
    occlusion: float = 0.2
    noise: float = 0.005
    spread: float = 0.7
    elevation: float = 30.0
    n_train: int = 20000
    n_test: int = 2000
    data_root: str | None = None
    dataset: str = "h36m"
    real_data: bool = False
    reprojection: str = "centred"
    init: str = "default"

    def __str__(self) -> str:
        """The settings as ``print`` shows them: floats to 4 significant digits and the
        in-plane angle as a fraction of pi when it is one (``inplane=pi/8``, not
        ``0.39269908169872414``); ``repr`` keeps the exact values.

        >>> "inplane=pi/8" in str(C3DPOConfig()) and "lr=0.003" in str(C3DPOConfig())
        True
        """
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            n = math.pi / v if f.name == "inplane" and isinstance(v, float) and v > 0 else 0.0
            if n and abs(n - round(n)) < 1e-9:
                text = "pi" if round(n) == 1 else f"pi/{round(n)}"
            elif isinstance(v, float):
                text = f"{v:.4g}"
            else:
                text = repr(v)
            parts.append(f"{f.name}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def files(self) -> tuple[Path, Path]:
        """The training and evaluation keypoint files of the full preset:
        ``data_root/<dataset>_train.json`` and ``data_root/<dataset>_val.json`` (the
        official release's names)."""
        if self.data_root is None:
            raise ValueError("files() needs data_root (the full preset)")
        root = Path(self.data_root).expanduser()
        return root / f"{self.dataset}_train.json", root / f"{self.dataset}_val.json"

    def validate(self) -> None:
        check_int(self.steps, "steps", min_value=1)
        check_int(self.batch_size, "batch_size", min_value=2)
        check_float(self.lr, "lr", min_value=0.0, open_min=True)
        check_choice(self.optimizer, "optimizer", ("adam", "sgd"))
        check_float(self.weight_decay, "weight_decay", min_value=0.0)
        check_int(self.n_basis, "n_basis", min_value=1)
        check_int(self.width, "width", min_value=8)
        check_int(self.n_blocks, "n_blocks", min_value=0)
        check_float(self.eps, "eps", min_value=0.0, open_min=True)
        check_float(self.inplane, "inplane", min_value=0.0, max_value=math.pi)
        check_int(self.n_rotations, "n_rotations", min_value=1)
        check_float(self.occlusion, "occlusion", min_value=0.0, max_value=0.9)
        check_float(self.noise, "noise", min_value=0.0)
        check_float(self.spread, "spread", min_value=0.0, open_min=True)
        check_float(self.elevation, "elevation", min_value=0.0, max_value=90.0)
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset={self.dataset!r} is not supported: the full preset "
                             f"implements the Human3.6M protocol ({', '.join(DATASETS)}); "
                             "PASCAL3D+ and Up3D need the release's per-class evaluation "
                             "masks and mean-depth handling, which are not implemented")
        check_choice(self.reprojection, "reprojection", ("centred", "uncentred"))
        check_choice(self.init, "init", ("default", "official"))
        check_int(self.n_train, "n_train", min_value=self.batch_size)
        check_int(self.n_test, "n_test", min_value=1)
        if self.real_data and self.data_root is None:
            raise ValueError("the full preset needs data_root: the folder holding the "
                             f"official C3DPO keypoint files {self.dataset}_train.json and "
                             f"{self.dataset}_val.json")
        if self.data_root is not None:
            if not isinstance(self.data_root, (str, os.PathLike)):
                raise TypeError(f"data_root must be a path, got {type(self.data_root).__name__}")
            missing = [f.name for f in self.files() if not f.is_file()]
            if missing:
                raise ValueError(f"data_root={self.data_root!r} must be a folder holding the "
                                 "official C3DPO keypoint files (facebookresearch/"
                                 f"c3dpo_nrsfm, dataset/dataset_configs.py); missing: "
                                 f"{', '.join(missing)}")


PRESETS: dict[str, C3DPOConfig] = {
    "cpu": C3DPOConfig(),
    # the official Human3.6M configuration (cfgs/h36m.yaml): width 1024, 6 blocks, D = 10,
    # batch 1024, 90 epochs of 1,249,280 random samples (1220 steps), SGD lr 1e-3,
    # momentum 0.9, weight decay 5e-4, lr / 10 at epochs 60 and 80; in-plane rotations of
    # up to pi/8 twice; Psi with 4 random rotations per sample; the uncentred reprojection
    # and the weight initialisation of model.py; on a GPU
    "full": C3DPOConfig(steps=90 * 1220, batch_size=1024, lr=1e-3, optimizer="sgd",
                        weight_decay=5e-4, n_basis=10, width=1024, n_blocks=6,
                        inplane=math.pi / 8, n_rotations=4, real_data=True,
                        # the release's uncentred reprojection and initialisation (on the
                        # puppet each was slightly better than the cpu preset's choice:
                        # cvbook/data/files/c3dpo_ablations.json)
                        reprojection="uncentred", init="official"),
}
