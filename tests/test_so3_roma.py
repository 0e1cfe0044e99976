"""The roma-backed conversions of cvbook.geometry.so3 agree with the definitions they
replaced (kept here as references: trace/arccos angle, Shepperd's quaternion, the
quaternion's closed-form matrix, asin/atan2 Tait-Bryan angles, the quaternion log map)."""

from __future__ import annotations

import math

import pytest
import torch

from cvbook.geometry.so3 import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler,
    matrix_to_quaternion,
    quaternion_to_matrix,
    random_rotation,
    rotation_angle,
)

D = dict(dtype=torch.float64)


def ref_angle(R):
    return torch.arccos(((R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1) / 2).clamp(-1, 1))


def ref_quat_to_matrix(q):
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def ref_matrix_to_quat(R):
    """Shepperd: the candidate 4 q_i q with the largest 4 q_i^2, normalised, w >= 0."""
    m = R
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    c = torch.stack([
        torch.stack([1 + tr, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + 2 * m[..., 0, 0] - tr,
                     m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                     1 + 2 * m[..., 1, 1] - tr, m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                     m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m[..., 2, 2] - tr], -1)], -2)
    best = torch.diagonal(c, dim1=-2, dim2=-1).argmax(-1)
    q = torch.gather(c, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def ref_log(R):
    q = ref_matrix_to_quat(R)
    s = q[..., 1:].norm(dim=-1)
    t = 2 * torch.atan2(s, q[..., 0])
    scale = torch.where(s < 1e-8, 2.0 / q[..., 0].clamp_min(1e-8), t / s.clamp_min(1e-12))
    return q[..., 1:] * scale[..., None]


def ref_euler(R, seq):
    i, j, k = ("XYZ".index(a) for a in seq)
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    b = torch.asin((sign * R[..., i, k]).clamp(-1.0, 1.0))
    a = torch.atan2(-sign * R[..., j, k], R[..., k, k])
    c = torch.atan2(-sign * R[..., i, j], R[..., i, i])
    return torch.stack([a, b, c], -1)


@pytest.fixture
def rotations(device):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(500, 3, generator=g, **D)
    w = w / w.norm(dim=-1, keepdim=True) * torch.rand(500, 1, generator=g, **D) * 3.1
    w[0] = 0.0
    w[1] = torch.tensor([math.pi, 0.0, 0.0], **D)
    return axis_angle_to_matrix(w).to(device), w.to(device)


def test_quaternions_agree(rotations) -> None:
    R, _ = rotations
    q = matrix_to_quaternion(R)
    torch.testing.assert_close(q[2:], ref_matrix_to_quat(R)[2:], atol=1e-12, rtol=0)
    # at angle pi, q and -q are both valid with w = 0: compare the rotations
    torch.testing.assert_close(quaternion_to_matrix(q), R, atol=1e-12, rtol=0)
    g = torch.Generator().manual_seed(1)
    raw = torch.randn(200, 4, generator=g, **D).to(R.device) * 3  # not unit: normalised
    torch.testing.assert_close(quaternion_to_matrix(raw), ref_quat_to_matrix(raw),
                               atol=1e-12, rtol=0)


def test_log_map_and_angle_agree(rotations) -> None:
    R, w = rotations
    torch.testing.assert_close(matrix_to_axis_angle(R)[2:], ref_log(R)[2:], atol=1e-10, rtol=0)
    torch.testing.assert_close(axis_angle_to_matrix(matrix_to_axis_angle(R)), R, atol=1e-10,
                               rtol=0)
    torch.testing.assert_close(rotation_angle(R), w.norm(dim=-1), atol=1e-7, rtol=0)
    mid = (w.norm(dim=-1) > 0.1) & (w.norm(dim=-1) < 3.0)  # arccos is fine away from 0, pi
    torch.testing.assert_close(rotation_angle(R)[mid], ref_angle(R)[mid], atol=1e-9, rtol=0)


@pytest.mark.parametrize("seq", ["XYZ", "ZYX", "YXZ", "xyz"])
def test_euler_agrees_away_from_gimbal_lock(rotations, seq) -> None:
    R, _ = rotations
    ours = matrix_to_euler(R, seq)
    ref = ref_euler(R, seq) if seq.isupper() else ref_euler(R, seq[::-1].upper()).flip(-1)
    ok = ref[..., 1].abs() < 1.4  # the middle angle away from +-pi/2
    torch.testing.assert_close(ours[ok], ref[ok], atol=1e-9, rtol=0)


def test_random_rotation_is_a_rotation(device) -> None:
    g = torch.Generator(device=device).manual_seed(0)
    R = random_rotation(100, generator=g, device=device, dtype=torch.float64)
    eye = torch.eye(3, **D, device=device).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=1e-12, rtol=0)
    assert torch.allclose(torch.linalg.det(R), torch.ones(100, **D, device=device))


def test_gradients_flow_through_roma(device) -> None:
    w = torch.tensor([[0.3, -0.2, 0.5], [1.0, 2.0, -0.5]], **D, device=device,
                     requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: matrix_to_axis_angle(axis_angle_to_matrix(x)),
                                    (w,))
    q = torch.tensor([[0.9, 0.1, -0.3, 0.2]], **D, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(quaternion_to_matrix, (q,))
