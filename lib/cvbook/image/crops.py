"""Batched crops on the device: torchvision's ``RandomResizedCrop`` and
``Resize + CenterCrop`` for a whole batch at once.

torchvision's v2 transforms draw one crop per call (per image, on the host), so a batch
would cost a Python loop over images; these functions draw every image's box in one
vectorised call with a ``torch.Generator`` on the images' device and crop-resize all of
them with one ``torchvision.ops.roi_align`` call. The box sampler is written by hand
because torchvision offers no batched version of ``RandomResizedCrop.get_params``; the
tests check that its boxes follow torchvision's distribution and that the crops match
``torchvision.transforms.v2.functional.resized_crop``.

* :func:`sample_rrc_boxes`, :func:`center_crop_boxes`: the boxes;
* :func:`crop_resize`: crop each image to its box and resize;
* :func:`random_resized_crop` (+ random flip) and :func:`center_crop`: the two pipelines.

Example:
    >>> import torch
    >>> x = torch.rand(3, 3, 48, 48)
    >>> random_resized_crop(x, 24, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([3, 3, 24, 24])
    >>> center_crop(x, 24).shape
    torch.Size([3, 3, 24, 24])
"""

from __future__ import annotations

import math

import torch

from cvbook.core.validate import (
    Shapes,
    check_choice,
    check_float,
    check_int,
    check_range,
    check_tensor,
)
from cvbook.image.augment import random_hflip

__all__ = ["RESIZE_RATIO", "RRC_RATIO", "RRC_SCALE", "TEST_RESIZE_RULES", "center_crop",
           "center_crop_boxes", "crop_resize", "random_resized_crop", "resize_size",
           "sample_rrc_boxes"]

#: The test-time resize ratio of ImageNet pipelines: resize the shorter side to 256/224·K,
#: crop K.
RESIZE_RATIO = 256 / 224
#: How the test transform resizes before the centre crop: ``"shorter"`` sets the shorter
#: side to ``int(s·K)`` (torchvision's ``Resize(int)``); ``"height"`` sets the height and
#: keeps the aspect (the FixRes release's own ``Resize``, ``largest=False``), so a portrait
#: image's *longer* side is set and ``CenterCrop(K)`` pads its sides with zeros.
TEST_RESIZE_RULES = ("shorter", "height")
#: torchvision's RandomResizedCrop defaults.
RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3 / 4, 4 / 3)


def resize_size(k_test: int, resize_ratio: float = RESIZE_RATIO) -> int:
    """The shorter-side size ``int(resize_ratio·K_test)`` torchvision-style test
    pipelines resize to before the centre crop (``int`` truncates, as in the FixRes
    paper's and torchvision's reference scripts).

    >>> resize_size(224)
    256
    """
    k_test = check_int(k_test, "k_test", min_value=1)
    resize_ratio = check_float(resize_ratio, "resize_ratio", min_value=1.0)
    return int(resize_ratio * k_test)


