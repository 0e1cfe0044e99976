"""cvbook.geometry.warp: the TPS against SciPy's thin-plate RBF and its definition, points
and images warped consistently, kornia agreement, flow warping and the fwd-bwd check."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from kornia.geometry.transform import warp_image_tps, warp_points_tps
from scipy.interpolate import RBFInterpolator

from cvbook.geometry import (
    Warp,
    affine_warp,
    flow_consistency_mask,
    gaussian_heatmaps,
    normalized_to_pixel,
    pixel_to_normalized,
    random_affine,
    random_tps,
    sample_at,
    sample_points,
    tps_fit,
    warp_by_flow,
    warp_grid,
    warp_image,
    warp_points,
)

D64 = torch.float64


def _controls(b, k=9, device="cpu", seed=0, noise=0.2):
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(b, k, 2, generator=g, dtype=D64) * 2 - 1
    d = c + noise * torch.randn(b, k, 2, generator=g, dtype=D64)
    return c.to(device), d.to(device)


@pytest.mark.parametrize("b", [1, 3])
def test_tps_matches_scipy_thin_plate_rbf(b, device):
    c, d = _controls(b, device=device)
    w = tps_fit(c, d)
    q = torch.rand(b, 40, 2, dtype=D64, device=device) * 2 - 1
    ours = sample_points(w, q).cpu().numpy()
    for i in range(b):
        ref = RBFInterpolator(c[i].cpu().numpy(), d[i].cpu().numpy(),
                              kernel="thin_plate_spline", degree=1)(q[i].cpu().numpy())
        np.testing.assert_allclose(ours[i], ref, atol=1e-9)


def test_tps_definition_interpolation_and_side_conditions(device):
    c, d = _controls(3, k=12, device=device)
    w = tps_fit(c, d)
    torch.testing.assert_close(sample_points(w, c), d, atol=1e-10, rtol=0)
    # the kernel part has no affine component: sum w = 0, sum w c^T = 0
    torch.testing.assert_close(w.weights.sum(1), torch.zeros(3, 2, dtype=D64, device=device),
                               atol=1e-10, rtol=0)
    torch.testing.assert_close(c.transpose(1, 2) @ w.weights,
                               torch.zeros(3, 2, 2, dtype=D64, device=device), atol=1e-10, rtol=0)


def test_tps_of_an_affine_map_is_that_affine_map(device):
    c, _ = _controls(3, k=10, device=device)
    theta = torch.tensor([[1.1, -0.2, 0.05], [0.3, 0.9, -0.1]], dtype=D64, device=device)
    d = c @ theta[:, :2].T + theta[:, 2]
    w = tps_fit(c, d)
    torch.testing.assert_close(w.weights, torch.zeros_like(w.weights), atol=1e-10, rtol=0)
    q = torch.rand(3, 50, 2, dtype=D64, device=device) * 4 - 2  # also outside the controls
    torch.testing.assert_close(sample_points(w, q), q @ theta[:, :2].T + theta[:, 2])


def test_kornia_tps_fit_is_not_the_thin_plate_spline():
    """Why tps_fit is ours: kornia's get_tps_transform solves a different system (kernels
    on the targets); if this starts failing, kornia fits the standard spline and could be
    used instead."""
    from kornia.geometry.transform import get_tps_transform

    c, d = _controls(1)
    kw, aw = get_tps_transform(c, d)
    q = torch.rand(1, 40, 2, dtype=D64) * 2 - 1
    theirs = warp_points_tps(q, d, kw, aw)
    assert (theirs - sample_points(tps_fit(c, d), q)).abs().max() > 0.1


def test_regularized_tps_smooths_towards_affine():
    c, d = _controls(1, k=16)
    bent = [tps_fit(c, d, regularization=lam).weights.abs().sum() for lam in (0.0, 1.0, 100.0)]
    assert bent[0] > bent[1] > bent[2]


@pytest.mark.parametrize("b", [1, 3])
def test_warp_image_matches_kornia(b, device):
    g = torch.Generator().manual_seed(1)
    w = random_tps(b, grid=5, sigma=0.05, rotation=8, scale=0.05, translation=0.05,
                   generator=g, dtype=D64)
    w = w.to(device)
    img = torch.rand(b, 2, 12, 16, dtype=D64, device=device)
    ref = warp_image_tps(img, w.centres, w.weights, w.affine, align_corners=False)
    torch.testing.assert_close(warp_image(img, w), ref)
    q = torch.rand(b, 20, 2, dtype=D64, device=device) * 2 - 1
    ref = warp_points_tps(q, w.centres, w.weights, w.affine)
    torch.testing.assert_close(sample_points(w, q), ref)


def test_affine_grid_matches_torch(device):
    theta = torch.tensor([[[0.9, -0.3, 0.1], [0.2, 1.1, -0.2]]], device=device).repeat(3, 1, 1)
    grid = warp_grid(affine_warp(theta), (6, 7))
    ref = F.affine_grid(theta, (3, 1, 6, 7), align_corners=False)
    torch.testing.assert_close(grid, ref, atol=1e-6, rtol=0)


def test_warps_are_amp_safe(device):
    """Under autocast the kernel distances stay in float32 (half precision would cancel)."""
    w = random_tps(2, sigma=0.02, sigma_large=0.05, rotation=5, device=device,
                   generator=torch.Generator().manual_seed(5))
    ref = warp_grid(w, (32, 32))
    pts = torch.rand(2, 5, 2, device=device) - 0.5
    ref_pts = warp_points(w, pts)
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
        torch.testing.assert_close(warp_grid(w, (32, 32)), ref)
        torch.testing.assert_close(warp_points(w, pts), ref_pts)


def test_identity_warp_keeps_the_image(device):
    w = random_tps(3, sigma=0.0, device=device)
    img = torch.rand(3, 3, 10, 12, device=device)
    torch.testing.assert_close(warp_image(img, w), img, atol=1e-5, rtol=0)


@pytest.mark.parametrize("b", [1, 3])
def test_warp_points_inverts_the_sampling_map(b, device):
    g = torch.Generator().manual_seed(2)
    w = random_tps(b, sigma=0.02, sigma_large=0.05, rotation=10, scale=0.1, translation=0.1,
                   generator=g, device=device)
    u = torch.rand(b, 30, 2, device=device) * 1.6 - 0.8
    v = warp_points(w, u)
    assert (sample_points(w, v) - u).abs().max() < 1e-5
    # affine: exactly the inverse matrix
    theta = torch.tensor([[[1.2, 0.3, 0.1], [-0.2, 0.8, 0.0]]], dtype=D64, device=device)
    a = affine_warp(theta.expand(b, -1, -1))
    ud = u.to(D64)
    inv = (ud - theta[0, :, 2]) @ torch.linalg.inv(theta[0, :, :2]).T
    torch.testing.assert_close(warp_points(a, ud), inv)


def _blob_error(warp, p, sigma, size=(64, 64)):
    """Distance (pixels) between the centroid of a blob drawn at ``p`` and warped as an
    image, and ``p`` warped as a point; also how far the warp moved the point."""
    h, w = size
    blob = gaussian_heatmaps(p, size, sigma=sigma)
    out = warp_image(blob, warp)[:, 0]  # (b, H, W)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=p.dtype, device=p.device),
                            torch.arange(w, dtype=p.dtype, device=p.device), indexing="ij")
    mass = out.sum((-2, -1))
    centroid = torch.stack(((out * xs).sum((-2, -1)), (out * ys).sum((-2, -1))), -1) / mass[:, None]
    moved = normalized_to_pixel(warp_points(warp, pixel_to_normalized(p, size)), size)[:, 0]
    return (centroid - moved).norm(dim=-1), (moved - p[:, 0]).norm(dim=-1)


@pytest.mark.parametrize("b", [1, 3])
def test_tps_warps_points_and_images_consistently(b, device):
    """A blob rendered at a point and warped as an image has its centroid where the point
    is warped to (the key property for DVE's ground truth), with DVE's warp ranges.

    For an affine warp this is exact up to resampling. Under a TPS the centroid also
    carries a second-order bias (curvature x blob size squared): it scales with the
    control noise and falls as 1 / W at a fixed blob size in pixels (measured over six
    seeds at sigma 1.5 px: max 0.11 px at 128 px, 0.05 px at 256 px), hence the 256 px
    image. A wrong direction or a half-pixel slip gives errors of pixels."""
    size = (256, 256)
    g = torch.Generator().manual_seed(3)
    p = torch.tensor([[97.2, 151.2], [162.4, 88.4], [126.0, 120.8]],
                     device=device)[:b, None]  # (b, 1, 2) pixels
    aff = random_affine(b, rotation=10, scale=0.08, translation=0.05, generator=g,
                        device=device)
    err, moved = _blob_error(aff, p, 1.5, size)
    assert moved.min() > 1.0 and err.max() < 0.02, (err, moved)
    tps = random_tps(b, sigma=0.001, sigma_large=0.01, p_large=0.5, rotation=10, scale=0.08,
                     translation=0.05, generator=g, device=device)
    err, moved = _blob_error(tps, p, 1.5, size)
    assert moved.min() > 1.0, moved  # the warp really moves the points
    assert err.max() < 0.1, err


def test_random_warps_are_seeded_batched_and_on_device(device):
    a = random_tps(3, sigma=0.05, rotation=5, generator=torch.Generator().manual_seed(7),
                   device=device)
    b = random_tps(3, sigma=0.05, rotation=5, generator=torch.Generator().manual_seed(7),
                   device=device)
    assert isinstance(a, Warp) and len(a) == 3
    assert a.affine.device.type == torch.device(device).type
    torch.testing.assert_close(a.weights, b.weights)
    assert not torch.allclose(a.affine[0], a.affine[1])
    r = random_affine(2000, rotation=5.0, scale=0.1, translation=0.1,
                      generator=torch.Generator().manual_seed(0), dtype=D64)
    lin = r.affine[:, 1:].transpose(1, 2)
    ang = torch.rad2deg(torch.atan2(lin[:, 1, 0], lin[:, 0, 0]))
    assert abs(ang.std().item() - 5.0) < 0.3
    assert abs(torch.linalg.det(lin).sqrt().std().item() - 0.1) < 0.01
    assert abs(r.affine[:, 0].std().item() - 0.1) < 0.01


def test_gradcheck_tps_warps():
    c, d = _controls(2, k=5, noise=0.1)
    img = torch.rand(2, 1, 4, 5, dtype=D64, requires_grad=True)
    d = d.requires_grad_()
    assert torch.autograd.gradcheck(lambda im, t: warp_image(im, tps_fit(c, t)), (img, d),
                                   fast_mode=True)
    u = (torch.rand(2, 3, 2, dtype=D64) - 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda pts, t: warp_points(tps_fit(c, t), pts), (u, d),
                                   fast_mode=True)


def test_warp_by_flow_integer_shift_and_brute_force(device):
    img = torch.rand(3, 2, 6, 7, dtype=D64, device=device)
    flow = torch.zeros(3, 2, 6, 7, dtype=D64, device=device)
    flow[:, 0] = 2.0
    flow[:, 1] = -1.0
    out = warp_by_flow(img, flow)
    ref = torch.zeros_like(img)
    for y in range(6):
        for x in range(7):
            sx, sy = x + 2, y - 1
            if 0 <= sx < 7 and 0 <= sy < 6:
                ref[:, :, y, x] = img[:, :, sy, sx]
    torch.testing.assert_close(out, ref)


def test_sample_at_against_brute_force_bilinear(device):
    img = torch.rand(3, 2, 5, 6, dtype=D64, device=device)
    pts = torch.rand(3, 4, 2, dtype=D64, device=device) * torch.tensor([5.0, 4.0],
                                                                        dtype=D64, device=device)
    got = sample_at(img, pts)
    x0, y0 = pts[..., 0].floor().long(), pts[..., 1].floor().long()
    fx, fy = pts[..., 0] - x0, pts[..., 1] - y0
    ref = torch.zeros(3, 4, 2, dtype=D64, device=device)
    for b in range(3):
        for n in range(4):
            i, j = y0[b, n], x0[b, n]
            a, c = fx[b, n], fy[b, n]
            ref[b, n] = ((1 - a) * (1 - c) * img[b, :, i, j] + a * (1 - c) * img[b, :, i, j + 1]
                         + (1 - a) * c * img[b, :, i + 1, j] + a * c * img[b, :, i + 1, j + 1])
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(sample_at(img, pixel_to_normalized(pts, (5, 6)), normalized=True),
                               ref)
    pts.requires_grad_()
    img.requires_grad_()
    assert torch.autograd.gradcheck(sample_at, (img, pts), fast_mode=True)


def test_gradcheck_warp_by_flow():
    img = torch.rand(2, 2, 5, 6, dtype=D64, requires_grad=True)
    flow = (torch.rand(2, 2, 5, 6, dtype=D64) * 2 - 1).requires_grad_()
    assert torch.autograd.gradcheck(warp_by_flow, (img, flow))


def test_flow_consistency_mask_against_brute_force(device):
    g = torch.Generator().manual_seed(4)
    h, w = 7, 8
    f = torch.randint(-2, 3, (2, 2, h, w), generator=g).to(D64)
    b = -f.clone()
    b += torch.randint(-1, 2, b.shape, generator=g).to(D64) * (torch.rand(b.shape, generator=g)
                                                              < 0.3)
    mask = flow_consistency_mask(f.to(device), b.to(device)).cpu()
    ref = torch.zeros(2, h, w, dtype=torch.bool)
    for n in range(2):
        for y in range(h):
            for x in range(w):
                tx, ty = x + int(f[n, 0, y, x]), y + int(f[n, 1, y, x])
                if not (0 <= tx < w and 0 <= ty < h):
                    continue
                fv, bv = f[n, :, y, x], b[n, :, ty, tx]
                ref[n, y, x] = (fv + bv).pow(2).sum() < 0.01 * (fv.pow(2).sum()
                                                              + bv.pow(2).sum()) + 0.5
    assert torch.equal(mask, ref)
    assert 0 < ref.float().mean() < 1


def test_consistent_translation_passes_and_occlusion_fails(device):
    f = torch.zeros(1, 2, 8, 8, device=device)
    f[:, 0] = 1.3
    mask = flow_consistency_mask(f, -f)
    assert mask[:, :, :6].all() and not mask[:, :, 7].any()  # x + 1.3 > 7.5 leaves the frame
    bad = -f.clone()
    bad[:, 0, :, 4:] = 3.0  # frame t+1's right half moves the other way (occluder)
    assert not flow_consistency_mask(f, bad)[:, :, 3:6].any()


def test_bad_inputs():
    c, d = _controls(2)
    with pytest.raises(ValueError, match="target must have shape"):
        tps_fit(c, d[:1])
    with pytest.raises(ValueError, match="at least 3 control points"):
        tps_fit(c[:, :2], d[:, :2])
    w = tps_fit(c, d)
    with pytest.raises(ValueError, match=r"points must have shape \(B, N, 2\) with B = 2"):
        warp_points(w, torch.zeros(3, 4, 2))
    with pytest.raises(ValueError, match=r"image must have shape \(B, C, H, W\) with B = 2"):
        warp_image(torch.zeros(1, 1, 4, 4), w)
    with pytest.raises(TypeError, match="warp must be a Warp"):
        warp_image(torch.zeros(2, 1, 4, 4), (c, d))
    with pytest.raises(ValueError, match=r"flow must have shape \(B, 2, H, W\) with H = 4"):
        warp_by_flow(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 5, 4))
    with pytest.raises(ValueError, match="padding_mode"):
        warp_by_flow(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 4), padding_mode="wrap")
    with pytest.raises(ValueError, match="sigma"):
        random_tps(2, sigma=-1.0)
    with pytest.raises(ValueError, match="batch"):
        random_affine(0)
