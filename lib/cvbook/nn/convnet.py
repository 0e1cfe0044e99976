"""Old import path (kept for one release): the networks now live in
:mod:`cvbook.nn.classifiers`; import them from there or from :mod:`cvbook.nn`."""

import warnings

from cvbook.nn.blocks import conv_bn_relu  # noqa: F401
from cvbook.nn.classifiers import ConvNet  # noqa: F401

warnings.warn("cvbook.nn.convnet is deprecated: import from cvbook.nn "
              "(the networks now live in cvbook.nn.classifiers and cvbook.nn.blocks)",
              DeprecationWarning, stacklevel=2)
