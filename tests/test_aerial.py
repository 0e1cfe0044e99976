"""cvbook.data.aerial: determinism per seed, layout invariants (counts, inside the tile,
no overlaps, clusters), rendered masks against the polygons, noise statistics, rails."""

import math

import pytest
import torch

from cvbook.data.aerial import (
    KIND_CLUSTER,
    KIND_L,
    KIND_RAIL,
    AerialConfig,
    annotation_masks,
    make_aerial,
    perturb_polygons,
)
from cvbook.data.rails import make_rails
from cvbook.geometry import polygon_area, polygon_centroid, polygon_iou, soft_mask_iou

CFG = AerialConfig(tile_size=96)


@pytest.fixture(scope="module")
def batch():
    return make_aerial(24, CFG, seed=3)


def test_same_seed_same_tiles_other_seed_other_tiles():
    a = make_aerial(3, CFG, seed=5)
    b = make_aerial(3, CFG, seed=5)
    c = make_aerial(3, CFG, seed=6)
    for f in ("images", "polygons", "noisy", "valid"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    assert not torch.equal(a.images, c.images)


def test_shapes_counts_and_kinds(batch):
    n, S = len(batch), CFG.tile_size
    K = CFG.buildings[1]
    assert batch.images.shape == (n, 3, S, S) and batch.polygons.shape == (n, K, 6, 2)
    assert batch.images.min() >= 0 and batch.images.max() <= 1
    count = batch.valid.sum(1)
    assert (count >= 3).all() and (count <= 8).all()
    # valid slots come first
    assert torch.equal(batch.valid, torch.arange(K)[None] < count[:, None])
    v = batch.valid
    assert (batch.kinds[v] == KIND_L).any() and (batch.kinds[v] == KIND_CLUSTER).any()
    # a cluster id is shared by exactly two buildings
    for i in range(n):
        ids = batch.cluster[i][v[i] & (batch.cluster[i] >= 0)]
        assert all((ids == c).sum() == 2 for c in ids.unique())


def test_polygons_inside_the_tile_and_disjoint(batch):
    S = CFG.tile_size
    v = batch.valid
    pts = batch.polygons[v]
    assert (pts >= -0.5).all() and (pts <= S - 0.5).all()
    assert (polygon_area(pts) > 20).all()
    for i in range(len(batch)):
        p = batch.polygons[i][v[i]]
        k = len(p)
        iou = polygon_iou(p[:, None], p[None], samples=64)
        assert torch.allclose(iou.diagonal(), torch.ones(k))
        assert (iou + torch.eye(k) * -1).max() <= 0.0


def test_rendered_masks_match_the_polygons(batch):
    ann = annotation_masks(batch.polygons, batch.valid, CFG.tile_size, supersample=4) > 0.5
    iou = soft_mask_iou(ann, batch.masks)
    assert (iou > 0.95).all(), iou.min()


def test_clusters_are_tight(batch):
    for i in range(len(batch)):
        ids = batch.cluster[i][batch.valid[i]]
        for c in ids[ids >= 0].unique():
            a, b = batch.polygons[i][batch.cluster[i] == c]
            # the closest vertex pair across the gap is within cluster_gap (+ rounding)
            d = (a[:, None] - b[None]).norm(dim=-1).min()
            assert CFG.cluster_gap[0] - 1e-3 <= d <= CFG.cluster_gap[1] + 1e-3


def test_noise_is_the_declared_similarity():
    cfg = AerialConfig(tile_size=64, noise_shift=4.0, noise_rotation=8.0, noise_scale=0.2)
    b = make_aerial(400, cfg, seed=0)
    v = b.valid
    bound = torch.tensor([4.0, 4.0, math.radians(8.0), math.log(1.2)])
    noise = b.noise[v]
    assert (noise.abs() <= bound + 1e-6).all()
    assert (noise.mean(0).abs() < 0.05 * bound).all()
    torch.testing.assert_close(noise.std(0), bound / math.sqrt(3), rtol=0.05, atol=0)
    # noisy = n . a: centroids move by t, areas scale by s^2
    torch.testing.assert_close(polygon_centroid(b.noisy[v]) - polygon_centroid(b.polygons[v]),
                               noise[:, :2], atol=1e-3, rtol=0)
    torch.testing.assert_close(polygon_area(b.noisy[v]) / polygon_area(b.polygons[v]),
                               torch.exp(2 * noise[:, 3]), rtol=1e-4, atol=0)


def test_systematic_shift_moves_every_annotation():
    cfg = AerialConfig(tile_size=64, noise_shift=0.0, noise_rotation=0.0, noise_scale=0.0,
                       systematic_shift=(2.0, -1.0))
    b = make_aerial(4, cfg, seed=0)
    torch.testing.assert_close(b.noisy - b.polygons, torch.tensor([2.0, -1.0]).expand_as(b.noisy))
    torch.testing.assert_close(perturb_polygons(b.polygons, b.noise, (2.0, -1.0)), b.noisy)


def test_rails_are_long_thin_and_translation_symmetric():
    cfg = AerialConfig(tile_size=64)
    r = make_rails(8, cfg, seed=0)
    assert r.polygons.shape == (8, 2, 6, 2) and (r.kinds == KIND_RAIL).all()
    assert r.valid[:, 0].all()
    p = r.polygons[r.valid]
    # a strip 2 S long: sliding it along itself by 5 px changes nothing inside the tile
    d = p[:, 1] - p[:, 0]
    along = d / d.norm(dim=-1, keepdim=True)
    slid = p + 5 * along[:, None]
    m0 = annotation_masks(p[:, None], torch.ones(len(p), 1, dtype=torch.bool), 64, supersample=2)
    m1 = annotation_masks(slid[:, None], torch.ones(len(p), 1, dtype=torch.bool), 64,
                          supersample=2)
    assert torch.equal(m0, m1)
    ann = annotation_masks(r.polygons, r.valid, 64, supersample=4) > 0.5
    assert (soft_mask_iou(ann, r.masks) > 0.9).all()


def test_config_and_argument_validation():
    with pytest.raises(ValueError, match="buildings must be"):
        AerialConfig(buildings=(0, 3))
    with pytest.raises(ValueError, match="buildings must be"):
        AerialConfig(grid=2, buildings=(3, 8))
    with pytest.raises(ValueError, match="tile_size must be >= 32"):
        AerialConfig(tile_size=16)
    with pytest.raises(ValueError, match="noise_rotation must be <= 180"):
        AerialConfig(noise_rotation=200.0)
    with pytest.raises(TypeError, match="config must be an AerialConfig"):
        make_aerial(2, {"tile_size": 64})
    with pytest.raises(ValueError, match="n must be >= 1"):
        make_aerial(0)
    with pytest.raises(ValueError, match="tracks must be"):
        make_rails(2, tracks=(0, 3))
