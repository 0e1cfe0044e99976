"""Training DTC (Han et al., ICCV 2019): step 1, supervised pre-training of a backbone on
the known classes (:func:`pretrain`), and steps 3-4, the DEC objective with the
paper's warm-up and target-update schedule and the PI / TE / TEP consistency terms
(:func:`train_dtc`)."""

from __future__ import annotations

import math
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

__all__ = ["DTCHistory", "augment", "extract_features", "make_backbone", "predict",
           "pretrain", "train_dtc"]


def _index_batches(n: int, batch_size: int, generator: torch.Generator,
                   device: torch.device) -> TensorBatches:
    """Shuffled mini-batches of row indices ``0..n-1`` on ``device`` (a new order every
    pass, drawn from ``generator``); the losses gather their own rows."""
    return TensorBatches(torch.arange(n, device=device), batch_size=batch_size,
                         generator=generator)


def make_backbone(cfg: DTCConfig, in_channels: int) -> nn.Module:
    """The preset's feature extractor (``out_dim`` attribute gives its size)."""
    from cvbook.nn.backbones import SmallCNN, cifar_resnet18

    if cfg.backbone == "cnn":
        return SmallCNN(in_channels, cfg.width, cfg.image_size)
    return cifar_resnet18(in_channels)


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
    model = Classifier(backbone, n_classes).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps = epochs * math.ceil(x.shape[0] / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.15)

    def loss_fn(net: nn.Module, batch: tuple[torch.Tensor]):
        (idx,) = batch
        xb = augment(x[idx], max_shift=max_shift, noise_std=noise_std, flip=flip,
                     generator=aug_gen)
        logits = net(xb)
        loss = F.cross_entropy(logits, y[idx])
        return loss, {"train_acc": (logits.argmax(1) == y[idx]).float().mean()}

    hist = fit(model, _index_batches(x.shape[0], batch_size, gen, dev), loss_fn, opt,
               epochs=epochs, scheduler=sched, scheduler_step="step", progress=progress,
               desc="pre-train")
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
    (when tracked); ``pred``: final ``(N,)`` cluster ids; ``q``: final ``(N, K)``.
    """

    history: History
    acc: list[float] = field(default_factory=list)
    embeddings: torch.Tensor | None = None
    pred: torch.Tensor | None = None
    q: torch.Tensor | None = None


def predict(net: DTCNet, x: torch.Tensor, batch_size: int = 512
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, C, H, W)`` -> embeddings ``(N, K)`` and soft assignments ``(N, K)`` in eval
    mode (mode restored)."""
    return batched_forward(net, x, batch_size=batch_size)


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
    s = Shapes()
    s.check(x, "x", "N C H W", floating=True)
    mode = check_choice(mode, "mode", MODES)
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
    st: dict[str, Any] = {"p": target_distribution(q0), "epoch": 0,
                          "epoch_q": torch.zeros(n, k, device=dev)}
    ens = TemporalEnsemble(n, k, ema_alpha, device=dev)
    out = DTCHistory(History())
    snaps = [predict(net, x)[0].cpu()] if track_embeddings else []

    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)

    def loss_fn(model: nn.Module, batch: tuple[torch.Tensor]):
        (idx,) = batch
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

    out.history = fit(net, _index_batches(n, batch_size, gen, dev), loss_fn, opt,
                      epochs=epochs, progress=progress, desc=f"DTC ({mode})",
                      on_epoch_end=on_epoch_end)
    z, q = predict(net, x)
    out.q, out.pred = q, q.argmax(1)
    if track_embeddings:
        out.embeddings = torch.stack(snaps)
    return out
