"""The "jittered digits" world: handwritten digits under random affine jitter, stroke
width and clutter, with exact labels.

Each image is one of scikit-learn's 1,797 bundled 8x8 handwritten digits (real
handwriting, offline), resampled onto a larger canvas through a random affine map
(rotation, anisotropic scale, shear, translation), with a random stroke width (a
blend between the glyph and its 3x3 dilation), a few random clutter strokes that
belong to no class, and pixel noise. The nuisances are drawn independently of the
class, so only the digit's shape tells the class apart, while raw-pixel distance is
dominated by the nuisances: the world has headroom for what a network trained on other
classes transfers (the Deep Transfer Clustering chapter, 04).

Everything is generated with one ``torch.Generator`` on the target device, fully
vectorised over images (one ``affine_grid`` + ``grid_sample`` for the jitter, the
clutter strokes as distances to segments evaluated on the pixel grid for the whole
batch).

Example::

    >>> from cvbook.data.glyphs import GlyphConfig, make_jittered_digits
    >>> x, y = make_jittered_digits(GlyphConfig(image_size=16), seed=0)
    >>> x.shape, y.shape, bool(x.min() >= 0) and bool(x.max() <= 1)
    (torch.Size([1797, 1, 16, 16]), torch.Size([1797]), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cvbook.core.validate import check_float, check_int, check_range

__all__ = ["GlyphConfig", "jitter_glyphs", "load_jittered_digits_split",
           "make_jittered_digits"]


@dataclass(frozen=True)
class GlyphConfig:
    """Settings of the jittered-digits world.

    Attributes:
        image_size: side of the square canvas in pixels (>= 8).
        glyph_size: side of the undistorted 8x8 digit on the canvas, in pixels.
        copies: jittered copies of each source digit (1: 1,797 images).
        max_rotation: rotations uniform in ``±max_rotation`` degrees.
        scale_range: isotropic scale (log-uniform).
        aspect_range: extra horizontal/vertical stretch ratio (log-uniform).
        max_shear: shear uniform in ``±max_shear``.
        max_shift: translation uniform in ``±max_shift`` pixels in x and y.
        stroke_range: blend weight of the 3x3 dilation (0: thin, 1: thick).
        clutter: inclusive range of the number of clutter strokes per image.
        clutter_length: clutter stroke length range, fraction of the canvas side.
        clutter_intensity: clutter stroke intensity range.
        noise_std: standard deviation of additive Gaussian pixel noise.
    """

    image_size: int = 16
    glyph_size: float = 11.0
    copies: int = 1
    max_rotation: float = 20.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    aspect_range: tuple[float, float] = (0.8, 1.25)
    max_shear: float = 0.2
    max_shift: float = 2.0
    stroke_range: tuple[float, float] = (0.0, 1.0)
    clutter: tuple[int, int] = (0, 2)
    clutter_length: tuple[float, float] = (0.25, 0.6)
    clutter_intensity: tuple[float, float] = (0.4, 1.0)
    noise_std: float = 0.05

    def validate(self) -> None:
        check_int(self.image_size, "image_size", min_value=8)
        check_int(self.copies, "copies", min_value=1)
        check_float(self.glyph_size, "glyph_size", min_value=1.0)
        check_float(self.max_rotation, "max_rotation", min_value=0.0, max_value=180.0)
        for name in ("max_shear", "max_shift", "noise_std"):
            check_float(getattr(self, name), name, min_value=0.0)
        for name, lo in (("scale_range", 1e-3), ("aspect_range", 1e-3),
                         ("clutter_length", 0.0)):
            check_range(getattr(self, name), name, low=lo, high=math.inf)
        for name in ("stroke_range", "clutter_intensity"):
            check_range(getattr(self, name), name, low=0.0, high=1.0)
        c0, c1 = self.clutter
        check_int(c0, "clutter[0]", min_value=0)
        check_int(c1, "clutter[1]", min_value=c0)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, dev: torch.device
             ) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=dev)


def _log_uniform(n: int, lo: float, hi: float, gen: torch.Generator, dev: torch.device
                 ) -> torch.Tensor:
    return torch.exp(_uniform(n, math.log(lo), math.log(hi), gen, dev))


def jitter_glyphs(glyphs: torch.Tensor, cfg: GlyphConfig | None = None, *,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Render ``(N, 1, h, w)`` glyphs in [0, 1] onto ``(N, 1, S, S)`` canvases with a random
    affine jitter, stroke width, clutter strokes and noise (``S = cfg.image_size``); one
    independent draw per image, all from ``generator`` (on the glyphs' device).

    Returns:
        ``(N, 1, S, S)`` images clamped to [0, 1].
    """
    cfg = cfg or GlyphConfig()
    cfg.validate()
    if not isinstance(glyphs, torch.Tensor) or glyphs.ndim != 4 or glyphs.shape[1] != 1:
        raise ValueError(f"glyphs must be an (N, 1, h, w) tensor, got "
                         f"{getattr(glyphs, 'shape', type(glyphs))}")
    if not glyphs.is_floating_point():
        raise TypeError(f"glyphs must be floating point, got {glyphs.dtype}")
    n, dev, s = glyphs.shape[0], glyphs.device, cfg.image_size
    gen = generator if generator is not None else torch.Generator(dev).manual_seed(0)
    # affine map from canvas coordinates to glyph coordinates (both normalised to
    # [-1, 1]): canvas -> undo shift -> undo rotation/shear/scale -> glyph frame.
    rot = torch.deg2rad(_uniform(n, -cfg.max_rotation, cfg.max_rotation, gen, dev))
    scale = _log_uniform(n, *cfg.scale_range, gen, dev)
    aspect = _log_uniform(n, *cfg.aspect_range, gen, dev)
    shear = _uniform(n, -cfg.max_shear, cfg.max_shear, gen, dev)
    shift = _uniform(2 * n, -cfg.max_shift, cfg.max_shift, gen, dev).view(n, 2) * (2.0 / s)
    sx, sy = scale * aspect.sqrt(), scale / aspect.sqrt()
    c, si = torch.cos(rot), torch.sin(rot)
    # forward map A = R @ Sh @ diag(sx, sy); glyph side glyph_size on a canvas of s
    a = torch.stack([torch.stack([c * sx, (c * shear - si) * sy], -1),
                     torch.stack([si * sx, (si * shear + c) * sy], -1)], -2)  # (N, 2, 2)
    a = a * (cfg.glyph_size / s)
    inv = torch.linalg.inv(a)
    theta = torch.cat([inv, -(inv @ shift[..., None])], dim=2)               # (N, 2, 3)
    grid = F.affine_grid(theta, [n, 1, s, s], align_corners=False)
    x = F.grid_sample(glyphs, grid, mode="bilinear", padding_mode="zeros",
                      align_corners=False)
    # stroke width: blend with the 3x3 dilation
    w = _uniform(n, *cfg.stroke_range, gen, dev).view(n, 1, 1, 1)
    x = x + w * (F.max_pool2d(x, 3, stride=1, padding=1) - x)
    # clutter: strokes (segments) of random length, angle, place and intensity
    m = cfg.clutter[1]
    if m > 0:
        count = torch.randint(cfg.clutter[0], m + 1, (n, 1), generator=gen, device=dev)
        on = torch.arange(m, device=dev)[None] < count                       # (N, M)
        centre = torch.rand(n, m, 2, generator=gen, device=dev) * s
        ang = torch.rand(n, m, generator=gen, device=dev) * math.pi
        half = _uniform(n * m, *cfg.clutter_length, gen, dev).view(n, m) * s / 2
        inten = _uniform(n * m, *cfg.clutter_intensity, gen, dev).view(n, m)
        pix = torch.arange(s, device=dev, dtype=x.dtype) + 0.5
        px, py = pix[None, :].expand(s, s), pix[:, None].expand(s, s)
        dx = px[None, None] - centre[..., 0, None, None]
        dy = py[None, None] - centre[..., 1, None, None]
        u = dx * torch.cos(ang)[..., None, None] + dy * torch.sin(ang)[..., None, None]
        v = -dx * torch.sin(ang)[..., None, None] + dy * torch.cos(ang)[..., None, None]
        along = (u.abs() - half[..., None, None]).clamp_min(0)
        dist = torch.sqrt(along ** 2 + v ** 2)                               # (N, M, S, S)
        stroke = torch.sigmoid((0.7 - dist) / 0.3) * (inten * on)[..., None, None]
        x = torch.maximum(x, stroke.amax(1, keepdim=True))
    if cfg.noise_std > 0:
        x = x + cfg.noise_std * torch.randn(x.shape, generator=gen, device=dev)
    return x.clamp(0.0, 1.0)


