"""Chapter 05's experiment harness: every descriptor evaluated on the *same* held-out
pairs (a paired comparison), 95 % intervals, and the pictures of matches.

:func:`evaluate_models` draws the data of both protocols once
(:func:`cvbook.dve.train.matching_pairs`, :func:`cvbook.dve.train.landmark_sets`, from
generators seeded by one ``seed``) and evaluates every network on it, so every network
sees the same test faces, pairs and regressor draws; the
errors are averaged over the five landmarks of a face, so that one face is one trial.
:func:`mean_ci` and :func:`ratio_ci` turn the per-face errors into means with 95 %
intervals (normal approximation; paired bootstrap over faces for a ratio of means).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cvbook.core.validate import check_int, check_tensor
from cvbook.data.faces import FaceWorld
from cvbook.data.pairs import PairConfig
from cvbook.dve.evaluation import describe, match_points
from cvbook.dve.train import landmark_errors, landmark_sets, matching_errors, matching_pairs

__all__ = ["dense_match", "evaluate_models", "mean_ci", "ratio_ci"]


def mean_ci(x: torch.Tensor) -> tuple[float, float, float]:
    """Mean of ``(n,)`` trials and its 95 % interval ``(mean, lo, hi)`` (normal
    approximation, ``1.96`` standard errors).

    >>> [round(v, 3) for v in mean_ci(torch.tensor([1.0, 2.0, 3.0]))]
    [2.0, 0.868, 3.132]
    """
    x = check_tensor(x, "x", shape="n").double()
    if x.numel() < 2:
        raise ValueError(f"x must hold at least 2 trials; got {x.numel()}")
    m, se = float(x.mean()), float(x.std() / math.sqrt(x.numel()))
    return m, m - 1.96 * se, m + 1.96 * se


def ratio_ci(a: torch.Tensor, b: torch.Tensor, *, n_boot: int = 2000, seed: int = 0
             ) -> tuple[float, float, float]:
    """``mean(a) / mean(b)`` over paired ``(n,)`` trials and its 95 % paired-bootstrap
    interval (faces resampled with replacement, the same faces for both).

    >>> r, lo, hi = ratio_ci(torch.full((50,), 2.0), torch.full((50,), 4.0))
    >>> r, lo, hi
    (0.5, 0.5, 0.5)
    """
    a = check_tensor(a, "a", shape="n").double()
    b = check_tensor(b, "b", shape=(a.shape[0],)).double()
    n_boot = check_int(n_boot, "n_boot", min_value=10)
    g = torch.Generator().manual_seed(check_int(seed, "seed", min_value=0))
    idx = torch.randint(0, a.numel(), (n_boot, a.numel()), generator=g)
    r = a[idx].mean(1) / b[idx].mean(1)
    lo, hi = torch.quantile(r, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return float(a.mean() / b.mean()), lo, hi


def evaluate_models(nets: dict[str, nn.Module], world: FaceWorld, *, pairs: PairConfig,
                    seed: int, n_match: int = 300, n_reg_train: int = 600,
                    n_reg_test: int = 300, reg_epochs: int | None = None,
                    reg_steps: int | None = None, reg_batch: int = 32
                    ) -> dict[str, dict[str, torch.Tensor]]:
    """Per-face errors of every network on the same held-out pairs.

    Returns:
        ``{name: {"same": (n_match,), "different": (n_match,), "iod": (n_reg_test,)}}``
        (pixels, pixels, %IOD) and, under the key ``"baselines"``, ``"none_same"``,
        ``"none_different"`` (predict the source landmark's own position),
        ``"floor_same"``, ``"floor_different"`` (distance from the true landmark to the
        nearest feature-cell centre: what a perfect matcher on the grid still pays) and
        ``"iod_mean_shape"`` (predict the training faces' mean landmarks).
    """
    p = matching_pairs(world, n_match, pairs=pairs,
                       generator=torch.Generator().manual_seed(10_000 + seed))
    sets = landmark_sets(world, n_reg_train, n_reg_test, pairs=pairs,
                         generator=torch.Generator().manual_seed(20_000 + seed))
    out: dict[str, dict[str, torch.Tensor]] = {}
    base: dict[str, torch.Tensor] = {}
    for name, net in nets.items():  # the same data for every network
        ev = matching_errors(net, p)
        lm = landmark_errors(net, sets, epochs=reg_epochs, steps=reg_steps,
                             batch_size=reg_batch,
                             generator=torch.Generator().manual_seed(30_000 + seed))
        out[name] = {"same": ev["same"].mean(1), "different": ev["different"].mean(1),
                     "iod": lm["iod"]}
        base = {k: v.mean(1) for k, v in ev.items() if k not in ("same", "different")}
        base["iod_mean_shape"] = lm["iod_mean_shape"]
    out["baselines"] = base
    return out


@torch.no_grad()
def dense_match(net: nn.Module, source: torch.Tensor, target: torch.Tensor,
                points: torch.Tensor) -> torch.Tensor:
    """Where ``points`` ``(K, 2)`` (input pixels of ``source`` ``(3, H, W)``) match in
    ``target`` ``(3, H, W)``: ``(K, 2)`` input pixels (cell centres), the net in eval
    mode."""
    fs = describe(net, source[None])
    ft = describe(net, target[None])
    return match_points(fs, ft, points[None].float(), stride=int(net.stride))[0]
