"""Image coordinates: the one convention every shared module uses.

* **Pixel coordinates** ``(x, y)``: ``x`` is the column and ``y`` the row, pixel centres
  sit at integers, so the top-left pixel's centre is ``(0, 0)`` and the image spans
  ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.
* **Normalised coordinates** ``(x, y)`` in ``[-1, 1]``: ``torch.nn.functional.grid_sample``
  with ``align_corners=False`` (PyTorch's default, and kornia's for TPS warps), where
  ``-1`` and ``1`` are the *outer edges* of the border pixels:
  ``x_n = (2 x + 1) / W - 1``.

Written by hand: two affine maps (kornia's ``normalize_pixel_coordinates`` uses the
``align_corners=True`` frame, which ``grid_sample``'s default does not).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cvbook.core.validate import check_int, check_tensor

__all__ = ["normalized_to_pixel", "pixel_grid", "pixel_to_normalized"]


def _size(size: Sequence[int], name: str = "size") -> tuple[int, int]:
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2:
        raise TypeError(f"{name} must be a pair (H, W), got {size!r}")
    return (check_int(size[0], f"{name}[0]", min_value=1),
            check_int(size[1], f"{name}[1]", min_value=1))


def _scale(size: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([size[1], size[0]], dtype=like.dtype, device=like.device)


def pixel_to_normalized(points: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Pixel ``(x, y)`` -> normalised ``[-1, 1]`` coordinates of an image of ``size = (H, W)``.

    Args:
        points: ``(..., 2)`` pixel coordinates ``(x, y)``.
        size: ``(H, W)``.

    Returns:
        ``(..., 2)`` normalised coordinates (``grid_sample``, ``align_corners=False``).

    >>> pixel_to_normalized(torch.tensor([[0.0, 0.0], [3.0, 1.0]]), (2, 4))
    tensor([[-0.7500, -0.5000],
            [ 0.7500,  0.5000]])
    """
    points = check_tensor(points, "points", shape="... 2", floating=True)
    return (2 * points + 1) / _scale(_size(size), points) - 1


def normalized_to_pixel(points: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Normalised ``[-1, 1]`` -> pixel ``(x, y)`` coordinates; the inverse of
    :func:`pixel_to_normalized`.

    >>> normalized_to_pixel(torch.tensor([[-1.0, 1.0]]), (2, 4))
    tensor([[-0.5000,  1.5000]])
    """
    points = check_tensor(points, "points", shape="... 2", floating=True)
    return ((points + 1) * _scale(_size(size), points) - 1) / 2


def pixel_grid(size: Sequence[int], *, normalized: bool = False,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``(H, W, 2)`` grid of pixel-centre coordinates ``(x, y)`` (pixel units, or
    normalised with ``normalized=True``: then it is the identity ``grid_sample`` grid).

    >>> pixel_grid((2, 3))[1, 2]
    tensor([2., 1.])
    """
    h, w = _size(size)
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                            torch.arange(w, device=device, dtype=dtype), indexing="ij")
    grid = torch.stack((xs, ys), dim=-1)
    return pixel_to_normalized(grid, (h, w)) if normalized else grid
