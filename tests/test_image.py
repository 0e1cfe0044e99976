"""cvbook.image: filters (kornia) against the dense definition, batched crops against
torchvision, colour jitter against torchvision's functional adjustments, augmentations."""

import math

import pytest
import torch
import torch.nn.functional as F

from cvbook.image import (
    blur_pyramid,
    center_crop,
    color_jitter,
    crop_resize,
    gaussian_blur,
    gaussian_kernel1d,
    random_hflip,
    random_resized_crop,
    random_translate,
    sample_jitter_factors,
    sample_rrc_boxes,
    shift_flip_noise,
)


def _dense_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The definition: a 2-D Gaussian (radius ceil(3σ)), normalised, zero padding."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k2 = torch.exp(-(t[:, None] ** 2 + t[None] ** 2) / (2 * sigma ** 2))
    k2 = (k2 / k2.sum()).to(x)
    c = x.shape[1]
    return F.conv2d(x, k2.expand(c, 1, -1, -1), padding=r, groups=c)


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("sigma", [0.7, 2.0, 9.0])
def test_gaussian_blur_matches_definition(device, n, sigma):
    x = torch.rand(n, 2, 12, 15, dtype=torch.float64, device=device)
    torch.testing.assert_close(gaussian_blur(x, sigma), _dense_blur(x, sigma), rtol=0,
                               atol=1e-12)
    assert torch.equal(gaussian_blur(x, 0.0), x)
    k = gaussian_kernel1d(sigma, dtype=torch.float64)
    assert k.numel() == 2 * max(1, math.ceil(3 * sigma)) + 1
    assert float(k.sum()) == pytest.approx(1.0)


def test_gaussian_blur_gradcheck(device):
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: gaussian_blur(t, 1.2), (x,))


def test_blur_pyramid_levels(device):
    x = torch.rand(3, 3, 10, 10, device=device)
    p = blur_pyramid(x, num_levels=4, max_sigma=3.0)
    assert p.shape == (3, 4, 3, 10, 10)
    assert torch.equal(p[:, -1], x)
    torch.testing.assert_close(p[:, 0], gaussian_blur(x, 3.0))
    with pytest.raises(ValueError, match="num_levels must be >= 2"):
        blur_pyramid(x, num_levels=1)
    with pytest.raises(ValueError, match="x must have shape"):
        gaussian_blur(x[0], 1.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        gaussian_blur(x, -1.0)


@pytest.mark.parametrize("n", [1, 3])
def test_crop_resize_matches_torchvision_on_integer_boxes(device, n):
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(n, 3, 32, 32, device=device)
    boxes = torch.tensor([[4.0, 8.0, 20.0, 24.0]], device=device).expand(n, 4)
    ours = crop_resize(x, boxes, 16)  # a 16x16 crop resized to 16: the crop itself
    ref = TF.crop(x, 8, 4, 16, 16)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_rrc_boxes_follow_torchvision():
    from torchvision.transforms import v2

    h, w, n = 40, 60, 4000
    ours = sample_rrc_boxes(n, h, w, generator=torch.Generator().manual_seed(0))
    area = ((ours[:, 2] - ours[:, 0]) * (ours[:, 3] - ours[:, 1])) / (h * w)
    torch.manual_seed(0)
    ref = []
    for _ in range(n):
        i, j, hh, ww = v2.RandomResizedCrop.get_params(torch.empty(1, h, w), [0.08, 1.0],
                                                       [3 / 4, 4 / 3])
        ref.append(hh * ww / (h * w))
    ref = torch.tensor(ref)
    assert abs(area.mean() - ref.mean()) < 0.02
    assert (ours[:, 0] >= 0).all() and (ours[:, 2] <= w).all() and (ours[:, 3] <= h).all()


@pytest.mark.parametrize("n", [1, 3])
def test_crops_shapes_and_bad_inputs(device, n):
    x = torch.rand(n, 3, 20, 24, device=device)
    g = torch.Generator(device).manual_seed(0)
    assert random_resized_crop(x, 8, generator=g).shape == (n, 3, 8, 8)
    assert center_crop(x, 8).shape == (n, 3, 8, 8)
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\) with N = "):
        crop_resize(x, torch.zeros(n + 1, 4, device=device), 8)
    with pytest.raises(TypeError, match="images must be a floating-point"):
        center_crop(x.to(torch.uint8), 8)


