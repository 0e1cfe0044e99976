"""A small, general training loop: :func:`fit`.

Design points:

* ``loss_fn(model, batch)`` computes the loss, so one loop serves classification,
  clustering, reconstruction and self-supervised objectives alike. It returns a scalar
  tensor, or ``(loss, {"name": tensor, ...})`` with extra per-batch metrics to log.
* No host-device synchronisation per step: losses are accumulated as tensors on the
  device and read once per epoch (``.item()`` only for logging).
* Optional AMP (:func:`cvbook.core.device.autocast`), with a gradient scaler when the
  half type is float16.
* Distributed data parallel: under ``torchrun`` (after :func:`init_distributed`) the
  model is wrapped in ``DistributedDataParallel``; a plain ``DataLoader`` is re-built
  with a ``DistributedSampler`` (:func:`shard_loader`: each process reads its own
  1/world_size of the data, reshuffled every epoch with ``set_epoch``), epoch losses are
  averaged over processes and only rank 0 shows a progress bar. The same notebook code
  therefore scales past one GPU. Outside ``torchrun`` nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from cvbook.core.device import amp_dtype, autocast
from cvbook.core.validate import check_float, check_int

Batch = Any
LossOut = "torch.Tensor | tuple[torch.Tensor, Mapping[str, torch.Tensor]]"
LossFn = Callable[[nn.Module, Batch], LossOut]


@dataclass
class History:
    """Per-epoch means of the loss and of any extra metrics ``loss_fn`` returned."""

    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.loss)

    def plot(self, ax=None, *, title: str = "training loss", logy: bool = False):
        """Plot the loss curve (and metrics on the same axes); returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 3))
        epochs = range(1, len(self.loss) + 1)
        ax.plot(epochs, self.loss, label="loss")
        for name, values in self.metrics.items():
            ax.plot(range(1, len(values) + 1), values, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        if logy:
            ax.set_yscale("log")
        if self.metrics:
            ax.legend()
        return ax


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Initialise ``torch.distributed`` from the environment that ``torchrun`` sets.

    Returns ``(rank, world_size)``; ``(0, 1)`` when not launched by ``torchrun``.
    The backend defaults to NCCL on CUDA and gloo on the CPU.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return dist.get_rank(), dist.get_world_size()


def shard_loader(loader: Any, *, seed: int = 0) -> Any:
    """Under ``torchrun``, the ``DataLoader`` ``loader`` re-built with a
    ``DistributedSampler`` (shuffled iff ``loader`` shuffles), so that each of the
    ``world_size`` processes reads its own shard; anything else is returned unchanged
    (not distributed, not a ``DataLoader``, or already distributed or batch-sampled).

    The sampler pads the last shard with repeated samples so that every process runs
    the same number of steps (as ``torch.utils.data.DistributedSampler`` always does);
    :func:`fit` calls its ``set_epoch`` every epoch.
    """
    from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

    if not is_distributed() or not isinstance(loader, DataLoader):
        return loader
    sampler = loader.sampler
    if not isinstance(sampler, (RandomSampler, SequentialSampler)) or loader.batch_size is None:
        return loader
    dist_sampler = DistributedSampler(loader.dataset, shuffle=isinstance(sampler, RandomSampler),
                                      seed=check_int(seed, "seed", min_value=0),
                                      drop_last=loader.drop_last)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=dist_sampler,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                      persistent_workers=loader.persistent_workers)


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move tensors in (nested) tuples, lists and dicts to ``device`` (non-blocking)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _unpack(out) -> tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
    if isinstance(out, tuple):
        if len(out) != 2 or not isinstance(out[1], Mapping):
            raise TypeError("loss_fn must return a scalar tensor or (loss, dict of metrics)")
        loss, extra = out
    else:
        loss, extra = out, {}
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise TypeError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}"
                        + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
                           else ""))
    return loss, extra


