"""2-D signed-distance shapes, evaluated on whole pixel grids at once.

A shape is given by a signed distance-like function of *object-frame* coordinates
``(u, v)`` (negative inside, zero on the outline, in units of the shape's radius);
:func:`object_frame` maps pixel centres into the frames of a batch of objects (centre,
radius, rotation). Multiply the distance by the radius to get pixels, then turn it into
anti-aliased coverage with :func:`cvbook.render.composite.coverage`.

Written by hand: kornia and torchvision rasterise no analytic shapes, and a CPU renderer
that differentiates through the outline is what the synthetic worlds need. Everything is
differentiable in the coordinates (and so in centre, radius and angle), except on the
measure-zero creases of ``max``/``min``/``abs``.

Example:
    >>> import torch
    >>> u, v = torch.tensor([0.0, 2.0]), torch.tensor([0.0, 0.0])
    >>> shape_distance("disk", u, v).round(decimals=4).tolist()
    [-1.0, 1.0]
"""

from __future__ import annotations

import math

import torch

from cvbook.core.validate import check_choice, check_float, check_tensor

__all__ = ["SHAPES", "bar_distance", "object_frame", "shape_distance"]

#: The shapes :func:`shape_distance` knows.
SHAPES: tuple[str, ...] = ("disk", "square", "triangle", "star", "cross", "ring")


def shape_distance(name: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance-like function of a unit-size shape (negative inside), in units of
    the shape's radius, at object-frame coordinates ``u, v`` (any shape, same shape).

    ``disk``: radius 1; ``square``: half-side 0.8; ``triangle``: equilateral,
    circumradius 1, apex up; ``star``: five branches, ``r = 0.62 + 0.38 cos 5φ``;
    ``cross``: two 0.95 x 0.32 half-size bars; ``ring``: radii 0.44 to 1.
    """
    check_choice(name, "name", SHAPES)
    r = torch.sqrt(u * u + v * v + 1e-12)
    if name == "disk":
        return r - 1.0
    if name == "square":
        return torch.maximum(u.abs(), v.abs()) - 0.8
    if name == "triangle":  # equilateral, circumradius 1 (inradius 0.5), apex up
        d = None
        for k in range(3):
            a = -math.pi / 2 + 2 * math.pi * k / 3 + math.pi
            e = u * math.cos(a) + v * math.sin(a) - 0.5
            d = e if d is None else torch.maximum(d, e)
        return d
    if name == "star":
        phi = torch.atan2(v, u)
        return r - (0.62 + 0.38 * torch.cos(5 * phi))
    if name == "cross":
        a = torch.maximum(u.abs() - 0.95, v.abs() - 0.32)
        b = torch.maximum(u.abs() - 0.32, v.abs() - 0.95)
        return torch.minimum(a, b)
    return (r - 0.72).abs() - 0.28  # ring


def bar_distance(u: torch.Tensor, v: torch.Tensor, half_width: float = 0.16) -> torch.Tensor:
    """A bar of half-length 1 along ``u`` and half-width ``half_width`` along ``v``
    (in units of its half-length).

    >>> bar_distance(torch.tensor([0.0, 1.5]), torch.tensor([0.0, 0.0]))
    tensor([-0.1600,  0.5000])
    """
    half_width = check_float(half_width, "half_width", min_value=0.0, open_min=True)
    return torch.maximum(u.abs() - 1.0, v.abs() - half_width)


def object_frame(px: torch.Tensor, py: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
                 radius: torch.Tensor, theta: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Object-frame coordinates of pixel positions for a batch of objects.

    ``u = (c·dx + s·dy) / radius``, ``v = (−s·dx + c·dy) / radius`` with ``(dx, dy)`` the
    offset from the object's centre and ``(c, s) = (cos θ, sin θ)``.

    Args:
        px, py: ``(H, W)`` pixel x and y coordinates (e.g. pixel centres ``i + 0.5``).
        cx, cy, radius, theta: ``(...)`` centre, radius (pixels) and angle of each
            object (any batch shape, the same for the four).

    Returns:
        ``u, v``, each ``(..., H, W)``.

    >>> py, px = torch.meshgrid(torch.arange(3.0), torch.arange(3.0), indexing="ij")
    >>> u, v = object_frame(px, py, torch.ones(2), torch.ones(2), torch.ones(2), torch.zeros(2))
    >>> u.shape, float(u[0, 1, 2]), float(v[0, 2, 1])
    (torch.Size([2, 3, 3]), 1.0, 1.0)
    """
    check_tensor(px, "px", ndim=2, floating=True)
    check_tensor(py, "py", shape=tuple(px.shape), floating=True)
    for name, t in (("cy", cy), ("radius", radius), ("theta", theta)):
        check_tensor(t, name, shape=tuple(cx.shape), floating=True)
    e = (...,) + (None, None)
    dx, dy = px - cx[e], py - cy[e]
    c, s = torch.cos(theta)[e], torch.sin(theta)[e]
    return (c * dx + s * dy) / radius[e], (-s * dx + c * dy) / radius[e]
