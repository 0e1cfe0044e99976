"""Geometry shared by the 3D chapters: rotations (:mod:`cvbook.geometry.so3`) and
cameras and projections (:mod:`cvbook.geometry.camera`)."""

from cvbook.geometry.camera import (
    Camera,
    camera_rotation,
    orthographic_projection,
    perspective_projection,
    sample_cameras,
    to_camera,
)
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

__all__ = [
    "Camera",
    "axis_angle_to_matrix",
    "camera_rotation",
    "elementary_rotation",
    "euler_to_matrix",
    "hat",
    "matrix_to_axis_angle",
    "matrix_to_euler",
    "matrix_to_quaternion",
    "orthographic_projection",
    "perspective_projection",
    "quaternion_to_matrix",
    "random_axis_angle",
    "random_rotation",
    "rotation_angle",
    "sample_cameras",
    "to_camera",
    "vee",
]
