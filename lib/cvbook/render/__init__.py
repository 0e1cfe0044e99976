"""Renderers written for the synthetic worlds (no maintained library offers them on the
CPU): 2-D signed-distance shapes (:mod:`~cvbook.render.sdf`) and anti-aliased
compositing (:mod:`~cvbook.render.composite`)."""

from cvbook.render.composite import composite, coverage, over
from cvbook.render.sdf import SHAPES, bar_distance, object_frame, shape_distance

__all__ = ["SHAPES", "bar_distance", "composite", "coverage", "object_frame", "over",
           "shape_distance"]
