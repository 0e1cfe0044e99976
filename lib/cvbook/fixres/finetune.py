"""The experiment: train at ``K_train``, test at every ``K_test``, pooled statistics,
the FixRes fine-tuning as the authors ran it (with a cached fast path), the curves of
accuracy against ``K_test`` with and without it, and the diagnostics of the chapter
(receptive field, paired intervals)."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from cvbook.core.batched import eval_mode
from cvbook.core.device import autocast
from cvbook.core.train import History, fit
from cvbook.core.validate import check_choice, check_float, check_int, check_tensor
from cvbook.data.sources import TensorSource
from cvbook.image.crops import (
    center_crop,
)


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
          amp: bool = False, progress: bool = True, desc: str | None = None,
          total_epochs: int | None = None) -> History:
    """Train from scratch at ``K_train`` with RandomResizedCrop + flip and a one-cycle
    learning-rate schedule; ``optimizer`` is ``"sgd"`` (Nesterov momentum, the paper's
    ImageNet recipe) or ``"adamw"`` (which trains the small CPU network faster).

    ``total_epochs`` (default ``epochs``) sizes the schedule: running the first
    ``epochs`` of a ``total_epochs`` recipe reproduces the start of that recipe (the
    chapter's short demonstration of its shipped networks' training)."""
    k_train = check_int(k_train, "k_train", min_value=1)
    lr = check_float(lr, "lr", min_value=0.0, open_min=True)
    check_choice(optimizer, "optimizer", ("sgd", "adamw"))
    data = source.train_batches(k_train, augment=True)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                              weight_decay=weight_decay, nesterov=True)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    epochs = check_int(epochs, "epochs", min_value=1)
    total_epochs = epochs if total_epochs is None else check_int(total_epochs, "total_epochs",
                                                                 min_value=epochs)
    from cvbook.core.train import shard_loader

    # under torchrun `fit` shards the loader: size the schedule on this process's shard
    steps = total_epochs * len(shard_loader(data))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.15)
    return fit(model, data, _ce_loss, opt, epochs=epochs, scheduler=sched,
               scheduler_step="step", amp=amp, progress=progress,
               desc=desc or f"train @ {k_train}px")


def _eval_shard(loader: Any) -> Any:
    """Under ``torchrun``, this process's exact share of an evaluation ``DataLoader``
    (samples ``rank, rank + W, ...``, no padding: the counts summed over processes are
    exactly the dataset's); otherwise ``loader`` unchanged."""
    from torch.utils.data import DataLoader, SequentialSampler, Subset

    from cvbook.core.train import is_distributed

    if not (is_distributed() and isinstance(loader, DataLoader)
            and isinstance(loader.sampler, SequentialSampler)):
        return loader
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    part = Subset(loader.dataset, range(rank, len(loader.dataset), world))
    return DataLoader(part, batch_size=loader.batch_size, shuffle=False,
                      num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                      collate_fn=loader.collate_fn)


def topk_accuracy(model: nn.Module, source, k: int, *, topk: Sequence[int] = (1, 5),
                  amp: bool = False) -> dict[int, float]:
    """Top-``t`` accuracies (``t`` in ``topk``) on the held-out split with the test
    transform at resolution ``k``: ``{t: accuracy}`` (the paper reports top-1 and top-5).

    The model is evaluated in eval mode and its mode restored. Under ``torchrun`` each
    process evaluates its own share of a folder's validation set and the shares are
    gathered (:func:`topk_hits`), so every process returns the accuracy on the whole set.
    ``t`` larger than the number of classes counts every sample as correct.
    """
    hits = topk_hits(model, source, k, topk=topk, amp=amp)
    ts = sorted(set(topk))
    return dict(zip(ts, hits.double().mean(0).tolist()))


@torch.no_grad()
def topk_hits(model: nn.Module, source, k: int, *, topk: Sequence[int] = (1, 5),
              amp: bool = False) -> torch.Tensor:
    """Per test image, whether the label is among the top ``t`` predictions, for each
    ``t`` in ``topk``: ``(N, T)`` bool on the CPU, in the order of the held-out split (the
    test transform at resolution ``k``), for paired intervals (:func:`paired_difference`).

    Under ``torchrun`` each process evaluates its own share (samples ``rank, rank + W,
    ...``) and the shares are gathered, so every process returns the whole ``(N, T)``.
    """
    k = check_int(k, "k", min_value=1)
    topk = sorted({check_int(t, "topk[i]", min_value=1) for t in topk})
    if not topk:
        raise ValueError("topk must list at least one value")
    dev = next(model.parameters()).device
    parts = []
    with eval_mode(model):
        for x, y in _eval_shard(source.test_batches(k)):
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            with autocast(dev, enabled=amp):
                logits = model(x)
            top = logits.topk(min(topk[-1], logits.shape[1]), dim=1).indices  # (N, T)
            hit = top == y[:, None]
            parts.append(torch.stack([hit[:, :t].any(1) for t in topk], 1))
    hits = torch.cat(parts).cpu()
    from cvbook.core.train import is_distributed

    if is_distributed():
        import torch.distributed as dist

        world = dist.get_world_size()
        shares: list = [None] * world
        dist.all_gather_object(shares, hits)
        full = torch.zeros(sum(s.shape[0] for s in shares), len(topk), dtype=torch.bool)
        for r, share in enumerate(shares):
            full[r::world] = share
        hits = full
    return hits


def _accuracies(hits: torch.Tensor) -> tuple[float, float]:
    """Top-1 and top-5 accuracies from :func:`topk_hits` ``(N, 2)`` (topk ``(1, 5)``)."""
    acc = hits.double().mean(0).tolist()
    return acc[0], acc[1]


def evaluate(model: nn.Module, source, k: int, *, amp: bool = False) -> float:
    """Top-1 accuracy on the held-out split with the test transform at resolution ``k``
    (:func:`topk_accuracy` with ``topk=(1,)``)."""
    return topk_accuracy(model, source, k, topk=(1,), amp=amp)[1]


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
                      threshold: float = 1e-2, split: str = "test"
                      ) -> dict[int, dict[str, float]]:
    """Statistics of the globally pooled activations (the classifier's input) against
    the test resolution (paper §3.2: their distribution shifts with K_test).

    Args:
        model: a classifier whose last ``nn.Linear`` reads the pooled features.
        source: a :class:`TensorSource` or :class:`FolderSource`.
        ks: resolutions.
        max_batches: batches per resolution.
        threshold: pooled values below it count as zero (``sparsity``).
        split: ``"test"`` (held-out images, test transform at each K) or ``"train"``
            (training images with the *training* augmentation, ``RandomResizedCrop(K)``:
            the statistics the classifier was trained on). On a :class:`TensorSource`
            the ``"train"`` draws leave the source's generator as they found it.

    Returns, per K: the mean and standard deviation of the pooled activations, their
    ``sparsity`` (fraction below ``threshold``), and ``q50``/``q90`` quantiles.
    """
    check_choice(split, "split", ("test", "train"))
    fc = classifier(model)
    feats: list[torch.Tensor] = []
    handle = fc.register_forward_pre_hook(lambda m, inp: feats.append(inp[0].detach().float()))
    dev = next(model.parameters()).device
    gen = getattr(source, "generator", None) if split == "train" else None
    state = gen.get_state() if isinstance(gen, torch.Generator) else None
    out = {}
    with eval_mode(model):
        try:
            for k in ks:
                k = check_int(k, "ks[i]", min_value=1)
                feats.clear()
                batches = (source.test_batches(k) if split == "test"
                           else source.train_batches(k))
                for i, (x, _) in enumerate(batches):
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
            if state is not None:
                gen.set_state(state)  # type: ignore[union-attr]
    return out


