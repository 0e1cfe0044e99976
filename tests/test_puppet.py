"""The puppet world: kinematics, prior limits, sequences, visibility, determinism."""

import math

import pytest
import torch

from cvbook.data.puppet import (
    JOINT_NAMES,
    PARENTS,
    PART_NAMES,
    Identity,
    PuppetWorld,
    random_occlusion,
)
from cvbook.geometry import Camera, euler_to_matrix, random_rotation

W = PuppetWorld(dtype=torch.float64)
J = len(JOINT_NAMES)


def _g(s=0):
    return torch.Generator().manual_seed(s)


def _bone_lengths(X):
    idx = torch.tensor([j for j, p in enumerate(PARENTS) if p >= 0])
    par = torch.tensor([p for p in PARENTS if p >= 0])
    return (X[..., idx, :] - X[..., par, :]).norm(dim=-1), idx


def test_skeleton_is_a_tree_in_topological_order():
    assert 15 <= J <= 20
    assert PARENTS[0] == -1 and all(0 <= p < j for j, p in enumerate(PARENTS) if j > 0)
    sk = W.skeleton
    assert sk.bones.shape == (J - 1, 2)
    assert int(sk.part.max()) < len(PART_NAMES)
    assert (sk.mirror[sk.mirror] == torch.arange(J)).all()  # an involution


