r"""Sub-pixel keypoints from heat maps: spatial softmax, soft-argmax, marginal soft-argmax.

Coordinates are ``(x, y)`` (column, row) in the convention of
:mod:`cvbook.geometry.coords`: pixel units with pixel centres at integers by default, or
``normalized=True`` for ``[-1, 1]`` in the ``grid_sample`` (``align_corners=False``) frame
that :mod:`cvbook.geometry.warp` uses, so keypoints and warps compose.

* :func:`spatial_softmax`: :math:`p_k(u) = \operatorname{softmax}_u(S_k(u) / \tau)` over the
  ``H W`` positions of each map (DVE's virtual keypoints; Thewlis et al.).
* :func:`soft_argmax`: :math:`\hat u_k = \sum_u u\, p_k(u)`.
* :func:`marginal_soft_argmax` (Jakab et al. 2018, and the image-translation
  chapter): average each map over rows to get a column profile (and over columns for a
  row profile), softmax each profile, take its mean. One softmax per axis, on
  ``H + W`` values instead of ``H W``. (Averaging, as the authors' release does, equals
  summing with the temperature scaled by the other side.)
* :func:`gaussian_heatmaps`: peak-1 Gaussian maps rendered at keypoints (Jakab's
  bottleneck; test fixtures).

Library use: kornia's ``spatial_expectation2d`` in pixel mode (its normalised mode is the
``align_corners=True`` frame, so normalisation is done here). The softmax is one line
written here because kornia's ``temperature`` changed meaning across releases (a factor
multiplying the scores in 0.6, a divisor since); the tests check that
:func:`soft_argmax` equals kornia's ``spatial_soft_argmax2d`` at unit temperature. The
marginal soft-argmax and the peak-1 Gaussian renderer are not in kornia (its
``render_gaussian2d`` draws one map summing to one) and are written here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cvbook.core.validate import check_float, check_tensor
from cvbook.geometry.coords import _size, normalized_to_pixel, pixel_grid, pixel_to_normalized

__all__ = ["gaussian_heatmaps", "marginal_soft_argmax", "soft_argmax", "spatial_softmax"]


def _check(heatmaps: object, temperature: float | torch.Tensor) -> torch.Tensor:
    heatmaps = check_tensor(heatmaps, "heatmaps", shape="B K H W", floating=True)
    if not isinstance(temperature, torch.Tensor):
        check_float(temperature, "temperature", min_value=0.0, open_min=True)
    return heatmaps


def spatial_softmax(heatmaps: torch.Tensor,
                    temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    r"""Softmax over the ``H W`` positions of each map: :math:`\exp(S/\tau) / \sum \exp(S/\tau)`.

    Args:
        heatmaps: ``(B, K, H, W)`` scores.
        temperature: :math:`\tau > 0` (a float, or a tensor broadcastable to
            ``(B, K, 1)``, e.g. learnt); smaller is sharper.

    Returns:
        ``(B, K, H, W)`` maps that sum to one.

    >>> spatial_softmax(torch.zeros(1, 1, 2, 2))
    tensor([[[[0.2500, 0.2500],
              [0.2500, 0.2500]]]])
    """
    return _softmax(_check(heatmaps, temperature), temperature)


def _softmax(heatmaps: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    if isinstance(temperature, torch.Tensor):
        temperature = temperature.to(heatmaps.dtype)
    flat = heatmaps.flatten(-2) / temperature
    return torch.softmax(flat, dim=-1).reshape(heatmaps.shape)


def soft_argmax(heatmaps: torch.Tensor, temperature: float | torch.Tensor = 1.0, *,
                normalized: bool = False) -> torch.Tensor:
    r"""The expected position under :func:`spatial_softmax`: :math:`\sum_u u\, p_k(u)`.

    Args:
        heatmaps: ``(B, K, H, W)`` scores.
        temperature: :math:`\tau > 0`.
        normalized: ``[-1, 1]`` coordinates instead of pixels.

    Returns:
        ``(B, K, 2)`` keypoints ``(x, y)``, differentiable.

    >>> s = torch.zeros(1, 1, 3, 4)
    >>> s[0, 0, 2, 1] = 50.0
    >>> soft_argmax(s)
    tensor([[[1., 2.]]])
    """
    from kornia.geometry.subpix import spatial_expectation2d  # lazy: keeps the import light

    heatmaps = _check(heatmaps, temperature)
    pts = spatial_expectation2d(_softmax(heatmaps, temperature), normalized_coordinates=False)
    return pixel_to_normalized(pts, heatmaps.shape[-2:]) if normalized else pts


def marginal_soft_argmax(heatmaps: torch.Tensor, temperature: float | torch.Tensor = 1.0, *,
                         normalized: bool = False) -> torch.Tensor:
    r"""Soft-argmax on the marginals (Jakab et al. 2018):
    :math:`\hat x_k = \sum_x x\, \operatorname{softmax}_x(\tfrac{1}{H}\sum_y S_k(x, y) / \tau)`,
    and likewise for :math:`\hat y_k` with the mean over columns.

    Args:
        heatmaps: ``(B, K, H, W)`` scores.
        temperature: :math:`\tau > 0`, a float or a tensor broadcastable to ``(B, K, 1)``.
        normalized: ``[-1, 1]`` coordinates instead of pixels.

    Returns:
        ``(B, K, 2)`` keypoints ``(x, y)``, differentiable.

    >>> s = torch.zeros(1, 1, 3, 4)
    >>> s[0, 0, :, 3] = 50.0
    >>> marginal_soft_argmax(s)[..., 0]
    tensor([[3.]])
    """
    heatmaps = _check(heatmaps, temperature)
    h, w = heatmaps.shape[-2:]
    if isinstance(temperature, torch.Tensor):
        temperature = temperature.to(heatmaps.dtype)
    px = torch.softmax(heatmaps.mean(-2) / temperature, dim=-1)  # (B, K, W)
    py = torch.softmax(heatmaps.mean(-1) / temperature, dim=-1)  # (B, K, H)
    xs = torch.arange(w, device=heatmaps.device, dtype=px.dtype)
    ys = torch.arange(h, device=heatmaps.device, dtype=py.dtype)
    pts = torch.stack(((px * xs).sum(-1), (py * ys).sum(-1)), dim=-1)
    return pixel_to_normalized(pts, (h, w)) if normalized else pts


def gaussian_heatmaps(points: torch.Tensor, size: Sequence[int], sigma: float, *,
                      normalized: bool = False) -> torch.Tensor:
    r"""Peak-1 Gaussian maps :math:`\exp(-\lVert u - p_k \rVert^2 / 2\sigma^2)` at keypoints.

    Args:
        points: ``(B, K, 2)`` keypoints ``(x, y)``, pixels (or ``[-1, 1]`` with
            ``normalized=True``).
        size: ``(H, W)`` of the maps.
        sigma: standard deviation in pixels, ``> 0``.

    Returns:
        ``(B, K, H, W)``, differentiable in ``points``.

    >>> gaussian_heatmaps(torch.tensor([[[1.0, 0.0]]]), (1, 3), 1.0)
    tensor([[[[0.6065, 1.0000, 0.6065]]]])
    """
    points = check_tensor(points, "points", shape="B K 2", floating=True)
    h, w = _size(size)
    sigma = check_float(sigma, "sigma", min_value=0.0, open_min=True)
    if normalized:
        points = normalized_to_pixel(points, (h, w))
    grid = pixel_grid((h, w), device=points.device, dtype=points.dtype)  # (H, W, 2)
    d2 = (grid[None, None] - points[:, :, None, None, :]).pow(2).sum(-1)
    return torch.exp(-d2 / (2 * sigma**2))