def make_jittered_digits(cfg: GlyphConfig | None = None, *, seed: int = 0,
                         device: torch.device | str = "cpu"
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """The world: every scikit-learn digit, ``cfg.copies`` times, jittered on ``device``.

    Returns:
        images ``(N, 1, S, S)`` in [0, 1] and labels ``(N,)`` (int64, 0..9), with
        ``N = 1797 * copies``.
    """
    from cvbook.data.splits import load_digits

    cfg = cfg or GlyphConfig()
    cfg.validate()
    seed = check_int(seed, "seed", min_value=0)
    dev = torch.device(device)
    x8, y = load_digits()
    x8, y = x8.to(dev).repeat(cfg.copies, 1, 1, 1), y.to(dev).repeat(cfg.copies)
    gen = torch.Generator(dev).manual_seed(seed)
    return jitter_glyphs(x8, cfg, generator=gen), y


def load_jittered_digits_split(known: Sequence[int] = (0, 1, 2, 3, 4),
                               unknown: Sequence[int] = (5, 6, 7, 8, 9),
                               cfg: GlyphConfig | None = None, *, seed: int = 0,
                               device: torch.device | str = "cpu"):
    """:func:`make_jittered_digits` split into known (labelled) and unknown digits
    (:class:`cvbook.data.splits.NovelSplit`)."""
    from cvbook.data.splits import split_novel

    x, y = make_jittered_digits(cfg, seed=seed, device=device)
    return split_novel(x, y, known, unknown)
