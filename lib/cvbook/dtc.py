"""Deep Transfer Clustering (DTC): Han, Vedaldi and Zisserman, "Learning to Discover
Novel Visual Categories via Deep Transfer Clustering", ICCV 2019, arXiv:1908.09884.

The setting: labelled images of some classes (the *known* classes) and unlabelled
images of *other* classes. Goal: cluster the unlabelled images into their classes and
estimate how many there are, using what the known classes teach about "what a
class is".

Pipeline (one function per step):

1. :func:`pretrain` a backbone on the labelled classes (cross-entropy).
2. :func:`pca_kmeans_init`: features of the unlabelled set -> PCA to ``K`` dims ->
   k-means. The PCA projection becomes the network's last linear layer (the
   *bottleneck*) and the k-means centres the learnable prototypes ``mu`` (``K x K``),
   so DTC starts exactly from the k-means solution in the transferred feature space.
   (The released CIFAR/SVHN scripts start the bottleneck randomly while ``mu`` live in
   PCA space; initialising the bottleneck with the PCA map keeps the two consistent.)
3. The DEC objective (:func:`soft_assign` eq. 1, :func:`target_distribution` eq. 2,
   :func:`kl_divergence` eq. 3) trained by :func:`train_dtc`, with the warm-up and
   target-update schedule of the paper, and optionally temporal ensembling and
   consistency (:class:`TemporalEnsemble`, :func:`rampup_weight`) in the PI, TE and
   TEP forms.
4. :func:`estimate_num_classes`: constrained k-means (:func:`constrained_kmeans`)
   with *anchor* classes fixed and *probe* classes free, scored by probe accuracy and
   the :func:`silhouette_score` of the unlabelled points, then the small-cluster cut.

Everything is vectorised torch and follows the device of its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cvbook.core._validate import check_choice, check_float, check_int, check_tensor
from cvbook.core.train import History, fit
from cvbook.metrics.clustering import cluster_acc, clustering_scores, hungarian_match

Mode = Literal["none", "pi", "te", "tep"]
MODES: tuple[str, ...] = ("none", "pi", "te", "tep")

# --------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DTCConfig:
    """Settings of the chapter (see :data:`PRESETS`).

    ``known``/``unknown``/``probes`` are class ids of the dataset; ``anchors`` are the
    known classes kept fixed in class-number estimation (the rest of ``known`` plus
    ``probes`` serve as probes).
    """

    dataset: str = "digits"              # "digits", "cifar10", "cifar100", "fake"
    data_root: str = "data"
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
    warmup_epochs: int = 4
    update_interval: int = 3
    lr: float = 0.05
    weight_decay: float = 1e-4
    batch_size: int = 256
    consistency_weight: float = 10.0     # lambda of the ramp-up
    rampup_length: int = 8
    ema_alpha: float = 0.6
    max_shift: int = 1
    noise_std: float = 0.05
    flip: bool = False
    n_init: int = 10
    modes: tuple[str, ...] = ("none", "pi", "te")
    n_seeds: int = 3
    k_max: int = 8                       # scan 1..k_max unlabelled classes
    k_pca_dim: int = 16                  # features reduced by PCA before estimating K
    small_cluster_ratio: float = 0.01
    max_per_class: int = 0               # 0: all images

    def validate(self) -> None:
        check_choice(self.dataset, "dataset", ("digits", "cifar10", "cifar100", "fake"))
        check_choice(self.backbone, "backbone", ("cnn", "resnet18"))
        for name in ("pretrain_epochs", "epochs", "batch_size", "n_init", "n_seeds", "width",
                     "update_interval", "image_size"):
            check_int(getattr(self, name), name, min_value=1)
        for name in ("warmup_epochs", "rampup_length", "max_shift", "max_per_class",
                     "k_pca_dim"):
            check_int(getattr(self, name), name, min_value=0)
        check_int(self.k_max, "k_max", min_value=2)
        for name in ("pretrain_lr", "lr"):
            check_float(getattr(self, name), name, min_value=0.0, open_min=True)
        for name in ("weight_decay", "consistency_weight", "noise_std"):
            check_float(getattr(self, name), name, min_value=0.0)
        check_float(self.ema_alpha, "ema_alpha", min_value=0.0, max_value=0.999)
        check_float(self.small_cluster_ratio, "small_cluster_ratio", min_value=0.0,
                    max_value=1.0)
        for m in self.modes:
            check_choice(m, "modes[...]", MODES)
        _check_classes(self.known, self.unknown, self.probes)
        if not set(self.anchors) <= set(self.known):
            raise ValueError(f"anchors must be a subset of known classes {self.known}, "
                             f"got {self.anchors}")


PRESETS: dict[str, DTCConfig] = {
    # 8x8 scikit-learn digits, 0-4 labelled and 5-9 unlabelled, small CNN, CPU.
    "cpu": DTCConfig(),
    # CIFAR-10 5/5 with ResNet-18 (paper §4: SGD, lr 0.05, 100 epochs, batch 128).
    "full": DTCConfig(dataset="cifar10", backbone="resnet18", image_size=32, batch_size=128,
                      pretrain_epochs=180, pretrain_lr=0.1, epochs=100, warmup_epochs=10,
                      update_interval=5,
                      rampup_length=50, max_shift=4, noise_std=0.0, flip=True, n_seeds=1,
                      anchors=(0, 1, 2)),
    # CIFAR-100: 0-79 labelled, 80-89 probes, 90-99 unlabelled (paper §4).
    "full_cifar100": DTCConfig(dataset="cifar100", backbone="resnet18", image_size=32,
                               batch_size=128,
                               known=tuple(range(80)), probes=tuple(range(80, 90)),
                               unknown=tuple(range(90, 100)), anchors=tuple(range(80)),
                               pretrain_epochs=180, pretrain_lr=0.1, epochs=100,
                               warmup_epochs=30, update_interval=10, rampup_length=50,
                               max_shift=4, noise_std=0.0, flip=True, n_seeds=1, k_max=20),
}


def _check_classes(known: Sequence[int], unknown: Sequence[int],
                   probes: Sequence[int] = ()) -> None:
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


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


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
    check_tensor(images, "images", ndim=4, floating=True)
    check_tensor(labels, "labels", ndim=1)
    if labels.is_floating_point():
        raise TypeError(f"labels must be integer class ids, got {labels.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"images and labels must have the same length, got "
                         f"{images.shape[0]} and {labels.shape[0]}")
    if images.shape[0] == 0:
        raise ValueError("images is empty")
    known, unknown, probes = tuple(map(int, known)), tuple(map(int, unknown)), \
        tuple(map(int, probes))
    _check_classes(known, unknown, probes)
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


def load_digits_split(known: Sequence[int] = (0, 1, 2, 3, 4),
                      unknown: Sequence[int] = (5, 6, 7, 8, 9)) -> NovelSplit:
    """scikit-learn's 1,797 8x8 digits (values 0..16 scaled to [0, 1]) split into
    known and unknown digits. Images ``(N, 1, 8, 8)``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    y = torch.from_numpy(d.target.astype(np.int64))
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


