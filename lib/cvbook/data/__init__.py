"""Synthetic worlds with exact ground truth (generated on the device; e.g. the jittered
digits of :mod:`~cvbook.data.glyphs` for novel-class discovery), adapters to real
datasets for the ``full`` presets, and the shared data pieces: tensor and image-folder
sources (:mod:`~cvbook.data.sources`), class splits for novel-class discovery
(:mod:`~cvbook.data.splits`), ImageNet constants (:mod:`~cvbook.data.imagenet`), the
default download folder (:mod:`~cvbook.data.paths`) and the one mini-batch iterator
(:mod:`~cvbook.data.loaders`). Import from the modules, e.g.
``from cvbook.data.scenes import make_scenes``."""
