"""The DTC chapter's settings (:class:`DTCConfig`) and its presets (:data:`PRESETS`):
``cpu`` (jittered digits, :mod:`cvbook.data.glyphs`, pooled CNN, offline), ``digits``
(the plain 8x8 digits of the chapter's first version) and the paper's CIFAR-10 / CIFAR-100 runs
(``full``, ``full_cifar100``: ResNet-18 on a GPU, downloaded by torchvision into
:func:`cvbook.data.paths.default_data_root` unless ``data_root`` is given)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cvbook.core.validate import check_choice, check_float, check_int
from cvbook.data.splits import check_classes

__all__ = ["MODES", "PRESETS", "DTCConfig", "Mode"]

Mode = Literal["none", "pi", "te", "tep"]
MODES: tuple[str, ...] = ("none", "pi", "te", "tep")


@dataclass(frozen=True)
class DTCConfig:
    """Settings of the chapter (see :data:`PRESETS`).

    ``known``/``unknown``/``probes`` are class ids of the dataset; ``anchors`` are the
    known classes kept fixed in class-number estimation (the rest of ``known`` plus
    ``probes`` serve as probes). ``data_root``: where torchvision finds or downloads
    CIFAR; ``None`` means :func:`cvbook.data.paths.default_data_root` (``data/`` of the
    repository checkout, git-ignored, else ``~/.cache/cvbook``).
    """

    dataset: str = "digits"              # "digits", "cifar10", "cifar100", "fake"
    data_root: str | None = None    # None: cvbook.data.paths.default_data_root()
    backbone: str = "cnn"                # "cnn" or "resnet18"
    width: int = 32                      # SmallCNN width
    image_size: int = 8
    known: tuple[int, ...] = (0, 1, 2, 3, 4)
    unknown: tuple[int, ...] = (5, 6, 7, 8, 9)
    probes: tuple[int, ...] = ()         # labelled classes held out of pre-training
    anchors: tuple[int, ...] = (0, 1, 2)
    pretrain_epochs: int = 8
    pretrain_lr: float = 0.05
    epochs: int = 10                     # DTC epochs
    warmup_epochs: int = 4               # before the DTC epochs (official: 10, 30)
    warmup_lr: float = 0.1
    update_interval: int = 3
    lr: float = 0.05
    weight_decay: float = 1e-4
    batch_size: int = 256
    consistency_weight: float = 10.0     # lambda of the ramp-up
    rampup_length: int = 5               # official: 5 epochs
    reduction: str = "mean"              # official: mean over N*K (F.kl_div default)
    ema_alpha: float = 0.6
    milestones: tuple[int, ...] = ()     # main-phase lr x gamma at these epochs
    gamma: float = 0.5
    freeze_bn: bool = False              # official: BN trained during DTC
    rescale: bool = True                 # PCA embedding scaled to RMS distance 1
    max_shift: int = 1
    noise_std: float = 0.05
    flip: bool = False
    n_init: int = 10
    modes: tuple[str, ...] = ("none", "pi", "te")
    n_seeds: int = 3
    k_max: int = 8                       # scan 1..k_max unlabelled classes
    k_pca_dim: int = 16                  # features reduced by PCA before estimating K
    small_cluster_ratio: float = 0.01
    anchor_ratio: float = 0.6            # held-out probe classes used as anchors (official)
    k_n_init: int = 10                   # constrained k-means restarts (official: 10)
    max_per_class: int = 0               # 0: all images

    def validate(self) -> None:
        check_choice(self.dataset, "dataset", ("glyphs", "digits", "cifar10", "cifar100", "fake"))
        check_choice(self.backbone, "backbone", ("pooled", "cnn", "resnet18"))
        for name in ("pretrain_epochs", "epochs", "batch_size", "n_init", "n_seeds", "width",
                     "update_interval", "image_size"):
            check_int(getattr(self, name), name, min_value=1)
        for name in ("warmup_epochs", "rampup_length", "max_shift", "max_per_class",
                     "k_pca_dim"):
            check_int(getattr(self, name), name, min_value=0)
        check_int(self.k_max, "k_max", min_value=2)
        check_choice(self.reduction, "reduction", ("mean", "batchmean"))
        for name in ("pretrain_lr", "lr", "warmup_lr"):
            check_float(getattr(self, name), name, min_value=0.0, open_min=True)
        for mi in self.milestones:
            check_int(mi, "milestones[...]", min_value=1)
        for name in ("weight_decay", "consistency_weight", "noise_std", "gamma"):
            check_float(getattr(self, name), name, min_value=0.0)
        check_float(self.ema_alpha, "ema_alpha", min_value=0.0, max_value=0.999)
        check_int(self.k_n_init, "k_n_init", min_value=1)
        check_float(self.anchor_ratio, "anchor_ratio", min_value=0.0, max_value=1.0)
        check_float(self.small_cluster_ratio, "small_cluster_ratio", min_value=0.0,
                    max_value=1.0)
        for m in self.modes:
            check_choice(m, "modes[...]", MODES)
        check_classes(self.known, self.unknown, self.probes)
        if self.data_root is not None and not isinstance(self.data_root, str):
            raise TypeError(f"data_root must be a str or None, got {self.data_root!r}")
        if not set(self.anchors) <= set(self.known):
            raise ValueError(f"anchors must be a subset of known classes {self.known}, "
                             f"got {self.anchors}")


PRESETS: dict[str, DTCConfig] = {
    # Jittered digits (cvbook.data.glyphs, 16x16): 0-4 labelled, 5-9 unlabelled, a pooled
    # CNN, CPU. Official schedule shape (warm-up before the epochs, ramp-up 5, target
    # update every few epochs, element-wise loss means) with fewer epochs.
    "cpu": DTCConfig(dataset="glyphs", backbone="pooled", width=16, image_size=16,
                     batch_size=128, pretrain_epochs=30, pretrain_lr=0.1, epochs=12,
                     warmup_epochs=3, update_interval=3, modes=("none", "pi", "te", "tep"),
                     n_seeds=2, k_pca_dim=0),
    # The chapter's first world: the plain 8x8 digits (no headroom: raw-pixel k-means is
    # already near the top), flattened L2-normalised SmallCNN features.
    "digits": DTCConfig(),
    # CIFAR-10 5/5 with ResNet-18 (official cifar10_DTC.py / scripts: warm-up 10 epochs
    # at lr 0.1, then 100 epochs at lr 0.05, wd 1e-4, batch 128, ramp-up 5 to 10,
    # target update every 5 epochs; k-means n_init 20).
    "full": DTCConfig(dataset="cifar10", backbone="resnet18", image_size=32, batch_size=128,
                      pretrain_epochs=180, pretrain_lr=0.1, epochs=100, warmup_epochs=10,
                      update_interval=5, n_init=20,
                      rampup_length=5, max_shift=4, noise_std=0.0, flip=True, n_seeds=1,
                      anchors=(0, 1, 2), k_pca_dim=0),
    # CIFAR-100: 0-79 labelled, 80-89 probes (60% anchors, 40% probes), 90-99
    # unlabelled (official cifar100 scripts: warm-up 30, update every 10, wd 1e-5, lr
    # halved at epochs 20, 40, 60, 80).
    "full_cifar100": DTCConfig(dataset="cifar100", backbone="resnet18", image_size=32,
                               batch_size=128, n_init=20,
                               known=tuple(range(80)), probes=tuple(range(80, 90)),
                               unknown=tuple(range(90, 100)), anchors=tuple(range(80)),
                               pretrain_epochs=180, pretrain_lr=0.1, epochs=100,
                               warmup_epochs=30, update_interval=10, rampup_length=5,
                               weight_decay=1e-5, milestones=(20, 40, 60, 80), gamma=0.5,
                               max_shift=4, noise_std=0.0, flip=True, n_seeds=1, k_max=20,
                               k_pca_dim=0),
}
