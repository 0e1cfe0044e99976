"""Training and correction for chapter 10: the self-supervised and consistency losses with
a sampled ``t``, sequential correction with the memory map updated in place, the
annotation IoU against the truth, and the averaging argument in closed form.

Training (:func:`train_autocorrect`), one step for a batch of annotations ``Ã`` (noisy,
or clean ``A`` for the self-supervised upper bound):

1. sample ``t`` uniformly in the configured ranges; the input annotation is ``Q = t · Ã``;
2. the network sees the image, ``Q``'s mask and the memory (the tile's other annotations)
   and predicts ``Φ``;
3. the loss compares ``Φ · Q`` with ``Ã`` in annotation space (:func:`annotation_loss`), or
   ``Φ`` with ``t⁻¹ = -t`` (:func:`parameter_loss`). The target is anchored to the known
   ``t``, so there is no degenerate "move everything to one place" solution.

Why noisy targets suffice (the averaging argument): the network sees ``Q = (t + n) · a``
and only the image tells it where ``a`` is, so at best it knows ``u = t + n`` (the total
offset from the truth); the L2-optimal prediction of the target ``-t`` is
``E[-t | u] = -u + E[n | u]``. If ``t`` is spread widely and independently of the
zero-mean noise ``n``, ``E[n | u] ≈ E[n] = 0`` and the optimum is ``-u``, the *true*
correction. With Gaussian ``t`` and ``n`` the optimum is the shrunk
``-σ_t² / (σ_t² + σ_n²) u`` (:func:`l2_optimal_correction`): a ``t`` narrower than the noise
under-corrects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from cvbook.core.validate import Shapes, check_choice, check_float, check_int
from cvbook.data.aerial import AerialBatch, annotation_masks
from cvbook.geometry.polygon import (
    _similarity,
    _splat,
    polygon_iou,
    random_similarity,
)

from .model import AutoCorrectNet, _annotation_loss, _inputs, parameter_loss
from .presets import AutoCorrectConfig

__all__ = [
    "MODES",
    "ObjectData",
    "annotation_iou",
    "correct_annotations",
    "l2_optimal_correction",
    "make_model",
    "prepare_objects",
    "train_autocorrect",
]

#: correction modes: objects one at a time with the memory updated after each, or all
#: at once from the initial annotations
MODES = ("sequential", "independent")
SOFT = 0.5  # edge width of the input masks and memory maps (pixels)
WINDOW = 64  # patch holding one building annotation in the memory maps (pixels)


@dataclass
class ObjectData:
    """Tiles flattened into annotations for training.

    Attributes:
        images: ``(N, 3, S, S)``; polygons, noisy: ``(N, K, V, 2)``; valid: ``(N, K)``.
        tile, slot: ``(M,)`` int64, the tile and slot of each valid annotation.
        memory_noisy, memory_clean: ``(N, S, S)`` sums of the soft coverages of the noisy
            and of the true annotations (the memory maps seen in training).
    """

    images: torch.Tensor
    polygons: torch.Tensor
    noisy: torch.Tensor
    valid: torch.Tensor
    tile: torch.Tensor
    slot: torch.Tensor
    memory_noisy: torch.Tensor
    memory_clean: torch.Tensor

    def __len__(self) -> int:
        return self.tile.shape[0]


def prepare_objects(batch: AerialBatch, *, window: int = WINDOW) -> ObjectData:
    """Flatten an :class:`~cvbook.data.aerial.AerialBatch` into annotations and build its
    two memory maps (each annotation rasterised in a ``window``-pixel patch)."""
    if not isinstance(batch, AerialBatch):
        raise TypeError(f"batch must be an AerialBatch, got {type(batch).__name__}")
    window = check_int(window, "window", min_value=1)
    S = batch.images.shape[-1]
    tile, slot = batch.valid.nonzero(as_tuple=True)
    return ObjectData(
        images=batch.images, polygons=batch.polygons, noisy=batch.noisy, valid=batch.valid,
        tile=tile, slot=slot,
        memory_noisy=annotation_masks(batch.noisy, batch.valid, S, softness=SOFT,
                                      reduce="sum", window=window),
        memory_clean=annotation_masks(batch.polygons, batch.valid, S, softness=SOFT,
                                      reduce="sum", window=window))


def make_model(cfg: AutoCorrectConfig) -> AutoCorrectNet:
    """The network of a config: memory channel or not, width, output scale = t's range."""
    return AutoCorrectNet(5 if cfg.memory else 4, cfg.width, cfg.t_ranges)


