r"""Image pairs related by a known warp, as DVE's official code makes them.

From one image ``x`` (``S x S``), with two random thin-plate-spline warps
:math:`g_1, g_2` (:func:`cvbook.geometry.warp.random_tps`, sampling maps ``s_1, s_2``):

1. ``target = crop(jitter(x ∘ s_1))``: the first warp;
2. ``source = crop(jitter(x ∘ s_1 ∘ s_2))``: the first image warped again by ``s_2``;
3. colour jitter drawn separately for each of the two images;
4. a border of ``crop`` pixels cut from every side (DVE: 100 -> 70 px), so the black
   border a warp drags in stays out (a pixel that still reads outside the frame
   repeats the edge, ``padding_mode="border"``, rather than black);
5. the ground-truth correspondence is ``s_2``'s sampling grid, cropped.

**Direction (tested).** ``grid[b, y, x]`` is the pixel ``(x', y')`` of ``target[b]``
that shows the same point of the face as pixel ``(x, y)`` of ``source[b]``: the source
read the target there. So a landmark of the source, looked up in the grid, lands on the
same landmark of the target (``sample_at(grid, source_landmarks) ≈
target_landmarks``); DVE's loss asks each *source* descriptor to find its match at
``grid`` in the *target*. Coordinates are pixels of the cropped images
(:mod:`cvbook.geometry.coords`: pixel centres at integers).

**Strengths, as the official code has them.** DVE's ``Warper`` (``utils/tps.py`` of
jamt9000/DVE) multiplies *every* parameter of *both* warps (control-point noise,
rotation, scale, translation) by ``im1_multiplier = 0.5``, so its nominal settings
(rotation 5°, scale 0.1, translation 0.1, noise 0.001 / 0.01) act as half of that on each
warp. :class:`PairConfig` keeps the nominal values and that multiplier
(``multiplier = 0.5``); ``multiplier = 1`` uses the listed values as they are.

Written here: the recipe (the warps, the jitter and ``grid_sample`` are the library's).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from cvbook.core.validate import Shapes, check_float, check_int
from cvbook.geometry.coords import normalized_to_pixel, pixel_grid, pixel_to_normalized
from cvbook.geometry.warp import random_tps, sample_points, warp_image, warp_points
from cvbook.image.jitter import color_jitter

__all__ = ["PairBatch", "PairConfig", "warped_pairs"]


@dataclass(frozen=True)
class PairConfig:
    """Warp and jitter settings of :func:`warped_pairs`. The defaults are DVE's (its
    brief): TPS on a 10 x 10 grid with control noise ``N(0, 0.001^2)``, half of the
    points redrawn from ``N(0, 0.01^2)``; affine part rotation ``N(0, 5°)``, scale
    ``1 + N(0, 0.1)``, translation ``N(0, 0.1)`` (normalised units), every one of them
    times ``multiplier = 0.5`` on both warps (the official ``Warper``'s
    ``im1_multiplier``, applied there to both). The colour jitter
    strengths and the crop are this book's choice (the crop is DVE's 30 % of the side,
    rounded: 100 -> 70 px there, 64 -> 48 px for the faces world).

    Attributes:
        grid: TPS control points per side.
        sigma, sigma_large, p_large: control-point noise of ``g_2`` (``g_1`` uses half).
        rotation, scale, translation: affine part, degrees / fraction / normalised units.
        brightness, contrast, saturation, hue: colour jitter (torchvision's meanings).
        crop: border cut from each side, pixels.
        multiplier: scales every warp parameter above, on both warps (DVE: 0.5).
    """

    grid: int = 10
    sigma: float = 0.001
    sigma_large: float = 0.01
    p_large: float = 0.5
    rotation: float = 5.0
    scale: float = 0.1
    translation: float = 0.1
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.02
    crop: int = 8
    multiplier: float = 0.5

    def __post_init__(self) -> None:
        check_int(self.grid, "grid", min_value=2, max_value=64)
        for name in ("sigma", "sigma_large", "scale", "translation"):
            check_float(getattr(self, name), name, min_value=0.0, max_value=1.0)
        check_float(self.p_large, "p_large", min_value=0.0, max_value=1.0)
        check_float(self.rotation, "rotation", min_value=0.0, max_value=90.0)
        for name in ("brightness", "contrast", "saturation"):
            check_float(getattr(self, name), name, min_value=0.0)
        check_float(self.hue, "hue", min_value=0.0, max_value=0.5)
        check_int(self.crop, "crop", min_value=0)
        check_float(self.multiplier, "multiplier", min_value=0.0, max_value=2.0)


@dataclass
class PairBatch:
    """``B`` image pairs with their correspondence (``h = S - 2 crop``).

    Attributes:
        source: ``(B, 3, h, h)`` the twice-warped image.
        target: ``(B, 3, h, h)`` the once-warped image.
        grid: ``(B, h, h, 2)`` pixel ``(x', y')`` in ``target`` of each source pixel.
        source_landmarks, target_landmarks: ``(B, L, 2)`` pixels (``L = 0`` without
            landmarks).
        identity: ``(B,)`` int64 (``-1`` when unknown).
    """

    source: torch.Tensor
    target: torch.Tensor
    grid: torch.Tensor
    source_landmarks: torch.Tensor
    target_landmarks: torch.Tensor
    identity: torch.Tensor

    def __len__(self) -> int:
        return self.source.shape[0]

    def __getitem__(self, index) -> PairBatch:
        return PairBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def warped_pairs(images: torch.Tensor, landmarks: torch.Tensor | None = None, *,
                 config: PairConfig | None = None, identity: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> PairBatch:
    """Make one pair per image (see the module docstring for the recipe and direction).

    Args:
        images: ``(B, 3, S, S)`` in [0, 1].
        landmarks: optional ``(B, L, 2)`` pixel ``(x, y)`` of ``images``.
        config: :class:`PairConfig` (default: DVE's settings).
        identity: optional ``(B,)`` int64, carried along.
        generator: a ``torch.Generator`` on the images' device.

    Returns:
        a :class:`PairBatch` (its landmarks are where the input landmarks moved).

    >>> p = warped_pairs(torch.rand(2, 3, 32, 32), config=PairConfig(crop=4))
    >>> p.source.shape, p.grid.shape
    (torch.Size([2, 3, 24, 24]), torch.Size([2, 24, 24, 2]))
    """
    cfg = config if config is not None else PairConfig()
    if not isinstance(cfg, PairConfig):
        raise TypeError(f"config must be a PairConfig, got {type(cfg).__name__}")
    s = Shapes()
    s.check(images, "images", "B 3 S S", floating=True)
    b, size = s["B"], s["S"]
    if 2 * cfg.crop >= size:
        raise ValueError(f"config.crop must be < S / 2 = {size / 2}; got {cfg.crop}")
    if landmarks is None:
        landmarks = images.new_zeros(b, 0, 2)
    landmarks = s.check(landmarks, "landmarks", "B L 2", floating=True)
    if identity is None:
        identity = torch.full((b,), -1, dtype=torch.int64, device=images.device)
    identity = s.check(identity, "identity", "B", dtype=torch.int64)
    return _pairs(images, landmarks, identity, cfg, generator)


def _pairs(images: torch.Tensor, landmarks: torch.Tensor, identity: torch.Tensor,
           cfg: PairConfig, g: torch.Generator | None) -> PairBatch:
    b, size = images.shape[0], images.shape[-1]
    dev, dt = images.device, torch.float32
    a = cfg.multiplier  # the official Warper scales both warps alike
    kw = dict(grid=cfg.grid, p_large=cfg.p_large, rotation=a * cfg.rotation,
              scale=a * cfg.scale, translation=a * cfg.translation, sigma=a * cfg.sigma,
              sigma_large=a * cfg.sigma_large, generator=g, device=dev, dtype=dt)
    g1 = random_tps(b, **kw)
    g2 = random_tps(b, **kw)
    x1 = warp_image(images, g1, padding_mode="border")
    c = cfg.crop
    hi = size - c
    sz = (size, size)
    # g2 is evaluated on the kept pixels only (the TPS kernel sum is the cost); its
    # sampling grid reads x1 and is the correspondence
    crop_px = pixel_grid((hi - c, hi - c), device=dev, dtype=dt) + c
    s2 = sample_points(g2, pixel_to_normalized(crop_px, sz).reshape(1, -1, 2).expand(b, -1, -1))
    s2 = s2.reshape(b, hi - c, hi - c, 2)
    x2 = F.grid_sample(x1, s2.to(x1.dtype), padding_mode="border", align_corners=False)
    jit = dict(brightness=cfg.brightness, contrast=cfg.contrast, saturation=cfg.saturation,
               hue=cfg.hue, generator=g)
    x1, x2 = color_jitter(x1[..., c:hi, c:hi], **jit), color_jitter(x2, **jit)
    grid = normalized_to_pixel(s2, sz) - c
    lm1 = warp_points(g1, pixel_to_normalized(landmarks.to(dt), sz))
    lm2 = warp_points(g2, lm1)
    return PairBatch(source=x2.contiguous(), target=x1.contiguous(), grid=grid.contiguous(),
                     source_landmarks=normalized_to_pixel(lm2, sz) - c,
                     target_landmarks=normalized_to_pixel(lm1, sz) - c, identity=identity)
