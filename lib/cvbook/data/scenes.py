"""The "scenes" world: images of one labelled object on clutter, with exact ground truth.

Every image holds one *target* object whose shape is its class (``disk``, ``square``,
``triangle``, ``star``, ``cross``, ``ring``), drawn with a random colour, scale, position,
rotation and stripe texture (texture and colour are independent of the class, so only
the shape tells the class apart). Behind it lie a smooth random background and a few
*distractor* bars whose shape belongs to no class. Optionally a *spurious cue* (a small
marker at a class-specific place on the top border) can be added with a given
probability, to study networks that learn shortcuts.

Ground truth: class labels, the target's mask and box (from the rendered mask, so
exact at the image's resolution), its diameter in pixels, the distractors' and cue's
masks, and a ``difficult`` flag (a small object together with at least one distractor)
for the pointing game.

Everything is generated with one ``torch.Generator`` on the target device, fully
vectorised over images: every shape's signed distance is evaluated on the pixel grid
for the whole batch at once, then composited back to front with anti-aliased edges (the
shapes and the compositing live in :mod:`cvbook.render`, shared by every world).

Example::

    >>> from cvbook.data.scenes import SceneConfig, make_scenes
    >>> batch = make_scenes(8, SceneConfig(image_size=64), seed=0)
    >>> batch.images.shape, batch.labels.shape, batch.masks.shape
    (torch.Size([8, 3, 64, 64]), torch.Size([8]), torch.Size([8, 64, 64]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from cvbook.core.validate import check_choice, check_float, check_int, check_range
from cvbook.render.composite import coverage, over
from cvbook.render.sdf import SHAPES, bar_distance, object_frame, shape_distance

__all__ = ["SHAPES", "SceneBatch", "SceneConfig", "make_scenes"]


@dataclass(frozen=True)
class SceneConfig:
    """Settings of the scenes world.

    Attributes:
        image_size: side of the square images, in pixels (>= 16).
        classes: the shape classes in use (a subset of :data:`SHAPES`), in label order.
        scale_range: range of the target's diameter as a fraction of the image side
            (sampled log-uniformly).
        distractors: inclusive range of the number of distractor bars per image.
        distractor_scale: range of the distractors' length, fraction of the image side.
        clutter: amplitude of the background's random low-frequency pattern (0 = flat).
        texture_prob: probability that an object is striped rather than plain.
        difficult_below: an image is ``difficult`` when the target's diameter is below
            this fraction of the image side *and* it has at least one distractor.
        cue_prob: probability of drawing the class-specific spurious cue.
        edge_softness: width of the anti-aliased edge, in pixels.
    """

    image_size: int = 64
    classes: tuple[str, ...] = SHAPES
    scale_range: tuple[float, float] = (0.25, 0.7)
    distractors: tuple[int, int] = (0, 2)
    distractor_scale: tuple[float, float] = (0.2, 0.5)
    clutter: float = 0.25
    texture_prob: float = 0.5
    difficult_below: float = 0.35
    cue_prob: float = 0.0
    edge_softness: float = 0.5

    def __post_init__(self) -> None:
        check_int(self.image_size, "image_size", min_value=16, max_value=4096)
        if not isinstance(self.classes, (tuple, list)) or len(self.classes) < 2:
            raise ValueError(f"classes must list at least two of {SHAPES}, got {self.classes!r}")
        for c in self.classes:
            check_choice(c, "classes[i]", SHAPES)
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must not repeat, got {self.classes!r}")
        lo, _ = check_range(self.scale_range, "scale_range", low=0.0, high=1.0)
        if lo <= 0:
            raise ValueError("scale_range must be > 0")
        check_range(self.distractor_scale, "distractor_scale", low=0.0, high=1.0)
        d = self.distractors
        if (not isinstance(d, (tuple, list)) or len(d) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in d)
                or not 0 <= d[0] <= d[1] <= 16):
            raise ValueError(f"distractors must be a pair of ints 0 <= lo <= hi <= 16, got {d!r}")
        check_float(self.clutter, "clutter", min_value=0.0, max_value=1.0)
        check_float(self.texture_prob, "texture_prob", min_value=0.0, max_value=1.0)
        check_float(self.difficult_below, "difficult_below", min_value=0.0, max_value=1.0)
        check_float(self.cue_prob, "cue_prob", min_value=0.0, max_value=1.0)
        check_float(self.edge_softness, "edge_softness", min_value=0.0, open_min=True)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class SceneBatch:
    """A batch of scenes and its ground truth (N images of side S).

    Attributes:
        images: ``(N, 3, S, S)`` float in [0, 1].
        labels: ``(N,)`` int64 class index into ``SceneConfig.classes``.
        masks: ``(N, S, S)`` bool, the target object's visible pixels.
        boxes: ``(N, 4)`` float ``(x0, y0, x1, y1)`` in pixels, tight around ``masks``.
        centers: ``(N, 2)`` float ``(x, y)`` of the target's centre, in pixels.
        diameters: ``(N,)`` float target diameter in pixels.
        difficult: ``(N,)`` bool.
        distractor_masks: ``(N, S, S)`` bool, the distractors' visible pixels.
        cue_masks: ``(N, S, S)`` bool, the spurious cue's pixels (all false if none).
        has_cue: ``(N,)`` bool.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    centers: torch.Tensor
    diameters: torch.Tensor
    difficult: torch.Tensor
    distractor_masks: torch.Tensor
    cue_masks: torch.Tensor
    has_cue: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> SceneBatch:
        return SceneBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device: torch.device | str) -> SceneBatch:
        return SceneBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def make_scenes(n: int, config: SceneConfig | None = None, *, seed: int | None = 0,
                generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> SceneBatch:
    """Generate ``n`` scenes with ground truth, vectorised, on ``device``.

    Args:
        n: number of images (>= 1).
        config: the world's settings (default :class:`SceneConfig`).
        seed: seed of a fresh generator on ``device`` (ignored if ``generator`` given).
            The same seed gives the same scenes on the same kind of device.
        generator: a ``torch.Generator`` on ``device`` to draw from instead.
        device: where to generate.

    Returns:
        A :class:`SceneBatch`.
    """
    n = check_int(n, "n", min_value=1)
    cfg = config if config is not None else SceneConfig()
    if not isinstance(cfg, SceneConfig):
        raise TypeError(f"config must be a SceneConfig, got {type(cfg).__name__}")
    device = torch.device(device)
    if generator is None:
        if seed is None:
            raise ValueError("give a seed or a generator")
        check_int(seed, "seed", min_value=0)
        generator = torch.Generator(device=device).manual_seed(seed)
    elif generator.device.type != device.type:
        raise ValueError(f"generator is on {generator.device}, but device is {device}")
    g = generator
    S = cfg.image_size
    f32 = dict(device=device, dtype=torch.float32)

    def rand(*shape):
        return torch.rand(*shape, generator=g, **f32)

    coords = torch.arange(S, **f32) + 0.5
    py, px = torch.meshgrid(coords, coords, indexing="ij")  # (S, S)
    soft = cfg.edge_softness

    # --- background: base colour plus a smooth random field of a few sinusoids. The
    # field has at most 5 cycles per image, so it is evaluated on a coarse grid and
    # up-sampled bilinearly (16x less work than on every pixel).
    K = 6
    base = 0.25 + 0.5 * rand(n, 3, 1, 1)
    ang = 2 * math.pi * rand(n, K)
    cyc = 1 + 4 * rand(n, K)  # 1-5 cycles per image, any orientation
    freq = torch.stack([cyc * torch.cos(ang), cyc * torch.sin(ang)], -1) * (2 * math.pi / S)
    phase = 2 * math.pi * rand(n, K)
    coarse = max(8, S // 4)
    cc = (torch.arange(coarse, **f32) + 0.5) * (S / coarse)
    cy_, cx_ = torch.meshgrid(cc, cc, indexing="ij")
    wave = torch.sin(freq[..., 0, None, None] * cx_ + freq[..., 1, None, None] * cy_
                     + phase[..., None, None])  # (n, K, s, s)
    tint = rand(n, K, 3) - 0.5
    field = torch.einsum("nkhw,nkc->nchw", wave, tint) / math.sqrt(K)
    field = torch.nn.functional.interpolate(field, size=(S, S), mode="bilinear",
                                            align_corners=False)
    img = (base + 2 * cfg.clutter * field).clamp(0, 1)

    # --- distractors: up to D bars per image, drawn behind the target
    dlo, dhi = cfg.distractors
    D = dhi
    n_distr = torch.randint(dlo, dhi + 1, (n,), generator=g, device=device)
    distractor_mask = torch.zeros(n, S, S, dtype=torch.bool, device=device)
    if D > 0:
        active = torch.arange(D, device=device)[None] < n_distr[:, None]  # (n, D)
        slo, shi = cfg.distractor_scale
        dlen = (slo + (shi - slo) * rand(n, D)) * S / 2
        dcx, dcy = S * rand(n, D), S * rand(n, D)
        dth = math.pi * rand(n, D)
        du, dv = object_frame(px, py, dcx, dcy, dlen, dth)  # (n, D, S, S)
        dd = bar_distance(du, dv, 0.16) * dlen[..., None, None]
        dcov = coverage(dd, soft) * active[..., None, None]
        dcol = rand(n, D, 3)
        for k in range(D):  # composite back to front (D is a handful)
            img = over(img, dcol[:, k, :, None, None], dcov[:, k, None])
        distractor_mask = (dcov > 0.5).any(1)

    # --- the target object
    labels = torch.randint(0, cfg.num_classes, (n,), generator=g, device=device)
    lo, hi = cfg.scale_range
    diam_frac = torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * rand(n))
    radius = diam_frac * S / 2
    cx = radius + (S - 2 * radius) * rand(n)
    cy = radius + (S - 2 * radius) * rand(n)
    theta = 2 * math.pi * rand(n)
    u, v = object_frame(px, py, cx, cy, radius, theta)  # (n, S, S)
    d = torch.empty(n, S, S, **f32)
    for c, name in enumerate(cfg.classes):  # a loop over classes, not images
        sel = (labels == c).nonzero()[:, 0]
        d[sel] = shape_distance(name, u[sel], v[sel])
    cov = coverage(d * radius[:, None, None], soft)  # (n, S, S)
    col1, col2 = rand(n, 3, 1, 1), rand(n, 3, 1, 1)
    striped = (rand(n) < cfg.texture_prob).float()[:, None, None, None]
    sfreq = 2 + 3 * rand(n)
    sang = math.pi * rand(n)
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * sfreq[:, None, None]
                                     * (u * torch.cos(sang)[:, None, None]
                                        + v * torch.sin(sang)[:, None, None]))
    tex = col1 + striped * stripes[:, None] * (col2 - col1)
    img = over(img, tex, cov[:, None])
    mask = cov > 0.5

    # --- optional spurious cue: a marker on the top border at a class-specific place
    has_cue = rand(n) < cfg.cue_prob
    cue_mask = torch.zeros(n, S, S, dtype=torch.bool, device=device)
    if cfg.cue_prob > 0:
        side = max(2, S // 12)
        slot = (S - side) / max(1, cfg.num_classes - 1)
        x0 = (labels.float() * slot).round()
        inside_x = (px[None] >= x0[:, None, None]) & (px[None] < x0[:, None, None] + side)
        inside_y = (py < side)[None]
        cue_mask = inside_x & inside_y & has_cue[:, None, None]
        cue_col = torch.tensor([1.0, 0.0, 1.0], **f32)[None, :, None, None]
        img = torch.where(cue_mask[:, None], cue_col, img)
        mask = mask & ~cue_mask

    # --- ground truth boxes from the mask (exact at this resolution)
    rows, cols = mask.any(2), mask.any(1)  # (n, S) each
    idx = torch.arange(S, device=device)
    big = S + 1
    x0 = torch.where(cols, idx, big).amin(1).float()
    x1 = (torch.where(cols, idx, -1).amax(1) + 1).float()
    y0 = torch.where(rows, idx, big).amin(1).float()
    y1 = (torch.where(rows, idx, -1).amax(1) + 1).float()
    boxes = torch.stack([x0, y0, x1, y1], 1)
    difficult = (diam_frac < cfg.difficult_below) & (n_distr > 0)
    return SceneBatch(images=img.clamp(0, 1).contiguous(), labels=labels, masks=mask,
                      boxes=boxes, centers=torch.stack([cx, cy], 1), diameters=2 * radius,
                      difficult=difficult, distractor_masks=distractor_mask & ~mask,
                      cue_masks=cue_mask, has_cue=has_cue)
