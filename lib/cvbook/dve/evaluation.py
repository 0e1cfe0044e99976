r"""DVE's evaluations: matching landmarks by nearest descriptor, and a landmark regressor
on frozen descriptors.

**Matching** (the official README's "same / different identity" errors). For a source
image with known landmarks and a target image: take the source descriptor at each
landmark (bilinear, on the feature grid), find the target feature cell of largest dot
product, and report the distance, in input pixels, between that cell's centre
(:func:`cvbook.dve.loss.feature_positions`) and the target's true landmark. "Same
identity": the target is a warped copy of the source; "different identity": another
person's face. The error has a floor: a cell's centre is up to ``stride / sqrt(2)`` from
the true point.

**Landmark regression** (Thewlis et al. 2017, DVE Sec. 4.2): with the descriptor network
frozen, :class:`cvbook.nn.heads.VirtualKeypointRegressor` learns 50 virtual keypoints per
landmark (1x1 filters, scores x 100, spatial softmax, soft-argmax) and, per landmark, a
bias-free linear map from its virtual keypoints, by smooth-L1 on normalised coordinates
for 300 epochs (the official keypoint configs); the error is reported as %IOD
(:func:`cvbook.metrics.keypoints.iod_error`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cvbook.core.batched import batched_forward
from cvbook.core.validate import Shapes, check_float, check_int
from cvbook.dve.loss import feature_positions
from cvbook.geometry.coords import normalized_to_pixel, pixel_to_normalized
from cvbook.geometry.warp import sample_at
from cvbook.metrics.keypoints import iod_error
from cvbook.nn.heads import VirtualKeypointRegressor

__all__ = ["LandmarkRegressor", "describe", "fit_landmark_regressor", "iod_percent",
           "match_points", "matching_error"]


def describe(net: nn.Module, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """``(N, 3, H, W) -> (N, C, h, w)`` descriptors in eval mode, without gradients."""
    return batched_forward(net, images, batch_size=batch_size)


def match_points(source: torch.Tensor, target: torch.Tensor, points: torch.Tensor, *,
                 stride: int) -> torch.Tensor:
    """Where each source point's descriptor matches best in the target.

    Args:
        source, target: ``(B, C, h, w)`` descriptors.
        points: ``(B, K, 2)`` input-pixel ``(x, y)`` in the source images.
        stride: input pixels per feature cell.

    Returns:
        ``(B, K, 2)`` input-pixel centres of the best-matching target cells.
    """
    s = Shapes()
    s.check(source, "source", "B C h w", floating=True)
    s.check(target, "target", "B C h w", floating=True)
    s.check(points, "points", "B K 2", floating=True)
    stride = check_int(stride, "stride", min_value=1)
    return _match(source, target, points, stride)


def _match(source: torch.Tensor, target: torch.Tensor, points: torch.Tensor,
           stride: int) -> torch.Tensor:
    h, w = source.shape[-2:]
    desc = sample_at(source, (points + 0.5) / stride - 0.5)  # (B, K, C), feature pixels
    idx = torch.bmm(desc, target.flatten(2)).argmax(-1)  # (B, K)
    pos = feature_positions((h, w), stride, device=source.device, dtype=points.dtype)
    return pos[idx]


def matching_error(source: torch.Tensor, target: torch.Tensor, source_points: torch.Tensor,
                   target_points: torch.Tensor, *, stride: int) -> torch.Tensor:
    """``(B, K)`` pixel distances between the matches of the source points
    (:func:`match_points`) and the true target points ``(B, K, 2)``."""
    Shapes(B=source.shape[0]).check(target_points, "target_points", "B K 2", floating=True)
    return (match_points(source, target, source_points, stride=stride) - target_points).norm(dim=-1)


class LandmarkRegressor(nn.Module):
    """Frozen descriptors ``(B, C, h, w)`` -> landmarks ``(B, L, 2)`` in input pixels of an
    ``image_size`` image (the feature grid spans the image, so its normalised
    coordinates are the image's). :meth:`normalized` gives the ``[-1, 1]`` prediction
    the official loss is computed on.

    ``temperature=0.01`` and ``blocks=True`` are the official regressor's (scores x 100
    before the spatial softmax; each landmark a bias-free linear map of its own virtual
    keypoints); ``temperature=1, blocks=False`` is this book's first version.
    """

    def __init__(self, dim: int, num_landmarks: int, image_size: tuple[int, int], *,
                 per_landmark: int = 50, temperature: float = 0.01,
                 blocks: bool = True) -> None:
        super().__init__()
        self.image_size = (check_int(image_size[0], "image_size[0]", min_value=1),
                           check_int(image_size[1], "image_size[1]", min_value=1))
        self.head = VirtualKeypointRegressor(dim, num_landmarks, per_landmark=per_landmark,
                                             normalized=True, temperature=temperature,
                                             blocks=blocks)

    def normalized(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, L, 2)`` landmarks in ``[-1, 1]`` coordinates."""
        return self.head(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return normalized_to_pixel(self.head(features), self.image_size)


def fit_landmark_regressor(features: torch.Tensor, landmarks: torch.Tensor,
                           image_size: tuple[int, int], *, epochs: int | None = None,
                           steps: int | None = None, batch_size: int = 32, lr: float = 1e-3,
                           weight_decay: float = 5e-4, amsgrad: bool = True,
                           milestones: tuple[float, ...] = (100 / 300, 250 / 300),
                           per_landmark: int = 50, temperature: float = 0.01,
                           blocks: bool = True,
                           generator: torch.Generator | None = None,
                           callback: Callable[[int, float], None] | None = None
                           ) -> LandmarkRegressor:
    """Train a :class:`LandmarkRegressor` on frozen descriptors, by default as DVE's
    official keypoint configs do (``configs/*-keypoints/*.json`` of jamt9000/DVE):
    ``epochs = 300`` passes over the training faces in shuffled mini-batches of 32, Adam
    (AMSGrad) at ``lr = 1e-3`` with weight decay ``5e-4``, the learning rate divided by 10
    after epochs 100 and 250, smooth-L1 (``beta = 1``) on ``[-1, 1]`` normalised
    coordinates, scores x 100 before the spatial softmax, per-landmark bias-free maps.

    Args:
        features: ``(N, C, h, w)`` descriptors (detached).
        landmarks: ``(N, L, 2)`` input-pixel targets.
        image_size: ``(H, W)`` of the input images.
        epochs: passes over the ``N`` faces (each a fresh permutation; 300 when neither
            ``epochs`` nor ``steps`` is given); or
        steps: that many mini-batches drawn with replacement instead (this book's first
            protocol).
        batch_size, lr, weight_decay, amsgrad: the optimisation.
        milestones: fractions of the run after which the learning rate drops 10x.
        per_landmark, temperature, blocks: the regressor (:class:`LandmarkRegressor`).
        generator: for the permutations / draws (on the features' device).
        callback: called as ``callback(step, loss)`` every 50 steps (``.item()`` there
            only).

    Returns:
        the trained regressor, in eval mode.
    """
    s = Shapes()
    s.check(features, "features", "N C h w", floating=True)
    s.check(landmarks, "landmarks", "N L 2", floating=True)
    if epochs is not None and steps is not None:
        raise ValueError(f"give epochs or steps, not both; got epochs={epochs!r}, "
                         f"steps={steps!r}")
    if epochs is None and steps is None:
        epochs = 300
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_float(lr, "lr", min_value=0.0, open_min=True)
    weight_decay = check_float(weight_decay, "weight_decay", min_value=0.0)
    for m in milestones:
        check_float(m, "milestones", min_value=0.0, max_value=1.0)
    n = s["N"]
    dev = features.device
    bs = min(batch_size, n)
    if epochs is not None:
        per_epoch = -(-n // bs)
        total = check_int(epochs, "epochs", min_value=1) * per_epoch
    else:
        total = check_int(steps, "steps", min_value=1)
    model = LandmarkRegressor(s["C"], s["L"], image_size, per_landmark=per_landmark,
                              temperature=temperature, blocks=blocks)
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay,
                           amsgrad=bool(amsgrad))
    drops = sorted(round(m * total) for m in milestones)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, drops, gamma=0.1) if drops else None
    feats = features.detach()
    target = pixel_to_normalized(landmarks.detach(), image_size)
    order = torch.empty(0, dtype=torch.int64, device=dev)
    for step in range(total):
        if epochs is not None:
            if step % per_epoch == 0:
                order = torch.randperm(n, generator=generator, device=dev)
            i = (step % per_epoch) * bs
            idx = order[i:i + bs]
        else:
            idx = torch.randint(0, n, (bs,), generator=generator, device=dev)
        loss = F.smooth_l1_loss(model.normalized(feats[idx]), target[idx], beta=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if callback is not None and (step % 50 == 0 or step == total - 1):
            callback(step, loss.item())
    return model.eval()


def iod_percent(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(N,)`` mean landmark error as a percentage of the inter-ocular distance (landmarks
    0 and 1 are the eyes, MAFL's order): 100 x :func:`cvbook.metrics.keypoints.iod_error`."""
    return 100 * iod_error(pred, target, eyes=(0, 1))
