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

A second world with more classes, *jittered letters* (:func:`make_jittered_letters`): the
26 capital Latin letters rendered from the 22 fonts that ship with matplotlib (DejaVu,
STIX, Computer Modern; regular, bold, italic, monospace, serif), an Omniglot-like set in
which a class is a letter and its instances are its typefaces, under the same jitter. It
has enough classes to hold some out of a backbone's training entirely (the class-number
estimate of chapter 04 needs anchors and probes the backbone has never seen).

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

__all__ = ["FONT_FILES", "GlyphConfig", "jitter_glyphs", "load_jittered_digits_split",
           "make_jittered_digits", "make_jittered_letters", "render_letters"]


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


#: The fonts shipped with matplotlib (``mpl-data/fonts/ttf``) that carry the Latin capitals.
FONT_FILES: tuple[str, ...] = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmti10.ttf", "cmmi10.ttf")

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _render_font(path: str, chars: str, px: int) -> list:
    """Every character of ``chars`` from the font file ``path`` at ``px`` pixels, each an
    ``(h, w)`` uint8 numpy array cropped to its ink."""
    import numpy as np
    from matplotlib import ft2font

    flags = getattr(getattr(ft2font, "LoadFlags", None), "NO_HINTING", None)
    if flags is None:  # matplotlib < 3.10
        flags = ft2font.LOAD_NO_HINTING
    font = ft2font.FT2Font(path)
    font.set_size(px, 72)
    out = []
    for char in chars:
        font.set_text(char, 0.0, flags=flags)
        font.draw_glyphs_to_bitmap(antialiased=True)
        img = np.asarray(font.get_image())
        rows, cols = np.nonzero(img > 0)
        if len(rows) == 0:
            raise ValueError(f"font {path} has no ink for {char!r}")
        out.append(img[rows.min():rows.max() + 1, cols.min():cols.max() + 1])
    return out


def render_letters(chars: str = LETTERS, fonts: Sequence[str] = FONT_FILES, size: int = 12
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render every character of ``chars`` in every font of ``fonts`` (file names in
    matplotlib's ``mpl-data/fonts/ttf``), each cropped to its ink, centred and scaled so
    that its longer side fills a ``size x size`` square (aspect kept).

    Returns:
        glyphs ``(len(chars) * len(fonts), 1, size, size)`` in [0, 1] (character-major),
        labels ``(G,)`` (index into ``chars``) and the font index ``(G,)``.
    """
    from pathlib import Path

    import matplotlib

    size = check_int(size, "size", min_value=4)
    if not isinstance(chars, str) or len(chars) == 0 or len(set(chars)) != len(chars):
        raise ValueError(f"chars must be a non-empty string of distinct characters, got "
                         f"{chars!r}")
    if len(fonts) == 0:
        raise ValueError("fonts is empty")
    root = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    out = torch.zeros(len(chars) * len(fonts), 1, size, size)
    for fi, name in enumerate(fonts):
        for ci, img in enumerate(_render_font(str(root / name), chars, 4 * size)):
            g = torch.as_tensor(img, dtype=torch.float32) / 255.0
            h, w = g.shape
            scale = size / max(h, w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            g = F.interpolate(g[None, None], size=(nh, nw), mode="bilinear",
                              antialias=True, align_corners=False)[0, 0]
            top, left = (size - nh) // 2, (size - nw) // 2
            out[ci * len(fonts) + fi, 0, top:top + nh, left:left + nw] = g
    labels = torch.arange(len(chars)).repeat_interleave(len(fonts))
    font_id = torch.arange(len(fonts)).repeat(len(chars))
    return out.clamp(0.0, 1.0), labels, font_id


def make_jittered_letters(cfg: GlyphConfig | None = None, *, copies: int = 3, seed: int = 0,
                          chars: str = LETTERS, device: torch.device | str = "cpu"
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """The jittered-letters world: every letter of ``chars`` in every font of
    :data:`FONT_FILES`, ``copies`` times, each copy an independent draw of
    :func:`jitter_glyphs` (``cfg``) from one generator seeded with ``seed``.

    Returns:
        images ``(N, 1, S, S)`` in [0, 1] and labels ``(N,)`` (int64, index into ``chars``),
        ``N = len(chars) * 22 * copies``.
    """
    cfg = cfg or GlyphConfig()
    cfg.validate()
    seed = check_int(seed, "seed", min_value=0)
    copies = check_int(copies, "copies", min_value=1)
    dev = torch.device(device)
    g, y, _ = render_letters(chars)
    g, y = g.to(dev).repeat(copies, 1, 1, 1), y.to(dev).repeat(copies)
    gen = torch.Generator(dev).manual_seed(seed)
    return jitter_glyphs(g, cfg, generator=gen), y
