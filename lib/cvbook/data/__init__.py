"""Synthetic worlds with exact ground truth (generated on the device) and adapters to
real datasets for the ``full`` presets. Import worlds from their modules, e.g.
``from cvbook.data.scenes import make_scenes``."""
