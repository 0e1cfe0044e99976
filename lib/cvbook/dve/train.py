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

import torch
from torch import nn

from cvbook.core.batched import eval_mode
from cvbook.core.validate import check_float, check_int
from cvbook.data.faces import FaceWorld
from cvbook.data.pairs import PairConfig, warped_pairs
from cvbook.dve.evaluation import describe, fit_landmark_regressor, iod_percent, matching_error
from cvbook.dve.loss import dense_equivariance_loss, dve_loss

__all__ = ["evaluate_landmarks", "evaluate_matching", "train_descriptor"]


def train_descriptor(net: nn.Module, world: FaceWorld, *, steps: int, batch_size: int = 16,
                     lr: float = 1e-3, dve: bool = False, gamma: float = 0.5,
                     pairs: PairConfig | None = None, generator: torch.Generator | None = None,
                     callback: Callable[[int, float], None] | None = None,
                     amsgrad: bool = False, milestones: tuple[float, ...] = ()
                     ) -> list[float]:
    """Train ``net`` (with ``stride`` and ``dim`` attributes) by Adam for ``steps`` steps.

    Args:
        amsgrad: Adam's AMSGrad variant (the official configs set it).
        milestones: fractions of ``steps`` after which the learning rate is divided by
            10 (the official SmallNet configs: epochs 70 and 90 of 100, i.e.
            ``(0.7, 0.9)``).

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
    history: list[float] = []
    loss_fn = dve_loss if dve else dense_equivariance_loss
    for step in range(steps):
        with torch.no_grad():
            faces = world.sample(batch_size, "train", generator=generator)
            p = warped_pairs(faces.images, config=cfg, generator=generator)
        feats = net(torch.cat((p.source, p.target)))
        loss = loss_fn(feats[:batch_size], feats[batch_size:], p.grid, stride=stride,
                       gamma=gamma)
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
def evaluate_matching(net: nn.Module, world: FaceWorld, *, n: int = 256,
                      pairs: PairConfig | None = None, batch_size: int = 64,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Matching errors on ``n`` test faces (held-out identities).

    Returns:
        ``{"same": (n, L), "different": (n, L), "none_same": (n, L),
        "none_different": (n, L)}`` pixel errors: matching a source landmark into its
        warped copy and into the next face (another identity), and the "no matching"
        baselines (predict the source landmark's own position).
    """
    n = check_int(n, "n", min_value=2)
    stride = check_int(getattr(net, "stride", None), "net.stride", min_value=1)
    cfg = pairs if pairs is not None else PairConfig()
    faces = world.sample(n, "test", generator=generator)
    p = warped_pairs(faces.images, faces.landmarks, config=cfg, identity=faces.identity,
                     generator=generator)
    with eval_mode(net):
        fs = torch.cat([net(p.source[i:i + batch_size]) for i in range(0, n, batch_size)])
        ft = torch.cat([net(p.target[i:i + batch_size]) for i in range(0, n, batch_size)])
    other_t, other_lm = ft.roll(-1, 0), p.target_landmarks.roll(-1, 0)
    return {
        "same": matching_error(fs, ft, p.source_landmarks, p.target_landmarks, stride=stride),
        "different": matching_error(fs, other_t, p.source_landmarks, other_lm, stride=stride),
        "none_same": (p.source_landmarks - p.target_landmarks).norm(dim=-1),
        "none_different": (p.source_landmarks - other_lm).norm(dim=-1),
    }


def evaluate_landmarks(net: nn.Module, world: FaceWorld, *, n_train: int = 512,
                       n_test: int = 256, steps: int = 300, per_landmark: int = 50,
                       pairs: PairConfig | None = None,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """%IOD of the landmark regressor on frozen descriptors.

    Returns:
        ``{"iod": (n_test,) %IOD per test face, "iod_mean_shape": (n_test,)}``, the
        second the baseline that predicts the training set's mean landmarks.
    """
    n_train = check_int(n_train, "n_train", min_value=2)
    n_test = check_int(n_test, "n_test", min_value=2)
    cfg = pairs if pairs is not None else PairConfig()
    with torch.no_grad():
        sets = []
        for split, n in (("train", n_train), ("test", n_test)):
            f = world.sample(n, split, generator=generator)
            p = warped_pairs(f.images, f.landmarks, config=cfg, generator=generator)
            sets.append((describe(net, p.target), p.target_landmarks, p.target.shape[-2:]))
    (ftr, ltr, size), (fte, lte, _) = sets
    reg = fit_landmark_regressor(ftr, ltr, (int(size[0]), int(size[1])), steps=steps,
                                 per_landmark=per_landmark, generator=generator)
    with torch.no_grad():
        pred = reg(fte)
    mean = ltr.mean(0, keepdim=True).expand_as(lte)
    return {"iod": iod_percent(pred, lte), "iod_mean_shape": iod_percent(mean, lte)}
