"""cvbook.nn.unet, hourglass, heads: shapes for batch 1 and 3, the parameter counts the
docstrings state, bad inputs, and the regressor's definition."""

import pytest
import torch

from cvbook.geometry import soft_argmax
from cvbook.nn.heads import (
    DescriptorHead,
    HeatmapHead,
    KeypointRegressor,
    VirtualKeypointRegressor,
)
from cvbook.nn.hourglass import Hourglass, StackedHourglass
from cvbook.nn.unet import UNet, conv_norm_act, make_norm


def _count(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("norm", ["batch", "group", "instance", "none"])
def test_unet_shapes(b, norm, device):
    net = UNet(3, 2, depth=3, width=8, norm=norm, activation="leaky_relu").to(device)
    assert net(torch.randn(b, 3, 16, 24, device=device)).shape == (b, 2, 16, 24)


def test_unet_parameter_counts_and_width_cap():
    assert _count(UNet(3, 1)) == 7_240_801
    assert _count(UNet(3, 1, depth=3, width=16)) == 450_481
    capped = UNet(3, 1, depth=4, width=32, max_width=64)
    assert max(m.out_channels for m in capped.modules() if isinstance(m, torch.nn.Conv2d)) == 64


def test_unet_is_a_unet_gradients_reach_the_input():
    net = UNet(1, 1, depth=2, width=4).eval()
    x = torch.randn(1, 1, 8, 8, requires_grad=True)
    net(x)[0, 0, 3, 3].backward()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("b", [1, 3])
def test_hourglass_shapes(b, device):
    assert Hourglass(3, 4).to(device)(torch.randn(b, 4, 8, 16, device=device)).shape == \
        (b, 4, 8, 16)
    for stride in (1, 2, 4):
        net = StackedHourglass(3, 5, stacks=2, depth=2, width=8, stride=stride).to(device)
        outs = net(torch.randn(b, 3, 16, 32, device=device))
        assert len(outs) == 2
        assert all(o.shape == (b, 5, 16 // stride, 32 // stride) for o in outs)


def test_hourglass_parameter_counts():
    assert _count(StackedHourglass.full(3, 64)) == 6_607_360
    assert _count(StackedHourglass.small(3, 16)) == 47_264


@pytest.mark.parametrize("b", [1, 3])
def test_heads_shapes(b, device):
    x = torch.randn(b, 12, 6, 7, device=device)
    assert HeatmapHead(12, 4).to(device)(x).shape == (b, 4, 6, 7)
    d = DescriptorHead(12, 16, normalize=True, scale=20.0).to(device)(x)
    assert d.shape == (b, 16, 6, 7)
    torch.testing.assert_close(d.norm(dim=1), torch.full((b, 6, 7), 20.0, device=device))
    r = VirtualKeypointRegressor(12, 5, per_landmark=3).to(device)
    assert r(x).shape == (b, 5, 2)
    assert _count(VirtualKeypointRegressor(64, 5)) == 21_250
    assert _count(KeypointRegressor(250, 5)) == 4 * 250 * 5


def test_virtual_keypoint_regressor_is_its_definition():
    torch.manual_seed(0)
    r = VirtualKeypointRegressor(8, 3, per_landmark=4, temperature=0.5).double()
    x = torch.randn(2, 8, 5, 6, dtype=torch.float64)
    pts = soft_argmax(r.heatmaps.conv(x), 0.5)  # (2, 12, 2)
    w = r.regressor.linear.weight  # (6, 24)
    ref = (pts.reshape(2, 24) @ w.T).reshape(2, 3, 2)
    torch.testing.assert_close(r(x), ref)
    # bias-free: zero keypoints give zero landmarks
    assert (r.regressor(torch.zeros(1, 12, 2, dtype=torch.float64)) == 0).all()
    assert torch.autograd.gradcheck(r, (x.requires_grad_(),), fast_mode=True)


def test_bad_inputs():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 8"):
        UNet(3, 1, depth=3, width=4)(torch.zeros(1, 3, 12, 16))
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 3, \*, \*\)"):
        UNet(3, 1, depth=1, width=4)(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="divisible by stride \\* 2\\*\\*depth = 16"):
        StackedHourglass.small(3, 2)(torch.zeros(1, 3, 24, 24))
    with pytest.raises(ValueError, match="stride must be one of"):
        StackedHourglass(3, 2, stride=3)
    with pytest.raises(ValueError, match="norm must be one of"):
        make_norm("layer", 8)
    with pytest.raises(ValueError, match="activation must be one of"):
        conv_norm_act(3, 4, activation="gelu")
    with pytest.raises(ValueError, match=r"points must have shape \(B, K, 2\) with K = 4"):
        KeypointRegressor(4, 2)(torch.zeros(1, 5, 2))
    with pytest.raises(ValueError, match="depth must be >= 1"):
        UNet(3, 1, depth=0)
    with pytest.raises(ValueError, match="scale must be > 0"):
        DescriptorHead(3, 4, scale=0.0)
