"""cvbook.render: signed-distance shapes against their geometric definitions, compositing,
float64 gradcheck."""

import math

import pytest
import torch

from cvbook.render import (
    SHAPES,
    bar_distance,
    composite,
    coverage,
    object_frame,
    over,
    shape_distance,
)


@pytest.mark.parametrize("name", SHAPES)
def test_shapes_inside_outside(device, name):
    # the centre is inside every shape but the ring; far points are outside all
    u = torch.tensor([0.0, 3.0, -3.0, 0.0], device=device)
    v = torch.tensor([0.0, 0.0, 0.0, 3.0], device=device)
    d = shape_distance(name, u, v)
    assert (d[1:] > 0).all()
    assert (d[0] > 0) if name == "ring" else (d[0] < 0)


def test_shape_distances_are_exact_where_known():
    t = torch.linspace(0, 2 * math.pi, 50)
    # disk: zero on the unit circle, exact Euclidean distance off it
    torch.testing.assert_close(shape_distance("disk", 2 * t.cos(), 2 * t.sin()),
                               torch.ones(50), atol=1e-5, rtol=0)
    # square: zero on its outline (half-side 0.8)
    s = torch.linspace(-0.8, 0.8, 11)
    torch.testing.assert_close(shape_distance("square", s, torch.full_like(s, 0.8)),
                               torch.zeros(11))
    # ring: zero on both radii 0.44 and 1
    for r in (0.44, 1.0):
        torch.testing.assert_close(shape_distance("ring", r * t.cos(), r * t.sin()),
                                   torch.zeros(50), atol=1e-5, rtol=0)
    # triangle: its three vertices (circumradius 1, apex up: y grows downwards)
    ang = torch.tensor([-math.pi / 2, math.pi / 6, 5 * math.pi / 6])
    torch.testing.assert_close(shape_distance("triangle", ang.cos(), ang.sin()),
                               torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(bar_distance(torch.tensor([1.0]), torch.tensor([0.0])),
                               torch.zeros(1))


@pytest.mark.parametrize("n", [1, 3])
def test_object_frame(device, n):
    py, px = torch.meshgrid(torch.arange(5.0, device=device), torch.arange(5.0, device=device),
                            indexing="ij")
    cx = torch.full((n,), 2.0, device=device)
    theta = torch.full((n,), math.pi / 2, device=device)
    u, v = object_frame(px, py, cx, cx, torch.full((n,), 2.0, device=device), theta)
    assert u.shape == (n, 5, 5)
    # rotated by 90 degrees: the pixel below the centre lies on the +u axis
    assert float(u[0, 4, 2]) == pytest.approx(1.0) and abs(float(v[0, 4, 2])) < 1e-6
    with pytest.raises(ValueError, match="radius must have shape"):
        object_frame(px, py, cx, cx, torch.ones(n + 1, device=device), theta)


def test_compositing(device):
    bg = torch.zeros(3, 3, 4, 4, device=device)
    col = torch.ones(3, 3, 1, 1, device=device)
    a = torch.full((3, 1, 4, 4), 0.25, device=device)
    torch.testing.assert_close(over(bg, col, a), torch.full((3, 3, 4, 4), 0.25, device=device))
    out = composite(bg, [col, 2 * col], [a, a])
    torch.testing.assert_close(out, torch.full_like(bg, 0.25 * 0.75 + 0.5))
    assert float(coverage(torch.zeros(1), 0.5)) == 0.5
    with pytest.raises(ValueError, match="softness must be > 0"):
        coverage(torch.zeros(1), 0.0)
    with pytest.raises(ValueError, match="one entry per layer"):
        composite(bg, [col], [])
    with pytest.raises(ValueError, match="name must be one of"):
        shape_distance("hexagon", torch.zeros(1), torch.zeros(1))


@pytest.mark.parametrize("name", SHAPES)
def test_render_gradcheck(name):
    """Coverage of a shape, composited on a canvas, differentiated (float64) with respect
    to the object's centre, radius, angle and colours and the canvas."""
    py, px = torch.meshgrid(torch.arange(6.0, dtype=torch.float64) + 0.5,
                            torch.arange(6.0, dtype=torch.float64) + 0.5, indexing="ij")
    g = torch.Generator().manual_seed(0)
    params = [torch.tensor([2.9], dtype=torch.float64), torch.tensor([3.2], dtype=torch.float64),
              torch.tensor([2.3], dtype=torch.float64), torch.tensor([0.37], dtype=torch.float64),
              torch.rand(1, 3, 1, 1, generator=g, dtype=torch.float64),
              torch.rand(1, 3, 6, 6, generator=g, dtype=torch.float64)]
    params = [p.requires_grad_() for p in params]

    def render(cx, cy, r, th, col, canvas):
        u, v = object_frame(px, py, cx, cy, r, th)
        a = coverage(shape_distance(name, u, v) * r[:, None, None], 0.8)
        return over(canvas, col, a[:, None])

    assert torch.autograd.gradcheck(render, params)


def test_scenes_use_render():
    import cvbook.data.scenes as scenes

    assert scenes.SHAPES is SHAPES
