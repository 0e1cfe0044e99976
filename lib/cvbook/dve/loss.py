r"""DVE's dense equivariance loss and its descriptor exchange, in matmul form.

For source descriptors :math:`\Phi_u(x)` and target descriptors :math:`\Phi_v(x')` on
``h x w`` feature grids, with :math:`g(u)` the true position in :math:`x'` of source
position :math:`u` (Thewlis et al. 2019, Sec. 3, Eq. 2-4):

.. math::

    p(v \mid u) = \operatorname{softmax}_v \langle \Phi_u(x), \Phi_v(x') \rangle, \qquad
    \mathcal L = \frac{1}{|\Omega|} \sum_u \sum_v \lVert v - g(u) \rVert^\gamma\, p(v \mid u),

an *expected distance* to the true match (not a cross-entropy), :math:`\gamma = 0.5`,
distances in **input pixels**: feature cell ``j`` of a network of stride ``s`` sits at
input pixel :math:`(j + \tfrac12) s - \tfrac12` (its receptive field's centre in the
convention of :mod:`cvbook.geometry.coords`), and :math:`g(u)` is the input-resolution
correspondence grid averaged over each ``s x s`` cell (exact for an affine grid).

**DVE** (Eq. 6): before matching, each source descriptor is rebuilt from an auxiliary
image :math:`x_\alpha` of *another identity*,

.. math:: \hat\Phi_u = \sum_w \Phi_w(x_\alpha)\, \operatorname{softmax}_w
    \langle \Phi_u(x), \Phi_w(x_\alpha) \rangle,

and :math:`\hat\Phi_u` replaces :math:`\Phi_u(x)` in :math:`p(v \mid u)`. The official
code takes the auxiliary image from the next sample of the batch; :func:`dve_loss` does
the same (``auxiliary = source.roll(-1, 0)``), so consecutive samples must be different
people (:meth:`cvbook.data.faces.FaceWorld.sample_ids` guarantees it).

**Matmul form.** The naive loss forms all ``C x HW x HW`` products before summing over
``C``; here one batched matmul gives the ``(B, HW, HW)`` scores, and ``chunk`` bounds the
memory further (source positions in blocks). :func:`naive_dense_equivariance_loss` is the
explicit reference the tests and the benchmark compare against.

Written here: DVE's own method (a few lines of ``torch.bmm`` and ``softmax``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cvbook.core.validate import Shapes, check_float, check_int

__all__ = ["correspondence_at_features", "dense_equivariance_loss", "dve_loss",
           "exchange", "feature_positions", "naive_dense_equivariance_loss"]


def feature_positions(size: tuple[int, int], stride: int, *,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(h w, 2)`` input-pixel ``(x, y)`` of the centres of an ``h x w`` feature grid of
    stride ``stride``: ``(j + 0.5) stride - 0.5``, row-major (the order of
    ``features.flatten(2)``).

    >>> feature_positions((1, 2), 2)
    tensor([[0.5000, 0.5000],
            [2.5000, 0.5000]])
    """
    h, w = size
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * stride - 0.5
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * stride - 0.5
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((xx, yy), -1).reshape(h * w, 2)


def correspondence_at_features(grid: torch.Tensor, stride: int) -> torch.Tensor:
    """The correspondence of each source feature cell: ``(B, H, W, 2)`` input-pixel grid
    -> ``(B, H/s W/s, 2)``, the mean over each ``s x s`` cell (the grid's value at the
    cell's centre when the grid is affine).

    >>> g = torch.arange(4.0).reshape(1, 2, 2, 1).expand(1, 2, 2, 2)
    >>> correspondence_at_features(g, 2)
    tensor([[[1.5000, 1.5000]]])
    """
    if stride == 1:
        return grid.flatten(1, 2)
    return F.avg_pool2d(grid.permute(0, 3, 1, 2), stride).flatten(2).transpose(1, 2)


