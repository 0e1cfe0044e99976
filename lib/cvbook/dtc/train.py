"""Training DTC (Han et al., ICCV 2019): step 1, supervised pre-training of a backbone on
the known classes (:func:`pretrain`), and steps 3-4, the DEC objective with the
paper's warm-up and target-update schedule and the PI / TE / TEP consistency terms
(:func:`train_dtc`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cvbook.core.batched import batched_forward
from cvbook.core.train import History, fit
from cvbook.core.validate import Shapes, check_choice, check_int, check_tensor
from cvbook.data.loaders import TensorBatches
from cvbook.dtc.objective import (
    DTCNet,
    TemporalEnsemble,
    kl_divergence,
    rampup_weight,
    target_distribution,
)
from cvbook.dtc.presets import MODES, DTCConfig
from cvbook.image.augment import shift_flip_noise as augment
from cvbook.metrics.clustering import cluster_acc
from cvbook.nn.classifiers import Classifier

__all__ = ["DTCHistory", "PooledCNN", "VGG6", "augment", "extract_features", "make_backbone",
           "predict", "pretrain", "train_dtc"]


def _index_batches(n: int, batch_size: int, generator: torch.Generator,
                   device: torch.device) -> Any:
    """Shuffled mini-batches of row indices ``0..n-1`` on ``device`` (a new order every
    pass, drawn from ``generator``); the losses gather their own rows.

    Under ``torchrun`` (:func:`cvbook.core.train.is_distributed`) the indices come from a
    ``DataLoader`` with a ``DistributedSampler`` instead (each process draws its own
    ``1/world_size`` of every epoch's permutation; :func:`cvbook.core.fit` calls its
    ``set_epoch``), and ``batch_size`` is per process."""
    from cvbook.core.train import is_distributed

    if is_distributed():
        from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

        ds = TensorDataset(torch.arange(n))
        seed = int(torch.randint(2**31, (1,), generator=generator))
        loader = DataLoader(ds, batch_size=batch_size,
                            sampler=DistributedSampler(ds, shuffle=True, seed=seed))
        return _OnDevice(loader, device)
    return TensorBatches(torch.arange(n, device=device), batch_size=batch_size,
                         generator=generator)


class _OnDevice:
    """A loader of index batches moved to ``device``; exposes the loader's ``sampler`` (for
    ``set_epoch``) and ``len``."""

    def __init__(self, loader: Any, device: torch.device) -> None:
        self.loader, self.device, self.sampler = loader, device, loader.sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for (idx,) in self.loader:
            yield (idx.to(self.device),)


class VGG6(nn.Module):
    """The VGG-like network of the official CIFAR-100 experiments ("5+1": five 3x3
    conv-BN-ReLU blocks of 64, 128, 256, 512, 512 channels, each followed by 2x2
    max-pooling): ``(N, C, 32, 32) -> (N, 512)`` features (``out_dim``); the linear
    classifier (pre-training) or bottleneck (DTC) is added on top."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        from cvbook.nn.blocks import conv_bn_relu

        self.in_channels = check_int(in_channels, "in_channels", min_value=1)
        layers: list[nn.Module] = []
        c = in_channels
        for w in (64, 128, 256, 512, 512):
            layers += [*conv_bn_relu(c, w, inplace=False), nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.out_dim = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", shape=(None, self.in_channels, 32, 32), floating=True)
        return self.features(x)


class PooledCNN(nn.Module):
    """Three conv-BN-ReLU blocks (``width``, ``2 width``, ``4 width`` channels) with 2x2
    max-pooling after the first two, global average pooling: ``(N, C, S, S) -> (N, 4
    width)`` features (``out_dim``), not normalised.

    The backbone of the jittered-digits preset: the global pooling gives the features
    the invariance to position that the jitter needs, and unnormalised features let the
    linear head of pre-training reach large logits (with unit-norm features and a
    plain linear head the cross-entropy stays near ``ln C`` for many epochs, the flat
    curve of the chapter's first version).
    """

    def __init__(self, in_channels: int = 1, width: int = 32) -> None:
        super().__init__()
        from cvbook.nn.blocks import conv_bn_relu

        self.in_channels = check_int(in_channels, "in_channels", min_value=1)
        width = check_int(width, "width", min_value=1)
        self.features = nn.Sequential(
            *conv_bn_relu(in_channels, width, inplace=False), nn.MaxPool2d(2),
            *conv_bn_relu(width, 2 * width, inplace=False), nn.MaxPool2d(2),
            *conv_bn_relu(2 * width, 4 * width, inplace=False),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = 4 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", shape=(None, self.in_channels, None, None), floating=True)
        return self.features(x)


def make_backbone(cfg: DTCConfig, in_channels: int) -> nn.Module:
    """The preset's feature extractor (``out_dim`` attribute gives its size):
    ``"pooled"`` :class:`PooledCNN`, ``"cnn"`` :class:`cvbook.nn.SmallCNN` (flattened,
    L2-normalised), ``"resnet18"`` the CIFAR ResNet-18, ``"vgg6"`` :class:`VGG6`."""
    from cvbook.nn.backbones import SmallCNN, cifar_resnet18

    if cfg.backbone == "pooled":
        return PooledCNN(in_channels, cfg.width)
    if cfg.backbone == "vgg6":
        return VGG6(in_channels)
    if cfg.backbone == "cnn":
        return SmallCNN(in_channels, cfg.width, cfg.image_size)
    return cifar_resnet18(in_channels)


def pretrain(backbone: nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int, *,
             epochs: int = 30, lr: float = 0.05, batch_size: int = 128,
             weight_decay: float = 5e-4, max_shift: int = 1, noise_std: float = 0.0,
             flip: bool = False, generator: torch.Generator | None = None,
             optimizer: str = "sgd", milestones: tuple[int, ...] = (), gamma: float = 0.1,
             amp: bool = False, progress: bool = True) -> History:
    """Step 1: supervised training of ``backbone`` + a linear head on the known classes
    (cross-entropy).

    ``optimizer="sgd"``: SGD with momentum 0.9 and a one-cycle schedule (the small
    worlds); ``"adam"``: the official CIFAR recipe (k-han/DTC ``cifar10_classif.py`` /
    ``cifar100_classif.py``): Adam at ``lr`` (0.1 for the ResNet-18 on CIFAR-10, 0.001 for
    the VGG on CIFAR-100), ``weight_decay`` 0, the rate multiplied by ``gamma`` at the
    epochs ``milestones`` (100 and 150 of 180). ``amp``: mixed precision on CUDA
    (:func:`cvbook.core.fit`).

    Args:
        x: ``(N, C, H, W)`` labelled images; y: ``(N,)`` labels in ``0..n_classes-1``.

    Raises:
        ValueError: labels outside ``0..n_classes-1`` (e.g. an unknown class slipped in),
            mismatched lengths or an empty set.
    """
    s = Shapes()
    s.check(x, "x", "N C H W", floating=True)
    s.check(y, "y", "N")
    n_classes = check_int(n_classes, "n_classes", min_value=2)
    if x.shape[0] == 0:
        raise ValueError("x is empty: pre-training needs labelled images")
    if y.is_floating_point() or bool((y < 0).any()) or bool((y >= n_classes).any()):
        raise ValueError(f"y must hold labels of the known classes 0..{n_classes - 1}, got "
                         f"values in [{y.min().item()}, {y.max().item()}]")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    dev = x.device
    aug_gen = torch.Generator(dev).manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
    optimizer = check_choice(optimizer, "optimizer", ("sgd", "adam"))
    model = Classifier(backbone, n_classes).to(dev)
    batches = _index_batches(x.shape[0], batch_size, gen, dev)
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=lr,
                                                      weight_decay=weight_decay)
        sched: Any = torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), gamma)
        step_mode = "epoch"
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9,
                              weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr,
                                                    total_steps=epochs * len(batches),
                                                    pct_start=0.15)
        step_mode = "step"

    def loss_fn(net: nn.Module, batch: tuple[torch.Tensor]):
        (idx,) = batch
        xb = augment(x[idx], max_shift=max_shift, noise_std=noise_std, flip=flip,
                     generator=aug_gen)
        logits = net(xb)
        loss = F.cross_entropy(logits, y[idx])
        return loss, {"train_acc": (logits.argmax(1) == y[idx]).float().mean()}

    hist = fit(model, batches, loss_fn, opt, epochs=epochs, scheduler=sched,
               scheduler_step=step_mode, progress=progress, desc="pre-train", amp=amp)
    backbone.eval()
    return hist


