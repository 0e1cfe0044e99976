"""FixRes: fixing the train-test resolution discrepancy (Touvron, Vedaldi, Douze, Jégou,
NeurIPS 2019, arXiv:1906.06423).

The chapter's library. Three parts:

1. **The analysis** (paper §3). Training with ``RandomResizedCrop`` (RRC) takes a region
   covering a fraction σ ~ U[σ_min, σ_max] of the image and resizes it to ``K_train``;
   testing resizes the shorter side to ``s_test·K_test`` (s_test = 256/224) and centre
   crops ``K_test``. An object of r pixels therefore appears with size
   ``r·K_train/√(σHW)`` at train time and ``r·s_test·K_test/min(H, W)`` at test time, and

   .. math:: \\frac{\\mathbb E[r_{train}]}{r_{test}}
             = \\mathbb E[\\sigma^{-1/2}]\\,\\frac{K_{train}}{s_{test} K_{test}}
               \\frac{\\min(H, W)}{\\sqrt{HW}},\\qquad
             \\mathbb E[\\sigma^{-1/2}] = \\frac{2(\\sqrt{\\sigma_{max}}-\\sqrt{\\sigma_{min}})}
                                               {\\sigma_{max}-\\sigma_{min}}

   (:func:`expected_inv_sqrt_area`, :func:`apparent_size_ratio`), checked against a
   Monte-Carlo simulation through torchvision's own transforms
   (:func:`monte_carlo_apparent_size`).
2. **Batched, on-device transforms** equivalent to RRC and Resize+CenterCrop
   (:mod:`cvbook.image.crops`: ``sample_rrc_boxes``, ``center_crop_boxes``,
   ``crop_resize``), and data sources with one interface for the synthetic scenes
   (``TensorSource``) and an ImageNet-style folder (``FolderSource``) in
   :mod:`cvbook.data.sources`; all re-exported here.
3. **The experiment**: train at ``K_train`` (:func:`train`), sweep the test
   resolution (:func:`resolution_sweep`), pooled-activation statistics
   (:func:`pooled_statistics`) and the FixRes fine-tuning as the authors ran it
   (:func:`fixres_finetune`): the network in eval mode except the last BatchNorm, whose
   running statistics re-adapt (affine weights frozen), only the classifier trained,
   on images prepared with the *test* transform at ``K_test``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from cvbook.core.batched import eval_mode
from cvbook.core.device import autocast
from cvbook.core.train import History, fit
from cvbook.core.validate import check_choice, check_float, check_int, check_range, check_tensor
from cvbook.data.imagenet import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401
from cvbook.data.sources import (  # noqa: F401
    IMAGE_EXTENSIONS,
    FolderSource,
    TensorSource,
    check_image_folder,
)
from cvbook.image.crops import (  # noqa: F401
    RESIZE_RATIO,
    RRC_RATIO,
    RRC_SCALE,
    center_crop,
    center_crop_boxes,
    crop_resize,
    random_resized_crop,
    resize_size,
    sample_rrc_boxes,
)

#: The paper's test-time resize ratio is :data:`cvbook.image.crops.RESIZE_RATIO`
#: (256/224); ``test_resize_size`` is :func:`cvbook.image.crops.resize_size`.
test_resize_size = resize_size
#: One-release aliases: the batched transforms are RandomResizedCrop + flip and
#: Resize + CenterCrop of :mod:`cvbook.image.crops`.
train_transform = random_resized_crop
test_transform = center_crop


# ----------------------------------------------------------------------------- analysis
def expected_inv_sqrt_area(scale: tuple[float, float] = RRC_SCALE) -> float:
    """E[σ^{-1/2}] for σ ~ U[lo, hi]: ``2(√hi − √lo)/(hi − lo)`` (paper §3.1).

    For torchvision's default ``(0.08, 1)`` this is ≈ 1.559.
    """
    lo, hi = check_range(scale, "scale", low=0.0, high=1.0)
    if lo <= 0:
        raise ValueError(f"scale[0] must be > 0, got {lo}")
    if hi == lo:
        return 1 / math.sqrt(lo)
    return 2 * (math.sqrt(hi) - math.sqrt(lo)) / (hi - lo)


def rrc_expected_inv_sqrt_area(scale: tuple[float, float] = RRC_SCALE,
                                ratio: tuple[float, float] = RRC_RATIO,
                                image_size: tuple[int, int] = (1, 1), *,
                                attempts: int = 10, grid: int = 1500) -> float:
    """E[σ^{-1/2}] under torchvision's *actual* ``RandomResizedCrop`` rule.

    The paper's closed form assumes σ ~ U[scale]. torchvision draws σ and a log-uniform
    aspect ratio ``a``, and *rejects* the crop unless it fits, i.e. unless
    ``σ·HW·a <= W²`` and ``σ·HW/a <= H²``; after ``attempts`` rejections it falls back
    to the central crop (aspect clamped to ``ratio``). Large σ with an extreme aspect
    are rejected most, so small crops are over-represented and E[σ^{-1/2}] grows (by
    about 5% for square images). With ``p(σ)`` the acceptance probability of one try,
    ``P = E[p(σ)]`` and ``q = (1 - P)^attempts``:

    .. math:: \\mathbb E[\\sigma^{-1/2}] = (1 - q)\\,
              \\frac{\\mathbb E[\\sigma^{-1/2} p(\\sigma)]}{P} + q\\,\\sigma_{fb}^{-1/2}

    evaluated by midpoint integration on a ``grid × grid`` lattice of (σ, log a).
    (Rounding crop sides to integers is ignored: it matters only for tiny images.)
    """
    lo, hi = check_range(scale, "scale", low=0.0, high=1.0)
    if lo <= 0:
        raise ValueError(f"scale[0] must be > 0, got {lo}")
    r_lo, r_hi = check_range(ratio, "ratio", low=1e-6, high=1e6)
    h, w = (check_int(v, "image_size[i]", min_value=1) for v in image_size)
    attempts = check_int(attempts, "attempts", min_value=1)
    grid = check_int(grid, "grid", min_value=10)
    sig = lo + (hi - lo) * (np.arange(grid) + 0.5) / grid
    loga = math.log(r_lo) + (math.log(r_hi) - math.log(r_lo)) * (np.arange(grid) + 0.5) / grid
    s2, a2 = sig[:, None], np.exp(loga)[None, :]
    area = h * w
    fits = (s2 * area * a2 <= w * w) & (s2 * area / a2 <= h * h)
    p = fits.mean(1)  # acceptance probability given sigma, (grid,)
    accept = p.mean()
    q = (1 - accept) ** attempts
    in_ratio = w / h
    if in_ratio < r_lo:
        fw, fh = w, round(w / r_lo)
    elif in_ratio > r_hi:
        fw, fh = round(h * r_hi), h
    else:
        fw, fh = w, h
    sigma_fb = fw * fh / area
    accepted_mean = (sig ** -0.5 * p).mean() / accept if accept > 0 else 0.0
    return float((1 - q) * accepted_mean + q * sigma_fb ** -0.5)


def apparent_size_ratio(k_train: int, k_test: int, *, scale: tuple[float, float] = RRC_SCALE,
                        resize_ratio: float = RESIZE_RATIO,
                        image_size: tuple[int, int] | None = None,
                        account_for_rejection: bool = False,
                        ratio: tuple[float, float] = RRC_RATIO) -> float:
    """Mean apparent object size at train time over the size at test time (paper §3.1).

    ``E[σ^{-1/2}] · K_train / (s_test·K_test) · min(H, W)/√(HW)``, with the effective
    ``s_test·K_test`` = :func:`test_resize_size` (the integer size actually used).
    A value above 1 means objects look larger during training than at test time.

    Args:
        k_train: train crop size K_train.
        k_test: test crop size K_test.
        scale: RRC's range of area fractions.
        resize_ratio: s_test (256/224).
        image_size: ``(H, W)`` of the images; square if ``None``.
        account_for_rejection: use :func:`rrc_expected_inv_sqrt_area` (torchvision's
            rejection of crops that do not fit) instead of the paper's closed form
            :func:`expected_inv_sqrt_area` (σ exactly uniform).
        ratio: RRC's aspect-ratio range (only with ``account_for_rejection``).
    """
    k_train = check_int(k_train, "k_train", min_value=1)
    aspect = 1.0
    hw = (1, 1)
    if image_size is not None:
        hw = tuple(check_int(v, "image_size[i]", min_value=1) for v in image_size)
        aspect = min(hw) / math.sqrt(hw[0] * hw[1])
    e = (rrc_expected_inv_sqrt_area(scale, ratio, hw) if account_for_rejection
         else expected_inv_sqrt_area(scale))
    return e * k_train / test_resize_size(k_test, resize_ratio) * aspect


def matching_test_resolution(k_train: int, *, scale: tuple[float, float] = RRC_SCALE,
                             resize_ratio: float = RESIZE_RATIO,
                             account_for_rejection: bool = False) -> float:
    """The K_test at which the apparent-size ratio is 1: ``E[σ^{-1/2}]·K_train/s_test``
    (square images). ≈ 1.36·K_train for the defaults (≈ 1.44·K_train with
    torchvision's rejection of crops that do not fit)."""
    k_train = check_int(k_train, "k_train", min_value=1)
    e = (rrc_expected_inv_sqrt_area(scale) if account_for_rejection
         else expected_inv_sqrt_area(scale))
    return e * k_train / check_float(resize_ratio, "resize_ratio", min_value=1.0)


def monte_carlo_apparent_size(boxes: torch.Tensor, image_size: tuple[int, int], k_train: int,
                              k_test: int, *, draws: int = 4000,
                              scale: tuple[float, float] = RRC_SCALE,
                              ratio: tuple[float, float] = RRC_RATIO,
                              resize_ratio: float = RESIZE_RATIO,
                              seed: int = 0) -> dict[str, Any]:
    """Push ground-truth boxes through torchvision's own transforms and measure sizes.

    Each draw picks a box, applies ``v2.RandomResizedCrop(K_train)`` (train) and
    ``v2.Resize(int(s_test·K_test)) + v2.CenterCrop(K_test)`` (test) to it as a
    ``tv_tensors.BoundingBoxes`` (with clamping off, so that a box partly outside the
    crop keeps its true size), and records the apparent size ``√(w·h)``.

    This is a simulation, not a hot path: one torchvision call per draw.

    Args:
        boxes: ``(M, 4)`` ground-truth boxes ``(x0, y0, x1, y1)`` in pixels.
        image_size: ``(H, W)`` of the images the boxes live in.

    Returns:
        ``{"train": (draws,) array, "test": (draws,) array, "ratio": mean(train)/mean(test)}``
    """
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    check_tensor(boxes, "boxes", shape="M 4")
    if boxes.shape[0] == 0:
        raise ValueError("boxes must have shape (M, 4) with M >= 1; got (0, 4)")
    h, w = (check_int(v, "image_size[i]", min_value=1) for v in image_size)
    draws = check_int(draws, "draws", min_value=1)
    torch.manual_seed(seed)  # v2 transforms draw from the global generator
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, boxes.shape[0], (draws,), generator=gen)
    canvas = torch.zeros(1, h, w, dtype=torch.uint8)
    train_tf = v2.RandomResizedCrop(k_train, scale=scale, ratio=ratio, antialias=True)
    test_tf = v2.Compose([v2.Resize(test_resize_size(k_test, resize_ratio), antialias=True),
                          v2.CenterCrop(k_test)])
    boxes = boxes.detach().float().cpu()

    def size(b: torch.Tensor) -> float:
        return float(torch.sqrt((b[0, 2] - b[0, 0]) * (b[0, 3] - b[0, 1])))

    train, test = np.empty(draws), np.empty(draws)
    for i, j in enumerate(pick.tolist()):
        bb = tv_tensors.BoundingBoxes(boxes[j:j + 1], format="XYXY", canvas_size=(h, w),
                                      clamping_mode=None)
        train[i] = size(train_tf(tv_tensors.Image(canvas), bb)[1])
        test[i] = size(test_tf(tv_tensors.Image(canvas), bb)[1])
    return {"train": train, "test": test, "ratio": float(train.mean() / test.mean())}