class _Head(nn.Module):
    """The part of a :class:`~cvbook.nn.classifiers.ConvNet` after its last convolution:
    last BatchNorm, ReLU, global pooling, classifier (shares the model's modules)."""

    def __init__(self, bn: nn.Module, relu: nn.Module, pool: nn.Module, fc: nn.Module) -> None:
        super().__init__()
        self.bn, self.relu, self.pool, self.fc = bn, relu, pool, fc

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.relu(self.bn(z))).flatten(1))


def split_at_last_bn(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """``(trunk, head)`` of a :class:`~cvbook.nn.classifiers.ConvNet`, cut just before
    its last BatchNorm: ``model(x) == head(trunk(x))``; both share the model's modules.
    ``None`` for other networks (a ResNet's last BN sits inside a residual block).

    Everything FixRes fine-tuning changes lives in ``head``; ``trunk`` is frozen and in
    eval mode, so on the deterministic test transform its output can be computed once
    per image and resolution (:func:`trunk_features`).
    """
    from cvbook.nn.classifiers import ConvNet

    if not isinstance(model, ConvNet):
        return None
    conv, bn, relu = model.features[-1]
    trunk = nn.Sequential(*model.features[:-1], conv)
    return trunk, _Head(bn, relu, model.pool, model.fc)


def _fold_batchnorms(trunk: nn.Module) -> nn.Module:
    """An inference copy of a frozen trunk with each conv-BN pair folded into one conv
    (``torch.nn.utils.fusion.fuse_conv_bn_eval``: the same function up to float rounding,
    ~20% faster on the CPU); other modules are shared, not copied."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    layers: list[nn.Module] = []
    for m in trunk.children():
        if (isinstance(m, nn.Sequential) and len(m) == 3 and isinstance(m[0], nn.Conv2d)
                and isinstance(m[1], nn.BatchNorm2d)):
            layers += [fuse_conv_bn_eval(m[0], m[1]), m[2]]
        else:
            layers.append(m)
    return nn.Sequential(*layers)


@torch.no_grad()
def trunk_features(trunk: nn.Module, source: TensorSource, k: int, *, split: str = "train",
                   batch_size: int = 500) -> torch.Tensor:
    """The frozen trunk's output on every image of ``split`` (``"train"`` or ``"test"``)
    of a :class:`TensorSource`, prepared with the test transform at resolution ``k`` and
    the source's normalisation, in the split's order: ``(N, C, k/2^s, k/2^s)``. The
    trunk runs in eval mode with its BatchNorms folded into the convolutions; the test
    transform follows the source's ``test_resize`` rule."""
    check_choice(split, "split", ("train", "test"))
    k = check_int(k, "k", min_value=1)
    images = source.train_images if split == "train" else source.test_images
    out = []
    with eval_mode(trunk):
        net = _fold_batchnorms(trunk) if isinstance(trunk, nn.Sequential) else trunk
        for i in range(0, images.shape[0], batch_size):
            x = center_crop(images[i:i + batch_size], k,
                            test_resize=getattr(source, "test_resize", "shorter"))
            out.append(net((x - source.mean) / source.std))
    return torch.cat(out)


def _freeze_all_but_classifier(net: nn.Module) -> tuple[nn.BatchNorm2d, nn.Linear]:
    bn, fc = last_batchnorm(net), classifier(net)
    for p in net.parameters():
        p.requires_grad_(False)
    for p in fc.parameters():
        p.requires_grad_(True)
    return bn, fc


def fixres_finetune(model: nn.Module, source, k_test: int, *, epochs: int = 2,
                    lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 1e-4,
                    lr_step: int | None = None, amp: bool = False, progress: bool = True,
                    copy_model: bool = True, cached: bool | None = None,
                    features: torch.Tensor | None = None,
                    shuffle_seed: int | None = None) -> tuple[nn.Module, History]:
    """The FixRes fine-tuning at the test resolution, as the authors ran it
    (facebookresearch/FixRes, ``imnet_finetune/train.py``).

    * the whole network is in eval mode **except the last BatchNorm**, whose running
      statistics re-adapt to the activations at ``K_test`` (its affine weights stay
      frozen: only the classifier has ``requires_grad``);
    * only the classifier (the last ``nn.Linear``) is trained, with SGD (momentum 0.9,
      weight decay 1e-4) and a learning rate divided by 10 every ``lr_step`` epochs
      (the official ``StepLR(step_size=30)``; ``None``: constant);
    * the training images are prepared with the **test** transform,
      ``Resize(int(256/224·K_test)) + CenterCrop(K_test)``.

    With ``cached`` (default: whenever the model is a ConvNet and the source a
    :class:`TensorSource`), the frozen trunk's output on the training images is computed
    once (:func:`trunk_features`, or passed as ``features``) and the epochs run on the
    head alone: the same computation, the same batches (the same shuffling generator),
    a fraction of the cost. ``tests/test_fixres.py`` checks both paths agree.

    Args:
        model: a trained classifier (left untouched when ``copy_model``).
        source: a :class:`TensorSource` or :class:`FolderSource`.
        k_test: the resolution to fine-tune and then test at.
        shuffle_seed: on the cached path, shuffle the batches with a fresh generator
            seeded so (default: the source's shared generator, whose state depends on
            what drew from it before).

    Returns:
        ``(fine_tuned_model, history)``.
    """
    k_test = check_int(k_test, "k_test", min_value=1)
    lr = check_float(lr, "lr", min_value=0.0, open_min=True)
    epochs = check_int(epochs, "epochs", min_value=1)
    if lr_step is not None:
        lr_step = check_int(lr_step, "lr_step", min_value=1)
    net = copy.deepcopy(model) if copy_model else model
    bn, fc = _freeze_all_but_classifier(net)
    split = split_at_last_bn(net)
    if cached is None:
        cached = split is not None and isinstance(source, TensorSource)
    if cached and (split is None or not isinstance(source, TensorSource)):
        raise ValueError("cached=True needs a ConvNet and a TensorSource")

    def set_mode(m: nn.Module) -> None:
        m.eval()
        bn.train()  # running mean / variance re-estimated at K_test

    opt = torch.optim.SGD(fc.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = (torch.optim.lr_scheduler.StepLR(opt, lr_step, gamma=0.1)
             if lr_step is not None else None)
    desc = f"FixRes fine-tune @ {k_test}px"
    if cached:
        from cvbook.data.loaders import TensorBatches

        trunk, head = split  # type: ignore[misc]
        z = trunk_features(trunk, source, k_test) if features is None else features
        check_tensor(z, "features", ndim=4)
        if z.shape[0] != source.train_labels.shape[0]:
            raise ValueError(f"features has {z.shape[0]} rows, the source "
                             f"{source.train_labels.shape[0]} training images")
        gen = source.generator
        if shuffle_seed is not None:
            gen = torch.Generator(device=gen.device).manual_seed(
                check_int(shuffle_seed, "shuffle_seed", min_value=0))
        data = TensorBatches(z, source.train_labels, batch_size=source.batch_size,
                             shuffle=True, generator=gen)
        hist = fit(head, data, _ce_loss, opt, epochs=epochs, scheduler=sched, amp=amp,
                   progress=progress, desc=desc, set_mode=set_mode)
    else:
        hist = fit(net, source.train_batches(k_test, augment=False), _ce_loss, opt,
                   epochs=epochs, scheduler=sched, amp=amp, progress=progress, desc=desc,
                   set_mode=set_mode)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(True)
    return net, hist


@dataclass
class Curves:
    """Accuracy against the test resolution, with and without FixRes fine-tuning.

    Attributes:
        no_ft: ``{K_test: top-1}`` of the network as trained.
        ft: ``{K: top-1}`` after FixRes fine-tuning at ``K`` (tested at ``K``), for the
            resolutions that were fine-tuned.
        models: ``{K: fine-tuned network}``.
        top5_no_ft, top5_ft: the same in top-5 (only with more than 5 classes).
        correct: ``{("no_ft" | "ft", K): (N,) bool}``, whether each test image is
            classified right (the scenes path; for paired confidence intervals,
            :func:`paired_difference`).
    """

    no_ft: dict[int, float]
    ft: dict[int, float]
    models: dict[int, nn.Module]
    top5_no_ft: dict[int, float]
    top5_ft: dict[int, float]
    correct: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)


def shuffle_seed(seed: int, k: int, repeat: int = 0) -> int:
    """The seed of the shuffling generator of the fine-tuning at resolution ``k``
    (repeat ``repeat``) of the run with seed ``seed``: distinct for every triple."""
    seed, k = check_int(seed, "seed", min_value=0), check_int(k, "k", min_value=1)
    repeat = check_int(repeat, "repeat", min_value=0)
    return (seed * 10_007 + k) * 1_009 + repeat


def difference_in_differences(fix_hi: torch.Tensor, no_hi: torch.Tensor,
                              ft_lo: torch.Tensor, no_lo: torch.Tensor,
                              z: float | None = None, level: float = 0.95
                              ) -> tuple[float, float, float]:
    """``(FixRes@K_test − noFT@K_test) − (FT@K_train − noFT@K_train)``: what the
    fine-tuning gains at the test resolution beyond what the same fine-tuning gains at the
    train resolution, with an interval (coverage ``level``) that counts both the test
    images and the fine-tunings' shuffles: ``(did, low, high)``.

    Args:
        fix_hi, ft_lo: ``(R, N)`` booleans, per repeat (shuffle) and test image, whether
            the fine-tuned network is right at K_test / K_train (repeat ``r`` of both).
        no_hi, no_lo: ``(N,)`` booleans, the network as trained at K_test / K_train.
        z: a fixed quantile (the former 1.96); default (``None``): with ``R > 1``,
            Student's t with the Welch-Satterthwaite degrees of freedom of the two variance
            terms below (``N - 1`` and ``R - 1``): with ``R = 3`` repeats and the shuffle
            term dominant it approaches ``t_{0.975, 2} = 4.303``, not 1.96; with ``R = 1``
            the normal quantile, as :func:`paired_difference` (the same interval).

    The variance is ``Var_i(d̄_i)/N + Var_r(D_r)/R``, with ``d_ri`` the per-image
    difference-in-differences, ``d̄_i`` its mean over repeats and ``D_r`` its mean over
    images (a conservative sum: the first term already holds part of the second).
    """
    from cvbook.metrics.intervals import t_quantile, welch_satterthwaite_df

    check_tensor(fix_hi, "fix_hi", ndim=2)
    r, n = fix_hi.shape
    check_tensor(ft_lo, "ft_lo", shape=(r, n))
    check_tensor(no_hi, "no_hi", shape=(n,))
    check_tensor(no_lo, "no_lo", shape=(n,))
    d = ((fix_hi.double().cpu() - no_hi.double().cpu())
         - (ft_lo.double().cpu() - no_lo.double().cpu()))  # (R, N)
    mean = d.mean().item()
    if n < 2:
        return mean, -math.inf, math.inf
    terms, dfs = [d.mean(0).var().item() / n], [n - 1]
    if r > 1:
        terms.append(d.mean(1).var().item() / r)
        dfs.append(r - 1)
    se = math.sqrt(sum(terms))
    if z is not None:
        q = z
    elif r > 1:
        q = t_quantile(level, welch_satterthwaite_df(terms, dfs))
    else:
        q = 1.96 if level == 0.95 else t_quantile(level)  # normal, as paired_difference
    return mean, mean - q * se, mean + q * se


def resolution_curves(model: nn.Module, source, ks: Sequence[int], *,
                      finetune_ks: Sequence[int] | None = None, epochs: int = 2,
                      lr: float = 1e-3, lr_step: int | None = None,
                      momentum: float = 0.9, weight_decay: float = 1e-4, amp: bool = False,
                      progress: bool = True, seed: int = 0, repeats: int = 1,
                      repeat_ks: Sequence[int] = (), matched_shuffles: bool = False) -> Curves:
    """The paper's key figure: top-1 at every ``K_test`` in ``ks`` without fine-tuning,
    and after the FixRes fine-tuning at each resolution of ``finetune_ks`` (default:
    all of ``ks``), tested at that resolution. Fine-tuning at ``K_train`` itself is the
    control: the same parameters trained for the same steps, at the train resolution.

    On a :class:`TensorSource` with a ConvNet, the frozen trunk runs once per resolution
    on each split (train features feed the fine-tuning, test features both evaluations).
    There each fine-tuning at ``K`` shuffles with its own generator, seeded by
    :func:`shuffle_seed` ``(seed, K, r)``: the result at one ``K`` does not depend on which
    other resolutions were fine-tuned before it. At the resolutions of ``repeat_ks`` the
    fine-tuning is repeated over ``repeats`` shuffles (``r = 0 .. repeats-1``; the
    per-image correctness of repeat ``r`` is ``correct[("ft", K, r)]``, repeat 0 is also
    ``ft[K]`` and ``correct[("ft", K)]``). With ``matched_shuffles`` the seed ignores ``K``
    (:func:`shuffle_seed` ``(seed, 1, r)`` at every resolution): repeat ``r`` of every
    fine-tuning sees the same images in the same mini-batches, so that FixRes at K_test
    and its control at K_train differ only in the resolution (batch-matched).

    On a folder source (the full presets) every fine-tuning draws its batches from the
    folder's own seeded loader (already the same order at every resolution), runs once
    (``repeats`` is not used: each is a full fine-tuning on ImageNet) and ``correct`` holds
    the per-image top-1 hits of the sweep and of the fine-tuned networks (keys
    ``("no_ft", K)``, ``("ft", K)`` and ``("ft", K, 0)``), for the same paired intervals.
    """
    repeats = check_int(repeats, "repeats", min_value=1)
    seed = check_int(seed, "seed", min_value=0)
    ks = [check_int(k, "ks[i]", min_value=1) for k in ks]
    if not ks:
        raise ValueError("ks must list at least one test resolution")
    fks = ks if finetune_ks is None else [check_int(k, "finetune_ks[i]", min_value=1)
                                          for k in finetune_ks]
    split = split_at_last_bn(model)
    fast = split is not None and isinstance(source, TensorSource)
    top5 = getattr(source, "num_classes", 0) > 5
    out = Curves({}, {}, {}, {}, {})
    for k in tqdm(sorted(set(ks) | set(fks)), desc="resolutions", disable=not progress):
        if fast:
            trunk, head = split  # type: ignore[misc]
            z_test = trunk_features(trunk, source, k, split="test")
            with eval_mode(head), torch.no_grad():
                hit = head(z_test).argmax(1) == source.test_labels
            if k in ks:
                out.no_ft[k] = hit.sum().item() / len(hit)
                out.correct[("no_ft", k)] = hit.cpu()
            if k in fks:
                z_train = trunk_features(trunk, source, k)
                for r in range(repeats if k in repeat_ks else 1):
                    tuned, _ = fixres_finetune(model, source, k, epochs=epochs, lr=lr,
                                               lr_step=lr_step, momentum=momentum,
                                               weight_decay=weight_decay, progress=False,
                                               features=z_train,
                                               shuffle_seed=shuffle_seed(
                                                   seed, 1 if matched_shuffles else k, r))
                    _, thead = split_at_last_bn(tuned)  # type: ignore[misc]
                    with eval_mode(thead), torch.no_grad():
                        hit = thead(z_test).argmax(1) == source.test_labels
                    out.correct[("ft", k, r)] = hit.cpu()
                    if r == 0:
                        out.ft[k] = hit.sum().item() / len(hit)
                        out.correct[("ft", k)] = hit.cpu()
                        out.models[k] = tuned
            continue
        if k in ks:
            hits = topk_hits(model, source, k, amp=amp)
            out.no_ft[k], out.top5_no_ft[k] = _accuracies(hits)
            out.correct[("no_ft", k)] = hits[:, 0]
        if k in fks:
            tuned, _ = fixres_finetune(model, source, k, epochs=epochs, lr=lr, lr_step=lr_step,
                                       momentum=momentum, weight_decay=weight_decay, amp=amp,
                                       progress=progress)
            hits = topk_hits(tuned, source, k, amp=amp)
            out.ft[k], out.top5_ft[k] = _accuracies(hits)
            out.correct[("ft", k)] = out.correct[("ft", k, 0)] = hits[:, 0]
            out.models[k] = tuned
    if not top5:
        out.top5_no_ft, out.top5_ft = {}, {}
    return out


def receptive_field(model: nn.Module) -> int:
    """Side (pixels) of the theoretical receptive field of one unit of the last feature
    map of a :class:`~cvbook.nn.classifiers.ConvNet`: every ``k×k`` convolution adds
    ``(k - 1)·jump`` and every pooling ``(k - 1)·jump`` before multiplying the jump by its
    stride."""
    from cvbook.nn.classifiers import ConvNet

    if not isinstance(model, ConvNet):
        raise TypeError(f"receptive_field needs a ConvNet, got {type(model).__name__}")
    rf, jump = 1, 1
    for m in model.features.modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            d = m.dilation if isinstance(m.dilation, int) else m.dilation[0]
            rf += (k - 1) * d * jump
            jump *= s
    return rf



def paired_difference(correct_a: torch.Tensor, correct_b: torch.Tensor,
                      z: float = 1.96) -> tuple[float, float, float]:
    """Accuracy difference ``a - b`` of two classifiers on the *same* test images, with
    its normal-approximation 95% interval from the paired (per-image) differences:
    ``(diff, low, high)``. Pairing removes the variance both share (the images that are
    easy or hard for both), so the interval is much narrower than two separate ones.

    Args:
        correct_a, correct_b: ``(N,)`` booleans, whether each image is classified right.
    """
    check_tensor(correct_a, "correct_a", shape="N")
    check_tensor(correct_b, "correct_b", shape=(correct_a.shape[0],))
    d = correct_a.double().cpu() - correct_b.double().cpu()
    n = d.shape[0]
    mean = d.mean().item()
    se = (d.std().item() / math.sqrt(n)) if n > 1 else float("inf")
    return mean, mean - z * se, mean + z * se


