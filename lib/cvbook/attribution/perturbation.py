"""Perturbation-based attribution: SmoothGrad (noise averaging over a gradient method)
and RISE (random masks, black-box).

Both are written over the shared core (:mod:`cvbook.attribution.core`): SmoothGrad calls
any gradient method on a batch of noisy copies, RISE scores masked copies with the
model left as found (:func:`~cvbook.attribution.core.preserve_model`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cvbook.attribution.core import (
    Target,
    _check_input,
    expand_target,
    gradient,
    preserve_model,
    resize_map,
    reward,
    target_indices,
)
from cvbook.core.validate import check_float, check_int, check_tensor

__all__ = ["rise", "rise_masks", "smoothgrad"]


def smoothgrad(model: nn.Module, input: torch.Tensor, target: Target, *,
               method: Callable[..., torch.Tensor] = gradient, num_samples: int = 16,
               sigma: float = 0.15, generator: torch.Generator | None = None,
               **kwargs) -> torch.Tensor:
    """SmoothGrad (Smilkov et al. 2017): the mean of ``method`` over noisy copies
    ``x + N(0, (σ·(max x − min x))²)``, all copies in one batch; ``(N, 1, h, w)``.

    Args:
        method: any method of this module (default :func:`gradient`).
        num_samples: noisy copies per image.
        sigma: noise level relative to each image's value range.
        kwargs: passed to ``method`` (``layer=``, ``resize=``...).
    """
    _check_input(input)
    n_s = check_int(num_samples, "num_samples", min_value=1)
    sigma = check_float(sigma, "sigma", min_value=0.0)
    n = input.shape[0]
    dims = tuple(range(1, input.ndim))
    span = (input.amax(dims, keepdim=True) - input.amin(dims, keepdim=True))
    rep = input.repeat_interleave(n_s, 0)
    noise = torch.randn(rep.shape, generator=generator, device=input.device,
                        dtype=input.dtype)
    noisy = rep + sigma * span.repeat_interleave(n_s, 0) * noise
    s = method(model, noisy, expand_target(target, n, n_s, input.device), **kwargs)
    return s.view(n, n_s, *s.shape[1:]).mean(1)


def rise_masks(num_masks: int, size: Sequence[int], *, grid: int = 7, p: float = 0.5,
               generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """RISE's random masks (Petsiuk et al. 2018, §3.2): a ``grid × grid`` Bernoulli(p)
    pattern, bilinearly upsampled to ``(grid + 1)·cell`` and cropped at a random shift;
    ``(num_masks, 1, H, W)`` in [0, 1]."""
    m = check_int(num_masks, "num_masks", min_value=1)
    grid = check_int(grid, "grid", min_value=1)
    p = check_float(p, "p", min_value=0.0, max_value=1.0)
    H, W = int(size[0]), int(size[1])
    ch, cw = -(-H // grid), -(-W // grid)
    cells = (torch.rand(m, 1, grid, grid, generator=generator, device=device) < p).float()
    up = F.interpolate(cells, size=((grid + 1) * ch, (grid + 1) * cw), mode="bilinear",
                       align_corners=False)
    dy = torch.randint(0, ch, (m,), generator=generator, device=device)
    dx = torch.randint(0, cw, (m,), generator=generator, device=device)
    rows = (dy[:, None] + torch.arange(H, device=device)[None])  # (m, H)
    cols = (dx[:, None] + torch.arange(W, device=device)[None])  # (m, W)
    up = up[:, 0].gather(1, rows[:, :, None].expand(m, H, up.shape[-1]))
    up = up.gather(2, cols[:, None, :].expand(m, H, W))
    return up[:, None]


def rise(model: nn.Module, input: torch.Tensor, target: Target, *, num_masks: int = 8000,
         grid: int = 7, p: float = 0.5, batch_size: int = 256,
         generator: torch.Generator | None = None, resize: bool | Sequence[int] = True
         ) -> torch.Tensor:
    """RISE (Petsiuk et al. 2018, Eq. 6): ``S = Σ_i f(x ⊙ M_i)·M_i / (num_masks·p)``
    where ``f`` is the target's softmax probability (or the callable reward).

    All images are evaluated against each chunk of ``batch_size`` masks in one batch.

    Returns:
        ``(N, 1, H, W)`` saliency at the input resolution.
    """
    _check_input(input)
    check_tensor(input, "input", ndim=4)
    bs = check_int(batch_size, "batch_size", min_value=1)
    n = input.shape[0]
    masks = rise_masks(num_masks, input.shape[-2:], grid=grid, p=p, generator=generator,
                       device=input.device)
    idx = target_indices(target, n, input.device)
    total = torch.zeros(n, *input.shape[-2:], device=input.device)
    with preserve_model(model), torch.no_grad():
        for i in range(0, num_masks, bs):
            mk = masks[i:i + bs]                          # (b, 1, H, W)
            b = mk.shape[0]
            out = model((input[:, None] * mk[None]).flatten(0, 1))   # (n*b, ...)
            if idx is None:
                score = reward(out, target).view(n, b)
            else:
                probs = out.float().softmax(1)
                if probs.ndim > 2:
                    probs = probs.flatten(2).mean(2)
                score = probs.gather(1, idx.repeat_interleave(b)[:, None]).view(n, b)
            total += torch.einsum("nb,bhw->nhw", score, mk[:, 0].float())
    s = (total / (num_masks * p))[:, None]
    if resize is not True and resize:
        s = resize_map(s, resize)
    return s
