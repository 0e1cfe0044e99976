"""Old import path (kept for one release): the networks now live in
:mod:`cvbook.nn.classifiers`; import them from there or from :mod:`cvbook.nn`."""

from cvbook.nn.classifiers import SCENE_CNN_LAYERS, SceneCNN  # noqa: F401
