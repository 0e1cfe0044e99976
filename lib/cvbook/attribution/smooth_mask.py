"""The smooth masks of extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019, Eq. 7-9):
parameters on a coarse grid over the image, a smooth max-convolution with the kernel
``k(d) = exp(−2 max(0, |d|/σ − ½)²)`` and temperature ``T``, evaluated on the image plus a
margin. Re-exported by :mod:`cvbook.attribution.extremal`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cvbook.core.validate import check_float, check_int, check_tensor

__all__ = ["SmoothMask", "smooth_max_brute_force"]


class _SmoothMax(torch.autograd.Function):
    """``m = Σ_k t_k e^{T t_k} / (Σ_k e^{T t_k} + n_out)`` with ``t_k = w_kq · p_kl``, the
    smooth max of Eq. 9 over a window of ``K`` grid points plus ``n_out`` points with
    ``t = 0``. A hand-written backward, ``∂m/∂t_k = e^{T t_k}(1 + T(t_k − m)) / Σ``, that
    recomputes ``t`` and ``e`` instead of storing them: the ``(B, K, Q, L)`` intermediates
    are the mask generator's whole cost, and autograd would keep four of them.

    Shapes: ``nb (B, K, L)``, ``w (K, Q)``, ``n_out (L,)`` -> ``(B, Q, L)``."""

    @staticmethod
    def forward(ctx, nb, w, n_out, T):  # noqa: D102
        if nb.is_cuda:   # one fused pass over (B, K, Q, L)
            t = nb[:, :, None, :] * w[None, :, :, None]
            e = t.mul(T).sub_(T).exp_()     # e^{T(t-1)}: t <= 1, scaled, no overflow
            den = e.sum(1).add_(n_out * math.exp(-T))
            m = t.mul_(e).sum(1).div_(den)
        else:            # tap by tap: the (B, Q, L) accumulators stay in cache
            B, K, L = nb.shape
            den = (n_out * math.exp(-T)).expand(B, w.shape[1], L).clone()
            num = torch.zeros_like(den)
            for k in range(K):
                t = nb[:, k, None, :] * w[k, None, :, None]          # (B, Q, L)
                e = t.mul(T).sub_(T).exp_()
                den += e
                num.addcmul_(t, e)
            m = num.div_(den)
        ctx.save_for_backward(nb, w, m, den)
        ctx.T = T
        return m

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        nb, w, m, den = ctx.saved_tensors
        T = ctx.T
        g = grad / den
        if nb.is_cuda:
            t = nb[:, :, None, :] * w[None, :, :, None]
            e = t.mul(T).sub_(T).exp_()
            # e (1 + T (t - m)) · grad / den, then the chain rule through t = w · p
            t.sub_(m[:, None]).mul_(T).add_(1).mul_(e).mul_(g[:, None])
            return torch.einsum("bkql,kq->bkl", t, w), None, None, None
        out = torch.empty_like(nb)
        for k in range(nb.shape[1]):
            wk = w[k, None, :, None]
            t = nb[:, k, None, :] * wk
            e = t.mul(T).sub_(T).exp_()
            t.sub_(m).mul_(T).add_(1).mul_(e).mul_(g).mul_(wk)
            out[:, k] = t.sum(1)
        return out, None, None, None


class SmoothMask(nn.Module):
    """The smooth mask family of the paper (Eq. 7-9).

    Parameters ``m̄_i`` live on a grid of step ``step`` pixels over the *image only*
    (grid point ``i`` at image pixel ``step·i``, ``ceil(H/step) × ceil(W/step)`` of them,
    as in TorchRay's ``MaskGenerator``); the mask is the smooth max-convolution over all
    grid points

        m(u) = smax_i k(u − u_i) m̄_i,
        k(d) = exp(−2 max(0, |d|/σ − ½)²),  smax_T(t) = Σ t e^{T t} / Σ e^{T t},

    evaluated on the image plus a margin of ``ceil(σ)`` pixels on each side (the margin
    is *padding*: no parameter lives there, it only receives the rims of the bumps near
    the border). The sums run exactly over the ``(2r+1)²`` grid points around ``u``
    with ``r = 1 + ceil(σ/step)`` (TorchRay's radius); every other grid point enters
    the denominator with ``t = 0`` (``e^{T·0} = 1``), which is exact up to the kernel's
    tail beyond ``r`` rings (``k ≤ k(σ + step)``; the brute-force test over all grid
    points bounds the difference). TorchRay normalises over its window instead, so far
    from every active bump its masks keep a faint rim; see chapter 01.
    :meth:`crop` cuts the image part.

    Args:
        size: image ``(H, W)``.
        step: grid step in pixels (7 at 224 px in the paper).
        sigma: kernel width ``σ`` in pixels (21 at 224 px), also the margin.
        temperature: ``T`` of the smooth max (20).
        substeps: evaluate the smooth max at ``substeps × substeps`` points per grid
            cell and upsample bilinearly (``None`` = ``step``: every pixel, exact). A
            CPU economy: ``step / substeps`` times fewer kernel evaluations per axis.
        radius: rings of grid points in the window (``None``: ``1 + ceil(σ/step)``;
            smaller values are for showing the hard edge a short window leaves).
        device: where the kernel weights live.
    """

    def __init__(self, size: Sequence[int], *, step: int = 7, sigma: float = 21.0,
                 temperature: float = 20.0, substeps: int | None = None,
                 radius: int | None = None, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.H, self.W = check_int(size[0], "size[0]", min_value=1), check_int(
            size[1], "size[1]", min_value=1)
        self.step = check_int(step, "step", min_value=1)
        self.sigma = check_float(sigma, "sigma", min_value=0.0, open_min=True)
        self.temperature = check_float(temperature, "temperature", min_value=0.0,
                                       open_min=True)
        self.margin = math.ceil(self.sigma)
        self.full = (self.H + 2 * self.margin, self.W + 2 * self.margin)
        self.grid = (math.ceil(self.H / self.step), math.ceil(self.W / self.step))
        self.radius = (1 + math.ceil(self.sigma / self.step) if radius is None
                       else check_int(radius, "radius", min_value=0))
        self.substeps = self.step if substeps is None else check_int(
            substeps, "substeps", min_value=1, max_value=self.step)
        r, s, q, m = self.radius, self.step, self.substeps, self.margin
        # evaluation cells of side `step` tile the full frame; cell j starts at full-frame
        # pixel u0 + j·s with u0 = m − P·s <= 0, so that cell P holds grid point 0
        P = math.ceil(m / s)
        self._before = P
        self._offset = P * s - m                      # crop start inside the cell grid
        self.cells = tuple(math.ceil((n + m + P * s) / s) for n in (self.H, self.W))
        self._pad = []                                # (left, right, top, bottom)
        for cells, g in ((self.cells[1], self.grid[1]), (self.cells[0], self.grid[0])):
            self._pad += [P + r, cells - P + r - g]
        if min(self._pad) < 0:  # pragma: no cover - cannot happen for m >= 1
            raise AssertionError("mask padding")
        d = torch.arange(-r, r + 1, dtype=torch.float32, device=device) * s   # neighbour
        # offsets of the evaluation points inside a cell (centres of q sub-blocks)
        o = (torch.arange(q, dtype=torch.float32, device=device) + 0.5) * (s / q) - 0.5
        dy = d[:, None, None, None] - o[None, None, :, None]                   # (K1,1,q,1)
        dx = d[None, :, None, None] - o[None, None, None, :]                   # (1,K1,1,q)
        dist = torch.sqrt(dy ** 2 + dx ** 2) / self.sigma                      # (K1,K1,q,q)
        weight = torch.exp(-2 * (dist - 0.5).clamp(min=0) ** 2)
        self.register_buffer("weight", weight.reshape((2 * r + 1) ** 2, q * q))
        # the window's K entries enter the smooth max's denominator (padding ones with
        # t = 0, e^{T·0} = 1); the G grid points in all: add G − K more terms with t = 0,
        # so that the sum counts every grid point once (those outside the window at t ≈ 0)
        K, G = (2 * r + 1) ** 2, self.grid[0] * self.grid[1]
        self.register_buffer("outside", torch.full((self.cells[0] * self.cells[1],),
                                                   float(G - K), device=device))

    @property
    def num_pixels_full(self) -> int:
        return self.full[0] * self.full[1]

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        """``(B, 1, gh, gw)`` parameters in [0, 1] -> ``(B, 1, H + 2m, W + 2m)`` mask
        (``m = ceil(σ)``), Eq. 7-9."""
        check_tensor(params, "params", shape=(None, 1, *self.grid))
        return self._generate(params)

    def _generate(self, params: torch.Tensor) -> torch.Tensor:
        B = params.shape[0]
        r, s, q = self.radius, self.step, self.substeps
        ch, cw = self.cells
        T = self.temperature
        nb = F.unfold(F.pad(params, self._pad), 2 * r + 1)         # (B, K, ch*cw)
        m = _SmoothMax.apply(nb, self.weight.to(params.dtype),
                             self.outside.to(params.dtype), T)      # (B, q*q, cells)
        m = m.view(B, q, q, ch, cw).permute(0, 3, 1, 4, 2).reshape(B, 1, ch * q, cw * q)
        if q != s:
            m = F.interpolate(m, scale_factor=s / q, mode="bilinear", align_corners=False)
        o = self._offset
        return m[..., o:o + self.full[0], o:o + self.full[1]]

    def crop(self, mask: torch.Tensor) -> torch.Tensor:
        """The image part ``(B, 1, H, W)`` of a full mask."""
        p = self.margin
        return mask[..., p:p + self.H, p:p + self.W]

    def grid_points(self) -> torch.Tensor:
        """``(gh·gw, 2)`` ``(y, x)`` image-pixel coordinates of the grid points (for
        brute-force checks)."""
        gy = torch.arange(self.grid[0], dtype=torch.float32) * self.step
        gx = torch.arange(self.grid[1], dtype=torch.float32) * self.step
        return torch.stack(torch.meshgrid(gy, gx, indexing="ij"), -1).reshape(-1, 2)


def smooth_max_brute_force(params: torch.Tensor, size: Sequence[int], *, step: int,
                           sigma: float, temperature: float = 20.0) -> torch.Tensor:
    """Eq. 7-9 by brute force, over *all* grid points at every pixel of the full frame
    (image plus ``ceil(σ)`` margin): ``(B, 1, gh, gw) -> (B, 1, H + 2m, W + 2m)``. Slow
    (``O(pixels × grid points)``): for tests and the chapter's check only."""
    H, W = int(size[0]), int(size[1])
    m = math.ceil(sigma)
    gy = torch.arange(params.shape[-2], dtype=torch.float64) * step
    gx = torch.arange(params.shape[-1], dtype=torch.float64) * step
    uy = torch.arange(H + 2 * m, dtype=torch.float64) - m
    ux = torch.arange(W + 2 * m, dtype=torch.float64) - m
    d = torch.sqrt((uy[:, None, None, None] - gy[None, None, :, None]) ** 2
                   + (ux[None, :, None, None] - gx[None, None, None, :]) ** 2) / sigma
    k = torch.exp(-2 * (d - 0.5).clamp(min=0) ** 2).flatten(2)          # (Hf, Wf, G)
    t = k[None] * params.double().flatten(1)[:, None, None, :]          # (B, Hf, Wf, G)
    out = (t * torch.softmax(temperature * t, -1)).sum(-1)
    return out[:, None].to(params.dtype)
