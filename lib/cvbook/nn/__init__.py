"""Networks, named by what a reader looks for: building blocks
(:mod:`~cvbook.nn.blocks`), image classifiers (:mod:`~cvbook.nn.classifiers`), feature
backbones (:mod:`~cvbook.nn.backbones`), encoder-decoders (:mod:`~cvbook.nn.unet`,
:mod:`~cvbook.nn.hourglass`) and prediction heads (:mod:`~cvbook.nn.heads`). The public
names are re-exported here, one import line per module (add new modules the same way)."""

from cvbook.nn.backbones import SmallCNN, SmallNet, cifar_resnet18
from cvbook.nn.blocks import ResidualMLPBlock, conv_bn_relu
from cvbook.nn.classifiers import SCENE_CNN_LAYERS, Classifier, ConvNet, SceneCNN
from cvbook.nn.heads import DescriptorHead, HeatmapHead, KeypointRegressor, VirtualKeypointRegressor
from cvbook.nn.hourglass import Hourglass, Residual, StackedHourglass
from cvbook.nn.unet import UNet, conv_norm_act, make_norm

__all__ = [
    # blocks
    "ResidualMLPBlock",
    "conv_bn_relu",
    # classifiers
    "SCENE_CNN_LAYERS",
    "Classifier",
    "ConvNet",
    "SceneCNN",
    # backbones
    "SmallCNN",
    "SmallNet",
    "cifar_resnet18",
    # encoder-decoders
    "UNet",
    "conv_norm_act",
    "make_norm",
    "Hourglass",
    "Residual",
    "StackedHourglass",
    # heads
    "DescriptorHead",
    "HeatmapHead",
    "KeypointRegressor",
    "VirtualKeypointRegressor",
]