def _check(source: object, target: object, grid: object, stride: object, gamma: object,
           auxiliary: object = None) -> Shapes:
    s = Shapes()
    s.check(source, "source", "B C h w", floating=True)
    s.check(target, "target", "B C h w", floating=True)
    if auxiliary is not None:
        s.check(auxiliary, "auxiliary", "B C h2 w2", floating=True)
    st = check_int(stride, "stride", min_value=1)
    s.check(grid, "grid", (s["B"], s["h"] * st, s["w"] * st, 2), floating=True)
    check_float(gamma, "gamma", min_value=0.0, open_min=True)
    return s


def exchange(query: torch.Tensor, auxiliary: torch.Tensor) -> torch.Tensor:
    r"""DVE's reconstruction :math:`\hat\Phi_u = \sum_w \Phi_w(x_\alpha)\,
    \operatorname{softmax}_w \langle \Phi_u, \Phi_w(x_\alpha) \rangle` (Eq. 6).

    Args:
        query: ``(B, N, C)`` descriptors :math:`\Phi_u(x)`.
        auxiliary: ``(B, M, C)`` descriptors :math:`\Phi_w(x_\alpha)`.

    Returns:
        ``(B, N, C)``: each query rebuilt as a convex combination of auxiliary
        descriptors (so it can only carry what the auxiliary image also has).

    >>> a = 50 * torch.eye(3)[None]
    >>> exchange(a[:, :2], a).round()
    tensor([[[50.,  0.,  0.],
             [ 0., 50.,  0.]]])
    """
    s = Shapes()
    s.check(query, "query", "B N C", floating=True)
    s.check(auxiliary, "auxiliary", "B M C", floating=True)
    return _exchange(query, auxiliary)


def _exchange(query: torch.Tensor, auxiliary: torch.Tensor) -> torch.Tensor:
    dt = torch.promote_types(query.dtype, torch.float32)
    att = torch.softmax(torch.bmm(query, auxiliary.transpose(1, 2)).to(dt), dim=-1)
    return torch.bmm(att.to(auxiliary.dtype), auxiliary)


def dense_equivariance_loss(source: torch.Tensor, target: torch.Tensor, grid: torch.Tensor, *,
                            stride: int, gamma: float = 0.5,
                            auxiliary: torch.Tensor | None = None,
                            chunk: int | None = None,
                            normalize: float | None = None) -> torch.Tensor:
    r"""The dense equivariance loss (Eq. 4), or DVE's (Eq. 6) with ``auxiliary``.

    Args:
        source: ``(B, C, h, w)`` descriptors of the source images.
        target: ``(B, C, h, w)`` descriptors of the target images.
        grid: ``(B, h s, w s, 2)`` pixel ``(x', y')`` in the target input image of each
            source input pixel (:class:`cvbook.data.pairs.PairBatch.grid`).
        stride: the network's stride ``s`` (input pixels per feature cell).
        gamma: the distance exponent :math:`\gamma` (DVE: 0.5).
        auxiliary: ``(B, C, h', w')`` descriptors of images of other identities; each
            source descriptor is first rebuilt from them (:func:`exchange`).
        chunk: process this many source positions at a time (memory ``B x chunk x hw``
            instead of ``B x hw x hw``); ``None``: all at once.
        normalize: L2-normalise every descriptor and multiply it by this (the official
            loss's ``normalize_vectors``, x 20 for the hourglass: a softmax temperature
            of 1/20 on cosines); ``None``: raw dot products (SmallNet).

    Returns:
        the scalar loss (mean over the batch and the source positions), differentiable
        in the descriptors; float32 whatever the autocast dtype.
    """
    _check(source, target, grid, stride, gamma, auxiliary)
    if chunk is not None:
        check_int(chunk, "chunk", min_value=1)
    if normalize is not None:
        source, target = _unit(source, normalize), _unit(target, normalize)
        auxiliary = None if auxiliary is None else _unit(auxiliary, normalize)
    return _loss(source, target, grid, stride, gamma, auxiliary, chunk)