def test_bone_lengths_preserved_under_any_pose():
    g = _g()
    ident = W.sample_identities(64, generator=g)
    # any angles at all, far outside the prior, plus a random root rotation
    angles = (torch.rand(64, J, 3, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    root = random_rotation(64, generator=g, dtype=torch.float64)
    pose = W.forward_kinematics(angles, ident.bone_lengths, root)
    L, idx = _bone_lengths(pose.joints)
    torch.testing.assert_close(L, ident.bone_lengths[:, idx], atol=1e-12, rtol=0)
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(pose.frames @ pose.frames.transpose(-1, -2),
                               eye.expand_as(pose.frames), atol=1e-12, rtol=0)


def test_forward_kinematics_matches_recursive_reference():
    g = _g(1)
    ident = W.sample_identities(3, generator=g)
    angles = W.sample_angles(3, generator=g)
    pose = W.forward_kinematics(angles, ident.bone_lengths)
    local = euler_to_matrix(angles, "XYZ")
    d = W.skeleton.directions

    def frame(n, j):  # brute-force recursion up the tree
        if PARENTS[j] < 0:
            return local[n, j]
        return frame(n, PARENTS[j]) @ local[n, j]

    def pos(n, j):
        if PARENTS[j] < 0:
            return torch.zeros(3, dtype=torch.float64)
        p = PARENTS[j]
        return pos(n, p) + frame(n, p) @ (ident.bone_lengths[n, j] * d[j])

    for n in range(3):
        for j in range(J):
            torch.testing.assert_close(pose.joints[n, j], pos(n, j))


def test_rest_pose_is_upright_and_symmetric():
    zero = torch.zeros(1, J, 3, dtype=torch.float64)
    X = W.forward_kinematics(zero, W.skeleton.mean_lengths[None]).joints[0]
    mirror = W.skeleton.mirror
    flipped = X[mirror] * torch.tensor([-1.0, 1, 1], dtype=torch.float64)
    torch.testing.assert_close(flipped, X)
    height = X[JOINT_NAMES.index("head"), 1] - X[JOINT_NAMES.index("r_ankle"), 1]
    assert 1.5 < height < 2.0


def test_prior_stays_inside_limits_and_identity_symmetry():
    a = W.sample_angles(5000, generator=_g(), spread=2.0)
    lo, mid, hi = W.skeleton.limits.unbind(-1)
    assert ((a >= lo - 1e-9) & (a <= hi + 1e-9)).all()
    torch.testing.assert_close(W.sample_angles(2, generator=_g(), spread=0.0),
                               mid.expand(2, J, 3))
    ident = W.sample_identities(100, generator=_g())
    torch.testing.assert_close(ident.bone_lengths, ident.bone_lengths[:, W.skeleton.mirror])
    assert (ident.colors >= 0).all() and (ident.colors <= 1).all()


def test_sequences_smooth_and_within_limits():
    angles, root = W.sample_sequences(8, 60, keyframes=4, generator=_g())
    assert angles.shape == (8, 60, J, 3) and root.shape == (8, 60, 3, 3)
    lo, _, hi = W.skeleton.limits.unbind(-1)
    assert ((angles >= lo - 1e-9) & (angles <= hi + 1e-9)).all()
    step = (angles[:, 1:] - angles[:, :-1]).abs().max()
    jump = (angles[:, -1] - angles[:, 0]).abs().max()
    assert step < 0.25 * jump  # consecutive frames are close: no teleporting
    ident = W.sample_identities(8, generator=_g())
    pose = W.forward_kinematics(angles, ident.bone_lengths[:, None], root)
    L, idx = _bone_lengths(pose.joints)
    torch.testing.assert_close(L, ident.bone_lengths[:, None, idx].expand_as(L))


def test_determinism_and_device_generation():
    a = W.sample_keypoints(32, generator=_g(5), occlusion=0.3, noise=0.01)
    b = W.sample_keypoints(32, generator=_g(5), occlusion=0.3, noise=0.01)
    c = W.sample_keypoints(32, generator=_g(6), occlusion=0.3, noise=0.01)
    torch.testing.assert_close(a.keypoints, b.keypoints)
    assert torch.equal(a.visible, b.visible)
    assert not torch.allclose(a.keypoints, c.keypoints)
    assert a.keypoints.device == W.device


def test_orthographic_keypoints_are_projections():
    b = W.sample_keypoints(16, generator=_g(), self_occlusion=False)
    torch.testing.assert_close(b.keypoints, b.joints_cam[..., :2])
    assert b.visible.all()
    assert b.joints_world.mean(-2).abs().max() < 1e-12


def test_self_occlusion_analytic():
    # A figure seen exactly from its side (azimuth 90 deg): the far arm's wrist hangs
    # behind the torso / near arm; from the front, nothing is hidden in the rest pose.
    ident = W.sample_identities(1, generator=_g())
    ident = Identity(W.skeleton.mean_lengths[None], W.skeleton.radii[None] * 1.0,
                     ident.colors)
    zero = torch.zeros(1, J, 3, dtype=torch.float64)
    X = W.forward_kinematics(zero, ident.bone_lengths).joints
    eye = torch.eye(3, dtype=torch.float64)[None]
    t = torch.tensor([[0.0, 0, 4]], dtype=torch.float64)
    one = torch.ones(1, dtype=torch.float64)
    front = Camera(R=eye, t=t, kind="orthographic", focal=one)
    Xc = front.to_camera(X)
    assert not W.self_occlusion(Xc, Xc[..., :2], ident.radii, front).any()
    # side view: rotate the world so that +x (the figure's right) points at the camera
    side_R = torch.tensor([[[0.0, 0, 1], [0, 1, 0], [1, 0, 0]]], dtype=torch.float64)
    side_R[0, 2] *= -1  # x -> -z: the right side faces the camera (depth smaller)
    side = Camera(R=side_R, t=t, kind="orthographic", focal=one)
    Xc = side.to_camera(X)
    occ = W.self_occlusion(Xc, Xc[..., :2], ident.radii, side)[0]
    for name in ("l_hip", "l_knee", "l_ankle"):  # the far leg is behind the near one
        assert occ[JOINT_NAMES.index(name)], name
    for name in ("r_hip", "r_knee", "r_ankle", "head"):
        assert not occ[JOINT_NAMES.index(name)], name


def test_random_occlusion_rate_and_validation():
    m = random_occlusion((200, 50), 0.3, generator=_g())
    assert abs((~m).float().mean().item() - 0.3) < 0.02
    with pytest.raises(ValueError, match="p must be"):
        random_occlusion((2, 2), 1.5)


def test_input_validation():
    with pytest.raises(ValueError, match="angles must have shape"):
        W.forward_kinematics(torch.zeros(2, J - 1, 3, dtype=torch.float64),
                             torch.ones(2, J, dtype=torch.float64))
    with pytest.raises(TypeError, match="n must be an int"):
        W.sample_angles(2.5)
    with pytest.raises(ValueError, match="occlusion"):
        W.sample_keypoints(4, occlusion=-0.1)
    with pytest.raises(ValueError, match="kind"):
        W.sample_keypoints(4, kind="fisheye")


def test_perspective_views_are_in_front_of_the_camera():
    b = W.sample_keypoints(64, generator=_g(), kind="perspective")
    assert (b.joints_cam[..., 2] > 0).all()
    torch.testing.assert_close(b.keypoints, 4.0 * b.joints_cam[..., :2] / b.joints_cam[..., 2:])
