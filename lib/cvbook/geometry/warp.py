r"""Image warps: thin-plate splines (TPS), affine maps and optical flow, batched.

**Direction (read this first).** A :class:`Warp` holds a map :math:`s` of the plane, in
normalised coordinates (:mod:`cvbook.geometry.coords`), that is the *sampling map* of the
warped image, the ``grid_sample`` convention: for each pixel :math:`v` of the *output*,
:math:`s(v)` is where to read in the *input*,

.. math:: I'(v) = I(s(v)).

So content at input point :math:`u` lands at :math:`v = s^{-1}(u)` in the output:
:func:`warp_points` applies :math:`s^{-1}` (Newton's method; exact for affine maps) and
:func:`sample_points` applies :math:`s`. :func:`warp_grid` is the dense field
:math:`s(v)` over the output pixels: DVE's ground-truth correspondence between a warped
image and its source.

**TPS** (Bookstein 1989). With control points :math:`c_k` and targets :math:`d_k`,

.. math:: s(x) = a_0 + A x + \sum_k w_k\, U(\lVert x - c_k \rVert), \qquad U(r) = r^2 \log r,

with :math:`s(c_k) = d_k` (interpolation) and :math:`\sum_k w_k = 0`,
:math:`\sum_k w_k c_k^\top = 0` (no affine component in the kernel part), which makes
:math:`s` the interpolant of least bending energy. An affine map is a TPS without kernel
terms. (DVE writes :math:`U = r^2 \log r^2 = 2 r^2 \log r`: the same spline, with the
weights halved.)

**Library use.** Nothing here is taken from kornia at run time, for two reasons the
tests document: kornia's ``get_tps_transform`` centres the kernels on the targets and puts
the side conditions on the sources, which interpolates but is not the spline above (on 9
random points it differs from SciPy's ``RBFInterpolator(kernel="thin_plate_spline")`` by
20 units; ours agrees to 1e-9); and its ``warp_points_tps`` builds a ``(B, N, K, 2)``
intermediate (256 MB in float32 for 32 images of 100 x 100 pixels on DVE's 10 x 10
grid) where a batched matmul needs half. The tests check that our evaluation and image warp equal
kornia's ``warp_points_tps`` / ``warp_image_tps`` given the same parameters. Newton
inversion, random warps, flow warping and the forward-backward check are in neither kornia
nor torchvision; ``torch.nn.functional.grid_sample`` does the sampling.

**Flow** (pixels): ``flow[:, :, y, x] = (dx, dy)`` sends pixel ``u`` of frame *t* to
``u + flow(u)`` in frame *t + 1*. :func:`warp_by_flow` reads frame *t + 1* at
``u + flow(u)``, giving an image aligned with frame *t*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cvbook.core.validate import Shapes, check_choice, check_float, check_int, check_tensor
from cvbook.geometry.coords import _size, pixel_grid, pixel_to_normalized

__all__ = [
    "Warp",
    "affine_warp",
    "flow_consistency_mask",
    "random_affine",
    "random_tps",
    "sample_at",
    "sample_points",
    "tps_fit",
    "warp_by_flow",
    "warp_grid",
    "warp_image",
    "warp_points",
]


@dataclass(frozen=True)
class Warp:
    """A batch of sampling maps ``s`` (output -> input, normalised coordinates).

    Attributes:
        centres: ``(B, K, 2)`` TPS kernel centres (``K = 0`` for an affine warp).
        weights: ``(B, K, 2)`` kernel weights ``w_k``.
        affine: ``(B, 3, 2)`` affine part in kornia's TPS layout: ``s(x) = affine[0] +
            x @ affine[1:] + sum_k w_k U(|x - c_k|)`` for a row vector ``x``.

    >>> w = affine_warp(torch.eye(2, 3)[None])
    >>> len(w), w.affine.shape
    (1, torch.Size([1, 3, 2]))
    """

    centres: torch.Tensor
    weights: torch.Tensor
    affine: torch.Tensor

    def __post_init__(self) -> None:
        s = Shapes()
        s.check(self.centres, "centres", "B K 2", floating=True)
        s.check(self.weights, "weights", "B K 2", floating=True)
        s.check(self.affine, "affine", "B 3 2", floating=True)

    def __len__(self) -> int:
        return self.affine.shape[0]

    def to(self, *args, **kwargs) -> Warp:
        """The same warp with its tensors moved / cast (``torch.Tensor.to`` arguments)."""
        return Warp(self.centres.to(*args, **kwargs), self.weights.to(*args, **kwargs),
                    self.affine.to(*args, **kwargs))


def _kernel(d2: torch.Tensor) -> torch.Tensor:
    """``U(r) = r^2 log r = 0.5 r^2 log r^2`` from squared distances: 0 at r = 0, with a
    zero gradient there (the clamp only guards the log)."""
    return 0.5 * d2 * d2.clamp_min(torch.finfo(d2.dtype).tiny).log()


def _sqdist(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """(B, N, 2), (B, K, 2) -> (B, N, K) squared distances, computed from differences
    (exact at coincident points, unlike the ``|x|^2 - 2 x.c + |c|^2`` expansion)."""
    return (x[:, :, None, :] - c[:, None, :, :]).pow(2).sum(-1)


def tps_fit(source: torch.Tensor, target: torch.Tensor, *,
            regularization: float = 0.0) -> Warp:
    r"""Fit the thin-plate spline :math:`s` with :math:`s(c_k) = d_k` (see the module
    docstring for the equations and the direction).

    Solves the standard ``(K + 3) x (K + 3)`` system
    :math:`\begin{bmatrix} U + \lambda I & P \\ P^\top & 0 \end{bmatrix}
    \begin{bmatrix} w \\ a \end{bmatrix} = \begin{bmatrix} d \\ 0 \end{bmatrix}`,
    :math:`U_{ij} = U(\lVert c_i - c_j \rVert)`, :math:`P_i = (1, c_i)`, batched. With
    ``regularization`` :math:`\lambda > 0` it smooths instead of interpolating.

    Args:
        source: ``(B, K, 2)`` control points :math:`c_k`, ``K >= 3`` and not collinear.
        target: ``(B, K, 2)`` their images :math:`d_k`.
        regularization: :math:`\lambda \ge 0`.

    Returns:
        a :class:`Warp` (computed in at least float32, so it is AMP-safe).

    >>> c = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]])
    >>> w = tps_fit(c, c + 0.1)
    >>> torch.allclose(sample_points(w, c), c + 0.1, atol=1e-5)
    True
    """
    s = Shapes()
    s.check(source, "source", "B K 2", floating=True)
    s.check(target, "target", "B K 2", floating=True)
    if s["K"] < 3:
        raise ValueError(f"source must hold at least 3 control points; got {s['K']}")
    lam = check_float(regularization, "regularization", min_value=0.0)
    dtype = torch.promote_types(source.dtype, torch.float32)
    c, d = source.to(dtype), target.to(dtype)
    b, k = c.shape[:2]
    u = _kernel(_sqdist(c, c))
    if lam > 0:
        u = u + lam * torch.eye(k, dtype=dtype, device=c.device)
    p = torch.cat((torch.ones_like(c[..., :1]), c), dim=-1)  # (B, K, 3)
    top = torch.cat((u, p), dim=-1)
    bottom = torch.cat((p.transpose(1, 2), c.new_zeros(b, 3, 3)), dim=-1)
    rhs = torch.cat((d, c.new_zeros(b, 3, 2)), dim=1)
    sol = torch.linalg.solve(torch.cat((top, bottom), dim=1), rhs)
    return Warp(c, sol[:, :k], sol[:, k:])


def affine_warp(theta: torch.Tensor) -> Warp:
    """An affine sampling map from ``(B, 2, 3)`` matrices ``theta`` (the
    ``torch.nn.functional.affine_grid`` convention: ``s(x) = theta[:, :, :2] x +
    theta[:, :, 2]``).

    >>> len(affine_warp(torch.eye(2, 3).repeat(3, 1, 1)))
    3
    """
    theta = check_tensor(theta, "theta", shape="B 2 3", floating=True)
    affine = torch.cat((theta[:, :, 2:].transpose(1, 2), theta[:, :, :2].transpose(1, 2)), 1)
    empty = theta.new_zeros(theta.shape[0], 0, 2)
    return Warp(empty, empty, affine)


def _check_points(warp: object, points: object) -> torch.Tensor:
    if not isinstance(warp, Warp):
        raise TypeError(f"warp must be a Warp, got {type(warp).__name__}")
    s = Shapes(B=len(warp))
    return s.check(points, "points", "B N 2", floating=True)


def _apply(warp: Warp, x: torch.Tensor) -> torch.Tensor:
    """Evaluate ``s`` at (B, N, 2) points: one (B, N, K) kernel matrix and a batched
    matmul (kornia's ``warp_points_tps`` computes the same with a (B, N, K, 2)
    intermediate; tests check that they agree). Autocast is off here: the squared
    distances come from ``|x|^2 + |c|^2 - 2 x.c``, which half precision would cancel."""
    dtype = torch.promote_types(torch.promote_types(x.dtype, warp.affine.dtype), torch.float32)
    with torch.autocast(x.device.type, enabled=False):
        x = x.to(dtype)
        a = warp.affine.to(dtype)
        y = torch.baddbmm(a[:, None, 0], x, a[:, 1:])
        if warp.centres.shape[1] == 0:
            return y
        c = warp.centres.to(dtype)
        sq = x.pow(2).sum(-1, keepdim=True) + c.pow(2).sum(-1)[:, None]
        d2 = torch.baddbmm(sq, x, c.transpose(1, 2), alpha=-2).clamp_min(0)
        return torch.baddbmm(y, _kernel(d2), warp.weights.to(dtype))


def _jacobian(warp: Warp, x: torch.Tensor) -> torch.Tensor:
    """(B, N, 2) -> (B, N, 2, 2) with ``J[..., j, i] = d s_j / d x_i`` (called with
    autocast off)."""
    a = warp.affine.to(x.dtype)
    jac = a[:, 1:].transpose(1, 2)[:, None].expand(*x.shape[:2], 2, 2)
    if warp.centres.shape[1] == 0:
        return jac
    diff = x[:, :, None, :] - warp.centres.to(x.dtype)[:, None]  # (B, N, K, 2)
    d2 = diff.pow(2).sum(-1)
    # d/dx [r^2 log r] = (log r^2 + 1) (x - c), -> 0 as r -> 0 (the clamp guards the log)
    g = d2.clamp_min(torch.finfo(d2.dtype).tiny).log() + 1
    return jac + torch.einsum("bnk,bnki,bkj->bnji", g, diff, warp.weights.to(x.dtype))


def sample_points(warp: Warp, points: torch.Tensor) -> torch.Tensor:
    """``s(points)``: where the output pixels at ``points`` read in the input.

    Args:
        warp: a batch of ``B`` warps.
        points: ``(B, N, 2)`` normalised output coordinates.

    Returns:
        ``(B, N, 2)`` normalised input coordinates.

    >>> w = affine_warp(torch.tensor([[[2.0, 0, 0.5], [0, 2.0, 0]]]))
    >>> sample_points(w, torch.tensor([[[0.25, 0.0]]]))
    tensor([[[1., 0.]]])
    """
    return _apply(warp, _check_points(warp, points))


def warp_points(warp: Warp, points: torch.Tensor, *, iterations: int = 8) -> torch.Tensor:
    r"""``s^{-1}(points)``: where input content at ``points`` lands in the warped image.

    Newton's method on :math:`s(v) = u` from the affine part's inverse, a fixed number of
    steps (no host sync; differentiable by unrolling). It converges quadratically for
    the invertible, smooth warps of this module (residual below 1e-5 in float32 for DVE's
    ranges: tests); an affine warp is exact after one step.

    Args:
        warp: a batch of ``B`` warps.
        points: ``(B, N, 2)`` normalised input coordinates.
        iterations: Newton steps.

    Returns:
        ``(B, N, 2)`` normalised output coordinates.

    >>> w = affine_warp(torch.tensor([[[2.0, 0, 0.5], [0, 2.0, 0]]]))
    >>> warp_points(w, torch.tensor([[[1.0, 0.0]]]))
    tensor([[[0.2500, 0.0000]]])
    """
    u = _check_points(warp, points)
    iterations = check_int(iterations, "iterations", min_value=1)
    dtype = torch.promote_types(torch.promote_types(u.dtype, warp.affine.dtype), torch.float32)
    with torch.autocast(u.device.type, enabled=False):
        u = u.to(dtype)
        a = warp.affine.to(dtype)
        lin = a[:, 1:].transpose(1, 2)  # (B, 2, 2), s(x) ~ lin x + a0
        v = torch.linalg.solve(lin[:, None], (u - a[:, None, 0])[..., None])[..., 0]
        for _ in range(iterations if warp.centres.shape[1] else 0):
            r = _apply(warp, v) - u
            v = v - torch.linalg.solve(_jacobian(warp, v), r[..., None])[..., 0]
    return v


def warp_grid(warp: Warp, size: tuple[int, int]) -> torch.Tensor:
    """The dense sampling grid ``s(v)`` over the output pixels ``v`` of an image of
    ``size = (H, W)``: ``(B, H, W, 2)`` normalised ``(x, y)``, for
    ``grid_sample(..., align_corners=False)``. Entry ``[b, y, x]`` is where output pixel
    ``(x, y)`` reads in the input (DVE's ground-truth correspondence).

    >>> warp_grid(affine_warp(torch.eye(2, 3)[None]), (2, 2))[0, 0, 1]
    tensor([ 0.5000, -0.5000])
    """
    if not isinstance(warp, Warp):
        raise TypeError(f"warp must be a Warp, got {type(warp).__name__}")
    h, w = _size(size)
    grid = pixel_grid((h, w), normalized=True, device=warp.affine.device,
                      dtype=warp.affine.dtype).reshape(1, h * w, 2)
    return _apply(warp, grid.expand(len(warp), -1, -1)).reshape(len(warp), h, w, 2)


def warp_image(image: torch.Tensor, warp: Warp, *, mode: str = "bilinear",
               padding_mode: str = "zeros") -> torch.Tensor:
    """Warp ``(B, C, H, W)`` images: ``out(v) = image(s(v))`` (``grid_sample``,
    ``align_corners=False``; the same as kornia's ``warp_image_tps``).

    Args:
        image: ``(B, C, H, W)``.
        warp: ``B`` warps.
        mode: ``"bilinear"``, ``"nearest"`` or ``"bicubic"``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.

    Returns:
        ``(B, C, H, W)``, differentiable in the image and in the warp's parameters.

    >>> warp_image(torch.ones(2, 3, 8, 8), random_tps(2)).shape
    torch.Size([2, 3, 8, 8])
    """
    if not isinstance(warp, Warp):
        raise TypeError(f"warp must be a Warp, got {type(warp).__name__}")
    Shapes(B=len(warp)).check(image, "image", "B C H W", floating=True)
    check_choice(mode, "mode", ("bilinear", "nearest", "bicubic"))
    check_choice(padding_mode, "padding_mode", ("zeros", "border", "reflection"))
    grid = warp_grid(warp, image.shape[-2:]).to(image.dtype)
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def _generator_device(generator: torch.Generator | None,
                      device: torch.device | str | None) -> tuple[torch.device, torch.device]:
    out = torch.device(device) if device is not None else (
        generator.device if generator is not None else torch.device("cpu"))
    draw = generator.device if generator is not None else out
    return draw, out


def _affine_params(batch: int, rotation: float, scale: float, translation: float,
                   generator: torch.Generator | None, draw: torch.device,
                   dtype: torch.dtype) -> torch.Tensor:
    """(B, 2, 3): rotation N(0, rotation deg), scale 1 + N(0, scale), translation
    N(0, translation) per axis."""
    z = torch.randn(batch, 4, generator=generator, device=draw, dtype=dtype)
    ang = z[:, 0] * math.radians(rotation)
    sc = 1 + z[:, 1] * scale
    cos, sin = torch.cos(ang) * sc, torch.sin(ang) * sc
    return torch.stack((torch.stack((cos, -sin, z[:, 2] * translation), -1),
                        torch.stack((sin, cos, z[:, 3] * translation), -1)), 1)


def _check_random(batch: int, rotation: float, scale: float, translation: float) -> None:
    check_int(batch, "batch", min_value=1)
    check_float(rotation, "rotation", min_value=0.0)
    check_float(scale, "scale", min_value=0.0)
    check_float(translation, "translation", min_value=0.0)


def random_affine(batch: int, *, rotation: float = 5.0, scale: float = 0.1,
                  translation: float = 0.1, generator: torch.Generator | None = None,
                  device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> Warp:
    """Random similarity warps (DVE's affine part): rotation ``N(0, rotation)`` degrees,
    scale ``1 + N(0, scale)``, translation ``N(0, translation)`` per axis in normalised
    coordinates, about the image centre.

    Drawn with ``generator`` on its own device (so a seed reproduces on any ``device``),
    then moved to ``device`` (default: the generator's).

    >>> g = torch.Generator().manual_seed(0)
    >>> w = random_affine(3, generator=g)
    >>> len(w), w.centres.shape
    (3, torch.Size([3, 0, 2]))
    """
    _check_random(batch, rotation, scale, translation)
    draw, out = _generator_device(generator, device)
    theta = _affine_params(batch, rotation, scale, translation, generator, draw, dtype)
    return affine_warp(theta.to(out))


def random_tps(batch: int, *, grid: int = 10, sigma: float = 0.01,
               sigma_large: float | None = None, p_large: float = 0.5,
               rotation: float = 0.0, scale: float = 0.0, translation: float = 0.0,
               generator: torch.Generator | None = None,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> Warp:
    """Random TPS warps on a ``grid x grid`` control lattice over ``[-1, 1]^2`` (DVE):
    each control point is displaced by ``N(0, sigma^2)`` (or, with probability
    ``p_large``, by ``N(0, sigma_large^2)``), then a random similarity (as in
    :func:`random_affine`; none by default) is applied to the targets, so the spline's
    affine part carries it.

    DVE's ranges (its brief): ``random_tps(B, sigma=0.001, sigma_large=0.01,
    rotation=5, scale=0.1, translation=0.1)``; its first warp halves the non-affine part
    (halve ``sigma`` and ``sigma_large``). Drawn on the generator's device, then moved to
    ``device``.

    Args:
        batch: number of warps ``B``.
        grid: control points per side (``grid ** 2`` in all, ``grid >= 2``).
        sigma, sigma_large, p_large: control-point noise (normalised units).
        rotation, scale, translation: standard deviations of the affine part.

    Returns:
        a :class:`Warp` with ``K = grid ** 2`` centres.

    >>> g = torch.Generator().manual_seed(0)
    >>> random_tps(3, grid=4, generator=g).centres.shape
    torch.Size([3, 16, 2])
    """
    _check_random(batch, rotation, scale, translation)
    grid = check_int(grid, "grid", min_value=2)
    check_float(sigma, "sigma", min_value=0.0)
    check_float(p_large, "p_large", min_value=0.0, max_value=1.0)
    draw, out = _generator_device(generator, device)
    t = torch.linspace(-1, 1, grid, device=draw, dtype=dtype)
    ys, xs = torch.meshgrid(t, t, indexing="ij")
    c = torch.stack((xs, ys), -1).reshape(1, grid * grid, 2).expand(batch, -1, -1)
    noise = torch.randn(c.shape, generator=generator, device=draw, dtype=dtype) * sigma
    if sigma_large is not None:
        check_float(sigma_large, "sigma_large", min_value=0.0)
        big = torch.randn(c.shape, generator=generator, device=draw, dtype=dtype) * sigma_large
        pick = torch.rand(c.shape[:2], generator=generator, device=draw, dtype=dtype) < p_large
        noise = torch.where(pick[..., None], big, noise)
    d = c + noise
    if rotation or scale or translation:
        theta = _affine_params(batch, rotation, scale, translation, generator, draw, dtype)
        d = d @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]
    return tps_fit(c.to(out), d.to(out))


def sample_at(image: torch.Tensor, points: torch.Tensor, *, normalized: bool = False,
              mode: str = "bilinear", padding_mode: str = "border") -> torch.Tensor:
    """Read maps at sub-pixel points: ``image(points)`` by ``grid_sample``.

    For a descriptor at each keypoint (DVE's matching evaluation), a flow at annotated
    points (Slim DensePose's propagation ``p + flow(p)``), or a heat-map value.

    Args:
        image: ``(B, C, H, W)``.
        points: ``(B, N, 2)`` ``(x, y)`` in pixels (or ``[-1, 1]`` with ``normalized=True``).
        mode, padding_mode: as in ``grid_sample`` (points outside read the border).

    Returns:
        ``(B, N, C)``, differentiable in ``image`` and ``points``.

    >>> img = torch.arange(6.0).reshape(1, 1, 2, 3)
    >>> sample_at(img, torch.tensor([[[0.5, 1.0], [2.0, 0.0]]]))
    tensor([[[3.5000],
             [2.0000]]])
    """
    s = Shapes()
    s.check(image, "image", "B C H W", floating=True)
    s.check(points, "points", "B N 2", floating=True)
    check_choice(mode, "mode", ("bilinear", "nearest", "bicubic"))
    check_choice(padding_mode, "padding_mode", ("zeros", "border", "reflection"))
    grid = points.to(image.dtype)
    if not normalized:
        grid = pixel_to_normalized(grid, image.shape[-2:])
    out = F.grid_sample(image, grid[:, :, None], mode=mode, padding_mode=padding_mode,
                        align_corners=False)  # (B, C, N, 1)
    return out[..., 0].transpose(1, 2)


def _check_flow(flow: object, s: Shapes, name: str = "flow") -> torch.Tensor:
    return s.check(flow, name, "B 2 H W", floating=True)


def _flow_grid(flow: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) pixel flow -> (B, H, W, 2) normalised sampling grid of u + flow(u)."""
    size = flow.shape[-2:]
    base = pixel_grid(size, device=flow.device, dtype=flow.dtype)
    return pixel_to_normalized(base + flow.permute(0, 2, 3, 1), size)


def warp_by_flow(image: torch.Tensor, flow: torch.Tensor, *, mode: str = "bilinear",
                 padding_mode: str = "zeros") -> torch.Tensor:
    """Backward-warp with a pixel flow: ``out(u) = image(u + flow(u))``.

    With ``flow`` the flow from frame *t* to frame *t + 1* and ``image`` frame *t + 1*
    (or a prediction on it), the result is aligned with frame *t* (Slim DensePose's
    Siamese equivariance: warp the *t + k* prediction back).

    Args:
        image: ``(B, C, H, W)``.
        flow: ``(B, 2, H, W)`` displacements ``(dx, dy)`` in pixels.
        mode, padding_mode: as in ``grid_sample``; points read outside give zeros by default.

    Returns:
        ``(B, C, H, W)``, differentiable in ``image`` and ``flow``.

    >>> img = torch.arange(4.0).reshape(1, 1, 1, 4)
    >>> warp_by_flow(img, torch.tensor([1.0, 0.0]).reshape(1, 2, 1, 1).expand(1, 2, 1, 4))
    tensor([[[[1., 2., 3., 0.]]]])
    """
    s = Shapes()
    s.check(image, "image", "B C H W", floating=True)
    _check_flow(flow, s)
    check_choice(mode, "mode", ("bilinear", "nearest", "bicubic"))
    check_choice(padding_mode, "padding_mode", ("zeros", "border", "reflection"))
    grid = _flow_grid(flow.to(image.dtype))
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def flow_consistency_mask(forward: torch.Tensor, backward: torch.Tensor, *,
                          alpha: float = 0.01, beta: float = 0.5) -> torch.Tensor:
    r"""Forward-backward consistency (the occlusion test of Sundaram, Brox & Keutzer
    2010): pixel ``u`` of frame *t* is kept when

    .. math:: \lvert f + \hat b \rvert^2 < \alpha (\lvert f \rvert^2 + \lvert \hat b
        \rvert^2) + \beta, \qquad \hat b(u) = b(u + f(u)),

    and ``u + f(u)`` falls inside frame *t + 1*. Defaults are the paper's
    ``alpha = 0.01``, ``beta = 0.5`` (pixels squared). Occluded pixels and pixels that
    leave the frame fail it.

    Args:
        forward: ``(B, 2, H, W)`` flow *t -> t + 1*, pixels.
        backward: ``(B, 2, H, W)`` flow *t + 1 -> t*, pixels.

    Returns:
        ``(B, H, W)`` bool mask over frame *t* (not differentiable).

    >>> f = torch.ones(1, 2, 4, 4)
    >>> flow_consistency_mask(f, -f)[0, 0]
    tensor([ True,  True,  True, False])
    """
    s = Shapes()
    _check_flow(forward, s, "forward")
    _check_flow(backward, s, "backward")
    alpha = check_float(alpha, "alpha", min_value=0.0)
    beta = check_float(beta, "beta", min_value=0.0)
    with torch.no_grad():
        b_at = warp_by_flow(backward.to(forward.dtype), forward, padding_mode="border")
        err = (forward + b_at).pow(2).sum(1)
        bound = alpha * (forward.pow(2).sum(1) + b_at.pow(2).sum(1)) + beta
        h, w = forward.shape[-2:]
        pos = pixel_grid((h, w), device=forward.device, dtype=forward.dtype) \
            + forward.permute(0, 2, 3, 1)
        inside = ((pos >= -0.5) & (pos <= torch.tensor([w - 0.5, h - 0.5], device=pos.device,
                                                       dtype=pos.dtype))).all(-1)
        return (err < bound) & inside