def train_autocorrect(model: AutoCorrectNet, data: ObjectData, cfg: AutoCorrectConfig, *,
                      clean: bool = False, seed: int = 0, progress: bool = True,
                      device: torch.device | str | None = None) -> list[float]:
    """Train ``model`` with the consistency loss on the noisy annotations (or the
    self-supervised loss on the clean ones with ``clean=True``).

    Args:
        model: an :class:`AutoCorrectNet` (its input channels decide the memory).
        data: :func:`prepare_objects`' output.
        cfg: steps, batch size, learning rate, ``t``'s ranges, loss and crop.
        clean: train on the true annotations (the clean-label upper bound).
        seed: seed of the draws of annotations and ``t``.
        progress: show a progress bar.
        device: where to train (the model's device when ``None``).

    Returns:
        The loss of every step.
    """
    if not isinstance(model, AutoCorrectNet):
        raise TypeError(f"model must be an AutoCorrectNet, got {type(model).__name__}")
    if not isinstance(data, ObjectData):
        raise TypeError(f"data must be ObjectData (prepare_objects), got {type(data).__name__}")
    cfg.validate()
    seed = check_int(seed, "seed", min_value=0)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev).train()
    g = torch.Generator(device="cpu").manual_seed(seed)
    images = data.images.to(dev)
    anns = (data.polygons if clean else data.noisy).to(dev)
    memory = None
    if model.in_channels == 5:
        memory = (data.memory_clean if clean else data.memory_noisy).to(dev)
    tile, slot = data.tile.to(dev), data.slot.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps,
                                                pct_start=0.1)
    ranges = dict(max_shift=cfg.t_shift, max_rotation=math.radians(cfg.t_rotation),
                  max_scale=cfg.t_scale)
    scale = model.scale
    losses = []
    for _ in tqdm(range(cfg.steps), disable=not progress, desc="AutoCorrect", leave=False):
        pick = torch.randint(0, len(data), (cfg.batch_size,), generator=g).to(dev)
        idx = tile[pick]
        target = anns[idx, slot[pick]]  # Ã (or A)
        t = random_similarity(cfg.batch_size, generator=g, **ranges).to(dev)
        q = _similarity(target, t)  # Q = t · Ã
        x, origin = _inputs(images, memory, idx, q, target, cfg.crop, SOFT)
        with torch.autocast(dev.type, enabled=cfg.amp and dev.type == "cuda"):
            pred = model(x)
        pred = pred.float()
        if cfg.loss == "mask":
            loss = _annotation_loss(pred, q, target, origin, cfg.crop, cfg.loss_softness,
                                    cfg.loss_stride).mean()
        else:
            loss = parameter_loss(pred, -t, scale).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach())
    return torch.stack(losses).tolist()


