"""Colour jitter with a different draw per image, on the device, reproducible from a
``torch.Generator``.

The four adjustments are kornia's torchvision-compatible ones, which accept one factor
per image: ``adjust_brightness_accumulative`` (``x·b``),
``adjust_contrast_with_mean_subtraction`` (blend with the image's mean grey level),
``adjust_saturation_with_gray_subtraction`` (blend with the grey image) and
``adjust_hue`` (rotation of the hue in HSV), each clamped to [0, 1]. Written here is only
the draw of the factors (:func:`sample_jitter_factors`): ``torchvision.transforms.v2.
ColorJitter`` applies *one* draw to a whole batch, and kornia's ``ColorJitter`` draws
from the global random state, neither from a generator on the images' device. The order
is fixed (brightness, contrast, saturation, hue) rather than random as in torchvision,
so that a seed gives the same images whatever the batch size. The tests check the
result against ``torchvision.transforms.v2.functional.adjust_*`` applied image by image.

Example:
    >>> import torch
    >>> x = torch.rand(3, 3, 8, 8)
    >>> y = color_jitter(x, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
    ...                  generator=torch.Generator().manual_seed(0))
    >>> y.shape, bool((y >= 0).all() and (y <= 1).all())
    (torch.Size([3, 3, 8, 8]), True)
"""

from __future__ import annotations

import math

import torch

from cvbook.core.validate import check_float, check_int, check_tensor

__all__ = ["color_jitter", "sample_jitter_factors"]


def sample_jitter_factors(n: int, *, brightness: float = 0.0, contrast: float = 0.0,
                          saturation: float = 0.0, hue: float = 0.0,
                          generator: torch.Generator | None = None,
                          device: torch.device | str = "cpu",
                          dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Per-image factors as torchvision's ``ColorJitter`` draws them: brightness,
    contrast and saturation ``~ U[max(0, 1 - a), 1 + a]``, hue ``~ U[-h, h]`` (a fraction
    of the colour wheel, ``h <= 0.5``). A strength of 0 gives factors of 1 (hue 0)
    without drawing.

    Returns:
        ``{"brightness", "contrast", "saturation", "hue"}`` -> ``(n,)`` tensors.

    >>> f = sample_jitter_factors(4, brightness=0.5, generator=torch.Generator().manual_seed(0))
    >>> bool(((f["brightness"] >= 0.5) & (f["brightness"] <= 1.5)).all()), f["hue"].tolist()
    (True, [0.0, 0.0, 0.0, 0.0])
    >>> f["contrast"].tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    n = check_int(n, "n", min_value=1)
    dev = torch.device(generator.device if generator is not None else device)
    out = {}
    for name, a in (("brightness", brightness), ("contrast", contrast),
                    ("saturation", saturation)):
        a = check_float(a, name, min_value=0.0)
        if a == 0:
            out[name] = torch.ones(n, device=dev, dtype=dtype)
            continue
        lo, hi = max(0.0, 1.0 - a), 1.0 + a
        out[name] = lo + (hi - lo) * torch.rand(n, generator=generator, device=dev,
                                                dtype=dtype)
    h = check_float(hue, "hue", min_value=0.0, max_value=0.5)
    out["hue"] = torch.zeros(n, device=dev, dtype=dtype) if h == 0 else \
        h * (2 * torch.rand(n, generator=generator, device=dev, dtype=dtype) - 1)
    return out


def color_jitter(images: torch.Tensor, *, brightness: float = 0.0, contrast: float = 0.0,
                 saturation: float = 0.0, hue: float = 0.0,
                 generator: torch.Generator | None = None,
                 factors: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Random colour jitter, one draw per image (see the module docstring).

    Args:
        images: ``(N, 3, H, W)`` RGB in [0, 1].
        brightness, contrast, saturation, hue: strengths as in torchvision.
        generator: for the draws (on the images' device).
        factors: the ``(N,)`` factors of :func:`sample_jitter_factors` to apply instead
            of drawing them (a missing key means "no change").

    Returns:
        ``(N, 3, H, W)`` in [0, 1].
    """
    from kornia.enhance import (
        adjust_brightness_accumulative,
        adjust_contrast_with_mean_subtraction,
        adjust_hue,
        adjust_saturation_with_gray_subtraction,
    )

    check_tensor(images, "images", shape="N 3 H W", floating=True)
    n = images.shape[0]
    if factors is None:
        factors = sample_jitter_factors(n, brightness=brightness, contrast=contrast,
                                        saturation=saturation, hue=hue, generator=generator,
                                        device=images.device, dtype=images.dtype)
        strengths = {"brightness": brightness, "contrast": contrast,
                     "saturation": saturation, "hue": hue}
        factors = {k: v for k, v in factors.items() if strengths[k] != 0}  # skip no-ops
    for k, v in factors.items():
        check_tensor(v, f"factors[{k!r}]", shape=(n,), floating=True)
    out = images
    ops = (("brightness", adjust_brightness_accumulative),
           ("contrast", adjust_contrast_with_mean_subtraction),
           ("saturation", adjust_saturation_with_gray_subtraction))
    for name, op in ops:
        f = factors.get(name)
        if f is not None:
            out = op(out, f.to(out))
    h = factors.get("hue")
    if h is not None:
        out = adjust_hue(out, (2 * math.pi) * h.to(out))
    return out.clamp(0, 1)
