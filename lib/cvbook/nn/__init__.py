"""Networks, named by what a reader looks for: building blocks
(:mod:`~cvbook.nn.blocks`), image classifiers (:mod:`~cvbook.nn.classifiers`), feature
backbones (:mod:`~cvbook.nn.backbones`). The public names are re-exported here, one
import line per module (add new modules the same way)."""

from cvbook.nn.backbones import SmallCNN, cifar_resnet18
from cvbook.nn.blocks import ResidualMLPBlock, conv_bn_relu
from cvbook.nn.classifiers import SCENE_CNN_LAYERS, Classifier, ConvNet, SceneCNN

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
    "cifar_resnet18",
]
