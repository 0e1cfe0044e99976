"""Railway tracks over the aerial world's ground: the translation-symmetric case of
chapter 10 (see :mod:`cvbook.data.aerial` for the annotations and their noise).

Example:
    >>> from cvbook.data.aerial import AerialConfig
    >>> r = make_rails(2, AerialConfig(tile_size=64), seed=0)
    >>> r.polygons.shape, r.valid[:, 0].all().item()
    (torch.Size([2, 2, 6, 2]), True)
"""

from __future__ import annotations

import math

import torch

from cvbook.core.validate import check_float, check_int
from cvbook.data.aerial import (
    CHUNK,
    KIND_RAIL,
    AerialBatch,
    AerialConfig,
    _generator,
    _ground,
    _noise,
    _to_tile,
    perturb_polygons,
)
from cvbook.render.composite import coverage, over

__all__ = ["make_rails"]


def make_rails(n: int, config: AerialConfig | None = None, *, tracks: tuple[int, int] = (1, 2),
               gauge: float = 5.0, sleeper_period: float = 5.0, seed: int | None = 0,
               generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> AerialBatch:
    """Generate ``n`` tiles of railway tracks, the translation-symmetric case.

    Each tile holds ``tracks`` (inclusive range, at most 2) straight tracks through the
    tile at one random angle; two tracks run parallel, ``2.4 * gauge`` apart. A track is
    two rails (1.2 px wide, ``gauge`` apart) on sleepers every ``sleeper_period`` pixels
    over a ballast bed; its annotation is the rectangle ``2 S`` long and ``gauge + 1.2``
    wide centred on the track's point nearest the tile's centre. Ground and noise come
    from ``config`` (its building settings are unused).

    Returns:
        An :class:`AerialBatch` with ``K = 2`` slots, kind :data:`KIND_RAIL`.
    """
    n = check_int(n, "n", min_value=1)
    cfg = config if config is not None else AerialConfig()
    if not isinstance(cfg, AerialConfig):
        raise TypeError(f"config must be an AerialConfig, got {type(cfg).__name__}")
    if (not isinstance(tracks, (tuple, list)) or len(tracks) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in tracks)
            or not 1 <= tracks[0] <= tracks[1] <= 2):
        raise ValueError(f"tracks must be a pair of ints 1 <= lo <= hi <= 2; got {tracks!r}")
    gauge = check_float(gauge, "gauge", min_value=1.0, max_value=cfg.tile_size / 4)
    sleeper_period = check_float(sleeper_period, "sleeper_period", min_value=2.0)
    device = torch.device(device)
    g = _generator(seed, generator, device)
    f32 = dict(device=device, dtype=torch.float32)
    S = cfg.tile_size
    count = torch.randint(tracks[0], tracks[1] + 1, (n,), generator=g, device=device)
    phi = math.pi * torch.rand(n, generator=g, **f32)  # track direction
    normal = torch.stack([-phi.sin(), phi.cos()], -1)  # (n, 2)
    base = (0.3 * S) * (2 * torch.rand(n, generator=g, **f32) - 1) / 2
    spacing = 2.4 * gauge
    rho = base[:, None] + torch.tensor([0.0, spacing], **f32)  # (n, 2) offsets along normal
    phase = sleeper_period * torch.rand(n, 2, generator=g, **f32)
    valid = torch.arange(2, device=device)[None] < count[:, None]
    centre = (S - 1) / 2 + rho[..., None] * normal[:, None]  # (n, 2, 2)
    half = torch.stack([torch.full_like(rho, float(S)), torch.full_like(rho, (gauge + 1.2) / 2)],
                       -1)
    hu, hv = half[..., 0:1], half[..., 1:2]
    u = torch.cat([-hu, hu, hu, -hu, -hu, -hu], -1)
    v = torch.cat([-hv, -hv, hv, hv, hv, hv], -1)
    polygons = _to_tile(u, v, centre, phi[:, None].expand(n, 2))
    far = torch.tensor([-10.0 * S, -10.0 * S], **f32)
    polygons = torch.where(valid[..., None, None], polygons, polygons + far)
    noise = _noise(n, 2, cfg, g, f32)
    coords = torch.arange(S, **f32)
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    images, masks = [], []
    soft = cfg.edge_softness
    for lo in range(0, n, CHUNK):
        sl = slice(lo, min(n, lo + CHUNK))
        m = sl.stop - sl.start
        img = _ground(m, S, cfg, g, f32)
        c, s = phi[sl].cos()[:, None, None, None], phi[sl].sin()[:, None, None, None]
        dx = px - centre[sl, :, 0, None, None]
        dy = py - centre[sl, :, 1, None, None]
        along, across = c * dx + s * dy, -s * dx + c * dy  # (m, 2, S, S)
        live = valid[sl, :, None, None].float()
        bed = (coverage(across.abs() - (gauge / 2 + 3), soft) * live).amax(1)
        img = over(img, torch.tensor([0.52, 0.48, 0.44], **f32)[None, :, None, None],
                   bed[:, None])
        t = torch.remainder(along - phase[sl, :, None, None], sleeper_period)
        sleeper = coverage(torch.maximum((t - sleeper_period / 2).abs() - 0.8,
                                         across.abs() - (gauge / 2 + 2)), soft)
        sleeper = (sleeper * live).amax(1)
        img = over(img, torch.tensor([0.36, 0.27, 0.2], **f32)[None, :, None, None],
                   sleeper[:, None])
        rail = coverage((across.abs() - gauge / 2).abs() - 0.6, soft * 0.6) * live
        rail = rail.amax(1)
        img = over(img, torch.tensor([0.82, 0.82, 0.85], **f32)[None, :, None, None],
                   rail[:, None])
        images.append(img.clamp(0, 1))
        masks.append(((across.abs() <= (gauge + 1.2) / 2) & (live > 0)).any(1))
    noisy = perturb_polygons(polygons, noise, cfg.systematic_shift)
    K = 2
    return AerialBatch(images=torch.cat(images).contiguous(), polygons=polygons, valid=valid,
                       kinds=torch.full((n, K), KIND_RAIL, device=device),
                       cluster=torch.full((n, K), -1, device=device),
                       masks=torch.cat(masks), noise=noise, noisy=noisy)