def extract_features(net: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, D)`` features of ``net`` in eval mode (mode restored)."""
    check_tensor(x, "x", ndim=4, floating=True)
    if len(x) == 0:
        return torch.empty(0)
    return batched_forward(net, x, batch_size=batch_size)


@dataclass
class DTCHistory:
    """Per-epoch records of :func:`train_dtc`.

    ``history``: the :class:`~cvbook.core.History` of the loop (loss, ``kl``,
    ``consistency``); ``acc``: unlabelled ACC after each epoch (when labels were given);
    ``embeddings``: ``(E+1, N, K)`` embeddings before training and after each epoch
    (when tracked); ``pred``: final ``(N,)`` cluster ids; ``q``: final ``(N, K)``;
    ``warmup``: how many of the epochs are warm-up epochs (they come first).
    """

    history: History
    warmup: int = 0
    acc: list[float] = field(default_factory=list)
    embeddings: torch.Tensor | None = None
    pred: torch.Tensor | None = None
    q: torch.Tensor | None = None


def _gather_epoch(epoch_q: torch.Tensor) -> torch.Tensor:
    """The epoch's ``(N, K)`` training predictions, each process having filled its own rows:
    under ``torchrun`` the rows are averaged over the processes that filled them (a row
    seen twice, by the sampler's padding, keeps the mean); otherwise returned as is."""
    from cvbook.core.train import is_distributed

    if not is_distributed():
        return epoch_q
    import torch.distributed as dist

    filled = (epoch_q.sum(1, keepdim=True) > 0).to(epoch_q.dtype)
    total, count = epoch_q.clone(), filled.clone()
    dist.all_reduce(total)
    dist.all_reduce(count)
    return total / count.clamp_min(1.0)


def predict(net: DTCNet, x: torch.Tensor, batch_size: int = 512
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, C, H, W)`` -> embeddings ``(N, K)`` and soft assignments ``(N, K)`` in eval
    mode (mode restored)."""
    return batched_forward(net, x, batch_size=batch_size)


def train_dtc(net: DTCNet, x: torch.Tensor, *, mode: str = "none", epochs: int = 40,
              warmup_epochs: int = 10, warmup_lr: float = 0.1, update_interval: int = 5,
              lr: float = 0.05, weight_decay: float = 1e-4, batch_size: int = 128,
              consistency_weight: float = 10.0, rampup_length: int = 5,
              ema_alpha: float = 0.6, max_shift: int = 1, noise_std: float = 0.05,
              flip: bool = False, reduction: str = "mean", freeze_bn: bool = False,
              milestones: tuple[int, ...] = (), gamma: float = 0.5,
              amp: bool = False, y: torch.Tensor | None = None,
              track_embeddings: bool = False, generator: torch.Generator | None = None,
              progress: bool = True) -> DTCHistory:
    """Steps 3-4: train ``net`` on the unlabelled images ``x`` ``(N, C, H, W)``, on the
    schedule of the official code (k-han/DTC, ``cifar10_DTC.py``).

    1. **Warm-up**: ``warmup_epochs`` epochs (SGD, ``warmup_lr``) of ``KL(p || q(x'))``
       (eq. 3) alone, with the target ``p`` (eq. 2) of the k-means initialisation held
       fixed; then ``p`` is recomputed from the whole set. The warm-up epochs come
       *before* the ``epochs`` of the main phase (not inside them) and carry no
       consistency term.
    2. **Main phase**: ``epochs`` epochs (a fresh SGD, ``lr``) of ``KL + w(t) * cons``
       with ``w(t)`` = :func:`rampup_weight` (``t`` = main-phase epoch, ramp of
       ``rampup_length`` epochs up to ``consistency_weight``); ``p`` is recomputed from
       the eval-mode predictions after main epochs ``0, update_interval, 2 *
       update_interval, ...``:

       * ``"none"``: plain DEC (with augmentation), no consistency term;
       * ``"pi"``: ``cons = MSE(q(x'), q(x''))`` between two augmentations;
       * ``"te"``: ``cons = MSE(q(x'), Z_i)`` against the bias-corrected per-sample
         EMA ``Z`` (momentum ``ema_alpha``) of the training predictions of past epochs
         (zeros in the first epoch, as the official code);
       * ``"tep"``: no consistency term; the target ``p`` is built (eq. 2, sharpened)
         from the bias-corrected EMA of the eval-mode predictions of every epoch
         instead of from the last ones.

    ``reduction``: ``"mean"`` averages the KL and the MSE over all ``N * K`` elements as
    the official code does (``F.kl_div`` / ``F.mse_loss`` defaults); ``"batchmean"``
    sums the KL over clusters (the paper's eq. 3 per sample, ``K`` times larger) while
    the MSE stays element-wise.

    Args:
        milestones, gamma: main-phase epochs at which the learning rate is multiplied
            by ``gamma`` (the official CIFAR-100 script: 20, 40, 60, 80 and 0.5).
        freeze_bn: keep the batch-norm layers in eval mode (statistics of the
            pre-training) while training; the official code trains them (``False``).
        amp: mixed precision on CUDA (the backbone; eqs. 1-3 run in float32).

    Under ``torchrun`` each process trains on its shard of every epoch (a
    ``DistributedSampler``, :func:`cvbook.core.fit` wraps the network in DDP); the TE
    predictions of the epoch are summed over processes before the ensemble update, and
    the targets are computed by every process on the whole set.
        y: optional ``(N,)`` true labels, used only to log ACC per epoch.
        track_embeddings: keep the embeddings after every epoch (for an explorer).
        generator: seeds the batch order and augmentations.

    Returns:
        :class:`DTCHistory` whose ``history`` and ``acc`` run over the warm-up epochs
        followed by the main epochs (``warmup`` = their number).
    """
    if not isinstance(net, DTCNet):
        raise TypeError(f"net must be a DTCNet, got {type(net).__name__}")
    s = Shapes()
    s.check(x, "x", "N C H W", floating=True)
    mode = check_choice(mode, "mode", MODES)
    reduction = check_choice(reduction, "reduction", ("mean", "batchmean"))
    n = x.shape[0]
    if n == 0:
        raise ValueError("x is empty: there is nothing to cluster")
    if y is not None:
        s.check(y, "y", "N")
    epochs = check_int(epochs, "epochs", min_value=1)
    warmup_epochs = check_int(warmup_epochs, "warmup_epochs", min_value=0)
    update_interval = check_int(update_interval, "update_interval", min_value=1)
    dev = x.device
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    aug_gen = torch.Generator(dev).manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
    k = net.centres.shape[0]
    aug = dict(max_shift=max_shift, noise_std=noise_std, flip=flip, generator=aug_gen)

    _, q0 = predict(net, x)
    st: dict[str, Any] = {"p": target_distribution(q0), "epoch": 0, "warm": True,
                          "epoch_q": torch.zeros(n, k, device=dev)}
    ens = TemporalEnsemble(n, k, ema_alpha, device=dev)
    out = DTCHistory(History(), warmup=warmup_epochs)
    snaps = [predict(net, x)[0].cpu()] if track_embeddings else []

    def loss_fn(model: nn.Module, batch: tuple[torch.Tensor]):
        (idx,) = batch
        _, q1 = model(augment(x[idx], **aug))
        kl = kl_divergence(st["p"][idx], q1, reduction=reduction)
        zero = q1.sum() * 0.0
        if st["warm"] or mode in ("none", "tep"):
            return kl, {"kl": kl.detach(), "consistency": zero.detach()}
        w = rampup_weight(st["epoch"], rampup_length, consistency_weight)
        if mode == "pi":
            _, q2 = model(augment(x[idx], **aug))
            cons = F.mse_loss(q1, q2)
        else:  # "te"
            st["epoch_q"][idx] = q1.detach()
            cons = F.mse_loss(q1, ens.value[idx])
        return kl + w * cons, {"kl": kl.detach(), "consistency": cons.detach()}

    def log_epoch() -> torch.Tensor:
        z, q = predict(net, x)
        if track_embeddings:
            snaps.append(z.cpu())
        if y is not None:
            out.acc.append(cluster_acc(y, q.argmax(1)))
        return q

    def on_warm_end(epoch: int, hist: History) -> None:
        q = log_epoch()
        if epoch == warmup_epochs - 1:
            st["p"] = target_distribution(q)

    def on_epoch_end(epoch: int, hist: History) -> None:
        if mode == "te":
            ens.update(_gather_epoch(st["epoch_q"]))
            st["epoch_q"].zero_()  # every row is filled again next epoch
        q = log_epoch()
        if mode == "tep":
            ens.update(q)
        st["epoch"] = epoch + 1
        if epoch % update_interval == 0:
            st["p"] = target_distribution(ens.value if mode == "tep" else q)

    def batches():
        return _index_batches(n, batch_size, gen, dev)

    def set_mode(model: nn.Module) -> None:
        model.train()
        if freeze_bn:
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    hist = History()
    if warmup_epochs:
        opt_w = torch.optim.SGD(net.parameters(), lr=warmup_lr, momentum=0.9,
                                weight_decay=weight_decay)
        hist = fit(net, batches(), loss_fn, opt_w, epochs=warmup_epochs, progress=progress,
                   desc=f"DTC ({mode}) warm-up", on_epoch_end=on_warm_end,
                   set_mode=set_mode, amp=amp)
    st["warm"] = False
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), gamma) \
        if milestones else None
    main = fit(net, batches(), loss_fn, opt, epochs=epochs, progress=progress, scheduler=sched,
               desc=f"DTC ({mode})", on_epoch_end=on_epoch_end, set_mode=set_mode, amp=amp)
    hist.loss.extend(main.loss)
    for key, vals in main.metrics.items():
        hist.metrics.setdefault(key, []).extend(vals)
    out.history = hist
    z, q = predict(net, x)
    out.q, out.pred = q, q.argmax(1)
    if track_embeddings:
        out.embeddings = torch.stack(snaps)
    return out
