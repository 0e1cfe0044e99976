"""The paper's analysis (§3): the apparent object size under the train and test
transforms, its closed form, torchvision's rejection rule, a Monte-Carlo check through
torchvision's own transforms, and what the training crops contain."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from cvbook.core.validate import (
    check_choice,
    check_float,
    check_int,
    check_range,
    check_tensor,
)
from cvbook.image.crops import (
    RESIZE_RATIO,
    RRC_RATIO,
    RRC_SCALE,
    resize_size,
    sample_rrc_boxes,
)

test_resize_size = resize_size


def expected_inv_sqrt_area(scale: tuple[float, float] = RRC_SCALE) -> float:
    """E[σ^{-1/2}] for σ ~ U[lo, hi]: ``2(√hi − √lo)/(hi − lo)`` (paper §3.1).

    For torchvision's default ``(0.08, 1)`` this is ≈ 1.559.
    """
    lo, hi = check_range(scale, "scale", low=0.0, high=1.0)
    if lo <= 0:
        raise ValueError(f"scale[0] must be > 0, got {lo}")
    if hi == lo:
        return 1 / math.sqrt(lo)
    return 2 * (math.sqrt(hi) - math.sqrt(lo)) / (hi - lo)


def rrc_expected_inv_sqrt_area(scale: tuple[float, float] = RRC_SCALE,
                                ratio: tuple[float, float] = RRC_RATIO,
                                image_size: tuple[int, int] = (1, 1), *,
                                attempts: int = 10, grid: int = 1500) -> float:
    """E[σ^{-1/2}] under torchvision's *actual* ``RandomResizedCrop`` rule.

    The paper's closed form assumes σ ~ U[scale]. torchvision draws σ and a log-uniform
    aspect ratio ``a``, and *rejects* the crop unless it fits, i.e. unless
    ``σ·HW·a <= W²`` and ``σ·HW/a <= H²``; after ``attempts`` rejections it falls back
    to the central crop (aspect clamped to ``ratio``). Large σ with an extreme aspect
    are rejected most, so small crops are over-represented and E[σ^{-1/2}] grows (by
    about 5% for square images). With ``p(σ)`` the acceptance probability of one try,
    ``P = E[p(σ)]`` and ``q = (1 - P)^attempts``:

    .. math:: \\mathbb E[\\sigma^{-1/2}] = (1 - q)\\,
              \\frac{\\mathbb E[\\sigma^{-1/2} p(\\sigma)]}{P} + q\\,\\sigma_{fb}^{-1/2}

    evaluated by midpoint integration on a ``grid × grid`` lattice of (σ, log a).
    (Rounding crop sides to integers is ignored: it matters only for tiny images.)
    """
    lo, hi = check_range(scale, "scale", low=0.0, high=1.0)
    if lo <= 0:
        raise ValueError(f"scale[0] must be > 0, got {lo}")
    r_lo, r_hi = check_range(ratio, "ratio", low=1e-6, high=1e6)
    h, w = (check_int(v, "image_size[i]", min_value=1) for v in image_size)
    attempts = check_int(attempts, "attempts", min_value=1)
    grid = check_int(grid, "grid", min_value=10)
    sig = lo + (hi - lo) * (np.arange(grid) + 0.5) / grid
    loga = math.log(r_lo) + (math.log(r_hi) - math.log(r_lo)) * (np.arange(grid) + 0.5) / grid
    s2, a2 = sig[:, None], np.exp(loga)[None, :]
    area = h * w
    fits = (s2 * area * a2 <= w * w) & (s2 * area / a2 <= h * h)
    p = fits.mean(1)  # acceptance probability given sigma, (grid,)
    accept = p.mean()
    q = (1 - accept) ** attempts
    in_ratio = w / h
    if in_ratio < r_lo:
        fw, fh = w, round(w / r_lo)
    elif in_ratio > r_hi:
        fw, fh = round(h * r_hi), h
    else:
        fw, fh = w, h
    sigma_fb = fw * fh / area
    accepted_mean = (sig ** -0.5 * p).mean() / accept if accept > 0 else 0.0
    return float((1 - q) * accepted_mean + q * sigma_fb ** -0.5)


def apparent_size_ratio(k_train: int, k_test: int, *, scale: tuple[float, float] = RRC_SCALE,
                        resize_ratio: float = RESIZE_RATIO,
                        image_size: tuple[int, int] | None = None,
                        account_for_rejection: bool = False,
                        ratio: tuple[float, float] = RRC_RATIO) -> float:
    """Mean apparent object size at train time over the size at test time (paper §3.1).

    ``E[σ^{-1/2}] · K_train / (s_test·K_test) · min(H, W)/√(HW)``, with the effective
    ``s_test·K_test`` = :func:`test_resize_size` (the integer size actually used).
    A value above 1 means objects look larger during training than at test time.

    Args:
        k_train: train crop size K_train.
        k_test: test crop size K_test.
        scale: RRC's range of area fractions.
        resize_ratio: s_test (256/224).
        image_size: ``(H, W)`` of the images; square if ``None``.
        account_for_rejection: use :func:`rrc_expected_inv_sqrt_area` (torchvision's
            rejection of crops that do not fit) instead of the paper's closed form
            :func:`expected_inv_sqrt_area` (σ exactly uniform).
        ratio: RRC's aspect-ratio range (only with ``account_for_rejection``).
    """
    k_train = check_int(k_train, "k_train", min_value=1)
    aspect = 1.0
    hw = (1, 1)
    if image_size is not None:
        hw = tuple(check_int(v, "image_size[i]", min_value=1) for v in image_size)
        aspect = min(hw) / math.sqrt(hw[0] * hw[1])
    e = (rrc_expected_inv_sqrt_area(scale, ratio, hw) if account_for_rejection
         else expected_inv_sqrt_area(scale))
    return e * k_train / test_resize_size(k_test, resize_ratio) * aspect


def matching_test_resolution(k_train: int, *, scale: tuple[float, float] = RRC_SCALE,
                             resize_ratio: float = RESIZE_RATIO,
                             account_for_rejection: bool = False) -> float:
    """The K_test at which the apparent-size ratio is 1: ``E[σ^{-1/2}]·K_train/s_test``
    (square images). ≈ 1.36·K_train for the defaults (≈ 1.44·K_train with
    torchvision's rejection of crops that do not fit)."""
    k_train = check_int(k_train, "k_train", min_value=1)
    e = (rrc_expected_inv_sqrt_area(scale) if account_for_rejection
         else expected_inv_sqrt_area(scale))
    return e * k_train / check_float(resize_ratio, "resize_ratio", min_value=1.0)


def official_resize_shape(image_size: tuple[int, int], size: int) -> tuple[int, int]:
    """``(H', W')`` after the official code's test-time ``Resize(size)``
    (facebookresearch/FixRes, ``imnet_finetune/transforms.py``, ``largest=False``, the
    default used by every test and fine-tuning transform): it sets the **height** to
    ``size`` and the width to ``int(size·W/H)``, whatever the orientation. torchvision's
    ``Resize(int)`` (and this library) set the *shorter* side instead: the two agree for
    landscape and square images; for a portrait image the official rule sets the longer
    side, so the image is smaller by ``W/H`` and narrower than a ``CenterCrop(K)`` of
    ``K = size·224/256``, which torchvision then pads with zeros.

    >>> official_resize_shape((375, 500), 256), official_resize_shape((500, 375), 256)
    ((256, 341), (256, 192))
    """
    h, w = (check_int(v, "image_size[i]", min_value=1) for v in image_size)
    size = check_int(size, "size", min_value=1)
    return size, int(size * w / h)


def monte_carlo_apparent_size(boxes: torch.Tensor, image_size: tuple[int, int], k_train: int,
                              k_test: int, *, draws: int = 4000,
                              scale: tuple[float, float] = RRC_SCALE,
                              ratio: tuple[float, float] = RRC_RATIO,
                              resize_ratio: float = RESIZE_RATIO,
                              seed: int = 0, test_resize: str = "shorter") -> dict[str, Any]:
    """Push ground-truth boxes through torchvision's own transforms and measure sizes.

    Each draw picks a box, applies ``v2.RandomResizedCrop(K_train)`` (train) and
    ``v2.Resize(int(s_test·K_test)) + v2.CenterCrop(K_test)`` (test) to it as a
    ``tv_tensors.BoundingBoxes`` (with clamping off, so that a box partly outside the
    crop keeps its true size), and records the apparent size ``√(w·h)``.

    This is a simulation, not a hot path: one torchvision call per draw.

    ``test_resize="shorter"`` resizes the shorter side (torchvision's ``Resize(int)``);
    ``"height"`` sets the height, as the official code's ``Resize`` does
    (:func:`official_resize_shape`).

    Args:
        boxes: ``(M, 4)`` ground-truth boxes ``(x0, y0, x1, y1)`` in pixels.
        image_size: ``(H, W)`` of the images the boxes live in.

    Returns:
        ``{"train": (draws,) array, "test": (draws,) array, "ratio": mean(train)/mean(test)}``
    """
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    check_tensor(boxes, "boxes", shape="M 4")
    if boxes.shape[0] == 0:
        raise ValueError("boxes must have shape (M, 4) with M >= 1; got (0, 4)")
    h, w = (check_int(v, "image_size[i]", min_value=1) for v in image_size)
    draws = check_int(draws, "draws", min_value=1)
    check_choice(test_resize, "test_resize", ("shorter", "height"))
    torch.manual_seed(seed)  # v2 transforms draw from the global generator
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, boxes.shape[0], (draws,), generator=gen)
    canvas = torch.zeros(1, h, w, dtype=torch.uint8)
    train_tf = v2.RandomResizedCrop(k_train, scale=scale, ratio=ratio, antialias=True)
    size = test_resize_size(k_test, resize_ratio)
    resize = (v2.Resize(size, antialias=True) if test_resize == "shorter"
              else v2.Resize(official_resize_shape((h, w), size), antialias=True))
    test_tf = v2.Compose([resize, v2.CenterCrop(k_test)])
    boxes = boxes.detach().float().cpu()

    def size(b: torch.Tensor) -> float:
        return float(torch.sqrt((b[0, 2] - b[0, 0]) * (b[0, 3] - b[0, 1])))

    train, test = np.empty(draws), np.empty(draws)
    for i, j in enumerate(pick.tolist()):
        bb = tv_tensors.BoundingBoxes(boxes[j:j + 1], format="XYXY", canvas_size=(h, w),
                                      clamping_mode=None)
        train[i] = size(train_tf(tv_tensors.Image(canvas), bb)[1])
        test[i] = size(test_tf(tv_tensors.Image(canvas), bb)[1])
    return {"train": train, "test": test, "ratio": float(train.mean() / test.mean())}