# ---------------------------------------------------------------------------- experiment
def _last(model: nn.Module, kind: type) -> nn.Module:
    found = [m for m in model.modules() if isinstance(m, kind)]
    if not found:
        raise ValueError(f"model has no {kind.__name__} module")
    return found[-1]


def last_batchnorm(model: nn.Module) -> nn.BatchNorm2d:
    """The last ``BatchNorm2d`` in module order (the one before pooling in a ResNet or
    :class:`cvbook.nn.classifiers.ConvNet`)."""
    return _last(model, nn.BatchNorm2d)  # type: ignore[return-value]


def classifier(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` in module order (the classifier ``fc``)."""
    return _last(model, nn.Linear)  # type: ignore[return-value]


def _ce_loss(net: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(net(x), y)


def train(model: nn.Module, source, k_train: int, *, epochs: int, lr: float = 0.1,
          weight_decay: float = 5e-4, momentum: float = 0.9, optimizer: str = "sgd",
          amp: bool = False, progress: bool = True, desc: str | None = None) -> History:
    """Train from scratch at ``K_train`` with RandomResizedCrop + flip and a one-cycle
    learning-rate schedule; ``optimizer`` is ``"sgd"`` (Nesterov momentum, the paper's
    ImageNet recipe) or ``"adamw"`` (which trains the small CPU network faster)."""
    k_train = check_int(k_train, "k_train", min_value=1)
    lr = check_float(lr, "lr", min_value=0.0, open_min=True)
    check_choice(optimizer, "optimizer", ("sgd", "adamw"))
    data = source.train_batches(k_train, augment=True)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                              weight_decay=weight_decay, nesterov=True)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = check_int(epochs, "epochs", min_value=1) * len(data)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.15)
    return fit(model, data, _ce_loss, opt, epochs=epochs, scheduler=sched,
               scheduler_step="step", amp=amp, progress=progress,
               desc=desc or f"train @ {k_train}px")


@torch.no_grad()
def evaluate(model: nn.Module, source, k: int, *, amp: bool = False) -> float:
    """Top-1 accuracy on the held-out split with the test transform at resolution ``k``.
    The model is evaluated in eval mode and its mode is restored afterwards."""
    dev = next(model.parameters()).device
    correct = torch.zeros((), device=dev)
    total = 0
    with eval_mode(model):
        for x, y in source.test_batches(k):
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            with autocast(dev, enabled=amp):
                correct += (model(x).argmax(1) == y).sum()
            total += y.shape[0]
    return correct.item() / total


def resolution_sweep(model: nn.Module, source, ks: Sequence[int], *, amp: bool = False,
                     progress: bool = True, desc: str = "test resolutions") -> dict[int, float]:
    """Top-1 accuracy at every test resolution in ``ks``: ``{K_test: accuracy}``."""
    ks = [check_int(k, "ks[i]", min_value=1) for k in ks]
    if not ks:
        raise ValueError("ks must list at least one test resolution")
    return {k: evaluate(model, source, k, amp=amp)
            for k in tqdm(ks, desc=desc, disable=not progress)}


@torch.no_grad()
def pooled_statistics(model: nn.Module, source, ks: Sequence[int], *, max_batches: int = 4,
                      threshold: float = 1e-2) -> dict[int, dict[str, float]]:
    """Statistics of the globally pooled activations (the classifier's input) against
    the test resolution (paper §3.2: their distribution shifts with K_test).

    Returns, per K: the mean and standard deviation of the pooled activations, their
    ``sparsity`` (fraction below ``threshold``), and ``q50``/``q90`` quantiles.
    """
    fc = classifier(model)
    feats: list[torch.Tensor] = []
    handle = fc.register_forward_pre_hook(lambda m, inp: feats.append(inp[0].detach().float()))
    dev = next(model.parameters()).device
    out = {}
    with eval_mode(model):
        try:
            for k in ks:
                k = check_int(k, "ks[i]", min_value=1)
                feats.clear()
                for i, (x, _) in enumerate(source.test_batches(k)):
                    if i >= max_batches:
                        break
                    model(x.to(dev))
                f = torch.cat(feats).flatten()
                q = torch.quantile(f[:200_000].cpu(), torch.tensor([0.5, 0.9]))
                out[k] = {"mean": f.mean().item(), "std": f.std().item(),
                          "sparsity": (f < threshold).float().mean().item(),
                          "q50": q[0].item(), "q90": q[1].item()}
        finally:
            handle.remove()
    return out


def fixres_finetune(model: nn.Module, source, k_test: int, *, epochs: int = 2,
                    lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 1e-4,
                    amp: bool = False, progress: bool = True, copy_model: bool = True
                    ) -> tuple[nn.Module, History]:
    """The FixRes fine-tuning at the test resolution, as the authors ran it.

    * the whole network is in eval mode **except the last BatchNorm**, whose running
      statistics re-adapt to the activations at ``K_test`` (its affine weights stay
      frozen);
    * only the classifier (the last ``nn.Linear``) is trained, with SGD (momentum 0.9,
      weight decay 1e-4);
    * the training images are prepared with the **test** transform,
      ``Resize(int(256/224·K_test)) + CenterCrop(K_test)``.

    Args:
        model: a trained classifier (left untouched when ``copy_model``).
        source: a :class:`TensorSource` or :class:`FolderSource`.
        k_test: the resolution to fine-tune and then test at.

    Returns:
        ``(fine_tuned_model, history)``.
    """
    k_test = check_int(k_test, "k_test", min_value=1)
    lr = check_float(lr, "lr", min_value=0.0, open_min=True)
    net = copy.deepcopy(model) if copy_model else model
    bn, fc = last_batchnorm(net), classifier(net)
    for p in net.parameters():
        p.requires_grad_(False)
    for p in fc.parameters():
        p.requires_grad_(True)

    def set_mode(m: nn.Module) -> None:
        m.eval()
        bn.train()  # running mean / variance re-estimated at K_test

    opt = torch.optim.SGD(fc.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    hist = fit(net, source.train_batches(k_test, augment=False), _ce_loss, opt, epochs=epochs,
               amp=amp, progress=progress, desc=f"FixRes fine-tune @ {k_test}px",
               set_mode=set_mode)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(True)
    return net, hist


# ------------------------------------------------------------------------------ presets
@dataclass(frozen=True)
class FixResConfig:
    """Settings of the chapter (names follow the paper: K_train, K_test).

    Attributes:
        data: ``"scenes"`` (synthetic, on device) or ``"folder"`` (ImageNet-style).
        data_root: the folder for ``data="folder"``.
        arch: ``"convnet"`` (:class:`cvbook.nn.classifiers.ConvNet`) or ``"resnet50"``.
        widths: the ConvNet's stage widths.
        classes, clutter: the scenes world's shape classes and background clutter.
        pretrained: load torchvision's ImageNet weights (``resnet50`` only; downloads).
        image_size: side of the synthetic images (the "full resolution" RRC crops from).
        n_train, n_test: synthetic split sizes.
        k_train: training resolution K_train.
        k_train_high: a higher training resolution for the "train lower, fine-tune,
            beat training at the higher resolution" comparison (0 to skip).
        k_tests: test resolutions of the sweep.
        epochs: training epochs (0 = use the (pretrained) network as it is).
        optimizer, lr, weight_decay: training from scratch. The paper trains ResNet-50 on
            ImageNet with SGD (Nesterov momentum); the CPU preset uses AdamW, because the
            small ConvNet trained with SGD for the same 8 epochs was unreliable across
            seeds (measured test top-1 at K_train: 0.59 and 0.38 for seeds 0 and 1 with
            SGD lr 0.05, against 0.75 and 0.69 with AdamW lr 3e-3), and a chapter whose
            network sometimes does not learn cannot show FixRes's effect.
        finetune_epochs, finetune_lr: the FixRes fine-tuning.
        finetune_k: the resolution to fine-tune at (``None``: the best of the sweep).
    """

    data: str = "scenes"
    data_root: str | None = None
    arch: str = "convnet"
    pretrained: bool = False
    widths: tuple[int, ...] = (32, 64, 128)
    classes: tuple[str, ...] = ("disk", "square", "triangle", "cross")
    clutter: float = 0.1
    image_size: int = 48
    n_train: int = 6000
    n_test: int = 2000
    k_train: int = 24
    k_train_high: int = 32
    k_tests: tuple[int, ...] = (16, 20, 24, 28, 32, 36, 40, 48)
    epochs: int = 8
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 0.05
    finetune_epochs: int = 3
    finetune_lr: float = 0.01
    finetune_k: int | None = None
    amp: bool = False
    workers: int = 8

    def validate(self) -> None:
        check_choice(self.data, "data", ("scenes", "folder"))
        check_choice(self.arch, "arch", ("convnet", "resnet50"))
        if self.data == "folder" and not self.data_root:
            raise ValueError("data='folder' needs data_root: the path of an ImageNet-style "
                             "folder with train/ and val/ sub-folders")
        if self.pretrained and self.arch != "resnet50":
            raise ValueError("pretrained weights exist only for arch='resnet50'")
        for name in ("image_size", "n_train", "n_test", "k_train", "batch_size"):
            check_int(getattr(self, name), name, min_value=1)
        check_int(self.epochs, "epochs", min_value=0)
        check_choice(self.optimizer, "optimizer", ("sgd", "adamw"))
        check_int(self.finetune_epochs, "finetune_epochs", min_value=1)
        check_int(self.k_train_high, "k_train_high", min_value=0)
        if not self.k_tests:
            raise ValueError("k_tests must list at least one resolution")
        for k in self.k_tests:
            check_int(k, "k_tests[i]", min_value=8)
        if self.finetune_k is not None:
            check_int(self.finetune_k, "finetune_k", min_value=8)
        check_float(self.lr, "lr", min_value=0.0, open_min=True)
        check_float(self.finetune_lr, "finetune_lr", min_value=0.0, open_min=True)
        if self.epochs == 0 and not self.pretrained:
            raise ValueError("epochs=0 (no training) only makes sense with pretrained=True")


PRESETS: dict[str, FixResConfig] = {
    # 2-core CPU, offline, ~2 minutes: synthetic scenes, a small all-conv network.
    "cpu": FixResConfig(),
    # The paper's setting: a torchvision ResNet-50 pretrained at 224 px on ImageNet,
    # tested from 224 to 448 px and fine-tuned at 384 px (paper Table 1 / §5).
    "full": FixResConfig(data="folder", arch="resnet50", pretrained=True, k_train=224,
                         k_train_high=0, k_tests=(128, 160, 224, 288, 320, 384, 448),
                         epochs=0, optimizer="sgd", lr=0.1, weight_decay=1e-4,
                         batch_size=64, finetune_epochs=1,
                         finetune_lr=1e-3,
                         finetune_k=384, amp=True),
}


def build_model(cfg: FixResConfig, num_classes: int) -> nn.Module:
    """The network of ``cfg`` (:class:`ConvNet` or torchvision's ResNet-50)."""
    if cfg.arch == "convnet":
        from cvbook.nn.classifiers import ConvNet

        # channels_last: ~15% faster convolutions on the CPU (oneDNN's native layout) and
        # the layout tensor cores want under AMP; the numbers move in the last digits only.
        return ConvNet(num_classes, widths=cfg.widths).to(memory_format=torch.channels_last)
    import torchvision

    weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V1 if cfg.pretrained else None
    net = torchvision.models.resnet50(weights=weights)
    if net.fc.out_features != num_classes:
        if cfg.pretrained:
            raise ValueError(f"pretrained ResNet-50 has 1000 classes, the folder has "
                             f"{num_classes}; use pretrained=False or the ImageNet classes")
        net.fc = nn.Linear(net.fc.in_features, num_classes)
    return net.to(memory_format=torch.channels_last)


def build_source(cfg: FixResConfig, *, seed: int = 0, device: torch.device | str = "cpu"):
    """The data of ``cfg``: synthetic scenes on ``device`` or the user's image folder."""
    if cfg.data == "folder":
        return FolderSource(cfg.data_root, batch_size=cfg.batch_size,  # type: ignore[arg-type]
                            workers=cfg.workers, seed=seed)
    from cvbook.data.scenes import SceneConfig, make_scenes

    world = SceneConfig(image_size=cfg.image_size, classes=cfg.classes, clutter=cfg.clutter,
                        distractors=(0, 0))
    tr = make_scenes(cfg.n_train, world, seed=2 * seed, device=device)
    te = make_scenes(cfg.n_test, world, seed=2 * seed + 1, device=device)
    return TensorSource(tr.images, tr.labels, te.images, te.labels,
                        num_classes=world.num_classes, batch_size=cfg.batch_size, seed=seed,
                        train_boxes=tr.boxes)