def fit(
    model: nn.Module,
    data: Iterable[Batch] | Callable[[int], Iterable[Batch]],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    scheduler: Any | None = None,
    scheduler_step: str = "epoch",
    device: torch.device | str | None = None,
    amp: bool = False,
    grad_clip: float | None = None,
    progress: bool = True,
    desc: str = "train",
    on_epoch_end: Callable[[int, History], None] | None = None,
    set_mode: Callable[[nn.Module], Any] | None = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``data``.

    Args:
        model: the network; put in train mode at the start of every epoch (see
            ``set_mode``).
        data: a re-iterable of batches (a ``DataLoader``, a list), or a callable
            ``epoch -> iterable`` for data generated afresh each epoch.
        loss_fn: ``loss_fn(model, batch)`` returning a scalar loss or
            ``(loss, metrics)``; ``batch`` has already been moved to ``device``.
        optimizer: any ``torch.optim`` optimiser over the parameters to train.
        epochs: number of passes (>= 1).
        scheduler: optional LR scheduler, stepped per ``"epoch"`` or per ``"step"``.
        device: where to move batches; defaults to the device of the model's first
            parameter.
        amp: run the forward pass under autocast (CUDA only; ignored on CPU).
        grad_clip: optional max global gradient norm.
        progress: show a tqdm progress bar (rank 0 only).
        desc: progress bar label.
        on_epoch_end: ``callback(epoch, history)`` after each epoch.
        set_mode: called on the model at the start of every epoch to set train/eval
            modes; default ``model.train()``. Fine-tuning recipes that keep most of the
            network in eval mode (FixRes) pass their own.

    Returns:
        The :class:`History` of per-epoch mean losses and metrics.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError("optimizer must be a torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(model, batch)")
    epochs = check_int(epochs, "epochs", min_value=1)
    if scheduler_step not in ("epoch", "step"):
        raise ValueError(f"scheduler_step must be 'epoch' or 'step', got {scheduler_step!r}")
    if grad_clip is not None:
        grad_clip = check_float(grad_clip, "grad_clip", min_value=0.0, open_min=True)
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    device = torch.device(device)

    distributed = is_distributed()
    if distributed and not callable(data):
        data = shard_loader(data)
    net: nn.Module = model
    if distributed and not isinstance(model, nn.parallel.DistributedDataParallel):
        ids = [device.index] if device.type == "cuda" and device.index is not None else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    rank0 = not distributed or dist.get_rank() == 0

    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype(device) == torch.float16)
    params = [p for g in optimizer.param_groups for p in g["params"]]

    history = History()
    total = None
    if not callable(data) and hasattr(data, "__len__"):
        total = epochs * len(data)  # type: ignore[arg-type]
    bar = tqdm(total=total, desc=desc, disable=not (progress and rank0), leave=True)
    for epoch in range(epochs):
        batches = shard_loader(data(epoch)) if callable(data) else data
        sampler = getattr(batches, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        if set_mode is None:
            net.train()
        else:
            set_mode(model)
        loss_sum = torch.zeros((), device=device)
        metric_sums: dict[str, torch.Tensor] = {}
        steps = 0
        for batch in batches:
            batch = to_device(batch, device)
            with autocast(device, enabled=use_amp):
                loss, extra = _unpack(loss_fn(net, batch))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None and scheduler_step == "step":
                scheduler.step()
            loss_sum += loss.detach().float()
            for k, v in extra.items():
                v = torch.as_tensor(v, device=device).detach().float()
                metric_sums[k] = metric_sums.get(k, torch.zeros((), device=device)) + v
            steps += 1
            bar.update(1)
        if steps == 0:
            bar.close()
            raise ValueError(f"data yielded no batches in epoch {epoch}; "
                             "check the dataset and batch size")
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        names = sorted(metric_sums)
        stats = torch.stack([loss_sum] + [metric_sums[k] for k in names]) / steps
        if distributed:
            dist.all_reduce(stats)
            stats /= dist.get_world_size()
        values = stats.tolist()  # the one host sync of the epoch
        history.loss.append(values[0])
        for k, v in zip(names, values[1:]):
            history.metrics.setdefault(k, []).append(v)
        bar.set_postfix(epoch=epoch + 1, loss=f"{values[0]:.4f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
    bar.close()
    return history
