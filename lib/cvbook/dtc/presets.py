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
    pretrain_optimizer: str = "sgd"      # "sgd" (one-cycle) or "adam" (official CIFAR)
    pretrain_milestones: tuple[int, ...] = ()  # "adam": lr x pretrain_gamma at these epochs
    pretrain_gamma: float = 0.1
    pretrain_weight_decay: float = 5e-4
    epochs: int = 10                     # DTC epochs
    warmup_epochs: int = 4               # before the DTC epochs (official: 10, 30)
    short_modes: tuple[str, ...] = ()    # ablation: these modes again on a short schedule
    short_epochs: int = 12
    short_warmup_epochs: int = 3
    short_update_interval: int = 3
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
    k_max: int = 8                       # scan k_min..k_max unlabelled classes
    k_min: int = 0                       # official cifar100_est_k.py: candidates from 0
    k_world: str = "split"               # "split": the main split; "letters": jittered
                                         # letters with held-out anchors and probes
    k_known: int = 16                    # letters world: backbone classes
    k_heldout: int = 5                   # letters world: anchor + probe classes
    k_truths: tuple[int, ...] = (2, 3, 5)  # letters world: unlabelled class counts tried
    k_copies: int = 3                    # letters world: jittered copies per font
    k_pca_dim: int = 16                  # features reduced by PCA before estimating K
    small_cluster_ratio: float = 0.01
    anchor_ratio: float = 0.6            # held-out probe classes used as anchors (official)
    k_n_init: int = 10                   # constrained k-means restarts (official: 10)
    max_per_class: int = 0               # 0: all images
    normalize: bool = False              # CIFAR: the official per-channel mean/std
    amp: bool = False                    # mixed precision (CUDA only)
    probe_ceiling: bool = True           # logistic probe on the transferred features

    def validate(self) -> None:
        check_choice(self.dataset, "dataset", ("glyphs", "digits", "cifar10", "cifar100", "fake"))
        check_choice(self.backbone, "backbone", ("pooled", "cnn", "resnet18", "vgg6"))
        check_choice(self.pretrain_optimizer, "pretrain_optimizer", ("sgd", "adam"))
        for mi in self.pretrain_milestones:
            check_int(mi, "pretrain_milestones[...]", min_value=1)
        for m in self.short_modes:
            check_choice(m, "short_modes[...]", MODES)
        for name in ("pretrain_epochs", "epochs", "batch_size", "n_init", "n_seeds", "width",
                     "update_interval", "image_size", "short_epochs",
                     "short_update_interval"):
            check_int(getattr(self, name), name, min_value=1)
        for name in ("warmup_epochs", "short_warmup_epochs", "rampup_length", "max_shift",
                     "max_per_class", "k_pca_dim"):
            check_int(getattr(self, name), name, min_value=0)
        check_int(self.k_min, "k_min", min_value=0)
        check_int(self.k_max, "k_max", min_value=max(1, self.k_min))
        check_choice(self.k_world, "k_world", ("split", "letters"))
        for name in ("k_known", "k_heldout", "k_copies"):
            check_int(getattr(self, name), name, min_value=2 if name != "k_copies" else 1)
        for t in self.k_truths:
            check_int(t, "k_truths[...]", min_value=1)
        if self.k_world == "letters" and (not self.k_truths or self.k_known + self.k_heldout
                                          + max(self.k_truths) > 26):
            raise ValueError(f"letters world: k_known + k_heldout + max(k_truths) must be at "
                             f"most 26, got {self.k_known}, {self.k_heldout}, {self.k_truths}")
        check_choice(self.reduction, "reduction", ("mean", "batchmean"))
        for name in ("pretrain_lr", "lr", "warmup_lr"):
            check_float(getattr(self, name), name, min_value=0.0, open_min=True)
        for mi in self.milestones:
            check_int(mi, "milestones[...]", min_value=1)
        for name in ("weight_decay", "consistency_weight", "noise_std", "gamma",
                     "pretrain_gamma", "pretrain_weight_decay"):
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
    # CNN, CPU, one world per seed. DTC (TE) on the official CIFAR-10 schedule (warm-up 10
    # epochs at lr 0.1, then 100 at lr 0.05, target update every 5, ramp-up 5,
    # element-wise loss means); every mode again on a short schedule (3 + 12, update
    # every 3) as the schedule ablation. The class-number estimate runs on the jittered
    # letters (16 letters train the backbone, 5 held-out letters are the anchors and
    # probes, 2, 3 or 5 further letters are unlabelled).
    "cpu": DTCConfig(dataset="glyphs", backbone="pooled", width=16, image_size=16,
                     batch_size=128, pretrain_epochs=30, pretrain_lr=0.1, epochs=100,
                     warmup_epochs=10, update_interval=5, modes=("te",),
                     short_modes=("none", "pi", "te", "tep"), short_epochs=12,
                     short_warmup_epochs=3, short_update_interval=3, n_seeds=1,
                     k_pca_dim=0, k_world="letters", k_max=10),
    # The chapter's first world: the plain 8x8 digits (no headroom: raw-pixel k-means is
    # already near the top), flattened L2-normalised SmallCNN features.
    "digits": DTCConfig(),
    # CIFAR-10 5/5 with ResNet-18. Pre-training as the official cifar10_classif.py: Adam
    # lr 0.1, x0.1 at epochs 100 and 150 of 180, batch 128, random crop (pad 4) + flip,
    # the official per-channel normalisation. DTC as cifar10_DTC.py / scripts: warm-up
    # 10 epochs at lr 0.1, then 100 epochs at lr 0.05, wd 1e-4, batch 128, ramp-up 5 to
    # 10, target update every 5 epochs; k-means n_init 20. AMP on CUDA.
    "full": DTCConfig(dataset="cifar10", backbone="resnet18", image_size=32, batch_size=128,
                      pretrain_epochs=180, pretrain_lr=0.1, pretrain_optimizer="adam",
                      pretrain_milestones=(100, 150), pretrain_gamma=0.1,
                      pretrain_weight_decay=0.0, epochs=100, warmup_epochs=10,
                      update_interval=5, n_init=20, rampup_length=5, max_shift=4,
                      noise_std=0.0, flip=True, n_seeds=1, anchors=(0, 1, 2), k_pca_dim=0,
                      normalize=True, amp=True),
    # CIFAR-100: 0-79 labelled, 80-89 held out (60% anchors, 40% probes), 90-99
    # unlabelled, the official VGG "5+1" (cifar100_classif.py: Adam lr 0.001, x0.1 at
    # 100 and 150 of 180; cifar100 DTC scripts: warm-up 30, update every 10, wd 1e-5, lr
    # halved at epochs 20, 40, 60, 80). AMP on CUDA.
    "full_cifar100": DTCConfig(dataset="cifar100", backbone="vgg6", image_size=32,
                               batch_size=128, n_init=20,
                               known=tuple(range(80)), probes=tuple(range(80, 90)),
                               unknown=tuple(range(90, 100)), anchors=tuple(range(80)),
                               pretrain_epochs=180, pretrain_lr=0.001,
                               pretrain_optimizer="adam", pretrain_milestones=(100, 150),
                               pretrain_gamma=0.1, pretrain_weight_decay=0.0, epochs=100,
                               warmup_epochs=30, update_interval=10, rampup_length=5,
                               weight_decay=1e-5, milestones=(20, 40, 60, 80), gamma=0.5,
                               max_shift=4, noise_std=0.0, flip=True, n_seeds=1, k_max=99,
                               k_pca_dim=0, normalize=True, amp=True),
}
