"""cvbook.geometry.polygon: areas, centroids, distances, rasterisation and IoU against
analytic cases and brute force; similarity transforms against their group laws; float64
gradcheck of the differentiable pieces."""

import math

import pytest
import torch

from cvbook.geometry import (
    compose_similarity,
    invert_similarity,
    points_in_polygon,
    polygon_area,
    polygon_centroid,
    polygon_iou,
    polygon_sdf,
    random_similarity,
    rasterize_polygons,
    similarity_transform,
    soft_mask_iou,
)
from cvbook.metrics.segmentation import mask_iou


def rect(x0, y0, x1, y1, **kw):
    return torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], **kw)


def l_shape(**kw):
    # a 4 x 4 square with its top-right 2 x 2 quadrant removed: area 12
    kw.setdefault("dtype", torch.float32)
    return torch.tensor([[0, 0], [2, 0], [2, 2], [4, 2], [4, 4], [0, 4]], **kw)


def test_area_and_centroid_analytic(device):
    sq = rect(1.0, 2.0, 5.0, 4.0, device=device)
    assert float(polygon_area(sq)) == 8.0
    assert float(polygon_area(sq.flip(0), signed=True)) == -float(polygon_area(sq, signed=True))
    torch.testing.assert_close(polygon_centroid(sq), torch.tensor([3.0, 3.0], device=device))
    lsh = l_shape(device=device)
    assert float(polygon_area(lsh)) == 12.0
    # centroid of the L: (8 * (2, 3) + 4 * (1, 1)) / 12 (bottom 4x2 block and top-left 2x2)
    torch.testing.assert_close(polygon_centroid(lsh),
                               torch.tensor([(8 * 2 + 4 * 1) / 12, (8 * 3 + 4 * 1) / 12],
                                            device=device))


def test_padding_by_repeated_vertex_changes_nothing(device):
    sq = rect(0.0, 0.0, 6.0, 3.0, device=device)
    padded = torch.cat([sq, sq[-1:].expand(2, 2)])  # (6, 2)
    pts = torch.rand(200, 2, device=device) * 10 - 2
    torch.testing.assert_close(polygon_area(padded), polygon_area(sq))
    torch.testing.assert_close(polygon_centroid(padded), polygon_centroid(sq))
    torch.testing.assert_close(polygon_sdf(padded, pts), polygon_sdf(sq, pts))


def test_sdf_of_a_rectangle_is_the_box_distance(device):
    sq = rect(-2.0, -1.0, 2.0, 1.0, device=device, dtype=torch.float64)
    pts = (torch.rand(500, 2, device=device, dtype=torch.float64) - 0.5) * 10
    # the exact signed distance of a box of half-sides (2, 1)
    q = pts.abs() - torch.tensor([2.0, 1.0], device=device, dtype=torch.float64)
    exact = q.clamp_min(0).norm(dim=-1) + q.amax(-1).clamp_max(0)
    torch.testing.assert_close(polygon_sdf(sq, pts), exact)


def test_inside_test_on_the_l_shape(device):
    lsh = l_shape(device=device)
    pts = torch.tensor([[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0], [5.0, 1.0]],
                       device=device)
    assert points_in_polygon(lsh, pts).tolist() == [True, False, True, True, False]


def test_soft_raster_sums_to_the_area_and_matches_supersampling(device):
    poly = similarity_transform(l_shape(device=device) * 4 + 6,
                                torch.tensor([0.3, -0.2, 0.4, 0.0], device=device))
    soft = rasterize_polygons(poly, 32, softness=0.5)
    hard = rasterize_polygons(poly, 32, supersample=8)
    area = float(polygon_area(poly))
    assert abs(float(soft.sum()) - area) < 0.02 * area
    assert abs(float(hard.sum()) - area) < 0.01 * area
    # per pixel, the two agree but on the outline's pixels
    assert (soft - hard).abs().mean() < 0.03
    assert soft_mask_iou(soft > 0.5, hard > 0.5) > 0.95


def test_hard_raster_converges_to_exact_pixel_coverage(device):
    # an axis-aligned rectangle with sub-pixel corners: exact box-filtered coverage
    r = rect(1.25, 0.5, 4.75, 3.0, device=device)
    cov = rasterize_polygons(r, (5, 6), supersample=16)
    xs = torch.arange(6, device=device, dtype=torch.float32)
    ys = torch.arange(5, device=device, dtype=torch.float32)
    fx = ((xs + 0.5).clamp(1.25, 4.75) - (xs - 0.5).clamp(1.25, 4.75))
    fy = ((ys + 0.5).clamp(0.5, 3.0) - (ys - 0.5).clamp(0.5, 3.0))
    torch.testing.assert_close(cov, fy[:, None] * fx[None], atol=1 / 16, rtol=0)


def test_raster_is_batched_and_follows_the_device(device):
    polys = torch.stack([rect(2.0, 2.0, 8.0, 6.0), rect(0.0, 0.0, 3.0, 3.0)]).to(device)
    polys = polys[None].expand(3, 2, 4, 2)
    out = rasterize_polygons(polys, (10, 12))
    assert out.shape == (3, 2, 10, 12) and out.device.type == device.type
    one = rasterize_polygons(polys[0, 1], (10, 12))
    torch.testing.assert_close(out[2, 1], one)


def test_gradcheck_soft_raster_and_transform():
    v = (rect(1.0, 1.5, 5.0, 4.0, dtype=torch.float64) + 0.1).requires_grad_()
    p = torch.tensor([0.3, -0.2, 0.1, 0.05], dtype=torch.float64, requires_grad=True)

    def f(v, p):
        return rasterize_polygons(similarity_transform(v, p), (7, 7), softness=0.7)

    assert torch.autograd.gradcheck(f, (v, p))


