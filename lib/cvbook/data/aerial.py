"""The "aerial" world: overhead tiles with building (or rail-track) polygons, and noisy
annotations of them, for learning to correct misaligned annotations (chapter 10).

**Buildings** (:func:`make_aerial`): a textured ground (a base colour, a smooth random
field and fine grain), one or two straight roads with dashed centre lines along the
boundaries of a ``grid x grid`` layout, and 3-8 buildings, each inside its own cell (so
that true buildings never overlap): rectangles and L-shapes with a roof colour, a gable
ridge (the two halves of the roof lit differently) and a cast shadow (the footprint
shifted away from the sun, darkening the ground). Some cells hold a *tight cluster*: one
block split into two buildings with the same roof, a gap of one to a few pixels between
them, so that an annotation shifted by the noise may land on the neighbour.

**Rails** (:func:`cvbook.data.rails.make_rails`): one or two straight railway tracks
crossing the tile (two thin rails on periodic sleepers over a ballast bed; two tracks
run parallel). A track's annotation is a long strip (longer than the tile), so a shift
along the track changes nothing inside the tile: the object is translation-symmetric.

**Annotations**: the ground-truth polygons ``(N, K, V, 2)`` (``V = 6``: rectangles are
padded by repeating a vertex, see :mod:`cvbook.geometry.polygon`), a ``valid`` mask
``(N, K)``, and noisy copies ``noisy = n · polygons`` with ``n`` a similarity about each
polygon's centroid drawn independently per polygon, uniform and zero-mean in
``(tx, ty, theta, log_s)`` (:func:`cvbook.geometry.polygon.random_similarity`), plus an
optional systematic shift common to all polygons (INRIA's annotations are known to be
offset as a whole in places).

Everything is drawn with one ``torch.Generator`` on the target device (the same ``n``
and seed give the same tiles), the layout of all tiles first, then rendered in chunks of
:data:`CHUNK` tiles, every building's signed distance evaluated on the whole pixel grid
at once.

Example:
    >>> from cvbook.data.aerial import AerialConfig, make_aerial
    >>> b = make_aerial(4, AerialConfig(tile_size=64), seed=0)
    >>> b.images.shape, b.polygons.shape, b.valid.shape
    (torch.Size([4, 3, 64, 64]), torch.Size([4, 8, 6, 2]), torch.Size([4, 8]))
    >>> bool((b.valid.sum(1) >= 3).all() and (b.valid.sum(1) <= 8).all())
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from cvbook.core.validate import check_float, check_int, check_range, check_tensor
from cvbook.geometry.polygon import (
    _similarity,
    random_similarity,
    rasterize_polygons,
    splat_polygons,
)
from cvbook.render.composite import coverage, over

__all__ = [
    "CHUNK",
    "KIND_CLUSTER",
    "KIND_L",
    "KIND_RAIL",
    "KIND_RECT",
    "AerialBatch",
    "AerialConfig",
    "annotation_masks",
    "make_aerial",
    "perturb_polygons",
]

#: tiles rendered at once (a constant, so that the draw does not depend on it)
CHUNK = 16
#: polygon kinds in :attr:`AerialBatch.kinds`
KIND_RECT, KIND_L, KIND_CLUSTER, KIND_RAIL = 0, 1, 2, 3
V = 6  # vertices per polygon (rectangles padded)

_ROOFS = torch.tensor([[0.62, 0.30, 0.22], [0.45, 0.45, 0.48], [0.72, 0.70, 0.66],
                       [0.38, 0.42, 0.55], [0.50, 0.36, 0.28], [0.80, 0.55, 0.40]])
_GROUNDS = torch.tensor([[0.36, 0.46, 0.26], [0.50, 0.48, 0.34], [0.42, 0.50, 0.33]])


@dataclass(frozen=True)
class AerialConfig:
    """Settings of the aerial world.

    Attributes:
        tile_size: side of the square tiles in pixels (>= 32).
        grid: cells per side of the layout; each building lies inside its cell.
        buildings: inclusive range of buildings per tile (at most ``grid**2 + clusters``).
        cluster_prob: probability of each of up to two cells per tile being a tight
            cluster (two buildings, one block split by a small gap).
        cluster_gap: range of that gap in pixels.
        l_prob: probability that a single building is L-shaped.
        size_range: range of a building's long side as a fraction of the cell side (then
            shrunk if needed so that the building stays inside its cell).
        max_angle: buildings are rotated by up to this angle (degrees) off the roads.
        shadow: range of the shadow's length in pixels (0 turns shadows off).
        roads: inclusive range of roads per tile.
        noise_shift, noise_rotation, noise_scale: the annotation noise, uniform per polygon:
            shift in pixels per axis, rotation in degrees, relative scale
            (:func:`cvbook.geometry.polygon.random_similarity`).
        systematic_shift: ``(dx, dy)`` added to every noisy polygon (pixels).
        grain: standard deviation of the ground's per-pixel grain.
        edge_softness: anti-aliasing width in pixels.
    """

    tile_size: int = 128
    grid: int = 3
    buildings: tuple[int, int] = (3, 8)
    cluster_prob: float = 0.4
    cluster_gap: tuple[float, float] = (1.0, 2.5)
    l_prob: float = 0.35
    size_range: tuple[float, float] = (0.45, 0.8)
    max_angle: float = 25.0
    shadow: tuple[float, float] = (2.0, 4.0)
    roads: tuple[int, int] = (1, 2)
    noise_shift: float = 6.0
    noise_rotation: float = 10.0
    noise_scale: float = 0.1
    systematic_shift: tuple[float, float] = (0.0, 0.0)
    grain: float = 0.03
    edge_softness: float = 0.5

    def __post_init__(self) -> None:
        check_int(self.tile_size, "tile_size", min_value=32, max_value=4096)
        check_int(self.grid, "grid", min_value=1, max_value=8)
        b = self.buildings
        if (not isinstance(b, (tuple, list)) or len(b) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in b)
                or not 1 <= b[0] <= b[1] <= self.grid ** 2 + 2):
            raise ValueError(f"buildings must be a pair of ints 1 <= lo <= hi <= grid**2 + 2 "
                             f"= {self.grid ** 2 + 2}; got {b!r}")
        check_float(self.cluster_prob, "cluster_prob", min_value=0.0, max_value=1.0)
        check_range(self.cluster_gap, "cluster_gap", low=0.0, high=16.0)
        check_float(self.l_prob, "l_prob", min_value=0.0, max_value=1.0)
        lo, _ = check_range(self.size_range, "size_range", low=0.0, high=1.0)
        if lo <= 0:
            raise ValueError(f"size_range must be > 0, got {self.size_range!r}")
        check_float(self.max_angle, "max_angle", min_value=0.0, max_value=90.0)
        check_range(self.shadow, "shadow", low=0.0, high=64.0)
        r = self.roads
        if (not isinstance(r, (tuple, list)) or len(r) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in r)
                or not 0 <= r[0] <= r[1] <= 2):
            raise ValueError(f"roads must be a pair of ints 0 <= lo <= hi <= 2; got {r!r}")
        check_float(self.noise_shift, "noise_shift", min_value=0.0)
        check_float(self.noise_rotation, "noise_rotation", min_value=0.0, max_value=180.0)
        check_float(self.noise_scale, "noise_scale", min_value=0.0, max_value=1.0)
        s = self.systematic_shift
        if not isinstance(s, (tuple, list)) or len(s) != 2:
            raise TypeError(f"systematic_shift must be a pair (dx, dy), got {s!r}")
        for i, x in enumerate(s):
            check_float(x, f"systematic_shift[{i}]")
        check_float(self.grain, "grain", min_value=0.0, max_value=1.0)
        check_float(self.edge_softness, "edge_softness", min_value=0.0, open_min=True)

    @property
    def max_polygons(self) -> int:
        return self.buildings[1]


@dataclass
class AerialBatch:
    """Tiles and their annotations (N tiles of side S, K polygon slots of V = 6 vertices).

    Attributes:
        images: ``(N, 3, S, S)`` float in [0, 1].
        polygons: ``(N, K, V, 2)`` true polygons ``(x, y)`` in pixels (pixel centres at
            integers); invalid slots hold a copy of a valid polygon far outside the tile.
        valid: ``(N, K)`` bool, the slots that hold an object.
        kinds: ``(N, K)`` int64, :data:`KIND_RECT`, :data:`KIND_L`, :data:`KIND_CLUSTER`
            (one of a tight pair) or :data:`KIND_RAIL`.
        cluster: ``(N, K)`` int64, the cell index shared by a cluster's two buildings
            (-1 for single objects).
        masks: ``(N, S, S)`` bool, the rendered objects' pixels (roofs or rails).
        noise: ``(N, K, 4)`` the per-polygon noise ``(tx, ty, theta, log_s)`` (without the
            systematic shift).
        noisy: ``(N, K, V, 2)`` the noisy annotations ``n · polygons`` plus the systematic
            shift.
    """

    images: torch.Tensor
    polygons: torch.Tensor
    valid: torch.Tensor
    kinds: torch.Tensor
    cluster: torch.Tensor
    masks: torch.Tensor
    noise: torch.Tensor
    noisy: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> AerialBatch:
        return AerialBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device: torch.device | str) -> AerialBatch:
        return AerialBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def outlines(self, i: int, *, noisy: bool = False) -> list[np.ndarray]:
        """The closed outlines ``(V + 1, 2)`` of tile ``i``'s valid polygons, as NumPy
        arrays for ``ax.plot(*o.T)``."""
        polys = (self.noisy if noisy else self.polygons)[i][self.valid[i]].detach().cpu()
        return [torch.cat([p, p[:1]]).numpy() for p in polys]


def perturb_polygons(polygons: torch.Tensor, noise: torch.Tensor,
                     shift: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """``n · a``: apply the similarity ``noise`` about each polygon's centroid, then add
    the common ``shift``.

    Args:
        polygons: ``(..., V, 2)``; noise: ``(..., 4)`` ``(tx, ty, theta, log_s)``.
        shift: ``(dx, dy)`` in pixels.

    Returns:
        ``(..., V, 2)``.
    """
    polygons = check_tensor(polygons, "polygons", shape="... V 2", floating=True)
    noise = check_tensor(noise, "noise", shape="... 4", floating=True)
    out = _similarity(polygons, noise)
    if shift[0] or shift[1]:
        out = out + torch.tensor(shift, device=out.device, dtype=out.dtype)
    return out


def annotation_masks(polygons: torch.Tensor, valid: torch.Tensor, size: int, *,
                     supersample: int | None = None, softness: float = 0.5,
                     reduce: str = "max", window: int | None = None) -> torch.Tensor:
    """Each tile's valid polygons as one coverage map ``(N, S, S)``, rasterised tile by
    tile to bound memory.

    Args:
        polygons: ``(N, K, V, 2)``; valid: ``(N, K)`` bool; size: the tile side ``S``.
        supersample, softness: as :func:`cvbook.geometry.polygon.rasterize_polygons`.
        reduce: ``"max"`` (the union) or ``"sum"`` (the sum of coverages, from which one
            polygon's own coverage can be subtracted again, e.g. a memory map).
        window: with ``reduce="sum"`` and soft coverage, compute each polygon only in a
            ``window x window`` patch around it
            (:func:`cvbook.geometry.polygon.splat_polygons`; the patch must hold it).
    """
    polygons = check_tensor(polygons, "polygons", shape="N K V 2", floating=True)
    valid = check_tensor(valid, "valid", shape=tuple(polygons.shape[:2]), dtype=torch.bool)
    if reduce not in ("max", "sum"):
        raise ValueError(f"reduce must be one of 'max', 'sum'; got {reduce!r}")
    if window is not None:
        if reduce != "sum" or supersample is not None:
            raise ValueError("window needs reduce='sum' and soft coverage (supersample=None)")
        tile, slot = valid.nonzero(as_tuple=True)
        maps = torch.zeros(polygons.shape[0], size, size, device=polygons.device,
                           dtype=polygons.dtype)
        return splat_polygons(maps, tile, polygons[tile, slot], window=window,
                              softness=softness)
    out = []
    for p, v in zip(polygons, valid):
        cov = rasterize_polygons(p, size, supersample=supersample, softness=softness)
        cov = cov * v[:, None, None]
        out.append(cov.amax(0) if reduce == "max" else cov.sum(0))
    return torch.stack(out)


# ------------------------------------------------------------------ helpers
def _generator(seed: int | None, generator: torch.Generator | None,
               device: torch.device) -> torch.Generator:
    if generator is None:
        if seed is None:
            raise ValueError("give a seed or a generator")
        check_int(seed, "seed", min_value=0)
        return torch.Generator(device=device).manual_seed(seed)
    if generator.device.type != device.type:
        raise ValueError(f"generator is on {generator.device}, but device is {device}")
    return generator


def _box(u: torch.Tensor, v: torch.Tensor, hu: torch.Tensor, hv: torch.Tensor) -> torch.Tensor:
    """Exact signed distance to a centred box of half-sides ``hu, hv`` (broadcast)."""
    qu, qv = u.abs() - hu, v.abs() - hv
    outside = torch.sqrt(qu.clamp_min(0) ** 2 + qv.clamp_min(0) ** 2 + 1e-12)
    return outside + torch.maximum(qu, qv).clamp_max(0)


def _ground(n: int, S: int, cfg: AerialConfig, g: torch.Generator,
            f32: dict) -> torch.Tensor:
    """Base colour + smooth field of a few sinusoids (on a coarse grid) + grain."""
    K = 5
    base = _GROUNDS.to(**f32)[torch.randint(0, len(_GROUNDS), (n,), generator=g,
                                              device=f32["device"])][..., None, None]
    base = base + 0.06 * (torch.rand(n, 3, 1, 1, generator=g, **f32) - 0.5)
    ang = 2 * math.pi * torch.rand(n, K, generator=g, **f32)
    cyc = 1 + 5 * torch.rand(n, K, generator=g, **f32)
    phase = 2 * math.pi * torch.rand(n, K, generator=g, **f32)
    amp = 0.05 * torch.rand(n, K, 1, generator=g, **f32)
    coarse = max(8, S // 4)
    cc = (torch.arange(coarse, **f32) + 0.5) * (S / coarse)
    cy, cx = torch.meshgrid(cc, cc, indexing="ij")
    k = 2 * math.pi * cyc / S
    wave = torch.sin(k[..., None, None] * (torch.cos(ang)[..., None, None] * cx
                                           + torch.sin(ang)[..., None, None] * cy)
                     + phase[..., None, None])  # (n, K, c, c)
    field = (wave[:, :, None] * amp[..., None, None]).sum(1)  # (n, 1, c, c)
    field = torch.nn.functional.interpolate(field, size=(S, S), mode="bilinear",
                                            align_corners=False)
    grain = cfg.grain * torch.randn(n, 1, S, S, generator=g, **f32)
    return (base * (1 + field) + grain).clamp(0, 1)


# ------------------------------------------------------------------ buildings
def _layout(n: int, cfg: AerialConfig, g: torch.Generator, f32: dict) -> dict:
    """Draw every building's parameters: ``(n, C, 2)`` per cell and part."""
    dev = f32["device"]
    S, G = cfg.tile_size, cfg.grid
    C = G * G
    cell = S / G
    blo, bhi = cfg.buildings
    total = torch.randint(blo, bhi + 1, (n,), generator=g, device=dev)
    clusters = (torch.rand(n, 2, generator=g, **f32) < cfg.cluster_prob).sum(1)
    clusters = torch.minimum(clusters, (total - 1).clamp_min(0) // 2)
    cells_used = torch.minimum(total - clusters, torch.full_like(total, C))
    clusters = torch.minimum(clusters, total - cells_used)
    order = torch.rand(n, C, generator=g, **f32).argsort(1)  # random cell permutation
    rank = order.argsort(1)  # rank[i, c]: position of cell c in the permutation
    occupied = rank < cells_used[:, None]  # (n, C)
    is_cluster = rank < clusters[:, None]  # the first occupied cells are clusters
    # the block in each cell: long side L, aspect r, angle, centre jitter
    lo, hi = cfg.size_range
    L = (lo + (hi - lo) * torch.rand(n, C, generator=g, **f32)) * cell
    r = 0.5 + 0.4 * torch.rand(n, C, generator=g, **f32)
    L = torch.minimum(L, 0.84 * cell / torch.sqrt(1 + r * r))  # inside the cell's disc
    W = r * L
    ang = math.radians(cfg.max_angle) * (2 * torch.rand(n, C, generator=g, **f32) - 1)
    ang = ang + (math.pi / 2) * (torch.rand(n, C, generator=g, **f32) < 0.5)
    R = 0.5 * torch.sqrt(L * L + W * W)
    slack = (0.46 * cell - R).clamp_min(0)
    jit = slack[..., None] * (2 * torch.rand(n, C, 2, generator=g, **f32) - 1) / math.sqrt(2)
    ci = torch.arange(C, device=dev)
    centre = torch.stack([(ci % G).to(f32["dtype"]), (ci // G).to(f32["dtype"])], -1)
    centre = (centre + 0.5) * cell - 0.5 + jit  # pixel centres at integers
    # L-shapes (single buildings only): notch fractions and corner signs
    is_l = (torch.rand(n, C, generator=g, **f32) < cfg.l_prob) & ~is_cluster
    notch = 0.35 + 0.25 * torch.rand(n, C, 2, generator=g, **f32)
    flip = torch.where(torch.rand(n, C, 2, generator=g, **f32) < 0.5, -1.0, 1.0)
    # clusters: split the block along L with a gap
    gap_lo, gap_hi = cfg.cluster_gap
    gap = gap_lo + (gap_hi - gap_lo) * torch.rand(n, C, generator=g, **f32)
    frac = 0.38 + 0.24 * torch.rand(n, C, generator=g, **f32)
    roof = _ROOFS.to(**f32)[torch.randint(0, len(_ROOFS), (n, C), generator=g, device=dev)]
    roof = (roof * (0.85 + 0.3 * torch.rand(n, C, 1, generator=g, **f32))).clamp(0, 1)
    # the other roof of a cluster: the same colour; single buildings: unused
    height = cfg.shadow[0] + (cfg.shadow[1] - cfg.shadow[0]) * torch.rand(n, C, generator=g,
                                                                          **f32)
    sun = 2 * math.pi * torch.rand(n, generator=g, **f32)
    return dict(occupied=occupied, is_cluster=is_cluster, is_l=is_l, L=L, W=W, ang=ang,
                centre=centre, notch=notch, flip=flip, gap=gap, frac=frac, roof=roof,
                height=height, sun=sun, rank=rank)


def _parts(lay: dict) -> dict:
    """Split every cell into two parts (part 1 exists only in clusters): each part's
    centre offset along the block, half-sizes, and object-frame polygon ``(V, 2)``."""
    L, W, gap, frac = lay["L"], lay["W"], lay["gap"], lay["frac"]
    clu = lay["is_cluster"]
    L0 = torch.where(clu, frac * (L - gap), L)
    L1 = torch.where(clu, (1 - frac) * (L - gap), torch.zeros_like(L))
    off0 = torch.where(clu, -L / 2 + L0 / 2, torch.zeros_like(L))
    off1 = L / 2 - L1 / 2
    hu = torch.stack([L0, L1], -1) / 2  # (n, C, 2)
    hv = (W / 2)[..., None].expand_as(hu)
    off = torch.stack([off0, off1], -1)
    # object-frame vertices: rectangles padded, L-shapes with a notch at (+u, +v) flipped
    su, sv = lay["flip"][..., 0:1], lay["flip"][..., 1:2]  # (n, C, 1)
    a = lay["notch"][..., 0:1] * 2 * hu  # notch length along u
    b = lay["notch"][..., 1:2] * 2 * hv
    rect_u = torch.stack([-hu, hu, hu, -hu, -hu, -hu], -1)
    rect_v = torch.stack([-hv, -hv, hv, hv, hv, hv], -1)
    l_u = torch.stack([-hu, hu, hu, hu - a, hu - a, -hu], -1) * su[..., None]
    l_v = torch.stack([-hv, -hv, hv - b, hv - b, hv, hv], -1) * sv[..., None]
    is_l = lay["is_l"][..., None, None]
    u = torch.where(is_l, l_u, rect_u) + off[..., None]
    v = torch.where(is_l, l_v, rect_v)
    return dict(hu=hu, hv=hv, off=off, a=a, b=b, u=u, v=v)


def _to_tile(u: torch.Tensor, v: torch.Tensor, centre: torch.Tensor, ang: torch.Tensor
             ) -> torch.Tensor:
    """Object frame ``(..., V)`` -> tile ``(..., V, 2)`` with ``x = c + R(ang) (u, v)``."""
    c, s = ang.cos()[..., None], ang.sin()[..., None]
    return torch.stack([centre[..., 0:1] + c * u - s * v, centre[..., 1:2] + s * u + c * v], -1)


def _render_buildings(img: torch.Tensor, lay: dict, parts: dict, px: torch.Tensor,
                      py: torch.Tensor, soft: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Shadows then roofs of the existing (cell, part) buildings, vectorised over them
    (gathered into one flat batch, then summed back into their tiles: buildings never
    overlap, so a sum of coverages is their union); returns image and mask."""
    n, C = lay["L"].shape
    exists = torch.stack([lay["occupied"], lay["occupied"] & lay["is_cluster"]], -1)
    idx = exists.reshape(-1).nonzero()[:, 0]  # (M,)
    tile = idx // (2 * C)

    def flat(x: torch.Tensor, per_part: bool = False) -> torch.Tensor:
        """(n, C, 2, ...) per part, or (n, C, ...) per cell -> (M, ...)"""
        if per_part:
            return x.reshape(n * C * 2, *x.shape[3:])[idx]
        return x[:, :, None].expand(n, C, 2, *x.shape[2:]).reshape(n * C * 2, *x.shape[2:])[idx]

    ang = flat(lay["ang"])
    cs, sn = ang.cos()[:, None, None], ang.sin()[:, None, None]
    off = flat(parts["off"], True)
    centre = flat(lay["centre"])
    cx = centre[:, 0] + ang.cos() * off
    cy = centre[:, 1] + ang.sin() * off
    hu, hv = flat(parts["hu"], True)[:, None, None], flat(parts["hv"], True)[:, None, None]
    flip = flat(lay["flip"])
    su, sv = flip[:, 0, None, None], flip[:, 1, None, None]
    a = flat(parts["a"], True)[:, None, None]
    b = flat(parts["b"], True)[:, None, None]
    is_l = flat(lay["is_l"])[:, None, None]

    def dist(x0: torch.Tensor, y0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dx, dy = px - x0[:, None, None], py - y0[:, None, None]
        u, v = cs * dx + sn * dy, -sn * dx + cs * dy
        d = _box(u, v, hu, hv)
        # L-shape: remove the notch box at the flipped (+u, +v) corner
        notch = _box(u * su - (hu - a / 2), v * sv - (hv - b / 2), a / 2 + 1e-3, b / 2 + 1e-3)
        return torch.where(is_l, torch.maximum(d, -notch), d), v

    S = px.shape[-1]
    # shadow: the footprint moved away from the sun by the building's height
    sun = lay["sun"][tile]
    h = flat(lay["height"])
    d, _ = dist(cx + h * sun.cos(), cy + h * sun.sin())
    shadow = torch.zeros(n, S, S, device=img.device, dtype=img.dtype)
    shadow = shadow.index_add_(0, tile, coverage(d, soft)).clamp_max(1)  # union
    img = img * (1 - 0.5 * shadow[:, None])
    # roofs: a gable, the half with v > 0 darker than the other
    d, v = dist(cx, cy)
    cov = coverage(d, soft)  # (M, S, S)
    colour = flat(lay["roof"])[:, :, None, None] * torch.where(v > 0, 0.78, 1.0)[:, None]
    alpha = torch.zeros(n, 1, S, S, device=img.device, dtype=img.dtype)
    alpha = alpha.index_add_(0, tile, cov[:, None]).clamp_max(1)
    paint = torch.zeros_like(img).index_add_(0, tile, colour * cov[:, None])
    return img * (1 - alpha) + paint, alpha[:, 0] > 0.5


def _draw_roads(img: torch.Tensor, n: int, cfg: AerialConfig, g: torch.Generator,
                px: torch.Tensor, py: torch.Tensor, f32: dict) -> torch.Tensor:
    S, G = cfg.tile_size, cfg.grid
    lo, hi = cfg.roads
    count = torch.randint(lo, hi + 1, (n,), generator=g, device=f32["device"])
    # road k: horizontal or vertical, on a cell boundary (or the tile's middle if G = 1)
    vertical = torch.rand(n, 2, generator=g, **f32) < 0.5
    lines = max(G - 1, 1)
    pos = torch.randint(1, lines + 1, (n, 2), generator=g, device=f32["device"])
    pos = pos.to(f32["dtype"]) * S / (lines + 1) - 0.5
    width = 4 + 3 * torch.rand(n, 2, generator=g, **f32)
    tone = 0.42 + 0.12 * torch.rand(n, 2, 1, generator=g, **f32)
    for k in range(2):
        across = torch.where(vertical[:, k, None, None], px, py)  # (n, S, S)
        along = torch.where(vertical[:, k, None, None], py, px)
        d = (across - pos[:, k, None, None]).abs() - width[:, k, None, None] / 2
        alpha = coverage(d, cfg.edge_softness) * (count > k)[:, None, None]
        img = over(img, tone[:, k, :, None, None].expand(n, 3, 1, 1), alpha[:, None])
        dash = (torch.remainder(along, 8.0) < 4).float()
        mark = coverage((across - pos[:, k, None, None]).abs() - 0.4, 0.4) * dash
        img = over(img, torch.full((1, 3, 1, 1), 0.9, **f32), (0.8 * mark * alpha)[:, None])
    return img


def make_aerial(n: int, config: AerialConfig | None = None, *, seed: int | None = 0,
                generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> AerialBatch:
    """Generate ``n`` building tiles with true and noisy polygons, on ``device``.

    Args:
        n: number of tiles (>= 1).
        config: the world's settings (default :class:`AerialConfig`).
        seed: seed of a fresh generator on ``device`` (ignored if ``generator`` is given);
            the same seed gives the same tiles on the same kind of device.
        generator: a ``torch.Generator`` on ``device`` to draw from instead.
        device: where to generate.

    Returns:
        An :class:`AerialBatch` with ``K = config.buildings[1]`` slots per tile, the
        valid ones first.
    """
    n = check_int(n, "n", min_value=1)
    cfg = config if config is not None else AerialConfig()
    if not isinstance(cfg, AerialConfig):
        raise TypeError(f"config must be an AerialConfig, got {type(cfg).__name__}")
    device = torch.device(device)
    g = _generator(seed, generator, device)
    f32 = dict(device=device, dtype=torch.float32)
    S, C = cfg.tile_size, cfg.grid ** 2
    lay = _layout(n, cfg, g, f32)
    parts = _parts(lay)
    exists = torch.stack([lay["occupied"], lay["occupied"] & lay["is_cluster"]], -1)
    ang = lay["ang"][..., None].expand(n, C, 2)
    centre = lay["centre"][:, :, None, :].expand(n, C, 2, 2)  # the offset is in u already
    poly = _to_tile(parts["u"], parts["v"], centre, ang)  # (n, C, 2, V, 2)
    kinds = torch.where(lay["is_cluster"], KIND_CLUSTER,
                        torch.where(lay["is_l"], KIND_L, KIND_RECT))[..., None].expand(n, C, 2)
    cid = torch.where(lay["is_cluster"], torch.arange(C, device=device), -1)
    cid = cid[..., None].expand(n, C, 2)
    # compact: valid slots first (in layout order), K = buildings[1] slots
    K = cfg.max_polygons
    flat_exists = exists.reshape(n, 2 * C)
    key = (~flat_exists).float() * (2 * C) + torch.arange(2 * C, device=device)
    idx = key.argsort(1)[:, :K]  # (n, K)
    valid = flat_exists.gather(1, idx)
    polygons = poly.reshape(n, 2 * C, V, 2).gather(1, idx[..., None, None].expand(n, K, V, 2))
    far = torch.tensor([-10.0 * S, -10.0 * S], **f32)
    polygons = torch.where(valid[..., None, None], polygons, polygons + far)
    kinds = kinds.reshape(n, 2 * C).gather(1, idx)
    cid = cid.reshape(n, 2 * C).gather(1, idx)
    # noise: drawn after the layout, before the texture
    noise = _noise(n, K, cfg, g, f32)
    # render in chunks (the random texture is drawn per chunk, in order)
    coords = torch.arange(S, **f32)
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    images, masks = [], []
    for lo in range(0, n, CHUNK):
        sl = slice(lo, min(n, lo + CHUNK))
        m = sl.stop - sl.start
        img = _ground(m, S, cfg, g, f32)
        img = _draw_roads(img, m, cfg, g, px, py, f32)
        sub = {k: v[sl] for k, v in lay.items()}
        img, mask = _render_buildings(img, sub, {k: v[sl] for k, v in parts.items()},
                                      px, py, cfg.edge_softness)
        images.append(img.clamp(0, 1))
        masks.append(mask)
    noisy = perturb_polygons(polygons, noise, cfg.systematic_shift)
    return AerialBatch(images=torch.cat(images).contiguous(), polygons=polygons, valid=valid,
                       kinds=kinds, cluster=cid, masks=torch.cat(masks), noise=noise,
                       noisy=noisy)


def _noise(n: int, K: int, cfg: AerialConfig, g: torch.Generator, f32: dict) -> torch.Tensor:
    return random_similarity((n, K), max_shift=cfg.noise_shift,
                             max_rotation=math.radians(cfg.noise_rotation),
                             max_scale=cfg.noise_scale, generator=g, **f32)

