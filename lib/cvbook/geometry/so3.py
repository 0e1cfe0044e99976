"""Rotations in 3D (the group SO(3)), batched and differentiable.

Conventions: a rotation matrix ``R`` acts on column vectors, ``x' = R x``; for points
stored as rows ``(..., K, 3)`` this is ``X @ R.transpose(-1, -2)``. Axis-angle vectors
``w`` have the rotation angle ``|w|`` and the axis ``w / |w|`` (right-hand rule).
Euler angles follow :mod:`scipy.spatial.transform`: a lower-case sequence such as
``"xyz"`` is extrinsic (fixed axes), an upper-case one such as ``"XYZ"`` intrinsic.
Quaternions are ``(w, x, y, z)`` with ``w >= 0``.

Which parts use roma (a maintained rotation library) and which are written here:

* roma does the conversions *from* a matrix (:func:`matrix_to_quaternion`,
  :func:`matrix_to_axis_angle`, :func:`matrix_to_euler`, :func:`rotation_angle`) and
  :func:`quaternion_to_matrix` (hence :func:`random_rotation`): its Markley/Shepperd
  conversion and its ``asin``-based angle are better conditioned than a hand-written
  version (the trace/``arccos`` angle lost about 2e-4 rad near 0 and pi, and the
  ``asin`` Euler extraction about 1e-5 rad, in float64). These wrappers only translate
  conventions (roma's quaternions are ``(x, y, z, w)``).
* Written here, on purpose: :func:`axis_angle_to_matrix` (C3DPO's rotation head),
  :func:`elementary_rotation` and :func:`euler_to_matrix` (the puppet world's forward
  kinematics). roma's Rodrigues formula agrees to about 7e-7 in float32 but is not
  bit-identical, and chapter 07's stored outputs (trained networks, the puppet data) are
  reproduced bit for bit from these definitions; they are also a few lines each.
  :func:`hat`, :func:`vee` and the samplers are three-liners.

``tests/test_geometry.py`` checks every function against scipy and the roma-backed ones
against the previous hand-written definitions.

Example:
    >>> import math, torch
    >>> R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    >>> R.round(decimals=6) + 0.0
    tensor([[ 0., -1.,  0.],
            [ 1.,  0.,  0.],
            [ 0.,  0.,  1.]])
    >>> round(float(rotation_angle(R)), 5)
    1.5708
"""

from __future__ import annotations

import math

import roma
import torch

from cvbook.core.validate import check_float, check_int, check_tensor

__all__ = [
    "axis_angle_to_matrix",
    "elementary_rotation",
    "euler_to_matrix",
    "hat",
    "matrix_to_axis_angle",
    "matrix_to_euler",
    "matrix_to_quaternion",
    "quaternion_to_matrix",
    "random_axis_angle",
    "random_rotation",
    "rotation_angle",
    "vee",
]


def _check_vec3(w: object, name: str) -> torch.Tensor:
    return check_tensor(w, name, shape="... 3", floating=True)


def _check_mat3(R: object, name: str) -> torch.Tensor:
    return check_tensor(R, name, shape="... 3 3", floating=True)


def hat(w: torch.Tensor) -> torch.Tensor:
    """The skew-symmetric matrix ``[w]x`` with ``[w]x v = w x v``.

    Args:
        w: ``(..., 3)`` vectors.

    Returns:
        ``(..., 3, 3)`` skew-symmetric matrices.
    """
    w = _check_vec3(w, "w")
    x, y, z = w.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*w.shape[:-1], 3, 3)