def test_similarity_transform_analytic_cases(device):
    sq = rect(0.0, 0.0, 2.0, 2.0, device=device)
    # 90 degrees about the centroid (1, 1): the square maps onto itself, vertices shift
    out = similarity_transform(sq, torch.tensor([0.0, 0.0, math.pi / 2, 0.0], device=device))
    torch.testing.assert_close(out, sq.roll(-1, 0), atol=1e-6, rtol=0)
    # scale 2 doubles the side, keeps the centroid; translation moves it
    out = similarity_transform(sq, torch.tensor([3.0, -1.0, 0.0, math.log(2.0)], device=device))
    assert abs(float(polygon_area(out)) - 16.0) < 1e-4
    torch.testing.assert_close(polygon_centroid(out), torch.tensor([4.0, 0.0], device=device))
    # theta > 0 turns +x towards +y (clockwise on screen)
    seg = torch.tensor([[0.0, 0.0], [2.0, 0.0], [2.0, 1e-3]], device=device)
    out = similarity_transform(seg, torch.tensor([0.0, 0.0, math.pi / 2, 0.0], device=device),
                               center=torch.zeros(2, device=device))
    torch.testing.assert_close(out[1], torch.tensor([0.0, 2.0], device=device),
                               atol=1e-6, rtol=0)


def test_composition_is_addition_and_inverse_is_negation(device):
    g = torch.Generator(device=device).manual_seed(0)
    poly = l_shape(device=device, dtype=torch.float64) * 3 + 5
    p = random_similarity(5, max_shift=4, max_rotation=1.0, max_scale=0.3, generator=g,
                          device=device, dtype=torch.float64)
    q = random_similarity(5, max_shift=4, max_rotation=1.0, max_scale=0.3, generator=g,
                          device=device, dtype=torch.float64)
    two_steps = similarity_transform(similarity_transform(poly, p), q)
    torch.testing.assert_close(two_steps, similarity_transform(poly, compose_similarity(p, q)))
    torch.testing.assert_close(two_steps, similarity_transform(poly, compose_similarity(q, p)))
    back = similarity_transform(similarity_transform(poly, p), invert_similarity(p))
    torch.testing.assert_close(back, poly.expand_as(back))


def test_random_similarity_ranges_and_moments(device):
    g = torch.Generator(device=device).manual_seed(1)
    p = random_similarity(20000, max_shift=6, max_rotation=0.2, max_scale=0.1,
                          generator=g, device=device)
    bound = torch.tensor([6, 6, 0.2, math.log(1.1)], device=device)
    assert (p.abs() <= bound + 1e-6).all()
    # uniform on [-b, b]: mean 0, standard deviation b / sqrt(3)
    assert (p.mean(0).abs() < 0.02 * bound).all()
    torch.testing.assert_close(p.std(0), bound / math.sqrt(3), rtol=0.02, atol=0)
    n = random_similarity((3, 2), max_shift=1, max_rotation=0.1, max_scale=0.0,
                          distribution="normal", generator=g, device=device)
    assert n.shape == (3, 2, 4) and (n[..., 3] == 0).all()


def test_polygon_iou_exact_cases(device):
    a = rect(0.0, 0.0, 4.0, 4.0, device=device)
    b = rect(1.0, 0.0, 5.0, 4.0, device=device)  # overlap 3x4 = 12, union 20
    c = rect(2.0, 2.0, 6.0, 6.0, device=device)  # overlap 2x2 = 4, union 28
    ious = polygon_iou(a, torch.stack([a, b, c, a + 10]), samples=512)
    torch.testing.assert_close(ious, torch.tensor([1.0, 0.6, 4 / 28, 0.0], device=device),
                               atol=5e-3, rtol=0)
    # the L against its bounding square: 12 / 16
    assert abs(float(polygon_iou(l_shape(device=device), a)) - 0.75) < 5e-3
    # invariant to a common similarity transform
    p = torch.tensor([1.0, 2.0, 0.7, 0.2], device=device)
    ctr = torch.tensor([2.0, 2.0], device=device)
    moved = polygon_iou(similarity_transform(a, p, ctr), similarity_transform(c, p, ctr),
                        samples=512)
    assert abs(float(moved) - 4 / 28) < 5e-3


def test_soft_mask_iou_agrees_with_the_metrics_mask_iou(device):
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.rand(4, 9, 9, generator=g, device=device) > 0.5
    b = torch.rand(4, 9, 9, generator=g, device=device) > 0.5
    b[0] = False
    a[0] = False
    torch.testing.assert_close(soft_mask_iou(a, b), mask_iou(a, b))
    soft = torch.rand(2, 5, 5, generator=g, device=device, dtype=torch.float64)
    torch.testing.assert_close(soft_mask_iou(soft, soft > -1),
                               soft.sum((-2, -1)) / 25)


def test_validation_messages():
    sq = rect(0.0, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="at least 3 vertices"):
        polygon_area(sq[:2])
    with pytest.raises(ValueError, match="params must have shape"):
        similarity_transform(sq, torch.zeros(3))
    with pytest.raises(TypeError, match="floating-point"):
        polygon_sdf(sq.long(), torch.zeros(1, 2))
    with pytest.raises(TypeError, match="size must be"):
        rasterize_polygons(sq, "big")
    with pytest.raises(ValueError, match="supersample must be >= 1"):
        rasterize_polygons(sq, 4, supersample=0)
    with pytest.raises(ValueError, match="distribution must be"):
        random_similarity(2, max_shift=1, max_rotation=0, max_scale=0, distribution="cauchy")
    with pytest.raises(ValueError, match="b must have shape"):
        soft_mask_iou(torch.zeros(2, 3, 3), torch.zeros(2, 3, 4))
