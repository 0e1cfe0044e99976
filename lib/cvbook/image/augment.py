"""Small batched augmentations, one independent draw per image, on the device, from a
``torch.Generator``: random translation with zero padding (:func:`random_translate`),
random horizontal flip (:func:`random_hflip`), additive Gaussian noise
(:func:`gaussian_noise`) and the three together (:func:`shift_flip_noise`, DTC's and
the temporal-ensembling papers' augmentation for small images).

Written by hand because torchvision's v2 ``RandomAffine``/``RandomHorizontalFlip`` and
kornia's ``RandomAffine`` either apply one draw to a whole batch or draw from the global
random state, and a translation by whole pixels is one gather (exact, no resampling).

Example:
    >>> import torch
    >>> x = torch.arange(9.0).view(1, 1, 3, 3)
    >>> random_translate(x, 1, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([1, 1, 3, 3])
    >>> random_hflip(x, p=1.0)[0, 0, 0].tolist()
    [2.0, 1.0, 0.0]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cvbook.core.validate import check_float, check_int, check_tensor

__all__ = ["gaussian_noise", "random_hflip", "random_translate", "shift_flip_noise"]


def random_translate(x: torch.Tensor, max_shift: int, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by whole pixels ``(dy, dx) ~ U{-s..s}^2`` (zero padding), in one
    batched gather. ``(N, C, H, W) -> (N, C, H, W)``; differentiable in ``x``."""
    check_tensor(x, "x", shape="N C H W", floating=True)
    s = check_int(max_shift, "max_shift", min_value=0)
    if s == 0:
        return x
    n, _, h, w = x.shape
    dev = x.device
    pad = F.pad(x, (s, s, s, s))
    dy = torch.randint(0, 2 * s + 1, (n,), device=dev, generator=generator)
    dx = torch.randint(0, 2 * s + 1, (n,), device=dev, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=dev)[None])          # (N, H)
    cols = (dx[:, None] + torch.arange(w, device=dev)[None])          # (N, W)
    idx = torch.arange(n, device=dev)[:, None, None]
    out = pad.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


def random_hflip(x: torch.Tensor, p: float = 0.5, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image left-right (last dimension) with probability ``p``:
    ``(N, ..., W) -> (N, ..., W)``."""
    check_tensor(x, "x", shape="... * *")
    p = check_float(p, "p", min_value=0.0, max_value=1.0)
    n = x.shape[0]
    f = torch.rand(n, device=x.device, generator=generator) < p
    return torch.where(f.view(n, *([1] * (x.ndim - 1))), x.flip(-1), x)


def gaussian_noise(x: torch.Tensor, std: float, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + std·ε`` with ``ε ~ N(0, 1)`` of ``x``'s shape (``std = 0``: ``x``)."""
    std = check_float(std, "std", min_value=0.0)
    if std == 0:
        return x
    return x + std * torch.randn(x.shape, device=x.device, generator=generator)


def shift_flip_noise(x: torch.Tensor, *, max_shift: int = 1, noise_std: float = 0.0,
                     flip: bool = False, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (zero padding), optional
    horizontal flip and Gaussian noise, drawn independently per image, in that order.

    Args:
        x: ``(N, C, H, W)`` images.
        generator: a generator on ``x``'s device (or ``None``).

    Returns:
        ``(N, C, H, W)`` augmented images (contiguous).
    """
    check_tensor(x, "x", shape="N C H W", floating=True)
    max_shift = check_int(max_shift, "max_shift", min_value=0)
    noise_std = check_float(noise_std, "noise_std", min_value=0.0)
    out = random_translate(x, max_shift, generator=generator)
    if flip:
        out = random_hflip(out, generator=generator)
    out = gaussian_noise(out, noise_std, generator=generator)
    return out.contiguous()
