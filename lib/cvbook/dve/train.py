"""Training descriptors on warped pairs of the faces world, and the matching protocol on
held-out identities.

:func:`train_descriptor` draws fresh faces every step (the world is procedural: no
epochs), makes pairs (:func:`cvbook.data.pairs.warped_pairs`), runs the network on source
and target together (one batch norm batch, as the official code does) and minimises the
dense equivariance loss, or DVE's with ``dve=True``. :func:`evaluate_matching` measures
same-identity (source vs its warped copy) and different-identity (source vs the *next*
test face, another person) matching errors; :func:`evaluate_landmarks` fits the
landmark regressor on frozen descriptors of training identities and reports %IOD on test
identities (both on once-warped, cropped faces: the images the network trained on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import torch
from torch import nn

from cvbook.core.batched import batched_forward, eval_mode
from cvbook.core.validate import check_float, check_int
from cvbook.data.faces import FaceWorld
from cvbook.data.pairs import PairBatch, PairConfig, warped_pairs
from cvbook.dve.evaluation import describe, fit_landmark_regressor, iod_percent, matching_error
from cvbook.dve.loss import dense_equivariance_loss, dve_loss, feature_positions

__all__ = ["PAIR_CHUNK", "chunked_pairs", "evaluate_landmarks", "evaluate_matching",
           "landmark_errors", "landmark_sets", "matching_errors", "matching_pairs",
           "train_descriptor"]


def train_descriptor(net: nn.Module, world: FaceWorld | Any, *, steps: int, batch_size: int = 16,
                     lr: float = 1e-3, dve: bool = False, gamma: float = 0.5,
                     pairs: PairConfig | None = None, generator: torch.Generator | None = None,
                     callback: Callable[[int, float], None] | None = None,
                     amsgrad: bool = False, milestones: tuple[float, ...] = (),
                     amp: bool = False) -> list[float]:
    """Train ``net`` (with ``stride`` and ``dim`` attributes) by Adam for ``steps`` steps.

    Args:
        amsgrad: Adam's AMSGrad variant (the official configs set it).
        milestones: fractions of ``steps`` after which the learning rate is divided by
            10 (the official SmallNet configs: epochs 70 and 90 of 100, i.e.
            ``(0.7, 0.9)``).
        amp: bfloat16 autocast for the network on CUDA (the loss is float32 whatever
            the autocast dtype); ignored on the CPU.

    A network with a ``loss_normalize`` attribute (the hourglass: 20) has its
    descriptors L2-normalised and scaled by it inside the loss (the official
    ``normalize_vectors``); its raw descriptors are what matching reads.

    ``world`` is a :class:`cvbook.data.faces.FaceWorld` or anything with its
    ``sample(n, "train", generator=...)`` (:class:`cvbook.dve.celeba.CelebAFaces`).

    Returns:
        the loss of every step (floats; read once per step, after the update).
    """
    steps = check_int(steps, "steps", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=2)
    lr = check_float(lr, "lr", min_value=0.0, open_min=True)
    for m in milestones:
        check_float(m, "milestones", min_value=0.0, max_value=1.0)
    stride = check_int(getattr(net, "stride", None), "net.stride", min_value=1)
    cfg = pairs if pairs is not None else PairConfig()
    opt = torch.optim.Adam(net.parameters(), lr=lr, amsgrad=bool(amsgrad))
    drops = sorted(round(m * steps) for m in milestones)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, drops, gamma=0.1) if drops else None
    net.train()
    dev = next(net.parameters()).device
    use_amp = bool(amp) and dev.type == "cuda"
    history: list[float] = []
    loss_fn = dve_loss if dve else dense_equivariance_loss
    # the hourglass's descriptors are unit-normalised x 20 inside the loss only
    normalize = getattr(net, "loss_normalize", None)
    for step in range(steps):
        with torch.no_grad():
            faces = world.sample(batch_size, "train", generator=generator)
            p = warped_pairs(faces.images, config=cfg, generator=generator)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
            feats = net(torch.cat((p.source, p.target)).to(dev))
            loss = loss_fn(feats[:batch_size], feats[batch_size:], p.grid.to(dev),
                           stride=stride, gamma=gamma, normalize=normalize)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        history.append(loss.item())
        if callback is not None:
            callback(step, history[-1])
    return history


@torch.no_grad()
def matching_pairs(world: FaceWorld | Any, n: int, *, pairs: PairConfig | None = None,
                   generator: torch.Generator | None = None) -> PairBatch:
    """The matching protocol's data: ``n`` test faces (held-out identities), each made
    into a pair (source: warped twice; target: warped once)."""
    n = check_int(n, "n", min_value=2)
    cfg = pairs if pairs is not None else PairConfig()
    faces = world.sample(n, "test", generator=generator)
    return chunked_pairs(faces.images, faces.landmarks, config=cfg, identity=faces.identity,
                         generator=generator)


#: Faces per :func:`cvbook.data.pairs.warped_pairs` call in the evaluation sets: the TPS
#: evaluation holds ``chunk x S^2 x 100`` floats (5000 faces of 136 px at once: ~37 GB).
PAIR_CHUNK = 512


@torch.no_grad()
def chunked_pairs(images: torch.Tensor, landmarks: torch.Tensor, *, config: PairConfig,
                  identity: torch.Tensor | None = None,
                  generator: torch.Generator | None = None,
                  chunk: int = PAIR_CHUNK) -> PairBatch:
    """:func:`cvbook.data.pairs.warped_pairs` in blocks of ``chunk`` images, concatenated
    (bounded memory for the full preset's 1000 to 5000 evaluation faces; one call, the
    same draws, when there are at most ``chunk`` images)."""
    chunk = check_int(chunk, "chunk", min_value=1)
    n = images.shape[0]
    if identity is None:
        identity = torch.full((n,), -1, dtype=torch.int64, device=images.device)
    parts = [warped_pairs(images[i:i + chunk], landmarks[i:i + chunk], config=config,
                          identity=identity[i:i + chunk], generator=generator)
             for i in range(0, n, chunk)]
    if len(parts) == 1:
        return parts[0]
    return PairBatch(**{f.name: torch.cat([getattr(q, f.name) for q in parts])
                        for f in fields(PairBatch)})


@torch.no_grad()
def matching_errors(net: nn.Module, p: PairBatch, *, batch_size: int = 64
                    ) -> dict[str, torch.Tensor]:
    """The errors of :func:`evaluate_matching` on the pairs ``p`` (the "different
    identity" target of pair ``i`` is the target of pair ``i + 1``)."""
    stride = check_int(getattr(net, "stride", None), "net.stride", min_value=1)
    dev = next(net.parameters()).device
    with eval_mode(net):
        fs = batched_forward(net, p.source.to(dev), batch_size=batch_size)
        ft = batched_forward(net, p.target.to(dev), batch_size=batch_size)
    src_lm, tgt_lm = p.source_landmarks.to(dev), p.target_landmarks.to(dev)
    other_t, other_lm = ft.roll(-1, 0), tgt_lm.roll(-1, 0)
    cells = feature_positions(ft.shape[-2:], stride, device=ft.device)  # (hw, 2)
    return {
        "same": matching_error(fs, ft, src_lm, tgt_lm, stride=stride),
        "different": matching_error(fs, other_t, src_lm, other_lm, stride=stride),
        "none_same": (src_lm - tgt_lm).norm(dim=-1),
        "none_different": (src_lm - other_lm).norm(dim=-1),
        "floor_same": torch.cdist(tgt_lm, cells[None]).amin(-1),
        "floor_different": torch.cdist(other_lm, cells[None]).amin(-1),
    }


@torch.no_grad()
def evaluate_matching(net: nn.Module, world: FaceWorld | Any, *, n: int = 256,
                      pairs: PairConfig | None = None, batch_size: int = 64,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Matching errors on ``n`` test faces (held-out identities):
    :func:`matching_pairs` then :func:`matching_errors`.

    Returns:
        ``{"same": (n, L), "different": (n, L), "none_same": (n, L),
        "none_different": (n, L), "floor_same": (n, L), "floor_different": (n, L)}``
        pixel errors: matching a source landmark into its warped copy and into the next
        face (another identity), the "no matching" baselines (predict the source
        landmark's own position), and the grid's floor (the distance from the true
        landmark to the nearest feature-cell centre, what a perfect matcher that answers
        with cell centres still pays).
    """
    check_int(getattr(net, "stride", None), "net.stride", min_value=1)
    p = matching_pairs(world, n, pairs=pairs, generator=generator)
    return matching_errors(net, p, batch_size=batch_size)


@torch.no_grad()
def landmark_sets(world: FaceWorld | Any, n_train: int, n_test: int, *,
                  pairs: PairConfig | None = None, generator: torch.Generator | None = None
                  ) -> tuple[PairBatch, PairBatch]:
    """The landmark protocol's data: once-warped, cropped faces (the pairs' targets, the
    images the network trained on) of ``n_train`` training and ``n_test`` test faces."""
    n_train = check_int(n_train, "n_train", min_value=2)
    n_test = check_int(n_test, "n_test", min_value=2)
    cfg = pairs if pairs is not None else PairConfig()
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        f = world.sample(n, split, generator=generator)
        out.append(chunked_pairs(f.images, f.landmarks, config=cfg, generator=generator))
    return out[0], out[1]


def landmark_errors(net: nn.Module, sets: tuple[PairBatch, PairBatch], *,
                    epochs: int | None = None, steps: int | None = None,
                    per_landmark: int = 50, batch_size: int = 32,
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The %IOD of :func:`evaluate_landmarks` on prepared :func:`landmark_sets` (the
    regressor trained by :func:`cvbook.dve.evaluation.fit_landmark_regressor`: ``epochs``
    passes, the official protocol, or ``steps`` random mini-batches)."""
    tr, te = sets
    dev = next(net.parameters()).device
    with torch.no_grad():
        ftr = describe(net, tr.target.to(dev))
        fte = describe(net, te.target.to(dev))
    ltr, lte = tr.target_landmarks.to(dev), te.target_landmarks.to(dev)
    size = tr.target.shape[-2:]
    reg = fit_landmark_regressor(ftr, ltr, (int(size[0]), int(size[1])), epochs=epochs,
                                 steps=steps, per_landmark=per_landmark,
                                 batch_size=batch_size, generator=generator)
    with torch.no_grad():
        pred = reg(fte)
    mean = ltr.mean(0, keepdim=True).expand_as(lte)
    return {"iod": iod_percent(pred, lte), "iod_mean_shape": iod_percent(mean, lte)}


def evaluate_landmarks(net: nn.Module, world: FaceWorld | Any, *, n_train: int = 512,
                       n_test: int = 256, epochs: int | None = None, steps: int | None = None,
                       per_landmark: int = 50, pairs: PairConfig | None = None,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """%IOD of the landmark regressor on frozen descriptors: :func:`landmark_sets` then
    :func:`landmark_errors` (the regressor is fitted on the training faces' descriptors
    and tested on the held-out faces).

    Returns:
        ``{"iod": (n_test,) %IOD per test face, "iod_mean_shape": (n_test,)}``, the
        second the baseline that predicts the training set's mean landmarks.
    """
    sets = landmark_sets(world, n_train, n_test, pairs=pairs, generator=generator)
    return landmark_errors(net, sets, epochs=epochs, steps=steps, per_landmark=per_landmark,
                           generator=generator)
