"""The puppet world: a procedural, articulated 3D figure with exact ground truth.

Shared by the 3D chapters (C3DPO first; later the keypoint and dense-pose chapters,
which render it). Everything is batched, seeded through a ``torch.Generator`` and
generated directly on the device.

Pieces, each usable on its own:

* :class:`Skeleton` -- a fixed kinematic tree of 19 joints (a Human3.6M-like body plus
  two toes), rest-pose bone directions, mean bone lengths, the body part of every bone
  (``PART_NAMES``; renderers use it for per-pixel part labels), limb radii and a
  joint-angle prior with anatomical limits.
* :meth:`PuppetWorld.sample_identities` -- per-identity proportions (bone lengths,
  left/right symmetric), limb thickness and part colours.
* :meth:`PuppetWorld.sample_angles` / :meth:`PuppetWorld.sample_sequences` -- poses
  from the prior, or smooth motion sequences (keyframes from the prior, interpolated
  inside the limits).
* :meth:`PuppetWorld.forward_kinematics` -- joint positions and the global frame of
  every joint (a renderer attaches surface coordinates to these frames; differencing
  the points of two frames of a sequence gives exact 3D flow).
* cameras (:func:`cvbook.geometry.sample_cameras`, orthographic or perspective),
  :meth:`PuppetWorld.self_occlusion` (limbs as capsules hiding joints behind them) and
  :func:`random_occlusion`.
* :meth:`PuppetWorld.sample_keypoints` -- the whole pipeline in one call, returning a
  :class:`KeypointBatch` (3D joints in the camera frame, 2D keypoints, visibility).

World frame: ``+y`` up, the figure faces ``-z`` (towards a camera at azimuth 0), its
right side is ``+x``. Units: the mean figure is about 1.75 tall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from cvbook.core.validate import check_float, check_int, check_range, check_tensor
from cvbook.geometry.camera import Camera, sample_cameras
from cvbook.geometry.so3 import elementary_rotation, euler_to_matrix

__all__ = [
    "JOINT_NAMES",
    "PARENTS",
    "PART_NAMES",
    "Identity",
    "KeypointBatch",
    "Pose",
    "PuppetWorld",
    "Skeleton",
    "random_occlusion",
]

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "spine", "thorax", "neck", "head",
    "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    "r_toe", "l_toe",
)
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15, 3, 6)
PART_NAMES: tuple[str, ...] = (
    "torso", "head", "r_upper_leg", "r_lower_leg", "r_foot", "l_upper_leg", "l_lower_leg",
    "l_foot", "l_upper_arm", "l_lower_arm", "r_upper_arm", "r_lower_arm",
)

# Per joint j: the rest direction and mean length of the bone parent(j) -> j, the body
# part that bone belongs to, its radius, and the joint that mirrors j (left <-> right).
_REST = {
    #  name        direction         length part           radius mirror
    "pelvis":     ((0, 0, 0), 0.00, "torso", 0.00, "pelvis"),
    "r_hip":      ((1, 0, 0), 0.10, "torso", 0.11, "l_hip"),
    "r_knee":     ((0, -1, 0), 0.45, "r_upper_leg", 0.075, "l_knee"),
    "r_ankle":    ((0, -1, 0), 0.44, "r_lower_leg", 0.055, "l_ankle"),
    "l_hip":      ((-1, 0, 0), 0.10, "torso", 0.11, "r_hip"),
    "l_knee":     ((0, -1, 0), 0.45, "l_upper_leg", 0.075, "r_knee"),
    "l_ankle":    ((0, -1, 0), 0.44, "l_lower_leg", 0.055, "r_ankle"),
    "spine":      ((0, 1, 0), 0.23, "torso", 0.13, "spine"),
    "thorax":     ((0, 1, 0), 0.25, "torso", 0.14, "thorax"),
    "neck":       ((0, 1, 0), 0.10, "head", 0.05, "neck"),
    "head":       ((0, 1, 0), 0.18, "head", 0.09, "head"),
    "l_shoulder": ((-1, 0, 0), 0.17, "torso", 0.06, "r_shoulder"),
    "l_elbow":    ((0, -1, 0), 0.28, "l_upper_arm", 0.05, "r_elbow"),
    "l_wrist":    ((0, -1, 0), 0.25, "l_lower_arm", 0.04, "r_wrist"),
    "r_shoulder": ((1, 0, 0), 0.17, "torso", 0.06, "l_shoulder"),
    "r_elbow":    ((0, -1, 0), 0.28, "r_upper_arm", 0.05, "l_elbow"),
    "r_wrist":    ((0, -1, 0), 0.25, "r_lower_arm", 0.04, "l_wrist"),
    "r_toe":      ((0, -0.3, -1), 0.15, "r_foot", 0.04, "l_toe"),
    "l_toe":      ((0, -0.3, -1), 0.15, "l_foot", 0.04, "r_toe"),
}

# Joint-angle prior: intrinsic XYZ Euler angles (degrees) of the rotation *at* joint j,
# which turns the bones that leave j. x = flexion/extension, y = twist, z = abduction.
# Each dof is (low, neutral, high); leaves (no child bones) have no dof.
_LIMITS = {
    "pelvis":     ((-10, 0, 10), (-15, 0, 15), (-8, 0, 8)),
    "r_hip":      ((-25, 10, 110), (-30, 0, 30), (-10, 5, 45)),
    "l_hip":      ((-25, 10, 110), (-30, 0, 30), (-45, -5, 10)),
    "r_knee":     ((-140, -15, 0), (0, 0, 0), (0, 0, 0)),
    "l_knee":     ((-140, -15, 0), (0, 0, 0), (0, 0, 0)),
    "r_ankle":    ((-25, 0, 30), (-10, 0, 10), (0, 0, 0)),
    "l_ankle":    ((-25, 0, 30), (-10, 0, 10), (0, 0, 0)),
    "spine":      ((-40, -5, 15), (-30, 0, 30), (-20, 0, 20)),
    "thorax":     ((-20, 0, 10), (-20, 0, 20), (-10, 0, 10)),
    "neck":       ((-35, 0, 35), (-50, 0, 50), (-20, 0, 20)),
    "r_shoulder": ((-50, 10, 150), (-45, 0, 45), (0, 20, 110)),
    "l_shoulder": ((-50, 10, 150), (-45, 0, 45), (-110, -20, 0)),
    "r_elbow":    ((0, 30, 145), (0, 0, 0), (0, 0, 0)),
    "l_elbow":    ((0, 30, 145), (0, 0, 0), (0, 0, 0)),
}


@dataclass
class Identity:
    """Per-identity body proportions and appearance.

    Attributes:
        bone_lengths: ``(N, J)`` length of the bone ending at each joint (0 at the root).
        radii: ``(N, J)`` limb radius of the same bones (for occlusion and rendering).
        colors: ``(N, P, 3)`` RGB in [0, 1] of each body part (``PART_NAMES``).
    """

    bone_lengths: torch.Tensor
    radii: torch.Tensor
    colors: torch.Tensor

    def __len__(self) -> int:
        return self.bone_lengths.shape[0]


@dataclass
class Pose:
    """Result of forward kinematics.

    Attributes:
        joints: ``(..., J, 3)`` world positions.
        frames: ``(..., J, 3, 3)`` global rotation of each joint's frame (columns are
            its axes); bone ``parent(j) -> j`` is fixed in frame ``frames[parent(j)]``.
    """

    joints: torch.Tensor
    frames: torch.Tensor


@dataclass
class KeypointBatch:
    """A batch of views of posed figures: everything a keypoint method needs.

    Attributes:
        joints_world: ``(N, J, 3)`` world positions.
        joints_cam: ``(N, J, 3)`` camera-frame positions (depth is ``[..., 2]``).
        keypoints: ``(N, J, 2)`` 2D keypoints (with noise if requested; occluded ones
            are still filled in with their true projection, mask with ``visible``).
        visible: ``(N, J)`` bool, neither self-occluded nor randomly dropped.
        self_occluded: ``(N, J)`` bool.
        camera: the :class:`~cvbook.geometry.Camera` batch.
        identity: the :class:`Identity` of each sample.
        angles: ``(N, J, 3)`` joint angles (radians).
    """

    joints_world: torch.Tensor
    joints_cam: torch.Tensor
    keypoints: torch.Tensor
    visible: torch.Tensor
    self_occluded: torch.Tensor
    camera: Camera
    identity: Identity
    angles: torch.Tensor

    def __len__(self) -> int:
        return self.keypoints.shape[0]


class Skeleton:
    """The kinematic tree and its constants as tensors on ``device``.

    Attributes:
        names, parents: joint names and parent indices (``-1`` for the root); parents
            always precede their children.
        directions: ``(J, 3)`` unit rest directions of the bones ``parent(j) -> j``.
        mean_lengths, radii: ``(J,)``.
        part: ``(J,)`` long, body part of bone ``parent(j) -> j`` (index into
            ``PART_NAMES``).
        mirror: ``(J,)`` long, the left/right mirror of each joint.
        bones: ``(B, 2)`` long, (parent, child) of every bone (``B = J - 1``).
        limits: ``(J, 3, 3)`` the prior's ``(low, neutral, high)`` per dof, radians.
    """

    def __init__(self, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        self.names = JOINT_NAMES
        self.parents = PARENTS
        self.num_joints = len(JOINT_NAMES)
        rows = [_REST[n] for n in JOINT_NAMES]
        d = torch.tensor([r[0] for r in rows], dtype=dtype, device=device)
        self.directions = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        self.mean_lengths = torch.tensor([r[1] for r in rows], dtype=dtype, device=device)
        self.part = torch.tensor([PART_NAMES.index(r[2]) for r in rows], device=device)
        self.radii = torch.tensor([r[3] for r in rows], dtype=dtype, device=device)
        self.mirror = torch.tensor([JOINT_NAMES.index(r[4]) for r in rows], device=device)
        self.bones = torch.tensor([(p, j) for j, p in enumerate(PARENTS) if p >= 0],
                                  device=device)
        lim = torch.zeros(self.num_joints, 3, 3, dtype=dtype)
        for name, dofs in _LIMITS.items():
            lim[JOINT_NAMES.index(name)] = torch.tensor(dofs, dtype=dtype)
        self.limits = (lim * math.pi / 180).to(device)
        self.device = self.directions.device
        self.dtype = dtype

    @property
    def children(self) -> list[list[int]]:
        """Children of every joint."""
        return [[c for c, p in enumerate(self.parents) if p == j]
                for j in range(self.num_joints)]


def random_occlusion(shape: tuple[int, ...], p: float, *,
                     generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """A bool mask of ``shape`` that is ``True`` (kept) with probability ``1 - p``."""
    p = check_float(p, "p", min_value=0.0, max_value=1.0)
    return torch.rand(shape, generator=generator, device=device) >= p


class PuppetWorld:
    """Sampler of articulated figures, poses, motion, cameras and visibility.

    Args:
        device: where every tensor is generated.
        dtype: floating type.

    Example::

        world = PuppetWorld(device="cpu")
        g = torch.Generator().manual_seed(0)
        batch = world.sample_keypoints(256, generator=g, occlusion=0.2, noise=0.01)
    """

    def __init__(self, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        self.skeleton = Skeleton(device=device, dtype=dtype)
        self.device = self.skeleton.device
        self.dtype = dtype

    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    def _randn(self, *shape: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ identities
    def sample_identities(self, n: int, *, generator: torch.Generator | None = None,
                          height_std: float = 0.07, bone_std: float = 0.06) -> Identity:
        """``n`` identities: a global height factor ``~ N(1, height_std)`` times a
        per-bone log-normal factor (std ``bone_std``) shared by left and right bones;
        limb thickness and part colours."""
        n = check_int(n, "n", min_value=0)
        height_std = check_float(height_std, "height_std", min_value=0.0, max_value=0.3)
        bone_std = check_float(bone_std, "bone_std", min_value=0.0, max_value=0.3)
        sk = self.skeleton
        J = sk.num_joints
        h = (1 + height_std * self._randn(n, 1, generator=generator)).clamp(0.7, 1.3)
        z = self._randn(n, J, generator=generator)
        z = 0.5 * (z + z[:, sk.mirror]) * math.sqrt(2)  # symmetric, same variance
        lengths = sk.mean_lengths * h * torch.exp(bone_std * z)
        build = (1 + 0.15 * self._randn(n, 1, generator=generator)).clamp(0.6, 1.4)
        radii = sk.radii * build * h
        colors = torch.rand(n, len(PART_NAMES), 3, generator=generator, device=self.device,
                            dtype=self.dtype)
        return Identity(bone_lengths=lengths, radii=radii, colors=colors)

    # ------------------------------------------------------------------ poses
    def sample_angles(self, n: int, *, generator: torch.Generator | None = None,
                      spread: float = 1.0) -> torch.Tensor:
        """Joint angles ``(n, J, 3)`` (radians) from the prior.

        Each dof is logit-normal inside its limits: ``lo + (hi - lo) * sigmoid(m + s z)``
        with ``m`` placing the median at the neutral angle and ``s = spread``; values
        never leave ``(lo, hi)``. ``spread = 0`` gives the neutral pose.
        """
        n = check_int(n, "n", min_value=0)
        spread = check_float(spread, "spread", min_value=0.0, max_value=5.0)
        lo, mid, hi = self.skeleton.limits.unbind(-1)  # (J, 3) each
        width = (hi - lo)
        frac = ((mid - lo) / width.clamp_min(1e-9)).clamp(1e-3, 1 - 1e-3)
        m = torch.log(frac / (1 - frac))
        z = self._randn(n, self.num_joints, 3, generator=generator)
        a = lo + width * torch.sigmoid(m + spread * z)
        return torch.where(width > 0, a, mid.expand_as(a))

    def sample_sequences(self, n: int, frames: int, *, keyframes: int = 4,
                         generator: torch.Generator | None = None, spread: float = 1.0,
                         yaw_speed: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` smooth motion sequences of ``frames`` frames.

        ``keyframes`` poses are drawn from the prior and joined by cosine
        interpolation (a convex combination, so the limits still hold); the root turns
        about the vertical at a random constant rate up to ``yaw_speed`` radians per
        sequence.

        Returns:
            ``angles`` ``(n, frames, J, 3)`` and ``root`` rotations ``(n, frames, 3, 3)``.
        """
        n = check_int(n, "n", min_value=0)
        frames = check_int(frames, "frames", min_value=1)
        keyframes = check_int(keyframes, "keyframes", min_value=2)
        yaw_speed = check_float(yaw_speed, "yaw_speed", min_value=0.0)
        keys = self.sample_angles(n * keyframes, generator=generator, spread=spread)
        keys = keys.reshape(n, keyframes, self.num_joints, 3)
        s = torch.linspace(0, keyframes - 1, frames, device=self.device, dtype=self.dtype)
        i0 = s.floor().long().clamp(max=keyframes - 2)
        w = 0.5 - 0.5 * torch.cos(math.pi * (s - i0))  # (frames,)
        w = w[None, :, None, None]
        angles = keys[:, i0] * (1 - w) + keys[:, i0 + 1] * w
        rate = yaw_speed * (2 * torch.rand(n, 1, generator=generator, device=self.device,
                                           dtype=self.dtype) - 1)
        yaw = rate * torch.linspace(0, 1, frames, device=self.device, dtype=self.dtype)
        return angles, elementary_rotation("y", yaw)

    def forward_kinematics(self, angles: torch.Tensor, bone_lengths: torch.Tensor,
                           root: torch.Tensor | None = None) -> Pose:
        """Joint positions from angles and bone lengths.

        ``F_j = F_parent(j) R(angles_j)`` and ``p_j = p_parent(j) + F_parent(j) l_j d_j``
        (``d_j`` the rest direction). One pass over the tree, vectorised over the batch.

        Args:
            angles: ``(..., J, 3)`` intrinsic XYZ Euler angles (radians).
            bone_lengths: ``(..., J)`` (broadcastable to the batch of ``angles``).
            root: optional ``(..., 3, 3)`` global orientation applied at the root.

        Returns:
            :class:`Pose` with ``joints`` ``(..., J, 3)`` (root at the origin) and
            ``frames`` ``(..., J, 3, 3)``.
        """
        J = self.num_joints
        check_tensor(angles, "angles", floating=True)
        if angles.ndim < 2 or angles.shape[-2:] != (J, 3):
            raise ValueError(f"angles must have shape (..., {J}, 3), got {tuple(angles.shape)}")
        check_tensor(bone_lengths, "bone_lengths", floating=True)
        if bone_lengths.shape[-1] != J:
            raise ValueError(f"bone_lengths must have shape (..., {J}), got "
                             f"{tuple(bone_lengths.shape)}")
        local = euler_to_matrix(angles, "XYZ")  # (..., J, 3, 3)
        if root is not None:
            check_tensor(root, "root", floating=True)
            if root.shape[-2:] != (3, 3):
                raise ValueError(f"root must have shape (..., 3, 3), got {tuple(root.shape)}")
            local = torch.cat([(root @ local[..., 0, :, :])[..., None, :, :],
                               local[..., 1:, :, :]], dim=-3)
        batch = torch.broadcast_shapes(local.shape[:-3], bone_lengths.shape[:-1])
        local = local.expand(*batch, J, 3, 3)
        offsets = (bone_lengths[..., None] * self.skeleton.directions).expand(*batch, J, 3)
        frames: list[torch.Tensor] = []
        joints: list[torch.Tensor] = []
        for j, p in enumerate(self.skeleton.parents):
            if p < 0:
                frames.append(local[..., j, :, :])
                joints.append(torch.zeros(*batch, 3, device=local.device, dtype=local.dtype))
            else:
                joints.append(joints[p] + (frames[p] @ offsets[..., j, :, None])[..., 0])
                frames.append(frames[p] @ local[..., j, :, :])
        return Pose(joints=torch.stack(joints, -2), frames=torch.stack(frames, -3))

    # ------------------------------------------------------------------ visibility
    def self_occlusion(self, joints_cam: torch.Tensor, image_points: torch.Tensor,
                       radii: torch.Tensor, camera: Camera) -> torch.Tensor:
        """Which joints are hidden behind a limb, ``(N, J)`` bool.

        Every bone is a capsule of radius ``radii[:, child]``. Joint ``k`` is occluded
        by bone ``b`` (not incident to ``k``) when its image point lies inside the
        bone's projected capsule and the capsule's axis at the closest point is nearer
        to the camera than the joint's own surface (its depth minus the radius of the
        bone ending at ``k``). Vectorised over ``(N, J, B)``.

        Args:
            joints_cam: ``(N, J, 3)`` camera-frame joints.
            image_points: ``(N, J, 2)`` their projections.
            radii: ``(N, J)`` bone radii.
            camera: the cameras (for the image-space radius).
        """
        check_tensor(joints_cam, "joints_cam", ndim=3, floating=True)
        check_tensor(image_points, "image_points", ndim=3, floating=True)
        bones = self.skeleton.bones
        a2, b2 = image_points[:, bones[:, 0]], image_points[:, bones[:, 1]]  # (N, B, 2)
        az, bz = joints_cam[:, bones[:, 0], 2], joints_cam[:, bones[:, 1], 2]  # (N, B)
        r = radii[:, bones[:, 1]]  # (N, B)
        seg = b2 - a2
        rel = image_points[:, :, None, :] - a2[:, None]  # (N, J, B, 2)
        t = ((rel * seg[:, None]).sum(-1) / (seg * seg).sum(-1).clamp_min(1e-12)[:, None])
        t = t.clamp(0, 1)
        closest = a2[:, None] + t[..., None] * seg[:, None]
        dist = (image_points[:, :, None, :] - closest).norm(dim=-1)  # (N, J, B)
        depth = az[:, None] + t * (bz - az)[:, None]
        f = camera.focal[:, None, None]
        if camera.kind == "perspective":
            r_img = f * r[:, None] / depth.clamp_min(1e-6)
        else:
            r_img = f * r[:, None]
        J = self.num_joints
        idx = torch.arange(J, device=bones.device)
        incident = (idx[:, None] == bones[None, :, 0]) | (idx[:, None] == bones[None, :, 1])
        # the limb's axis lies in front of the joint's own surface (radius of its bone)
        front = depth < (joints_cam[..., 2] - radii)[:, :, None]
        occ = (dist < r_img) & front & ~incident[None]
        return occ.any(-1)

    # ------------------------------------------------------------------ all in one
    def sample_keypoints(self, n: int, *, generator: torch.Generator | None = None,
                         kind: str = "orthographic", spread: float = 1.0,
                         azimuth: tuple[float, float] = (-math.pi, math.pi),
                         elevation: tuple[float, float] = (-math.pi / 6, math.pi / 6),
                         occlusion: float = 0.0, self_occlusion: bool = True,
                         noise: float = 0.0, identity: Identity | None = None,
                         angles: torch.Tensor | None = None) -> KeypointBatch:
        """Sample identities, poses and cameras, project, and compute visibility.

        Args:
            n: number of samples.
            generator: the random stream (on ``self.device``).
            kind: ``"orthographic"`` (unit scale) or ``"perspective"`` (camera 4 units
                away, focal length 4, so both give images of similar size).
            spread: pose diversity (see :meth:`sample_angles`).
            azimuth, elevation: camera angle ranges (radians).
            occlusion: probability of dropping each keypoint at random.
            self_occlusion: also hide joints behind limbs.
            noise: std of Gaussian noise added to the 2D keypoints.
            identity, angles: fixed identities / poses to use instead of sampling
                (each of batch size ``n``), e.g. to view one pose from many cameras.
        """
        n = check_int(n, "n", min_value=1)
        occlusion = check_float(occlusion, "occlusion", min_value=0.0, max_value=1.0)
        noise = check_float(noise, "noise", min_value=0.0)
        check_range(azimuth, "azimuth", low=-10.0, high=10.0)
        if identity is None:
            identity = self.sample_identities(n, generator=generator)
        elif len(identity) != n:
            raise ValueError(f"identity must hold n={n} identities, got {len(identity)}")
        if angles is None:
            angles = self.sample_angles(n, generator=generator, spread=spread)
        else:
            check_tensor(angles, "angles", shape=(n, self.num_joints, 3), floating=True)
        pose = self.forward_kinematics(angles, identity.bone_lengths)
        X = pose.joints - pose.joints.mean(-2, keepdim=True)
        focal = 4.0 if kind == "perspective" else 1.0
        cam = sample_cameras(n, kind=kind, azimuth=azimuth, elevation=elevation,
                             distance=4.0, focal=focal, generator=generator,
                             device=self.device, dtype=self.dtype)
        y, _ = cam.project(X)
        Xc = cam.to_camera(X)
        occ = (self.self_occlusion(Xc, y, identity.radii, cam) if self_occlusion
               else torch.zeros(y.shape[:2], dtype=torch.bool, device=self.device))
        keep = random_occlusion(tuple(y.shape[:2]), occlusion, generator=generator,
                                device=self.device)
        if noise > 0:
            y = y + noise * self._randn(*y.shape, generator=generator)
        return KeypointBatch(joints_world=X, joints_cam=Xc, keypoints=y, visible=keep & ~occ,
                             self_occluded=occ, camera=cam, identity=identity, angles=angles)
