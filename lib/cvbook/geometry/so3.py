"""Rotations in 3D (the group SO(3)), batched and differentiable.

Conventions: a rotation matrix ``R`` acts on column vectors, ``x' = R x``; for points
stored as rows ``(..., K, 3)`` this is ``X @ R.transpose(-1, -2)``. Axis-angle vectors
``w`` have the rotation angle ``|w|`` and the axis ``w / |w|`` (right-hand rule).
Euler angles follow :mod:`scipy.spatial.transform`: a lower-case sequence such as
``"xyz"`` is extrinsic (fixed axes), an upper-case one such as ``"XYZ"`` intrinsic.
"""

from __future__ import annotations

import math

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
    """The angle in ``[0, pi]`` of rotations ``(..., 3, 3)`` -> ``(...)``."""
    R = _check_mat3(R, "R")
    c = ((R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1) / 2).clamp(-1.0, 1.0)
    return torch.arccos(c)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """The logarithm map: rotation matrices ``(..., 3, 3)`` -> axis-angle ``(..., 3)``.

    Goes through the unit quaternion, which is stable for all angles including ``pi``.
    """
    R = _check_mat3(R, "R")
    q = matrix_to_quaternion(R)
    # q = (cos t/2, sin t/2 * axis), with q[..., 0] >= 0, so t in [0, pi].
    s = q[..., 1:].norm(dim=-1)
    t = 2 * torch.atan2(s, q[..., 0])
    scale = torch.where(s < 1e-8, 2.0 / q[..., 0].clamp_min(1e-8), t / s.clamp_min(1e-12))
    return q[..., 1:] * scale[..., None]


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> unit quaternions ``(..., 4)`` as ``(w, x, y, z)``
    with ``w >= 0`` (Shepperd's method, vectorised: the best-conditioned of four
    candidates is selected per matrix)."""
    R = _check_mat3(R, "R")
    m = R
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cands = torch.stack([
        torch.stack([1 + tr, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + 2 * m[..., 0, 0] - tr,
                     m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                     1 + 2 * m[..., 1, 1] - tr, m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                     m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m[..., 2, 2] - tr], -1),
    ], dim=-2)  # (..., 4, 4); candidate i has 4 q_i^2 at position i
    diag = torch.stack([1 + tr, 1 + 2 * m[..., 0, 0] - tr, 1 + 2 * m[..., 1, 1] - tr,
                        1 + 2 * m[..., 2, 2] - tr], -1)
    best = diag.argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternions ``(..., 4)`` as ``(w, x, y, z)`` (normalised here) -> ``(..., 3, 3)``."""
    q = check_tensor(q, "q", shape="... 4", floating=True)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


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
    reverse; the middle angle is in ``[-pi/2, pi/2]`` (scipy's convention)."""
    seq = _check_seq(seq)
    if len(set(seq.lower())) != 3:
        raise ValueError(f"matrix_to_euler supports Tait-Bryan sequences (three distinct "
                         f"axes) only, got {seq!r}")
    R = _check_mat3(R, "R")
    if seq.islower():  # extrinsic abc == intrinsic CBA with reversed angles
        return matrix_to_euler(R, seq[::-1].upper()).flip(-1)
    i, j, k = ("XYZ".index(a) for a in seq)
    sign = 1.0 if (j - i) % 3 == 1 else -1.0  # even permutation of xyz
    # R = R_i(a) R_j(b) R_k(c): R[i, k] = sign * sin(b)
    b = torch.asin((sign * R[..., i, k]).clamp(-1.0, 1.0))
    a = torch.atan2(-sign * R[..., j, k], R[..., k, k])
    c = torch.atan2(-sign * R[..., i, j], R[..., i, i])
    return torch.stack([a, b, c], dim=-1)


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
