"""Gaussian filters and the blur pyramid.

The blur itself is kornia's ``kornia.filters.gaussian_blur2d`` (separable, zero
padding); this module only fixes the conventions the chapters use: the kernel radius is
``ceil(3σ)`` (at least 1), ``σ = 0`` is the identity, and the padding is *zero* (as in
the extremal-perturbation paper, Fong et al. ICCV 2019, Eq. 2, so a blurred image
darkens towards its border). :func:`gaussian_kernel1d` is the definition the tests
compare kornia's output with (a dense 2-D convolution by brute force).

Example:
    >>> import torch
    >>> x = torch.zeros(1, 1, 9, 9); x[..., 4, 4] = 1
    >>> y = gaussian_blur(x, 1.0)
    >>> round(float(y.sum()), 4), bool(y[..., 4, 4] == y.max())
    (1.0, True)
    >>> blur_pyramid(x, num_levels=3, max_sigma=2.0).shape
    torch.Size([1, 3, 1, 9, 9])
"""

from __future__ import annotations

import math

import torch

from cvbook.core.validate import check_float, check_int, check_tensor

__all__ = ["blur_pyramid", "gaussian_blur", "gaussian_kernel1d"]


def gaussian_radius(sigma: float) -> int:
    """The kernel radius ``max(1, ceil(3σ))`` (0 for ``σ = 0``)."""
    return 0 if sigma == 0 else max(1, math.ceil(3 * sigma))


def gaussian_kernel1d(sigma: float, device: torch.device | str = "cpu",
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma``, radius ``ceil(3σ)``:
    ``(2r + 1,)`` (``(1,)`` holding 1 for ``σ = 0``).

    >>> gaussian_kernel1d(1.0).shape
    torch.Size([7])
    """
    sigma = check_float(sigma, "sigma", min_value=0.0)
    if sigma == 0:
        return torch.ones(1, device=device, dtype=dtype)
    r = gaussian_radius(sigma)
    t = torch.arange(-r, r + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with *zero* padding (kornia), radius
    ``ceil(3σ)``; ``σ = 0`` returns a copy. Differentiable in ``x``; any float dtype.

    Args:
        x: ``(N, C, H, W)`` float images or maps.
        sigma: standard deviation in pixels (>= 0).

    Returns:
        ``(N, C, H, W)``.
    """
    from kornia.filters import gaussian_blur2d

    check_tensor(x, "x", shape="N C H W", floating=True)
    sigma = check_float(sigma, "sigma", min_value=0.0)
    if sigma == 0:
        return x.clone()
    k = 2 * gaussian_radius(sigma) + 1
    return gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="constant", separable=True)


def blur_pyramid(x: torch.Tensor, *, num_levels: int = 8, max_sigma: float = 20.0
                 ) -> torch.Tensor:
    """The blur perturbation's pyramid (extremal perturbations, Eq. 2): level ``l``
    blurred with ``σ_l = σ_max (1 − l/(L−1))``, so level 0 is the most blurred and level
    ``L−1`` the original. ``(N, C, H, W) -> (N, L, C, H, W)``."""
    check_tensor(x, "x", shape="N C H W", floating=True)
    L = check_int(num_levels, "num_levels", min_value=2)
    check_float(max_sigma, "max_sigma", min_value=0.0)
    return torch.stack([gaussian_blur(x, max_sigma * (1 - lvl / (L - 1)))
                        for lvl in range(L)], 1)
