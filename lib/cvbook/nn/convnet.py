"""Old import path (kept for one release): the networks now live in
:mod:`cvbook.nn.classifiers`; import them from there or from :mod:`cvbook.nn`."""

from cvbook.nn.blocks import conv_bn_relu  # noqa: F401
from cvbook.nn.classifiers import ConvNet  # noqa: F401
