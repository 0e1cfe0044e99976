"""cvbook.geometry.subpix: soft-argmax recovers sub-pixel peaks, agrees with a
hand-written definition and kornia, and has correct gradients."""

import pytest
import torch

from cvbook.geometry import (
    gaussian_heatmaps,
    marginal_soft_argmax,
    normalized_to_pixel,
    pixel_to_normalized,
    soft_argmax,
    spatial_softmax,
)

D64 = torch.float64


def _peaks(b, k, size, device, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    lo = torch.tensor([6.0, 6.0])
    hi = torch.tensor([w - 7.0, h - 7.0])
    return (lo + (hi - lo) * torch.rand(b, k, 2, generator=g)).to(device, dtype)


@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("fn", [soft_argmax, marginal_soft_argmax])
def test_soft_argmax_recovers_a_subpixel_peak(b, fn, device):
    size = (24, 32)
    p = _peaks(b, 4, size, device)
    # log of a sharp Gaussian (sigma 1 px): the softmax is that Gaussian, its mean the peak
    ys, xs = torch.meshgrid(torch.arange(size[0], device=device),
                            torch.arange(size[1], device=device), indexing="ij")
    d2 = (xs - p[..., 0, None, None]) ** 2 + (ys - p[..., 1, None, None]) ** 2
    logits = -d2 / 2.0
    err = (fn(logits) - p).norm(dim=-1)
    assert err.max() < 0.05, err


def test_soft_argmax_definition_and_normalized_frame(device):
    s = torch.randn(3, 5, 7, 9, dtype=D64, device=device)
    tau = 0.7
    p = torch.softmax(s.reshape(3, 5, -1) / tau, -1).reshape(s.shape)
    ys, xs = torch.meshgrid(torch.arange(7, dtype=D64, device=device),
                            torch.arange(9, dtype=D64, device=device), indexing="ij")
    ref = torch.stack(((p * xs).sum((-2, -1)), (p * ys).sum((-2, -1))), -1)
    torch.testing.assert_close(spatial_softmax(s, tau), p)
    torch.testing.assert_close(soft_argmax(s, tau), ref)
    torch.testing.assert_close(soft_argmax(s, tau, normalized=True),
                               pixel_to_normalized(ref, (7, 9)))
    torch.testing.assert_close(normalized_to_pixel(soft_argmax(s, tau, normalized=True), (7, 9)),
                               ref)
    # marginal version, brute force
    px = torch.softmax(s.mean(-2) / tau, -1)
    py = torch.softmax(s.mean(-1) / tau, -1)
    mref = torch.stack(((px * xs[0]).sum(-1), (py * ys[:, 0]).sum(-1)), -1)
    torch.testing.assert_close(marginal_soft_argmax(s, tau), mref)
    # a tensor temperature per map
    t = torch.full((3, 5, 1), tau, dtype=D64, device=device)
    torch.testing.assert_close(marginal_soft_argmax(s, t), mref)
    torch.testing.assert_close(soft_argmax(s, t), ref)


def test_soft_argmax_matches_kornia(device):
    from kornia.geometry.subpix import spatial_soft_argmax2d

    s = torch.randn(3, 4, 6, 9, device=device) * 3
    ref = spatial_soft_argmax2d(s, 1.0, normalized_coordinates=False)
    torch.testing.assert_close(soft_argmax(s), ref)


def test_normalized_frame_is_grid_samples():
    """[-1, 1] keypoints index the same place grid_sample reads (align_corners=False)."""
    img = torch.zeros(1, 1, 6, 10)
    img[0, 0, 4, 7] = 1.0
    s = torch.full((1, 1, 6, 10), -50.0)
    s[0, 0, 4, 7] = 50.0
    q = soft_argmax(s, normalized=True)
    val = torch.nn.functional.grid_sample(img, q[:, :, None], align_corners=False)
    assert val.item() == pytest.approx(1.0, abs=1e-5)


def test_gaussian_heatmaps_normalized_points():
    p = torch.tensor([[[3.2, 1.7]]])
    a = gaussian_heatmaps(p, (6, 8), 1.2)
    b = gaussian_heatmaps(pixel_to_normalized(p, (6, 8)), (6, 8), 1.2, normalized=True)
    torch.testing.assert_close(a, b)
    assert a.amax().item() <= 1.0


def test_gradcheck_subpix():
    s = torch.randn(2, 3, 5, 6, dtype=D64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: soft_argmax(x, 0.5), (s,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda x: marginal_soft_argmax(x, 0.5, normalized=True), (s,))
    assert torch.autograd.gradcheck(lambda x: spatial_softmax(x, 2.0), (s,))
    p = (torch.rand(2, 3, 2, dtype=D64) * 4).requires_grad_()
    assert torch.autograd.gradcheck(lambda q: gaussian_heatmaps(q, (5, 6), 1.0), (p,))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"heatmaps must have shape \(B, K, H, W\)"):
        soft_argmax(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        marginal_soft_argmax(torch.zeros(1, 1, 4, 4), 0.0)
    with pytest.raises(TypeError, match="heatmaps must be a floating-point tensor"):
        spatial_softmax(torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        gaussian_heatmaps(torch.zeros(1, 1, 2), (4, 4), 0.0)
    with pytest.raises(TypeError, match=r"size must be a pair \(H, W\)"):
        gaussian_heatmaps(torch.zeros(1, 1, 2), 4, 1.0)
