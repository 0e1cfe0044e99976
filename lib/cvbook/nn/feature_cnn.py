"""Old import path (kept for one release): the networks now live in
:mod:`cvbook.nn.backbones`; import them from there or from :mod:`cvbook.nn`."""

from cvbook.nn.backbones import SmallCNN, cifar_resnet18  # noqa: F401
