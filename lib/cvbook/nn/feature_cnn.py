"""Old import path (kept for one release): the networks now live in
:mod:`cvbook.nn.backbones`; import them from there or from :mod:`cvbook.nn`."""

import warnings

from cvbook.nn.backbones import SmallCNN, cifar_resnet18  # noqa: F401

warnings.warn("cvbook.nn.feature_cnn is deprecated: import from cvbook.nn "
              "(the networks now live in cvbook.nn.backbones)", DeprecationWarning, stacklevel=2)