@torch.no_grad()
def correct_annotations(model: AutoCorrectNet, images: torch.Tensor, polygons: torch.Tensor,
                        valid: torch.Tensor, *, crop: int = 48, mode: str = "sequential",
                        iterations: int = 1, record: bool = False
                        ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """Correct every valid annotation of a batch of tiles.

    ``sequential``: the slots are visited in order; for each, all tiles are corrected at
    once, then the memory map ``M`` is updated in place (``M += m(new) - m(old)``), so a
    later annotation sees its neighbours already corrected. ``independent``: every
    annotation is corrected from the initial state (the memory stays that of the initial
    annotations). A model without the memory channel ignores ``M``. ``iterations``
    repeats the pass.

    Args:
        model: a trained :class:`AutoCorrectNet`.
        images: ``(N, 3, S, S)``; polygons: ``(N, K, V, 2)``; valid: ``(N, K)`` bool.
        crop: window side; mode: one of :data:`MODES`; iterations: passes (>= 1).
        record: also return the annotations after each slot of a sequential pass.

    Returns:
        ``(N, K, V, 2)`` corrected annotations (invalid slots unchanged), and with
        ``record`` the list of intermediate ``(N, K, V, 2)`` states.
    """
    s = Shapes()
    s.check(images, "images", "N 3 S S", floating=True)
    s.check(polygons, "polygons", "N K V 2", floating=True)
    s.check(valid, "valid", "N K", dtype=torch.bool)
    if not isinstance(model, AutoCorrectNet):
        raise TypeError(f"model must be an AutoCorrectNet, got {type(model).__name__}")
    crop = check_int(crop, "crop", min_value=16)
    mode = check_choice(mode, "mode", MODES)
    iterations = check_int(iterations, "iterations", min_value=1)
    was = model.training
    model.eval()
    try:
        return _correct(model, images, polygons, valid, crop, mode, iterations, record)
    finally:
        model.train(was)


def _correct(model, images, polygons, valid, crop, mode, iterations, record):
    S = images.shape[-1]
    use_memory = model.in_channels == 5
    P = polygons.clone()
    M = annotation_masks(P, valid, S, softness=SOFT, reduce="sum", window=WINDOW) \
        if use_memory else None
    steps = [P.clone()] if record else []
    K = P.shape[1]
    if mode == "independent":
        P0 = P.clone()
        tile, slot = valid.nonzero(as_tuple=True)
        for _ in range(iterations):
            q = P[tile, slot]
            x, _ = _inputs(images, M, tile, q, P0[tile, slot], crop, SOFT)
            P[tile, slot] = _similarity(q, model(x))
        return (P, steps + [P.clone()]) if record else P
    for _ in range(iterations):
        for k in range(K):
            rows = valid[:, k].nonzero()[:, 0]
            if len(rows) == 0:
                continue
            q = P[rows, k]
            x, _ = _inputs(images, M, rows, q, None, crop, SOFT)
            new = _similarity(q, model(x))
            if M is not None:  # the memory map, updated in place: M += m(new) - m(old)
                _splat(M, rows, new, WINDOW, SOFT, 1.0)
                _splat(M, rows, q, WINDOW, SOFT, -1.0)
            P[rows, k] = new
            if record:
                steps.append(P.clone())
    return (P, steps) if record else P


def annotation_iou(annotations: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor, *,
                   samples: int = 64) -> torch.Tensor:
    """IoU of each annotation with its true polygon (NaN in invalid slots).

    Args:
        annotations, truth: ``(N, K, V, 2)``; valid: ``(N, K)`` bool.
        samples: grid points per side of each pair's bounding box
            (:func:`cvbook.geometry.polygon.polygon_iou`).

    Returns:
        ``(N, K)`` IoUs.
    """
    s = Shapes()
    s.check(annotations, "annotations", "N K V 2", floating=True)
    s.check(truth, "truth", "N K * 2", floating=True)
    s.check(valid, "valid", "N K", dtype=torch.bool)
    iou = torch.full(valid.shape, float("nan"), device=annotations.device)
    iou[valid] = polygon_iou(annotations[valid], truth[valid], samples=samples).float()
    return iou


def l2_optimal_correction(u: torch.Tensor, t_std: float, noise_std: float) -> torch.Tensor:
    """The L2-optimal prediction of ``-t`` from ``u = t + n`` for independent zero-mean
    Gaussians ``t ~ N(0, σ_t²)``, ``n ~ N(0, σ_n²)`` (per coordinate):
    ``E[-t | u] = -σ_t² / (σ_t² + σ_n²) u``. The true correction is ``-u``; the factor is
    the under-correction of a ``t`` range that does not cover the noise.

    >>> l2_optimal_correction(torch.tensor([2.0]), 1.0, 1.0)
    tensor([-1.])
    """
    t_std = check_float(t_std, "t_std", min_value=0.0, open_min=True)
    noise_std = check_float(noise_std, "noise_std", min_value=0.0)
    return -(t_std ** 2 / (t_std ** 2 + noise_std ** 2)) * u