def crop_object_coverage(boxes: torch.Tensor, image_size: tuple[int, int], *,
                         draws: int = 20000, scale: tuple[float, float] = RRC_SCALE,
                         ratio: tuple[float, float] = RRC_RATIO, seed: int = 0) -> torch.Tensor:
    """Fraction of each object's box that a ``RandomResizedCrop`` keeps, for ``draws``
    crops of randomly picked images: ``(draws,)`` in [0, 1] (0: the crop misses the
    object, 1: the whole box is inside).

    Args:
        boxes: ``(M, 4)`` ground-truth boxes ``(x0, y0, x1, y1)``.
        image_size: ``(H, W)``.
    """
    check_tensor(boxes, "boxes", shape="M 4")
    h, w = (check_int(v, "image_size[i]", min_value=1) for v in image_size)
    g = torch.Generator().manual_seed(check_int(seed, "seed", min_value=0))
    b = boxes.detach().float().cpu()[torch.randint(0, boxes.shape[0], (draws,), generator=g)]
    c = sample_rrc_boxes(draws, h, w, scale=scale, ratio=ratio, generator=g)
    iw = (torch.minimum(b[:, 2], c[:, 2]) - torch.maximum(b[:, 0], c[:, 0])).clamp(min=0)
    ih = (torch.minimum(b[:, 3], c[:, 3]) - torch.maximum(b[:, 1], c[:, 1])).clamp(min=0)
    area = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).clamp(min=1e-9)
    return iw * ih / area


