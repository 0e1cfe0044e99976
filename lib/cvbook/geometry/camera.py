"""Cameras and projections, batched.

A camera is a world-to-camera rigid motion ``x_cam = R x_world + t`` followed by a
projection. The camera looks down its ``+z`` axis, ``x`` to the right, ``y`` *up*
(so that a figure standing along world ``+y`` appears upright without a flip), and
depth ``z`` grows away from the camera. Orthographic projection keeps ``(x, y)``
(times a scale); perspective projection divides by depth: ``f (x, y) / z``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cvbook.core.validate import (
    Shapes,
    check_choice,
    check_float,
    check_int,
    check_range,
    check_tensor,
)
from cvbook.geometry.so3 import elementary_rotation

__all__ = [
    "Camera",
    "camera_rotation",
    "orthographic_projection",
    "perspective_projection",
    "sample_cameras",
    "to_camera",
]


def _check_points(X: object, name: str = "X") -> torch.Tensor:
    return check_tensor(X, name, shape="... K 3", floating=True)


def orthographic_projection(X: torch.Tensor, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``Pi(X)``: the first two coordinates of camera-frame points, times ``scale``.

    This is the projection of C3DPO (paper Eq. 1: ``Y = Pi R X``).

    Args:
        X: ``(..., K, 3)`` points in the camera frame.
        scale: a float or a tensor broadcastable to ``(..., 1, 1)``.

    Returns:
        ``(..., K, 2)`` image points.

    >>> orthographic_projection(torch.tensor([[1.0, 2.0, 5.0]]), 2.0)
    tensor([[2., 4.]])
    """
    X = _check_points(X)
    return X[..., :2] * scale


def perspective_projection(X: torch.Tensor, focal: torch.Tensor | float = 1.0,
                           eps: float = 1e-6) -> torch.Tensor:
    """Pinhole projection ``f (x, y) / z`` of camera-frame points ``(..., K, 3)``
    -> ``(..., K, 2)``. Depths are clamped at ``eps`` (points behind the camera are
    the caller's business: check ``X[..., 2] > 0``)."""
    X = _check_points(X)
    return focal * X[..., :2] / X[..., 2:3].clamp_min(eps)


def to_camera(X: torch.Tensor, R: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
    """World points ``(..., K, 3)`` to the camera frame, ``R x + t``, with ``R``
    ``(..., 3, 3)`` and ``t`` ``(..., 3)`` broadcasting over the leading dimensions."""
    X = _check_points(X)
    R = check_tensor(R, "R", shape="... 3 3", floating=True)
    Y = X @ R.transpose(-1, -2)
    if t is not None:
        Y = Y + check_tensor(t, "t", shape="... 3", floating=True)[..., None, :]
    return Y


def camera_rotation(azimuth: torch.Tensor, elevation: torch.Tensor,
                    roll: torch.Tensor | None = None) -> torch.Tensor:
    """World-to-camera rotations for a camera orbiting a figure that stands along the
    world ``+y`` axis: ``R = R_z(roll) R_x(-elevation) R_y(-azimuth)``.

    At azimuth = elevation = roll = 0 the camera frame is the world frame (the camera
    looks along world ``+z``, at the front of a figure facing ``-z``); the azimuth turns
    the camera about the vertical, the elevation tilts it about its own ``x`` axis.
    All angles in radians, shape ``(...)``; returns ``(..., 3, 3)``.
    """
    azimuth = check_tensor(azimuth, "azimuth", floating=True)
    elevation = check_tensor(elevation, "elevation", floating=True)
    R = elementary_rotation("x", -elevation) @ elementary_rotation("y", -azimuth)
    if roll is not None:
        R = elementary_rotation("z", check_tensor(roll, "roll", floating=True)) @ R
    return R


@dataclass
class Camera:
    """A batch of cameras.

    Attributes:
        R: ``(N, 3, 3)`` world-to-camera rotations.
        t: ``(N, 3)`` translations (camera frame).
        kind: ``"orthographic"`` or ``"perspective"``.
        focal: ``(N,)`` focal lengths (perspective) or scales (orthographic).
    """

    R: torch.Tensor
    t: torch.Tensor
    kind: str
    focal: torch.Tensor

    def __post_init__(self) -> None:
        s = Shapes()
        s.check(self.R, "R", "N 3 3", floating=True)
        s.check(self.t, "t", "N 3", floating=True)
        s.check(self.focal, "focal", "N", floating=True)
        check_choice(self.kind, "kind", ("orthographic", "perspective"))

    def __len__(self) -> int:
        return self.R.shape[0]

    def to_camera(self, X: torch.Tensor) -> torch.Tensor:
        """World points ``(N, K, 3)`` -> camera frame ``(N, K, 3)``."""
        return to_camera(X, self.R, self.t)

    def project(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """World points ``(N, K, 3)`` -> image points ``(N, K, 2)`` and depths ``(N, K)``."""
        Xc = self.to_camera(X)
        f = self.focal[:, None, None]
        if self.kind == "orthographic":
            return orthographic_projection(Xc, f), Xc[..., 2]
        return perspective_projection(Xc, f), Xc[..., 2]


def sample_cameras(n: int, *, kind: str = "orthographic",
                   azimuth: tuple[float, float] = (-torch.pi, torch.pi),
                   elevation: tuple[float, float] = (-torch.pi / 6, torch.pi / 6),
                   roll: tuple[float, float] = (0.0, 0.0), distance: float = 4.0,
                   focal: float = 1.0, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> Camera:
    """``n`` cameras looking at the world origin, angles uniform in the given ranges
    (radians). Perspective cameras sit ``distance`` away (``t = (0, 0, distance)``);
    orthographic ones have ``t = (0, 0, distance)`` too, so depths are positive."""
    n = check_int(n, "n", min_value=0)
    kind = check_choice(kind, "kind", ("orthographic", "perspective"))
    az = check_range(azimuth, "azimuth", low=-10.0, high=10.0)
    el = check_range(elevation, "elevation", low=-torch.pi / 2, high=torch.pi / 2)
    ro = check_range(roll, "roll", low=-torch.pi, high=torch.pi)
    distance = check_float(distance, "distance", min_value=0.0, open_min=True)
    focal = check_float(focal, "focal", min_value=0.0, open_min=True)

    def u(lo_hi: tuple[float, float]) -> torch.Tensor:
        lo, hi = lo_hi
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=device, dtype=dtype)

    a, e, r = u(az), u(el), u(ro)
    R = camera_rotation(a, e, r)
    t = torch.zeros(n, 3, device=device, dtype=dtype)
    t[:, 2] = distance
    return Camera(R=R, t=t, kind=kind, focal=torch.full((n,), focal, device=device, dtype=dtype))
