r"""Keypoint errors: %IOD, image-size-normalised error, left/right-swap minimum, PCK.

All take predictions and targets ``(N, L, 2)`` (``N`` images, ``L`` landmarks, any
consistent units, usually pixels ``(x, y)``) and return one value per image ``(N,)``, so a
chapter can average, take a median or bootstrap; an optional ``visible`` mask ``(N, L)``
leaves out unannotated landmarks (an image with none gives NaN).

* :func:`iod_error`: mean landmark error divided by the inter-ocular distance of the
  *target*, as MAFL / AFLW / 300-W results are reported (DVE, Thewlis et al.
  2017), times 100 for "%IOD". ``eyes`` names the two landmark indices. For the 5-point
  MAFL / AFLW order (left eye, right eye, nose, left mouth corner, right mouth corner)
  the eyes are ``(0, 1)``, the default (the eye centres); for the 68-point 300-W markup
  the usual choice is the outer eye corners ``(36, 45)`` (0-based).
* :func:`image_size_error`: mean error with ``x`` divided by the width and ``y`` by the
  height (Jakab et al. 2020 on Simplified Human3.6M; for square images, the error over
  the side).
* ``swap``: a left/right permutation of the landmarks (``swap[l]`` is the index of
  ``l``'s mirror partner). With it, each image's error is the minimum over the prediction
  as given and with its landmarks permuted, since a model trained without labels cannot
  know which side is "left".
* :func:`pck`: fraction of (visible) landmarks within ``threshold x normaliser``.

Written here: scikit-learn and SciPy have no landmark metrics; each is a few vectorised
lines, tested against NumPy loops.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cvbook.core.validate import Shapes, check_float, check_int

__all__ = ["iod_error", "image_size_error", "pck", "swap_min"]


def _check(pred: object, target: object, visible: object,
           swap: Sequence[int] | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                                                torch.Tensor | None]:
    s = Shapes()
    pred = s.check(pred, "pred", "N L 2", floating=True)
    target = s.check(target, "target", "N L 2", floating=True)
    if visible is not None:
        visible = s.check(visible, "visible", "N L", dtype=torch.bool)
    perm = None
    if swap is not None:
        n_l = s["L"]
        if isinstance(swap, torch.Tensor):
            swap = swap.tolist()
        if len(swap) != n_l or sorted(int(i) for i in swap) != list(range(n_l)):
            raise ValueError(f"swap must be a permutation of range({n_l}); got {list(swap)}")
        perm = torch.as_tensor([int(i) for i in swap], device=pred.device)
    return pred, target, visible, perm


def _mean_error(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor | None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
    diff = pred - target
    if scale is not None:
        diff = diff / scale
    err = diff.norm(dim=-1)  # (N, L)
    if visible is None:
        return err.mean(-1)
    v = visible.to(err.dtype)
    return (err * v).sum(-1) / v.sum(-1)


def swap_min(error_fn, pred: torch.Tensor, perm: torch.Tensor | None) -> torch.Tensor:
    """``min(error_fn(pred), error_fn(pred[:, perm]))`` per image (``perm=None``: just
    ``error_fn(pred)``). The building block of the swap option, for a caller's own metric.

    >>> p = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    >>> t = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
    >>> swap_min(lambda q: (q - t).norm(dim=-1).mean(-1), p, torch.tensor([1, 0]))
    tensor([0.])
    """
    err = error_fn(pred)
    if perm is None:
        return err
    return torch.minimum(err, error_fn(pred[:, perm]))


def iod_error(pred: torch.Tensor, target: torch.Tensor, *, eyes: tuple[int, int] = (0, 1),
              swap: Sequence[int] | None = None,
              visible: torch.Tensor | None = None) -> torch.Tensor:
    r"""Mean landmark error over the target's inter-ocular distance, per image:
    :math:`\frac{1}{L}\sum_l \lVert \hat p_l - p_l \rVert / \lVert p_{e_1} - p_{e_2} \rVert`.
    Multiply by 100 for %IOD.

    Args:
        pred, target: ``(N, L, 2)``.
        eyes: the two eye landmark indices (see the module docstring; MAFL / AFLW: (0, 1)).
        swap: optional left/right permutation; the minimum over it is taken per image.
        visible: optional ``(N, L)`` bool mask.

    Returns:
        ``(N,)`` errors as a fraction of the inter-ocular distance.

    >>> t = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [5.0, 5.0]]])
    >>> p = t + torch.tensor([0.0, 1.0])
    >>> iod_error(p, t)
    tensor([0.1000])
    """
    pred, target, visible, perm = _check(pred, target, visible, swap)
    n_l = target.shape[1]
    e1 = check_int(eyes[0], "eyes[0]", min_value=0, max_value=n_l - 1)
    e2 = check_int(eyes[1], "eyes[1]", min_value=0, max_value=n_l - 1)
    if e1 == e2:
        raise ValueError(f"eyes must name two different landmarks; got {tuple(eyes)}")
    iod = (target[:, e1] - target[:, e2]).norm(dim=-1)
    return swap_min(lambda q: _mean_error(q, target, visible), pred, perm) / iod


def image_size_error(pred: torch.Tensor, target: torch.Tensor, size: Sequence[int], *,
                     swap: Sequence[int] | None = None,
                     visible: torch.Tensor | None = None) -> torch.Tensor:
    r"""Mean landmark error with ``x`` over the image width and ``y`` over its height, per
    image: :math:`\frac{1}{L}\sum_l \lVert (\hat p_l - p_l) \oslash (W, H) \rVert`.

    Args:
        pred, target: ``(N, L, 2)`` pixel ``(x, y)``.
        size: ``(H, W)`` of the images.
        swap: optional left/right permutation; the minimum over it is taken per image.
        visible: optional ``(N, L)`` bool mask.

    Returns:
        ``(N,)`` errors as a fraction of the image size.

    >>> t = torch.zeros(1, 2, 2)
    >>> image_size_error(t + torch.tensor([3.2, 0.0]), t, (32, 32))
    tensor([0.1000])
    """
    pred, target, visible, perm = _check(pred, target, visible, swap)
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2:
        raise TypeError(f"size must be a pair (H, W), got {size!r}")
    h = check_int(size[0], "size[0]", min_value=1)
    w = check_int(size[1], "size[1]", min_value=1)
    scale = torch.tensor([w, h], dtype=pred.dtype, device=pred.device)
    return swap_min(lambda q: _mean_error(q, target, visible, scale), pred, perm)


def pck(pred: torch.Tensor, target: torch.Tensor, threshold: float,
        normalizer: torch.Tensor | float = 1.0, *, swap: Sequence[int] | None = None,
        visible: torch.Tensor | None = None) -> torch.Tensor:
    r"""Percentage of correct keypoints per image: the fraction of (visible) landmarks
    with :math:`\lVert \hat p_l - p_l \rVert \le \text{threshold} \cdot \text{normalizer}`.

    Args:
        pred, target: ``(N, L, 2)``.
        threshold: ``> 0``, e.g. 0.1 for PCK@0.1.
        normalizer: a float or ``(N,)`` per image (a box size, the inter-ocular
            distance...).
        swap: optional left/right permutation; the maximum PCK over it per image.
        visible: optional ``(N, L)`` bool mask.

    Returns:
        ``(N,)`` fractions in ``[0, 1]``.

    >>> t = torch.zeros(1, 4, 2)
    >>> p = t + torch.tensor([[0.5], [1.5], [0.2], [3.0]])
    >>> pck(p, t, 0.1, 10.0)
    tensor([0.5000])
    """
    pred, target, visible, perm = _check(pred, target, visible, swap)
    threshold = check_float(threshold, "threshold", min_value=0.0, open_min=True)
    if isinstance(normalizer, torch.Tensor):
        Shapes(N=pred.shape[0]).check(normalizer, "normalizer", "N", floating=True)
        normalizer = normalizer[:, None]
    else:
        normalizer = check_float(normalizer, "normalizer", min_value=0.0, open_min=True)

    def miss(q: torch.Tensor) -> torch.Tensor:
        bad = ((q - target).norm(dim=-1) > threshold * normalizer).to(q.dtype)
        if visible is None:
            return bad.mean(-1)
        v = visible.to(q.dtype)
        return (bad * v).sum(-1) / v.sum(-1)

    return 1 - swap_min(miss, pred, perm)