def _unit(x: torch.Tensor, scale: float) -> torch.Tensor:
    check_float(scale, "normalize", min_value=0.0, open_min=True)
    return scale * F.normalize(x, dim=1)


def _loss(source: torch.Tensor, target: torch.Tensor, grid: torch.Tensor, stride: int,
          gamma: float, auxiliary: torch.Tensor | None, chunk: int | None) -> torch.Tensor:
    b, _, h, w = source.shape
    src = source.flatten(2).transpose(1, 2)  # (B, N, C)
    if auxiliary is not None:
        src = _exchange(src, auxiliary.flatten(2).transpose(1, 2))
    tgt = target.flatten(2)  # (B, C, M)
    dt = torch.promote_types(source.dtype, torch.float32)  # float32 at least (AMP)
    with torch.no_grad():
        g = correspondence_at_features(grid.to(dt), stride)  # (B, N, 2)
        pos = feature_positions((h, w), stride, device=source.device, dtype=dt)  # (M, 2)
    n = h * w
    step = n if chunk is None else chunk
    total = source.new_zeros((), dtype=dt)
    for i in range(0, n, step):  # one block unless chunk is given
        logits = torch.bmm(src[:, i:i + step], tgt).to(dt)  # (B, n_i, M)
        with torch.no_grad():
            dist = torch.cdist(g[:, i:i + step], pos[None].expand(b, -1, -1)).pow(gamma)
        total = total + (torch.softmax(logits, dim=-1) * dist).sum()
    return total / (b * n)


def dve_loss(source: torch.Tensor, target: torch.Tensor, grid: torch.Tensor, *, stride: int,
             gamma: float = 0.5, chunk: int | None = None,
             normalize: float | None = None) -> torch.Tensor:
    """DVE's loss with the auxiliary image taken as the official code does: the source
    of the next sample in the batch (``source.roll(-1, 0)``; ``B >= 2``, and consecutive
    samples must be different identities). Arguments as in
    :func:`dense_equivariance_loss`."""
    _check(source, target, grid, stride, gamma)
    if source.shape[0] < 2:
        raise ValueError(f"source must hold at least 2 samples for DVE; got {source.shape[0]}")
    if chunk is not None:
        check_int(chunk, "chunk", min_value=1)
    if normalize is not None:
        source, target = _unit(source, normalize), _unit(target, normalize)
    return _loss(source, target, grid, stride, gamma, source.roll(-1, 0), chunk)


def naive_dense_equivariance_loss(source: torch.Tensor, target: torch.Tensor,
                                  grid: torch.Tensor, *, stride: int, gamma: float = 0.5,
                                  auxiliary: torch.Tensor | None = None) -> torch.Tensor:
    """The same loss computed the explicit way, with a ``(B, C, HW, HW)`` tensor of
    per-channel products and per-pair differences (a reference for tests and the
    benchmark; memory grows as ``C (hw)^2``)."""
    _check(source, target, grid, stride, gamma, auxiliary)
    b, c, h, w = source.shape
    src = source.flatten(2)  # (B, C, N)
    if auxiliary is not None:
        aux = auxiliary.flatten(2)  # (B, C, M')
        prod = src[:, :, :, None] * aux[:, :, None, :]  # (B, C, N, M')
        att = torch.softmax(prod.sum(1), dim=-1)  # (B, N, M')
        src = (att[:, None] * aux[:, :, None, :]).sum(-1)  # (B, C, N)
    prod = src[:, :, :, None] * target.flatten(2)[:, :, None, :]  # (B, C, N, M)
    p = torch.softmax(prod.sum(1), dim=-1)
    g = F.avg_pool2d(grid.permute(0, 3, 1, 2), stride).flatten(2).transpose(1, 2)
    pos = feature_positions((h, w), stride, device=source.device, dtype=source.dtype)
    diff = g[:, :, None, :] - pos[None, None]  # (B, N, M, 2)
    dist = diff.pow(2).sum(-1).sqrt().pow(gamma)
    return (p * dist).sum() / (b * h * w)
