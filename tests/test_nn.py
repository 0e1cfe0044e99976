"""cvbook.nn: the blocks, classifiers and backbones, their re-exports and old import
paths, and the shipped checkpoint's keys."""

import pytest
import torch

import cvbook.nn as cnn
from cvbook.nn import (
    Classifier,
    ConvNet,
    ResidualMLPBlock,
    SceneCNN,
    SmallCNN,
    conv_bn_relu,
)


def test_package_reexports_and_old_paths():
    import importlib
    import sys

    for mod in ("cvbook.nn.cnn", "cvbook.nn.convnet", "cvbook.nn.feature_cnn"):
        sys.modules.pop(mod, None)
        with pytest.warns(DeprecationWarning, match="import from cvbook.nn"):
            importlib.import_module(mod)
    from cvbook.nn.cnn import SCENE_CNN_LAYERS
    from cvbook.nn.cnn import SceneCNN as S1
    from cvbook.nn.convnet import ConvNet as C1
    from cvbook.nn.convnet import conv_bn_relu as cbr
    from cvbook.nn.feature_cnn import SmallCNN as F1
    from cvbook.nn.feature_cnn import cifar_resnet18

    assert S1 is SceneCNN and C1 is ConvNet and F1 is SmallCNN and cbr is conv_bn_relu
    assert SCENE_CNN_LAYERS == cnn.SCENE_CNN_LAYERS and callable(cifar_resnet18)
    for name in cnn.__all__:
        assert hasattr(cnn, name)


def test_conv_bn_relu_is_the_one_block():
    b = conv_bn_relu(3, 8, 2)
    assert [type(m) for m in b] == [torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU]
    assert b[0].bias is None and b[0].stride == (2, 2) and b[2].inplace
    assert conv_bn_relu(3, 8)(torch.rand(1, 3, 7, 7)).shape == (1, 8, 7, 7)
    assert not conv_bn_relu(3, 8, inplace=False)[2].inplace
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        conv_bn_relu(3, 8, kernel_size=2)
    # every convolution of the three networks comes from it: Conv2d(bias=False) -> BN
    for net in (SceneCNN(4, 4), ConvNet(3, (4, 8)), SmallCNN(1, 4, 8)):
        mods = list(net.modules())
        for i, m in enumerate(mods):
            if isinstance(m, torch.nn.Conv2d):
                assert m.bias is None and isinstance(mods[i + 1], torch.nn.BatchNorm2d)


def test_state_dict_keys_unchanged():
    assert list(SceneCNN(6, 8).state_dict())[:3] == ["features.conv1.weight",
                                                      "features.bn1.weight",
                                                      "features.bn1.bias"]
    assert list(ConvNet(3, (4, 8)).state_dict())[0] == "features.0.0.weight"
    assert list(SmallCNN(1, 4, 8).state_dict())[:2] == ["features.0.weight",
                                                         "features.1.weight"]


def test_zoo_checkpoint_still_loads():
    from cvbook import zoo

    net = zoo.load_model("scenes_cnn")  # checks the sha256 and loads every key strictly
    assert isinstance(net, SceneCNN)


@pytest.mark.parametrize("n", [1, 3])
def test_shapes_and_bad_inputs(device, n):
    x = torch.rand(n, 3, 16, 16, device=device)
    assert SceneCNN(4, 4).to(device).eval()(x).shape == (n, 4)
    net = ConvNet(5, (4, 8)).to(device).eval()
    assert net(x).shape == (n, 5) and net.pooled(x).shape == (n, 8)
    sc = SmallCNN(3, 4, 16).to(device).eval()
    f = sc(x)
    assert f.shape == (n, sc.out_dim)
    torch.testing.assert_close(f.norm(dim=1), torch.ones(n, device=device))
    assert Classifier(sc, 7).to(device).eval()(x).shape == (n, 7)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 3, 16, 16\)"):
        sc(x[:, :, :8])
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 3, \*, \*\)"):
        net(x[:, :1])
    with pytest.raises(TypeError, match="out_dim"):
        Classifier(torch.nn.Identity(), 3)


@pytest.mark.parametrize("n", [1, 3])
def test_residual_mlp_block(device, n):
    blk = ResidualMLPBlock(16).to(device).eval()
    x = torch.randn(n, 16, device=device)
    y = blk(x)
    assert y.shape == (n, 16) and (y >= 0).all()
    with torch.no_grad():  # a zero body makes it relu(x)
        blk.body[-1].weight.zero_()
        blk.body[-1].bias.zero_()
    torch.testing.assert_close(blk(x), torch.relu(x))


def test_residual_mlp_block_gradcheck():
    blk = ResidualMLPBlock(8).double().eval()
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(blk, (x,))


def test_c3dpo_uses_the_block():
    from cvbook.c3dpo import Factoriser

    assert any(isinstance(m, ResidualMLPBlock) for m in Factoriser(5, 2, 32, 2).modules())