def test_center_crop_equals_torchvision():
    from torchvision.transforms import v2

    # a smooth image (area averaging and torchvision's antialiased bilinear filter differ
    # on noise, not on content the networks see)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    x = (torch.stack([torch.sin(6 * xx), torch.cos(5 * yy), xx * yy]) * 0.5 + 0.5)[None]
    x = x.expand(3, -1, -1, -1)
    ref = v2.Compose([v2.Resize(36, antialias=True), v2.CenterCrop(32)])(x)
    torch.testing.assert_close(center_crop(x, 32, resize_ratio=36 / 32), ref, atol=0.02,
                               rtol=0)


@pytest.mark.parametrize("n", [1, 3])
def test_color_jitter_matches_torchvision(device, n):
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(n, 3, 9, 11, dtype=torch.float64, device=device)
    f = sample_jitter_factors(n, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
                              generator=torch.Generator(device).manual_seed(0),
                              dtype=torch.float64)
    ours = color_jitter(x, factors=f)
    ref = []
    for i in range(n):
        y = TF.adjust_brightness(x[i], float(f["brightness"][i]))
        y = TF.adjust_contrast(y, float(f["contrast"][i]))
        y = TF.adjust_saturation(y, float(f["saturation"][i]))
        ref.append(TF.adjust_hue(y, float(f["hue"][i])))
    # kornia's grey weights are (0.299, 0.587, 0.114), torchvision's (0.2989, 0.587,
    # 0.114): ~1e-4 apart at most
    torch.testing.assert_close(ours, torch.stack(ref), atol=2e-4, rtol=0)


def test_color_jitter_draws_and_bad_inputs(device):
    x = torch.rand(3, 3, 8, 8, device=device)
    a = color_jitter(x, brightness=0.5, generator=torch.Generator(device).manual_seed(1))
    b = color_jitter(x, brightness=0.5, generator=torch.Generator(device).manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(color_jitter(x), x.clamp(0, 1))  # no jitter asked: identity
    with pytest.raises(ValueError, match=r"images must have shape \(N, 3, H, W\)"):
        color_jitter(x[:, :1])
    with pytest.raises(ValueError, match="hue must be <= 0.5"):
        color_jitter(x, hue=0.7)


def test_color_jitter_gradcheck():
    x = (0.2 + 0.6 * torch.rand(1, 3, 3, 3, dtype=torch.float64)).requires_grad_()
    f = {"brightness": torch.tensor([1.1], dtype=torch.float64),
         "contrast": torch.tensor([0.9], dtype=torch.float64),
         "saturation": torch.tensor([1.2], dtype=torch.float64)}
    assert torch.autograd.gradcheck(lambda t: color_jitter(t, factors=f), (x,))


@pytest.mark.parametrize("n", [1, 3])
def test_augmentations(device, n):
    x = torch.rand(n, 2, 6, 6, device=device)
    g = torch.Generator(device).manual_seed(0)
    y = random_translate(x, 2, generator=g)
    assert y.shape == x.shape
    # a whole-pixel shift: every output row is a row of x or zeros, shifted
    pad = F.pad(x, (2, 2, 2, 2))
    for i in range(n):
        assert any(torch.equal(y[i], pad[i, :, a:a + 6, b:b + 6])
                   for a in range(5) for b in range(5))
    assert torch.equal(random_hflip(x, p=1.0), x.flip(-1))
    assert torch.equal(random_hflip(x, p=0.0), x)
    z = shift_flip_noise(x, max_shift=0, noise_std=0.0)
    assert torch.equal(z, x)
    with pytest.raises(ValueError, match="max_shift must be >= 0"):
        random_translate(x, -1)
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, H, W\)"):
        shift_flip_noise(x[0])


def test_translate_gradcheck():
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: random_translate(t, 1, generator=torch.Generator().manual_seed(0)), (x,))
