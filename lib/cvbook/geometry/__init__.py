"""Geometry shared by the chapters: rotations (:mod:`cvbook.geometry.so3`), cameras and
projections (:mod:`cvbook.geometry.camera`), image coordinates
(:mod:`cvbook.geometry.coords`), TPS / affine / flow warps (:mod:`cvbook.geometry.warp`)
and sub-pixel keypoints from heat maps (:mod:`cvbook.geometry.subpix`)."""

from cvbook.geometry.camera import (
    Camera,
    camera_rotation,
    orthographic_projection,
    perspective_projection,
    sample_cameras,
    to_camera,
)
from cvbook.geometry.coords import normalized_to_pixel, pixel_grid, pixel_to_normalized
from cvbook.geometry.so3 import (
    axis_angle_to_matrix,
    elementary_rotation,
    euler_to_matrix,
    hat,
    matrix_to_axis_angle,
    matrix_to_euler,
    matrix_to_quaternion,
    quaternion_to_matrix,
    random_axis_angle,
    random_rotation,
    rotation_angle,
    vee,
)
from cvbook.geometry.subpix import (
    gaussian_heatmaps,
    marginal_soft_argmax,
    soft_argmax,
    spatial_softmax,
)
from cvbook.geometry.warp import (
    Warp,
    affine_warp,
    flow_consistency_mask,
    random_affine,
    random_tps,
    sample_at,
    sample_points,
    tps_fit,
    warp_by_flow,
    warp_grid,
    warp_image,
    warp_points,
)

__all__ = [
    "Camera",
    "Warp",
    "affine_warp",
    "axis_angle_to_matrix",
    "camera_rotation",
    "elementary_rotation",
    "euler_to_matrix",
    "flow_consistency_mask",
    "gaussian_heatmaps",
    "hat",
    "marginal_soft_argmax",
    "matrix_to_axis_angle",
    "matrix_to_euler",
    "matrix_to_quaternion",
    "normalized_to_pixel",
    "orthographic_projection",
    "perspective_projection",
    "pixel_grid",
    "pixel_to_normalized",
    "quaternion_to_matrix",
    "random_affine",
    "random_axis_angle",
    "random_rotation",
    "random_tps",
    "rotation_angle",
    "sample_at",
    "sample_cameras",
    "sample_points",
    "soft_argmax",
    "spatial_softmax",
    "to_camera",
    "tps_fit",
    "vee",
    "warp_by_flow",
    "warp_grid",
    "warp_image",
    "warp_points",
]