def load_split(cfg: DTCConfig, *, download: bool = False) -> NovelSplit:
    """The data of a preset: digits, or CIFAR-10/100 training sets via torchvision
    (the paper clusters the unlabelled *training* images)."""
    cfg.validate()
    if cfg.dataset == "digits":
        s = load_digits_split(cfg.known, cfg.unknown)
        return s
    if cfg.dataset == "fake":
        g = torch.Generator().manual_seed(0)
        n = 10 * len(set(cfg.known) | set(cfg.unknown) | set(cfg.probes))
        x = torch.rand(n, 3, 32, 32, generator=g)
        classes = sorted(set(cfg.known) | set(cfg.unknown) | set(cfg.probes))
        y = torch.tensor(classes).repeat_interleave(10)
        return split_novel(x, y, cfg.known, cfg.unknown, cfg.probes)
    import torchvision

    cls = torchvision.datasets.CIFAR10 if cfg.dataset == "cifar10" else \
        torchvision.datasets.CIFAR100
    ds = cls(cfg.data_root, train=True, download=download)
    x, y = dataset_to_tensors(ds)
    return split_novel(x, y, cfg.known, cfg.unknown, cfg.probes,
                       max_per_class=cfg.max_per_class)


def augment(x: torch.Tensor, *, max_shift: int = 1, noise_std: float = 0.0,
            flip: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (zero padding), optional
    horizontal flip and Gaussian noise, drawn independently per image, in one batched
    gather (no loop over images).

    Args:
        x: ``(N, C, H, W)`` images.
        generator: a generator on ``x``'s device (or ``None``).

    Returns:
        ``(N, C, H, W)`` augmented images.
    """
    check_tensor(x, "x", ndim=4, floating=True)
    max_shift = check_int(max_shift, "max_shift", min_value=0)
    noise_std = check_float(noise_std, "noise_std", min_value=0.0)
    n, c, h, w = x.shape
    dev = x.device
    out = x
    if max_shift:
        s = max_shift
        pad = F.pad(x, (s, s, s, s))
        dy = torch.randint(0, 2 * s + 1, (n,), device=dev, generator=generator)
        dx = torch.randint(0, 2 * s + 1, (n,), device=dev, generator=generator)
        rows = (dy[:, None] + torch.arange(h, device=dev)[None])          # (N, H)
        cols = (dx[:, None] + torch.arange(w, device=dev)[None])          # (N, W)
        idx = torch.arange(n, device=dev)[:, None, None]
        out = pad.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]
        out = out.permute(0, 3, 1, 2)
    if flip:
        f = torch.rand(n, device=dev, generator=generator) < 0.5
        out = torch.where(f[:, None, None, None], out.flip(-1), out)
    if noise_std:
        out = out + noise_std * torch.randn(out.shape, device=dev, generator=generator)
    return out.contiguous()


def _batches(n: int, batch_size: int, generator: torch.Generator,
             device: torch.device) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=generator).to(device)
    return list(perm.split(batch_size))


# --------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------


def make_backbone(cfg: DTCConfig, in_channels: int) -> nn.Module:
    """The preset's feature extractor (``out_dim`` attribute gives its size)."""
    from cvbook.nn.feature_cnn import SmallCNN, cifar_resnet18

    if cfg.backbone == "cnn":
        return SmallCNN(in_channels, cfg.width, cfg.image_size)
    return cifar_resnet18(in_channels)


class Classifier(nn.Module):
    """``backbone`` followed by a linear head (supervised pre-training)."""

    def __init__(self, backbone: nn.Module, n_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.out_dim, check_int(n_classes, "n_classes", min_value=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def pretrain(backbone: nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int, *,
             epochs: int = 30, lr: float = 0.05, batch_size: int = 128,
             weight_decay: float = 5e-4, max_shift: int = 1, noise_std: float = 0.0,
             flip: bool = False, generator: torch.Generator | None = None,
             progress: bool = True) -> History:
    """Step 1: supervised training of ``backbone`` + a linear head on the known classes
    (cross-entropy, SGD with momentum and a cosine schedule).

    Args:
        x: ``(N, C, H, W)`` labelled images; y: ``(N,)`` labels in ``0..n_classes-1``.

    Raises:
        ValueError: labels outside ``0..n_classes-1`` (e.g. an unknown class slipped in),
            mismatched lengths or an empty set.
    """
    check_tensor(x, "x", ndim=4, floating=True)
    check_tensor(y, "y", ndim=1)
    n_classes = check_int(n_classes, "n_classes", min_value=2)
    if x.shape[0] == 0:
        raise ValueError("x is empty: pre-training needs labelled images")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length, got {x.shape[0]} and "
                         f"{y.shape[0]}")
    if y.is_floating_point() or bool((y < 0).any()) or bool((y >= n_classes).any()):
        raise ValueError(f"y must hold labels of the known classes 0..{n_classes - 1}, got "
                         f"values in [{y.min().item()}, {y.max().item()}]")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    dev = x.device
    aug_gen = torch.Generator(dev).manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
    model = Classifier(backbone, n_classes).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps = epochs * math.ceil(x.shape[0] / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.15)

    def loss_fn(net: nn.Module, idx: torch.Tensor):
        xb = augment(x[idx], max_shift=max_shift, noise_std=noise_std, flip=flip,
                     generator=aug_gen)
        logits = net(xb)
        loss = F.cross_entropy(logits, y[idx])
        return loss, {"train_acc": (logits.argmax(1) == y[idx]).float().mean()}

    hist = fit(model, lambda e: _batches(x.shape[0], batch_size, gen, dev), loss_fn, opt,
               epochs=epochs, scheduler=sched, scheduler_step="step", progress=progress,
               desc="pre-train")
    backbone.eval()
    return hist


@torch.no_grad()
def extract_features(net: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, D)`` features of ``net`` in eval mode (mode restored)."""
    check_tensor(x, "x", ndim=4, floating=True)
    was = net.training
    net.eval()
    try:
        out = torch.cat([net(xb) for xb in x.split(batch_size)]) if len(x) else \
            torch.empty(0)
    finally:
        net.train(was)
    return out


@dataclass
class KMeansInit:
    """PCA + k-means initialisation. ``weight`` ``(K, D)`` and ``bias`` ``(K,)`` are the
    PCA map ``z = weight @ f + bias``; ``centres`` ``(K, K)``; ``labels`` ``(N,)``."""

    weight: torch.Tensor
    bias: torch.Tensor
    centres: torch.Tensor
    labels: torch.Tensor


def pca_kmeans_init(features: torch.Tensor, k: int, *, n_init: int = 20,
                    seed: int = 0, rescale: bool = True) -> KMeansInit:
    """Step 2 (§3.1): PCA of the unlabelled features to ``k`` dims, then k-means with
    ``n_init`` restarts (scikit-learn).

    Args:
        features: ``(N, D)`` features of the unlabelled images, ``N >= k``.
        k: number of clusters (>= 2); also the PCA / bottleneck dimension.
        rescale: scale the PCA map so that points lie at RMS distance 1 from their
            centres (the kernel of eq. 1 has a fixed width; ``False``: plain PCA).
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    check_tensor(features, "features", ndim=2, floating=True)
    k = check_int(k, "k", min_value=2)
    if features.shape[0] < k:
        raise ValueError(f"features must have at least k={k} rows, got {features.shape[0]}")
    if features.shape[1] < k:
        raise ValueError(f"features must have at least k={k} dimensions for PCA to k, got "
                         f"{features.shape[1]}")
    f = features.detach().double().cpu().numpy()
    pca = PCA(n_components=k, random_state=seed).fit(f)
    z = pca.transform(f)
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(z)
    # Scale the embedding so that the RMS distance of a point to its centre is 1: the
    # Student-t kernel of eq. 1 has a fixed width, so on a tiny scale every q_i would be
    # nearly uniform and DEC would have no signal. k-means is scale-invariant.
    scale = 1.0
    if rescale:
        rms = np.sqrt(((z - km.cluster_centers_[km.labels_]) ** 2).sum(1).mean())
        scale = 1.0 / max(rms, 1e-12)
    dev, dt = features.device, features.dtype
    w = torch.as_tensor(pca.components_ * scale, dtype=dt, device=dev)
    b = -(w @ torch.as_tensor(pca.mean_, dtype=dt, device=dev))
    return KMeansInit(w, b, torch.as_tensor(km.cluster_centers_ * scale, dtype=dt, device=dev),
                      torch.as_tensor(km.labels_, dtype=torch.int64, device=dev))


def kmeans_baseline(features: torch.Tensor, y: torch.Tensor, k: int, *, pca_dim: int | None
                    = None, n_init: int = 20, seed: int = 0) -> dict[str, float]:
    """k-means (optionally after PCA) on ``(N, D)`` features, scored against ``y``."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    check_tensor(features, "features", ndim=2, floating=True)
    f = features.detach().double().cpu().numpy()
    if pca_dim is not None:
        f = PCA(n_components=pca_dim, random_state=seed).fit_transform(f)
    pred = KMeans(n_clusters=check_int(k, "k", min_value=2), n_init=n_init,
                  random_state=seed).fit_predict(f)
    return clustering_scores(y.cpu(), pred.astype(np.int64))


# --------------------------------------------------------------------------------------
# DEC objective (§3.1, eqs. 1-3)
# --------------------------------------------------------------------------------------


def soft_assign(z: torch.Tensor, centres: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Eq. (1): Student-t soft assignment of embeddings to prototypes,
    ``q_ik ∝ (1 + ||z_i - mu_k||^2 / alpha)^(-(alpha + 1) / 2)``.

    Args:
        z: ``(N, D)`` embeddings; centres: ``(K, D)`` prototypes ``mu``.

    Returns:
        ``(N, K)`` rows summing to one.
    """
    check_tensor(z, "z", ndim=2, floating=True)
    check_tensor(centres, "centres", ndim=2, floating=True)
    if z.shape[1] != centres.shape[1]:
        raise ValueError(f"z (N, {z.shape[1]}) and centres (K, {centres.shape[1]}) must "
                         "have the same dimension")
    alpha = check_float(alpha, "alpha", min_value=0.0, open_min=True)
    d2 = (z[:, None, :] - centres[None, :, :]).pow(2).sum(-1)           # (N, K)
    logits = -(alpha + 1.0) / 2.0 * torch.log1p(d2 / alpha)
    return torch.softmax(logits, dim=1)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """Eq. (2): the sharpened target ``p_ik ∝ q_ik^2 / f_k`` with ``f_k = sum_i q_ik``
    (squaring sharpens, dividing by cluster frequency stops large clusters taking
    over). ``(N, K) -> (N, K)``, rows summing to one, no gradient."""
    check_tensor(q, "q", ndim=2, floating=True)
    if q.shape[0] == 0:
        raise ValueError("q is empty")
    q = q.detach()
    w = q.pow(2) / q.sum(0, keepdim=True)
    return w / w.sum(1, keepdim=True)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Eq. (3): ``KL(P || Q) = (1/N) sum_i sum_k p_ik log(p_ik / q_ik)`` (mean over
    samples). ``p``, ``q``: ``(N, K)``."""
    check_tensor(p, "p", ndim=2, floating=True)
    check_tensor(q, "q", ndim=2, floating=True)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and "
                         f"{tuple(q.shape)}")
    return (p * (torch.log(p.clamp_min(eps)) - torch.log(q.clamp_min(eps)))).sum(1).mean()


class DTCNet(nn.Module):
    """Backbone -> bottleneck ``Linear(D, K)`` -> soft assignment to prototypes ``mu``.

    Shapes: ``(N, C, H, W)`` -> ``z`` ``(N, K)``, ``q`` ``(N, K)``.
    """

    def __init__(self, backbone: nn.Module, init: KMeansInit, alpha: float = 1.0) -> None:
        super().__init__()
        k, d = init.weight.shape
        self.backbone = backbone
        self.bottleneck = nn.Linear(d, k)
        with torch.no_grad():
            self.bottleneck.weight.copy_(init.weight)
            self.bottleneck.bias.copy_(init.bias)
        self.centres = nn.Parameter(init.centres.detach().clone())
        self.alpha = alpha

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.backbone(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.embed(x)
        return z, soft_assign(z, self.centres, self.alpha)


# --------------------------------------------------------------------------------------
# Temporal ensembling and consistency (§3.2)
# --------------------------------------------------------------------------------------


def rampup_weight(epoch: int | float, length: int, lam: float) -> float:
    """The consistency weight ``w(t) = lam * exp(-5 (1 - t/T)^2)`` for ``t < T``, then
    ``lam`` (Laine & Aila's sigmoid-shaped ramp-up used by DTC, §3.2)."""
    lam = check_float(lam, "lam", min_value=0.0)
    length = check_int(length, "length", min_value=0)
    epoch = check_float(epoch, "epoch", min_value=0.0)
    if length == 0 or epoch >= length:
        return lam
    return lam * math.exp(-5.0 * (1.0 - epoch / length) ** 2)


class TemporalEnsemble:
    """Per-sample exponential moving average of predictions (§3.2, after Laine & Aila):
    ``Q <- alpha Q + (1 - alpha) q_epoch``, bias-corrected ``Q / (1 - alpha^t)``.

    Args:
        n: number of samples; k: number of clusters; alpha: EMA momentum (0.6 in DTC).
    """

    def __init__(self, n: int, k: int, alpha: float = 0.6, device: torch.device | str =
                 "cpu") -> None:
        self.n = check_int(n, "n", min_value=1)
        self.k = check_int(k, "k", min_value=1)
        self.alpha = check_float(alpha, "alpha", min_value=0.0, max_value=0.999)
        self.state = torch.zeros(n, k, device=device)
        self.steps = 0

    def update(self, q: torch.Tensor) -> torch.Tensor:
        """Fold in this epoch's ``(n, k)`` predictions; returns the corrected ensemble."""
        check_tensor(q, "q", shape=(self.n, self.k), floating=True)
        self.state.mul_(self.alpha).add_(q.detach(), alpha=1.0 - self.alpha)
        self.steps += 1
        return self.value

    @property
    def value(self) -> torch.Tensor:
        """``(n, k)`` bias-corrected ensemble (zeros before the first update)."""
        if self.steps == 0:
            return self.state.clone()
        return self.state / (1.0 - self.alpha ** self.steps)


# --------------------------------------------------------------------------------------
# Training (§3.1-3.2)
# --------------------------------------------------------------------------------------


@dataclass
class DTCHistory:
    """Per-epoch records of :func:`train_dtc`.

    ``history``: the :class:`~cvbook.core.History` of the loop (loss, ``kl``,
    ``consistency``); ``acc``: unlabelled ACC after each epoch (when labels were given);
    ``embeddings``: ``(E+1, N, K)`` embeddings before training and after each epoch
    (when tracked); ``pred``: final ``(N,)`` cluster ids; ``q``: final ``(N, K)``.
    """

    history: History
    acc: list[float] = field(default_factory=list)
    embeddings: torch.Tensor | None = None
    pred: torch.Tensor | None = None
    q: torch.Tensor | None = None


@torch.no_grad()
def predict(net: DTCNet, x: torch.Tensor, batch_size: int = 512
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, C, H, W)`` -> embeddings ``(N, K)`` and soft assignments ``(N, K)`` in eval
    mode (mode restored)."""
    was = net.training
    net.eval()
    try:
        zs, qs = zip(*[net(xb) for xb in x.split(batch_size)])
    finally:
        net.train(was)
    return torch.cat(zs), torch.cat(qs)


def train_dtc(net: DTCNet, x: torch.Tensor, *, mode: str = "none", epochs: int = 40,
              warmup_epochs: int = 10, update_interval: int = 5, lr: float = 0.05,
              weight_decay: float = 1e-4, batch_size: int = 128,
              consistency_weight: float = 10.0, rampup_length: int = 20,
              ema_alpha: float = 0.6, max_shift: int = 1, noise_std: float = 0.05,
              flip: bool = False, y: torch.Tensor | None = None,
              track_embeddings: bool = False, generator: torch.Generator | None = None,
              progress: bool = True) -> DTCHistory:
    """Steps 3-4: train ``net`` on the unlabelled images ``x`` ``(N, C, H, W)``.

    Loss per batch: ``KL(p || q(x'))`` (eq. 3) with the target ``p`` (eq. 2) held
    fixed for ``warmup_epochs`` and recomputed on the whole set every
    ``update_interval`` epochs after that; plus, with weight ``w(t)``
    (:func:`rampup_weight`),

    * ``"pi"``: ``MSE(q(x'), q(x''))`` between two augmentations ``x'``, ``x''``;
    * ``"te"``: ``MSE(q(x'), Q_i)`` against the per-sample temporal ensemble ``Q``;
    * ``"tep"``: as ``"te"``, and the target ``p`` is built from ``Q`` instead of ``q``;
    * ``"none"``: plain DEC (with augmentation).

    Args:
        y: optional ``(N,)`` true labels, used only to log ACC per epoch.
        track_embeddings: keep the embeddings after every epoch (for an explorer).
        generator: seeds the batch order and augmentations.
    """
    if not isinstance(net, DTCNet):
        raise TypeError(f"net must be a DTCNet, got {type(net).__name__}")
    check_tensor(x, "x", ndim=4, floating=True)
    mode = check_choice(mode, "mode", MODES)
    n = x.shape[0]
    if n == 0:
        raise ValueError("x is empty: there is nothing to cluster")
    if y is not None:
        check_tensor(y, "y", ndim=1)
        if y.shape[0] != n:
            raise ValueError(f"x and y must have the same length, got {n} and {y.shape[0]}")
    epochs = check_int(epochs, "epochs", min_value=1)
    warmup_epochs = check_int(warmup_epochs, "warmup_epochs", min_value=0)
    update_interval = check_int(update_interval, "update_interval", min_value=1)
    dev = x.device
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    aug_gen = torch.Generator(dev).manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
    k = net.centres.shape[0]
    aug = dict(max_shift=max_shift, noise_std=noise_std, flip=flip, generator=aug_gen)

    _, q0 = predict(net, x)
    st: dict[str, Any] = {"p": target_distribution(q0), "epoch": 0,
                          "epoch_q": torch.zeros(n, k, device=dev)}
    ens = TemporalEnsemble(n, k, ema_alpha, device=dev)
    out = DTCHistory(History())
    snaps = [predict(net, x)[0].cpu()] if track_embeddings else []

    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)

    def loss_fn(model: nn.Module, idx: torch.Tensor):
        _, q1 = model(augment(x[idx], **aug))
        kl = kl_divergence(st["p"][idx], q1)
        w = rampup_weight(st["epoch"], rampup_length, consistency_weight)
        if mode == "pi":
            _, q2 = model(augment(x[idx], **aug))
            cons = F.mse_loss(q1, q2)
        elif mode in ("te", "tep"):
            st["epoch_q"][idx] = q1.detach()
            cons = F.mse_loss(q1, ens.value[idx]) if ens.steps else q1.sum() * 0.0
        else:
            cons = q1.sum() * 0.0
        return kl + w * cons, {"kl": kl.detach(), "consistency": cons.detach()}

    def on_epoch_end(epoch: int, hist: History) -> None:
        if mode in ("te", "tep"):
            ens.update(st["epoch_q"])
        z, q = predict(net, x)
        if track_embeddings:
            snaps.append(z.cpu())
        if y is not None:
            out.acc.append(cluster_acc(y, q.argmax(1)))
        nxt = epoch + 1
        st["epoch"] = nxt
        if nxt >= warmup_epochs and (nxt - warmup_epochs) % update_interval == 0:
            st["p"] = target_distribution(ens.value if mode == "tep" else q)

    out.history = fit(net, lambda e: _batches(n, batch_size, gen, dev), loss_fn, opt,
                      epochs=epochs, progress=progress, desc=f"DTC ({mode})",
                      on_epoch_end=on_epoch_end)
    z, q = predict(net, x)
    out.q, out.pred = q, q.argmax(1)
    if track_embeddings:
        out.embeddings = torch.stack(snaps)
    return out


# --------------------------------------------------------------------------------------
# Estimating the number of classes (§3.3)
# --------------------------------------------------------------------------------------


def _kmeanspp(x: torch.Tensor, centres: torch.Tensor, n_new: int, weight: torch.Tensor,
              generator: torch.Generator | None) -> torch.Tensor:
    """Batched k-means++ seeding. x ``(N, D)``; centres ``(R, A, D)`` already placed;
    weight ``(N,)`` 1 for points that may be chosen. Returns ``(R, A + n_new, D)``."""
    r = centres.shape[0]
    for _ in range(n_new):  # loop over the (few) new centres, not over points
        if centres.shape[1] == 0:
            prob = weight[None].expand(r, -1)
        else:
            d2 = torch.cdist(x[None].expand(r, -1, -1), centres).pow(2).amin(2)  # (R, N)
            prob = d2 * weight[None]
            prob = torch.where(prob.sum(1, keepdim=True) > 0, prob, weight[None].expand(r, -1))
        pick = torch.multinomial(prob, 1, generator=generator)[:, 0]           # (R,)
        centres = torch.cat([centres, x[pick][:, None]], 1)
    return centres


def constrained_kmeans(x: torch.Tensor, k: int, fixed: torch.Tensor | None = None, *,
                       n_iter: int = 30, n_init: int = 5, exclusive: bool = False,
                       generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means in which some points have a fixed cluster (§3.3).

    Points with ``fixed[i] = a >= 0`` always belong to cluster ``a`` (the anchor
    classes, numbered ``0..A-1``); the others (``fixed[i] = -1``) go to the nearest
    centre. Anchor centres start at their class means, the other ``k - A`` by
    k-means++ over the free points. ``n_init`` restarts run together as a batch; the
    one with the lowest inertia is returned. ``n_iter`` Lloyd steps (no early stop,
    hence no host sync). With ``exclusive=True`` free points may only join the
    ``k - A`` new clusters (the unlabelled classes are disjoint from the anchors).

    Args:
        x: ``(N, D)`` points. k: clusters (``>= max(2, A)``).
        fixed: ``(N,)`` int64 cluster ids or -1; ``None`` = plain k-means.

    Returns:
        labels ``(N,)`` and centres ``(k, D)``.
    """
    check_tensor(x, "x", ndim=2, floating=True)
    k = check_int(k, "k", min_value=2)
    n_iter = check_int(n_iter, "n_iter", min_value=1)
    n_init = check_int(n_init, "n_init", min_value=1)
    n, d = x.shape
    if n == 0:
        raise ValueError("x is empty")
    if fixed is None:
        fixed = torch.full((n,), -1, dtype=torch.int64, device=x.device)
    check_tensor(fixed, "fixed", ndim=1)
    if fixed.shape[0] != n:
        raise ValueError(f"x and fixed must have the same length, got {n} and {fixed.shape[0]}")
    if fixed.is_floating_point():
        raise TypeError(f"fixed must be integer cluster ids (or -1), got {fixed.dtype}")
    fixed = fixed.to(x.device, torch.int64)
    a = int(fixed.max().item()) + 1 if n else 0
    if bool((fixed < -1).any()):
        raise ValueError("fixed must hold cluster ids >= 0 or -1 for free points")
    if a > k:
        raise ValueError(f"k={k} must be at least the number of anchor clusters ({a})")
    free = fixed < 0
    if int(free.sum()) < k - a:
        raise ValueError(f"k={k} needs at least {k - a} free points, got {int(free.sum())}")

    # anchor class means (empty anchor ids fall back to a free point via k-means++)
    sums = torch.zeros(a, d, device=x.device, dtype=x.dtype).index_add_(0, fixed[~free],
                                                                           x[~free])
    counts = torch.bincount(fixed[~free], minlength=a).to(x.dtype)
    if a and bool((counts == 0).any()):
        raise ValueError("fixed must use every id 0..A-1 for at least one point")
    anchor_c = sums / counts.clamp_min(1)[:, None]
    centres = _kmeanspp(x, anchor_c[None].expand(n_init, -1, -1).contiguous(), k - a,
                        free.to(x.dtype), generator)                          # (R, k, D)
    rows = torch.arange(n_init, device=x.device)[:, None]
    block = torch.zeros(k, device=x.device, dtype=x.dtype)
    if exclusive:
        block[:a] = float("inf")                    # anchor clusters closed to free points
    for _ in range(n_iter):
        d2 = torch.cdist(x[None].expand(n_init, -1, -1), centres).pow(2) + block  # (R, N, k)
        lab = torch.where(free[None], d2.argmin(2), fixed[None])             # (R, N)
        flat = (lab + rows * k).reshape(-1)
        s = torch.zeros(n_init * k, d, device=x.device, dtype=x.dtype).index_add_(
            0, flat, x[None].expand(n_init, -1, -1).reshape(-1, d))
        c = torch.bincount(flat, minlength=n_init * k).to(x.dtype)[:, None]
        new = (s / c.clamp_min(1)).reshape(n_init, k, d)
        centres = torch.where(c.reshape(n_init, k, 1) > 0, new, centres)
    d2 = torch.cdist(x[None].expand(n_init, -1, -1), centres).pow(2) + block
    lab = torch.where(free[None], d2.argmin(2), fixed[None])
    d2 = torch.where(torch.isinf(d2), torch.zeros_like(d2), d2)
    inertia = d2.gather(2, lab[..., None])[..., 0].sum(1)                    # (R,)
    best = int(inertia.argmin())
    return lab[best], centres[best]


def silhouette_score(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean silhouette ``s_i = (b_i - a_i) / max(a_i, b_i)`` (Euclidean), vectorised
    with one ``(N, N)`` distance matrix; points alone in their cluster score 0
    (scikit-learn's convention).

    Args:
        x: ``(N, D)``; labels: ``(N,)`` with 2..N-1 distinct values.

    Returns:
        A scalar tensor.
    """
    check_tensor(x, "x", ndim=2, floating=True)
    check_tensor(labels, "labels", ndim=1)
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"x and labels must have the same length, got {x.shape[0]} and "
                         f"{labels.shape[0]}")
    _, inv = torch.unique(labels, return_inverse=True)
    c = int(inv.max()) + 1 if inv.numel() else 0
    if not 2 <= c <= x.shape[0] - 1:
        raise ValueError(f"labels must have between 2 and N-1={x.shape[0] - 1} distinct "
                         f"values, got {c}")
    dist = torch.cdist(x, x)                                                  # (N, N)
    onehot = F.one_hot(inv, c).to(x.dtype)                                    # (N, C)
    sums = dist @ onehot                                                      # (N, C)
    counts = onehot.sum(0)                                                    # (C,)
    own = counts[inv]
    a = sums.gather(1, inv[:, None])[:, 0] / (own - 1).clamp_min(1)
    mean_other = sums / counts[None]
    mean_other = mean_other.masked_fill(onehot.bool(), float("inf"))
    b = mean_other.amin(1)
    s = (b - a) / torch.maximum(a, b).clamp_min(1e-12)
    return torch.where(own > 1, s, torch.zeros_like(s)).mean()


def _probe_score(probe_labels: torch.Tensor, probe_pred: torch.Tensor,
                 unlab_pred: torch.Tensor) -> float:
    """Probe accuracy under Hungarian matching, with the unlabelled points that fall in
    a matched probe cluster counted as errors: ``correct / (N_v + intruders)``.

    Plain probe ACC cannot see an underestimate (an unlabelled class merged into a
    probe's cluster leaves the probe points correct); counting the intruders makes
    the score drop for too few clusters (merges) as well as too many (splits)."""
    mapping = hungarian_match(probe_labels.cpu(), probe_pred.cpu())
    clusters = torch.tensor(list(mapping), dtype=torch.int64)
    classes = torch.tensor(list(mapping.values()), dtype=torch.int64)
    lut = torch.full((int(probe_pred.max()) + 1,), -1, dtype=torch.int64)
    lut[clusters] = classes
    correct = int((lut[probe_pred.cpu()] == probe_labels.cpu()).sum())
    intruders = int(torch.isin(unlab_pred.cpu(), clusters).sum())
    return correct / (probe_labels.numel() + intruders)


@dataclass
class KEstimate:
    """Result of :func:`estimate_num_classes`.

    ``candidates``: the unlabelled class counts tried; ``probe_acc``/``silhouette``:
    their scores; ``k_acc``/``k_sil``: the argmaxes; ``k_star``:
    ``ceil((k_acc + k_sil) / 2)``; ``k``: the estimate after dropping small clusters;
    ``sizes``: unlabelled points per free cluster in the final run.
    """

    candidates: list[int]
    probe_acc: list[float]
    silhouette: list[float]
    k_acc: int
    k_sil: int
    k_star: int
    k: int
    sizes: list[int]


def estimate_num_classes(anchors: torch.Tensor, anchor_labels: torch.Tensor,
                         probes: torch.Tensor, probe_labels: torch.Tensor,
                         unlabelled: torch.Tensor, *, k_max: int = 10, k_min: int = 1,
                         ratio: float = 0.01, n_iter: int = 30, n_init: int = 5,
                         generator: torch.Generator | None = None) -> KEstimate:
    """§3.3: estimate the number of classes in ``unlabelled`` with probe classes.

    For each candidate ``k`` of unlabelled classes, constrained k-means clusters
    anchors ∪ probes ∪ unlabelled into ``A + V + k`` clusters (``A`` anchor classes,
    fixed; ``V`` probe classes, free like the unlabelled points; free points go to the
    ``V + k`` new clusters only, since the new classes are disjoint from the anchors:
    otherwise anchor clusters absorb unlabelled classes and small ``k`` look as good
    as the right one). Two scores: the
    accuracy of the probe points (Hungarian, against their known labels: right only
    when ``k`` neither merges nor splits the probe classes; unlabelled points that land
    in a probe's cluster count as errors, see :func:`_probe_score`) and the silhouette
    of the unlabelled points. ``k* = ceil((argmax acc + argmax silhouette) / 2)``. Finally a
    run with every labelled class fixed and ``k*`` free clusters; free clusters
    holding fewer than ``ratio`` times the largest one's unlabelled points are
    dropped, and the rest counted.

    Args:
        anchors: ``(N_a, D)`` features; anchor_labels: ``(N_a,)`` in ``0..A-1``.
        probes: ``(N_v, D)`` features; probe_labels: ``(N_v,)`` in ``0..V-1``.
        unlabelled: ``(N_u, D)`` features.
    """
    for name, t in (("anchors", anchors), ("probes", probes), ("unlabelled", unlabelled)):
        check_tensor(t, name, ndim=2, floating=True)
        if t.shape[0] == 0:
            raise ValueError(f"{name} is empty")
    if not anchors.shape[1] == probes.shape[1] == unlabelled.shape[1]:
        raise ValueError("anchors, probes and unlabelled must have the same feature size")
    for name, t, lab in (("anchor_labels", anchors, anchor_labels),
                         ("probe_labels", probes, probe_labels)):
        check_tensor(lab, name, ndim=1)
        if lab.shape[0] != t.shape[0]:
            raise ValueError(f"{name} must have one label per row ({t.shape[0]}), got "
                             f"{lab.shape[0]}")
        if lab.is_floating_point() or bool((lab < 0).any()):
            raise ValueError(f"{name} must be non-negative integer class ids")
    k_min = check_int(k_min, "k_min", min_value=1)
    k_max = check_int(k_max, "k_max", min_value=max(2, k_min))
    ratio = check_float(ratio, "ratio", min_value=0.0, max_value=1.0)
    dev = unlabelled.device
    a = int(anchor_labels.max()) + 1
    v = int(probe_labels.max()) + 1
    x = torch.cat([anchors, probes, unlabelled])
    n_a, n_v = anchors.shape[0], probes.shape[0]
    free = torch.full((n_v + unlabelled.shape[0],), -1, dtype=torch.int64, device=dev)
    fixed = torch.cat([anchor_labels.to(dev, torch.int64), free])
    cands = list(range(k_min, k_max + 1))
    accs, sils = [], []
    for k in cands:  # a handful of candidates; each run is batched
        lab, _ = constrained_kmeans(x, a + v + k, fixed, n_iter=n_iter, n_init=n_init,
                                    exclusive=True, generator=generator)
        lu = lab[n_a + n_v:]
        accs.append(_probe_score(probe_labels, lab[n_a:n_a + n_v], lu))
        sils.append(float(silhouette_score(unlabelled, lu))
                    if 2 <= int(torch.unique(lu).numel()) < lu.numel() else -1.0)
    k_acc = cands[int(np.argmax(accs))]
    k_sil = cands[int(np.argmax(sils))]
    k_star = math.ceil((k_acc + k_sil) / 2)
    # final run: all labelled classes fixed, k* free clusters; drop the small ones
    fixed2 = torch.cat([anchor_labels.to(dev, torch.int64),
                        probe_labels.to(dev, torch.int64) + a,
                        torch.full((unlabelled.shape[0],), -1, dtype=torch.int64, device=dev)])
    lab, _ = constrained_kmeans(x, a + v + k_star, fixed2, n_iter=n_iter, n_init=n_init,
                                exclusive=True, generator=generator)
    lu = lab[n_a + n_v:]
    sizes = torch.bincount(lu, minlength=a + v + k_star)[a + v:]
    kept = int((sizes >= ratio * sizes.max()).sum()) if int(sizes.max()) > 0 else 0
    return KEstimate(cands, accs, sils, k_acc, k_sil, k_star, kept, sizes.tolist())


# --------------------------------------------------------------------------------------
# One seed of the whole experiment
# --------------------------------------------------------------------------------------


def run_seed(cfg: DTCConfig, split: NovelSplit, seed: int, *, device: torch.device | str =
             "cpu", progress: bool = True, track_embeddings: bool = False,
             estimate_k: bool = True, modes: Sequence[str] | None = None,
             log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every row of the chapter's table for one seed.

    ``modes`` overrides ``cfg.modes`` (the DTC variants to train).

    Returns a dict with ``scores`` (method -> {acc, nmi, ari}), ``histories`` (mode ->
    :class:`DTCHistory`), ``pretrain`` (:class:`History`), ``features`` (transferred
    features of the unlabelled set) and ``k_estimate`` (:class:`KEstimate` or None).
    """
    cfg.validate()
    seed = check_int(seed, "seed", min_value=0)
    dev = torch.device(device)
    s = split.to(dev)
    k = len(s.unknown)
    n_known = len(s.known)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    say = log or (lambda _m: None)
    scores: dict[str, dict[str, float]] = {}
    aug = dict(max_shift=cfg.max_shift, noise_std=cfg.noise_std, flip=cfg.flip)

    scores["k-means, raw pixels"] = kmeans_baseline(s.x_unlab.flatten(1), s.y_unlab, k,
                                                    n_init=cfg.n_init, seed=seed)
    rand_net = make_backbone(cfg, s.x_unlab.shape[1]).to(dev)
    f_rand = extract_features(rand_net, s.x_unlab)
    scores["k-means, random network"] = kmeans_baseline(f_rand, s.y_unlab, k, pca_dim=k,
                                                        n_init=cfg.n_init, seed=seed)
    backbone = make_backbone(cfg, s.x_lab.shape[1]).to(dev)
    pre = pretrain(backbone, s.x_lab, s.y_lab, n_known, epochs=cfg.pretrain_epochs,
                   lr=cfg.pretrain_lr, batch_size=cfg.batch_size, generator=gen,
                   progress=progress, **aug)
    feats = extract_features(backbone, s.x_unlab)
    init = pca_kmeans_init(feats, k, n_init=cfg.n_init, seed=seed)
    scores["k-means, transferred features"] = clustering_scores(s.y_unlab.cpu(),
                                                                init.labels.cpu())
    say(f"seed {seed}: k-means on transferred features ACC "
        f"{scores['k-means, transferred features']['acc']:.3f}")
    state = {n: p.detach().clone() for n, p in backbone.state_dict().items()}
    histories: dict[str, DTCHistory] = {}
    for mode in (cfg.modes if modes is None else modes):
        bb = make_backbone(cfg, s.x_lab.shape[1]).to(dev)
        bb.load_state_dict(state)
        net = DTCNet(bb, init).to(dev)
        h = train_dtc(net, s.x_unlab, mode=mode, epochs=cfg.epochs,
                      warmup_epochs=cfg.warmup_epochs, update_interval=cfg.update_interval,
                      lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                      consistency_weight=cfg.consistency_weight,
                      rampup_length=cfg.rampup_length, ema_alpha=cfg.ema_alpha,
                      y=s.y_unlab, track_embeddings=track_embeddings,
                      generator=torch.Generator().manual_seed(seed * 1000 + MODES.index(mode)),
                      progress=progress, **aug)
        histories[mode] = h
        scores[f"DTC ({mode})"] = clustering_scores(s.y_unlab.cpu(), h.pred.cpu())
    k_est = None
    if estimate_k:
        k_est = estimate_k_for_split(cfg, s, backbone, seed=seed, progress=progress)
    return {"scores": scores, "histories": histories, "pretrain": pre, "features": feats,
            "init": init, "k_estimate": k_est}


def estimate_k_for_split(cfg: DTCConfig, split: NovelSplit, backbone: nn.Module, *,
                         seed: int = 0, progress: bool = False) -> KEstimate:
    """Class-number estimation for a split: the probes are the split's held-out probe
    classes if it has them (CIFAR-100: 80-89, never seen in pre-training), else the
    known classes that are not anchors, with a backbone pre-trained on the anchors
    only, so that the probes are as novel to the features as the unlabelled classes.
    """
    dev = split.x_unlab.device
    gen = torch.Generator().manual_seed(seed)
    known = list(split.known)
    anchor_ids = [known.index(c) for c in cfg.anchors]
    if split.x_probe is not None:
        feat_net = backbone
        xa_mask = torch.isin(split.y_lab, torch.tensor(anchor_ids, device=dev))
        x_a, y_a = split.x_lab[xa_mask], split.y_lab[xa_mask]
        x_p, y_p = split.x_probe, split.y_probe
        _, y_a = torch.unique(y_a, return_inverse=True)
    else:
        probe_ids = [i for i in range(len(known)) if i not in anchor_ids]
        if len(probe_ids) < 2 or len(anchor_ids) < 2:
            raise ValueError("class-number estimation needs at least 2 anchor and 2 probe "
                             f"classes; anchors={cfg.anchors}, known={cfg.known}")
        a_mask = torch.isin(split.y_lab, torch.tensor(anchor_ids, device=dev))
        x_a, y_a = split.x_lab[a_mask], split.y_lab[a_mask]
        _, y_a = torch.unique(y_a, return_inverse=True)
        x_p, y_p = split.x_lab[~a_mask], split.y_lab[~a_mask]
        _, y_p = torch.unique(y_p, return_inverse=True)
        feat_net = make_backbone(cfg, split.x_lab.shape[1]).to(dev)
        pretrain(feat_net, x_a, y_a, len(anchor_ids), epochs=cfg.pretrain_epochs,
                 lr=cfg.pretrain_lr, batch_size=cfg.batch_size, generator=gen,
                 progress=progress, max_shift=cfg.max_shift, noise_std=cfg.noise_std,
                 flip=cfg.flip)
    fa, fp, fu = (extract_features(feat_net, t) for t in (x_a, x_p, split.x_unlab))
    if cfg.k_pca_dim and cfg.k_pca_dim < fa.shape[1]:
        from sklearn.decomposition import PCA

        allf = torch.cat([fa, fp, fu]).detach().double().cpu().numpy()
        red = torch.as_tensor(PCA(cfg.k_pca_dim, random_state=seed).fit_transform(allf),
                              dtype=fa.dtype, device=fa.device)
        fa, fp, fu = red.split([len(fa), len(fp), len(fu)])
    return estimate_num_classes(fa, y_a, fp, y_p, fu, k_max=cfg.k_max,
                                ratio=cfg.small_cluster_ratio, n_iter=20, n_init=3,
                                generator=gen)


def summarise(scores_per_seed: Sequence[dict[str, dict[str, float]]]
              ) -> dict[str, dict[str, tuple[float, float, int]]]:
    """method -> metric -> (mean, std, number of seeds); the population std over the
    seeds that ran the method (0 for one seed). Methods keep their first-seen order."""
    if len(scores_per_seed) == 0:
        raise ValueError("scores_per_seed is empty")
    methods = list(dict.fromkeys(m for s in scores_per_seed for m in s))
    out: dict[str, dict[str, tuple[float, float, int]]] = {}
    for method in methods:
        runs = [s[method] for s in scores_per_seed if method in s]
        out[method] = {}
        for m in runs[0]:
            v = np.array([r[m] for r in runs], dtype=np.float64)
            out[method][m] = (float(v.mean()), float(v.std()), len(v))
    return out