def sample_rrc_boxes(n: int, height: int, width: int, *,
                     scale: tuple[float, float] = RRC_SCALE,
                     ratio: tuple[float, float] = RRC_RATIO,
                     generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu", attempts: int = 10) -> torch.Tensor:
    """Crop boxes distributed exactly as torchvision's ``RandomResizedCrop.get_params``,
    for ``n`` images at once.

    Per image: up to ``attempts`` tries of area ``σ·HW`` (σ ~ U[scale]) and aspect
    ``exp(U[log ratio])``, rounded to integers and accepted if the crop fits; the first
    accepted try is used, else the central crop with the aspect clamped to ``ratio``.

    Returns:
        ``(n, 4)`` float boxes ``(x0, y0, x1, y1)`` in pixel-edge coordinates.
    """
    n = check_int(n, "n", min_value=1)
    height = check_int(height, "height", min_value=1)
    width = check_int(width, "width", min_value=1)
    s_lo, s_hi = check_range(scale, "scale", low=0.0, high=1.0)
    r_lo, r_hi = check_range(ratio, "ratio", low=1e-6, high=1e6)
    device = torch.device(generator.device if generator is not None else device)
    area = height * width
    opts = dict(generator=generator, device=device)
    t_area = area * (s_lo + (s_hi - s_lo) * torch.rand(n, attempts, **opts))
    log_r = math.log(r_lo) + (math.log(r_hi) - math.log(r_lo)) * torch.rand(n, attempts, **opts)
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(t_area * aspect))
    h = torch.round(torch.sqrt(t_area / aspect))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    u_top, u_left = torch.rand(n, attempts, **opts), torch.rand(n, attempts, **opts)
    top = torch.floor(u_top * (height - h + 1))
    left = torch.floor(u_left * (width - w + 1))
    first = torch.where(ok.any(1), ok.float().argmax(1), attempts)  # attempts = fallback
    # fallback: central crop, aspect clamped to the ratio range
    in_ratio = width / height
    if in_ratio < r_lo:
        fw, fh = width, int(round(width / r_lo))
    elif in_ratio > r_hi:
        fw, fh = int(round(height * r_hi)), height
    else:
        fw, fh = width, height
    fb = torch.tensor([(height - fh) // 2, (width - fw) // 2, fh, fw], device=device,
                      dtype=torch.float32)
    cand = torch.stack([top, left, h, w], -1)  # (n, attempts, 4)
    cand = torch.cat([cand, fb.expand(n, 1, 4)], 1)
    sel = cand.gather(1, first[:, None, None].expand(n, 1, 4))[:, 0]
    t, l_, hh, ww = sel.unbind(1)
    return torch.stack([l_, t, l_ + ww, t + hh], 1)


def center_crop_boxes(n: int, height: int, width: int, k: int, *,
                      resize_ratio: float = RESIZE_RATIO,
                      device: torch.device | str = "cpu",
                      test_resize: str = "shorter") -> torch.Tensor:
    """The region of the original image that ``Resize(int(s·K)) + CenterCrop(K)`` keeps,
    with torchvision's rounding, as ``(n, 4)`` boxes in original pixel-edge coordinates.

    ``test_resize`` (:data:`TEST_RESIZE_RULES`): ``"shorter"`` (torchvision) or
    ``"height"`` (the FixRes release). Where the resized image is smaller than ``K``,
    the box reaches outside the image, as ``CenterCrop``'s zero padding does (centred
    with torchvision's split of the padding, the extra pixel after the image).

    >>> center_crop_boxes(1, 40, 30, 16, test_resize="height")  # 40x30 -> 18x13: pad 1 + 2
    tensor([[-2.3077,  2.2222, 34.6154, 37.7778]])
    """
    k = check_int(k, "k", min_value=1)
    height = check_int(height, "height", min_value=1)
    width = check_int(width, "width", min_value=1)
    check_choice(test_resize, "test_resize", TEST_RESIZE_RULES)
    size = resize_size(k, resize_ratio)
    if test_resize == "height":
        new_h, new_w = size, int(size * width / height)
    else:
        short, long_ = (height, width) if height <= width else (width, height)
        new_short, new_long = size, int(size * long_ / short)
        new_h, new_w = (new_short, new_long) if height <= width else (new_long, new_short)

    def offset(new: int) -> int:  # torchvision's CenterCrop: crop, or pad (left = diff//2)
        return int(round((new - k) / 2.0)) if new >= k else -((k - new) // 2)

    top, left = offset(new_h), offset(new_w)
    sy, sx = height / new_h, width / new_w
    box = torch.tensor([left * sx, top * sy, (left + k) * sx, (top + k) * sy],
                       dtype=torch.float32, device=device)
    return box.expand(n, 4).clone()


def crop_resize(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop each image to its box and resize to ``size × size``, all in one call.

    Uses ``torchvision.ops.roi_align`` with ``aligned=True`` and an adaptive number of
    samples per output pixel (``ceil(box/size)``), i.e. bilinear interpolation when
    up-sampling and an area-averaging (anti-aliased) filter when down-sampling, close
    to ``torchvision.transforms.v2.functional.resized_crop(antialias=True)``.

    Args:
        images: ``(N, C, H, W)`` float.
        boxes: ``(N, 4)`` boxes ``(x0, y0, x1, y1)`` in pixel-edge coordinates.
        size: output side.

    Returns:
        ``(N, C, size, size)``.
    """
    from torchvision.ops import roi_align

    s = Shapes()
    s.check(images, "images", "N C H W", floating=True)
    s.check(boxes, "boxes", "N 4")
    size = check_int(size, "size", min_value=1)
    idx = torch.arange(images.shape[0], device=images.device, dtype=images.dtype)[:, None]
    rois = torch.cat([idx, boxes.to(images.dtype)], 1)
    return roi_align(images, rois, output_size=(size, size), spatial_scale=1.0,
                     sampling_ratio=0, aligned=True)


def random_resized_crop(images: torch.Tensor, k: int, *,
                        generator: torch.Generator | None = None,
                        scale: tuple[float, float] = RRC_SCALE,
                        ratio: tuple[float, float] = RRC_RATIO,
                        hflip: bool = True) -> torch.Tensor:
    """``RandomResizedCrop(K)`` + random horizontal flip, batched on the images' device.

    Args:
        images: ``(N, C, H, W)`` float.
        k: output side.
        generator: draws the boxes and flips (on the images' device).

    Returns:
        ``(N, C, k, k)``.
    """
    check_tensor(images, "images", shape="N C H W", floating=True)
    n, _, h, w = images.shape
    boxes = sample_rrc_boxes(n, h, w, scale=scale, ratio=ratio, generator=generator,
                             device=images.device)
    out = crop_resize(images, boxes, k)
    if hflip:
        out = random_hflip(out, generator=generator)
    return out


def center_crop(images: torch.Tensor, k: int, *,
                resize_ratio: float = RESIZE_RATIO, test_resize: str = "shorter"
                ) -> torch.Tensor:
    """``Resize(int(s·K)) + CenterCrop(K)``, batched: ``(N, C, H, W) -> (N, C, k, k)``.

    ``test_resize``: which side ``Resize`` sets, ``"shorter"`` (torchvision's
    ``Resize(int)``) or ``"height"`` (the FixRes release's ``Resize``); see
    :func:`center_crop_boxes`. Padding (a resized side shorter than ``k``) is zero, as
    ``CenterCrop``'s, except within one source pixel of the image's edge, where
    ``roi_align`` extends the edge."""
    check_tensor(images, "images", shape="N C H W", floating=True)
    n, _, h, w = images.shape
    return crop_resize(images, center_crop_boxes(n, h, w, k, resize_ratio=resize_ratio,
                                                 device=images.device,
                                                 test_resize=test_resize), k)