def vee(S: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hat`: ``(..., 3, 3)`` -> ``(..., 3)`` (uses the antisymmetric part)."""
    S = _check_mat3(S, "S")
    A = 0.5 * (S - S.transpose(-1, -2))
    return torch.stack([A[..., 2, 1], A[..., 0, 2], A[..., 1, 0]], dim=-1)


def axis_angle_to_matrix(w: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula ``R = exp([w]x) = I + sin(t)/t [w]x + (1 - cos t)/t^2 [w]x^2``.

    This is the rotation head of C3DPO (paper, Sec. 3.1: ``R = exp([w]x)``). Smooth at
    ``w = 0`` (Taylor expansions are used for small angles, so gradients are finite).

    Args:
        w: ``(..., 3)`` axis-angle vectors.

    Returns:
        ``(..., 3, 3)`` rotation matrices.
    """
    w = _check_vec3(w, "w")
    t2 = (w * w).sum(-1)
    small = t2 < 1e-8
    t2s = torch.where(small, torch.ones_like(t2), t2)
    t = t2s.sqrt()
    a = torch.where(small, 1 - t2 / 6 + t2 * t2 / 120, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24 + t2 * t2 / 720, (1 - torch.cos(t)) / t2s)
    K = hat(w)
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(K)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def rotation_angle(R: torch.Tensor) -> torch.Tensor:
    """The angle in ``[0, pi]`` of rotations ``(..., 3, 3)`` -> ``(...)`` (roma's
    geodesic distance to the identity, ``2 asin(|R - I|_F / (2 sqrt 2))``)."""
    R = _check_mat3(R, "R")
    return roma.rotmat_geodesic_distance(R, torch.eye(3, dtype=R.dtype, device=R.device))


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """The logarithm map: rotation matrices ``(..., 3, 3)`` -> axis-angle ``(..., 3)``.

    Goes through the unit quaternion (roma), which is stable for all angles including
    ``pi``; the angle is in ``[0, pi]``.
    """
    return roma.rotmat_to_rotvec(_check_mat3(R, "R"))


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> unit quaternions ``(..., 4)`` as ``(w, x, y, z)``
    with ``w >= 0`` (roma: Markley's variant of Shepperd's method, the best-conditioned of
    four candidates per matrix)."""
    q = roma.rotmat_to_unitquat(_check_mat3(R, "R"))[..., [3, 0, 1, 2]]  # xyzw -> wxyz
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternions ``(..., 4)`` as ``(w, x, y, z)`` (normalised here) -> ``(..., 3, 3)``."""
    q = check_tensor(q, "q", shape="... 4", floating=True)
    q = q / q.norm(dim=-1, keepdim=True)
    return roma.unitquat_to_rotmat(q[..., [1, 2, 3, 0]])  # wxyz -> roma's xyzw


def elementary_rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    """Rotation by ``angle`` (radians, ``(...)``) about the ``"x"``, ``"y"`` or ``"z"``
    axis -> ``(..., 3, 3)``."""
    if axis not in ("x", "y", "z"):
        raise ValueError(f"axis must be 'x', 'y' or 'z', got {axis!r}")
    angle = check_tensor(angle, "angle", floating=True)
    c, s = torch.cos(angle), torch.sin(angle)
    o, i = torch.zeros_like(c), torch.ones_like(c)
    if axis == "x":
        m = [i, o, o, o, c, -s, o, s, c]
    elif axis == "y":
        m = [c, o, s, o, i, o, -s, o, c]
    else:
        m = [c, -s, o, s, c, o, o, o, i]
    return torch.stack(m, dim=-1).reshape(*angle.shape, 3, 3)


def _check_seq(seq: object) -> str:
    if (not isinstance(seq, str) or len(seq) != 3 or not (seq.islower() or seq.isupper())
            or any(a not in "xyz" for a in seq.lower())
            or seq[0].lower() == seq[1].lower() or seq[1].lower() == seq[2].lower()):
        raise ValueError("seq must be three axes from 'xyz', all lower case (extrinsic) or all "
                         f"upper case (intrinsic), no axis twice in a row; got {seq!r}")
    return seq


def euler_to_matrix(angles: torch.Tensor, seq: str = "xyz") -> torch.Tensor:
    """Euler angles ``(..., 3)`` (radians) -> rotation matrices ``(..., 3, 3)``.

    ``seq`` as in ``scipy.spatial.transform.Rotation.from_euler``: extrinsic ``"xyz"``
    gives ``R = R_z(c) R_y(b) R_x(a)``; intrinsic ``"XYZ"`` gives ``R_x(a) R_y(b) R_z(c)``.
    """
    seq = _check_seq(seq)
    angles = _check_vec3(angles, "angles")
    mats = [elementary_rotation(a.lower(), angles[..., i]) for i, a in enumerate(seq)]
    if seq.islower():
        return mats[2] @ mats[1] @ mats[0]
    return mats[0] @ mats[1] @ mats[2]


def matrix_to_euler(R: torch.Tensor, seq: str = "XYZ") -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> Tait-Bryan Euler angles ``(..., 3)`` for an
    intrinsic sequence of three distinct axes (e.g. ``"XYZ"``, ``"ZYX"``) or its extrinsic
    reverse; the middle angle is in ``[-pi/2, pi/2]`` (scipy's convention; roma)."""
    seq = _check_seq(seq)
    if len(set(seq.lower())) != 3:
        raise ValueError(f"matrix_to_euler supports Tait-Bryan sequences (three distinct "
                         f"axes) only, got {seq!r}")
    return roma.rotmat_to_euler(seq, _check_mat3(R, "R"))


def random_rotation(n: int, *, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` rotations drawn uniformly (Haar measure) from SO(3) -> ``(n, 3, 3)``.

    A normalised 4D Gaussian is a uniform unit quaternion. Drawn on ``device`` with
    ``generator`` (whose device must match).
    """
    n = check_int(n, "n", min_value=0)
    q = torch.randn(n, 4, generator=generator, device=device, dtype=dtype)
    return quaternion_to_matrix(q)


def random_axis_angle(n: int, *, max_angle: float = math.pi,
                      generator: torch.Generator | None = None,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Axis-angle vectors ``(n, 3)`` with a uniform axis on the sphere and an angle
    uniform in ``[0, max_angle]`` (C3DPO's sampling of the rotations R-hat fed to the
    canonicalisation network, Sec. 3.2)."""
    n = check_int(n, "n", min_value=0)
    max_angle = check_float(max_angle, "max_angle", min_value=0.0, max_value=math.pi)
    axis = torch.randn(n, 3, generator=generator, device=device, dtype=dtype)
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    ang = torch.rand(n, 1, generator=generator, device=device, dtype=dtype) * max_angle
    return axis * ang
