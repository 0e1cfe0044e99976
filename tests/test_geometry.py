"""cvbook.geometry: rotations against scipy's Rotation, analytic cases and autograd."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cvbook.geometry import (
    Camera,
    axis_angle_to_matrix,
    camera_rotation,
    elementary_rotation,
    euler_to_matrix,
    hat,
    matrix_to_axis_angle,
    matrix_to_euler,
    matrix_to_quaternion,
    orthographic_projection,
    perspective_projection,
    quaternion_to_matrix,
    random_axis_angle,
    random_rotation,
    rotation_angle,
    sample_cameras,
    to_camera,
    vee,
)

G = torch.Generator().manual_seed(0)


def _rv(n=64):
    return torch.randn(n, 3, generator=G, dtype=torch.float64) * 1.2


def test_rodrigues_matches_scipy():
    w = _rv()
    ours = axis_angle_to_matrix(w).numpy()
    ref = Rotation.from_rotvec(w.numpy()).as_matrix()
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_rodrigues_small_angle_and_gradient_finite():
    w = torch.tensor([[0.0, 0.0, 0.0], [1e-6, -2e-6, 3e-7]], dtype=torch.float64,
                     requires_grad=True)
    R = axis_angle_to_matrix(w)
    np.testing.assert_allclose(R.detach().numpy(), Rotation.from_rotvec(w.detach().numpy())
                               .as_matrix(), atol=1e-12)
    R.sum().backward()
    assert torch.isfinite(w.grad).all()
    # derivative at 0 is the hat map: d/dw (R v) = -[v]x
    v = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda x: axis_angle_to_matrix(x) @ v,
                                           torch.zeros(3, dtype=torch.float64))
    np.testing.assert_allclose(J.numpy(), -hat(v).numpy(), atol=1e-12)


def test_hat_vee_cross():
    a, b = _rv(8), _rv(8)
    np.testing.assert_allclose((hat(a) @ b[..., None])[..., 0].numpy(),
                               torch.linalg.cross(a, b).numpy(), atol=1e-12)
    np.testing.assert_allclose(vee(hat(a)).numpy(), a.numpy(), atol=1e-12)


def test_log_map_roundtrip_including_pi():
    w = _rv()
    w = w / w.norm(dim=-1, keepdim=True) * torch.rand(64, 1, generator=G,
                                                      dtype=torch.float64) * math.pi
    w[0] = torch.tensor([math.pi, 0, 0], dtype=torch.float64)
    w[1] = 0
    R = axis_angle_to_matrix(w)
    back = axis_angle_to_matrix(matrix_to_axis_angle(R))
    np.testing.assert_allclose(back.numpy(), R.numpy(), atol=1e-9)
    np.testing.assert_allclose(matrix_to_axis_angle(R)[2:].numpy(),
                               Rotation.from_matrix(R[2:].numpy()).as_rotvec(), atol=1e-9)
    np.testing.assert_allclose(rotation_angle(R).numpy(), w.norm(dim=-1).numpy(), atol=1e-6)


def test_quaternions_match_scipy():
    q = torch.randn(32, 4, generator=G, dtype=torch.float64)
    ref = Rotation.from_quat(q[:, [1, 2, 3, 0]].numpy()).as_matrix()  # scipy: (x, y, z, w)
    np.testing.assert_allclose(quaternion_to_matrix(q).numpy(), ref, atol=1e-12)
    back = matrix_to_quaternion(torch.from_numpy(ref))
    np.testing.assert_allclose(quaternion_to_matrix(back).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("seq", ["xyz", "XYZ", "zyx", "ZYX", "ZXZ", "yxz"])
def test_euler_matches_scipy(seq):
    ang = torch.rand(16, 3, generator=G, dtype=torch.float64) * 2 - 1
    ref = Rotation.from_euler(seq, ang.numpy()).as_matrix()
    np.testing.assert_allclose(euler_to_matrix(ang, seq).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("seq", ["XYZ", "ZYX", "YXZ", "xyz", "zyx"])
def test_matrix_to_euler_roundtrip(seq):
    R = random_rotation(32, generator=G, dtype=torch.float64)
    ang = matrix_to_euler(R, seq)
    np.testing.assert_allclose(euler_to_matrix(ang, seq).numpy(), R.numpy(), atol=1e-9)
    np.testing.assert_allclose(ang.numpy(), Rotation.from_matrix(R.numpy()).as_euler(seq),
                               atol=1e-7)


def test_elementary_analytic():
    R = elementary_rotation("z", torch.tensor(math.pi / 2, dtype=torch.float64))
    np.testing.assert_allclose((R @ torch.tensor([1.0, 0, 0], dtype=torch.float64)).numpy(),
                               [0, 1, 0], atol=1e-12)
    with pytest.raises(ValueError, match="axis"):
        elementary_rotation("w", torch.tensor(0.0))


def test_random_rotation_is_uniform_and_orthonormal():
    R = random_rotation(20000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(R @ R.transpose(-1, -2), eye.expand_as(R), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(20000, dtype=torch.float64))
    # Haar measure: E[R] = 0 and the angle has density (1 - cos t) / pi, mean pi/2 + 2/pi
    assert R.mean(0).abs().max() < 0.03
    assert abs(rotation_angle(R).mean().item() - (math.pi / 2 + 2 / math.pi)) < 0.02


def test_random_axis_angle_range():
    w = random_axis_angle(5000, max_angle=math.pi / 4, generator=G)
    n = w.norm(dim=-1)
    assert n.max() <= math.pi / 4 + 1e-6
    assert abs(n.mean().item() - math.pi / 8) < 0.02
    with pytest.raises(ValueError, match="max_angle"):
        random_axis_angle(3, max_angle=4.0)


def test_projections_analytic():
    X = torch.tensor([[[1.0, 2.0, 4.0], [-2.0, 0.5, 2.0]]])
    np.testing.assert_allclose(orthographic_projection(X, 2.0).numpy(),
                               [[[2, 4], [-4, 1]]])
    np.testing.assert_allclose(perspective_projection(X, 2.0).numpy(),
                               [[[0.5, 1.0], [-2.0, 0.5]]])
    with pytest.raises(ValueError, match="X must have shape"):
        orthographic_projection(torch.zeros(3, 2))
    with pytest.raises(TypeError, match="X must be a torch.Tensor"):
        perspective_projection(np.zeros((2, 3)))


def test_camera_rotation_and_sampling():
    # azimuth 90 degrees: the camera looks at the figure's side, world +x goes to depth
    R = camera_rotation(torch.tensor(math.pi / 2), torch.tensor(0.0))
    np.testing.assert_allclose((R @ torch.tensor([1.0, 0, 0])).numpy(), [0, 0, 1], atol=1e-6)
    cam = sample_cameras(5, kind="perspective", generator=torch.Generator().manual_seed(0))
    X = torch.zeros(5, 2, 3)
    y, depth = cam.project(X)
    assert torch.allclose(depth, torch.full((5, 2), 4.0))
    assert torch.allclose(y, torch.zeros(5, 2, 2))
    assert torch.allclose(to_camera(X, cam.R, cam.t), cam.to_camera(X))
    with pytest.raises(ValueError, match="kind"):
        Camera(R=cam.R, t=cam.t, kind="fisheye", focal=cam.focal)
    with pytest.raises(ValueError, match="elevation"):
        sample_cameras(2, elevation=(0.0, 3.0))
