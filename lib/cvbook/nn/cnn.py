"""Old import path (kept for one release): the networks now live in
:mod:`cvbook.nn.classifiers`; import them from there or from :mod:`cvbook.nn`."""

import warnings

from cvbook.nn.classifiers import SCENE_CNN_LAYERS, SceneCNN  # noqa: F401

warnings.warn("cvbook.nn.cnn is deprecated: import from cvbook.nn "
              "(the networks now live in cvbook.nn.classifiers)", DeprecationWarning, stacklevel=2)
