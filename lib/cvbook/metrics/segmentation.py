r"""Intersection over union for label maps and binary masks, batched.

* :func:`confusion_matrix`: ``(C, C)`` counts (rows: target, columns: prediction), or
  ``(N, C, C)`` per image, in one ``bincount``.
* :func:`iou_per_class`: :math:`\mathrm{IoU}_c = \frac{|P_c \cap T_c|}{|P_c \cup T_c|}`
  from the confusion matrix, pooled over the batch (the semantic-segmentation
  convention) or per image; a class absent from both prediction and target gives
  ``zero_division`` (NaN by default, so :func:`mean_iou` skips it).
* :func:`mean_iou`: the mean of the defined per-class IoUs.
* :func:`mask_iou`: IoU of binary masks per image (AutoCorrect: annotation vs truth);
  two empty masks agree perfectly, so ``zero_division`` defaults to 1.

``ignore_index`` drops pixels whose *target* has that label (e.g. 255, "void").
Written here rather than with scikit-learn's ``jaccard_score`` (the test reference) to
stay on the tensors' device and batched; the counting is one ``torch.bincount``.
"""

from __future__ import annotations

import torch

from cvbook.core.validate import Shapes, check_float, check_int

__all__ = ["confusion_matrix", "iou_per_class", "mask_iou", "mean_iou"]


def _labels(pred: object, target: object) -> tuple[torch.Tensor, torch.Tensor]:
    s = Shapes()
    pred = s.check(pred, "pred", "... H W")
    target = s.check(target, "target", "... H W")
    for name, x in (("pred", pred), ("target", target)):
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer label map, got {x.dtype}")
    return pred, target


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, *,
                     ignore_index: int | None = None, per_image: bool = False) -> torch.Tensor:
    """Pixel counts ``M[t, p]`` of target class ``t`` predicted as ``p``.

    Args:
        pred, target: integer label maps ``(..., H, W)`` with values in
            ``[0, num_classes)`` (``target`` may also hold ``ignore_index``).
        num_classes: ``C``.
        ignore_index: a target label to leave out.
        per_image: ``(N, C, C)`` for ``(N, H, W)`` inputs instead of one pooled matrix.

    Returns:
        ``(C, C)`` or ``(N, C, C)`` int64 counts.

    >>> confusion_matrix(torch.tensor([[[0, 1], [1, 1]]]), torch.tensor([[[0, 0], [1, 1]]]), 2)
    tensor([[1, 1],
            [0, 2]])
    """
    pred, target = _labels(pred, target)
    c = check_int(num_classes, "num_classes", min_value=1)
    keep = torch.ones_like(target, dtype=torch.bool) if ignore_index is None \
        else target != check_int(ignore_index, "ignore_index")
    lo = torch.minimum(pred[keep].min(), target[keep].min()) if keep.any() else 0
    hi = torch.maximum(pred[keep].max(), target[keep].max()) if keep.any() else 0
    if lo < 0 or hi >= c:
        raise ValueError(f"labels must lie in [0, {c}) (num_classes = {c}); got values in "
                         f"[{int(lo)}, {int(hi)}]")
    idx = target.long() * c + pred.long()
    if per_image:
        if idx.ndim != 3:
            raise ValueError(f"per_image needs (N, H, W) label maps; got {tuple(pred.shape)}")
        n = idx.shape[0]
        idx = idx + torch.arange(n, device=idx.device)[:, None, None] * (c * c)
        counts = torch.bincount(idx[keep], minlength=n * c * c)
        return counts.reshape(n, c, c)
    return torch.bincount(idx[keep], minlength=c * c).reshape(c, c)


def _iou_from_confusion(cm: torch.Tensor, zero_division: float) -> torch.Tensor:
    inter = cm.diagonal(dim1=-2, dim2=-1).double()
    union = cm.sum(-1).double() + cm.sum(-2).double() - inter
    iou = inter / union.clamp_min(1)
    return torch.where(union > 0, iou, torch.full_like(iou, zero_division))


def iou_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int, *,
                  ignore_index: int | None = None, per_image: bool = False,
                  zero_division: float = float("nan")) -> torch.Tensor:
    """IoU of each class, pooled over all images (or ``per_image``).

    Args:
        pred, target: integer label maps ``(..., H, W)``.
        num_classes: ``C``.
        ignore_index: a target label to leave out.
        per_image: ``(N, C)`` instead of ``(C,)``.
        zero_division: the value for a class absent from both (NaN: undefined).

    Returns:
        ``(C,)`` or ``(N, C)`` float64 IoUs.

    >>> iou_per_class(torch.tensor([[0, 1, 1, 1]]), torch.tensor([[0, 0, 1, 1]]), 3)
    tensor([0.5000, 0.6667,    nan], dtype=torch.float64)
    """
    if not isinstance(zero_division, float) or zero_division == zero_division:
        zero_division = check_float(zero_division, "zero_division", min_value=0.0,
                                    max_value=1.0)
    cm = confusion_matrix(pred, target, num_classes, ignore_index=ignore_index,
                          per_image=per_image)
    return _iou_from_confusion(cm, zero_division)


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int, *,
             ignore_index: int | None = None, per_image: bool = False) -> torch.Tensor:
    """Mean over the classes present in prediction or target of :func:`iou_per_class`.

    >>> mean_iou(torch.tensor([[0, 1, 1, 1]]), torch.tensor([[0, 0, 1, 1]]), 3)
    tensor(0.5833, dtype=torch.float64)
    """
    return iou_per_class(pred, target, num_classes, ignore_index=ignore_index,
                         per_image=per_image).nanmean(-1)


def mask_iou(pred: torch.Tensor, target: torch.Tensor, *,
             zero_division: float = 1.0) -> torch.Tensor:
    """IoU of binary masks per image: ``|P & T| / |P | T|`` over the last two dimensions.

    Args:
        pred, target: ``(..., H, W)`` bool masks.
        zero_division: the value when both are empty (1: they agree).

    Returns:
        ``(...)`` float IoUs (float32).

    >>> a = torch.zeros(2, 4, 4, dtype=torch.bool)
    >>> b = a.clone()
    >>> a[0, :2] = True
    >>> b[0, 1:3] = True
    >>> mask_iou(a, b)
    tensor([0.3333, 1.0000])
    """
    s = Shapes()
    pred = s.check(pred, "pred", "... H W", dtype=torch.bool)
    target = s.check(target, "target", "... H W", dtype=torch.bool)
    zero_division = check_float(zero_division, "zero_division", min_value=0.0, max_value=1.0)
    inter = (pred & target).sum((-2, -1)).float()
    union = (pred | target).sum((-2, -1)).float()
    return torch.where(union > 0, inter / union.clamp_min(1),
                       torch.full_like(union, zero_division))
