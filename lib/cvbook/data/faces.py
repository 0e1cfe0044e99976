r"""The "faces" world: procedural faces with identities and landmarks (DVE's CPU preset).

A face is drawn in its own *face frame* (units of a base radius, ``x`` right, ``y``
down, origin at the head's centre), then placed in the image by a pose (centre,
in-plane rotation, scale, and a small "yaw" that slides the inner features sideways).

**Identity** (fixed per identity, the cue DVE must learn to ignore): head shape (the
ellipse's semi-axes), skin, hair, eye, lip colours, hair style (hairline height, length
at the sides), eye spacing and height, nose length, mouth width and height, a skin
texture fixed to the face (none, stripes, spots or checker, with its frequency, angle and
contrast), glasses (rings round the eyes and a bridge) and a hair band across the
forehead. **Per image**: pose jitter, expression jitter (eye opening, gaze, smile, mouth
opening), and background clutter (a smooth random colour field and a few blobs).

**Landmarks** (5, the MAFL order, :data:`LANDMARKS`): left eye centre, right eye
centre, nose tip, left mouth corner, right mouth corner, in pixel ``(x, y)``
(:mod:`cvbook.geometry.coords`). "Left" is the image's left (the face's right), as in
MAFL's annotation of the viewer's left. The eyes are landmarks 0 and 1, so
:func:`cvbook.metrics.keypoints.iod_error` works with its default ``eyes=(0, 1)``.

**Identities disjoint between splits.** A :class:`FaceWorld` draws one table of
``num_train + num_test`` identities from its seed; ``"train"`` uses rows
``[0, num_train)`` and ``"test"`` rows ``[num_train, num_train + num_test)``, so no
identity is in both (the identity indices say which row a face was drawn from).

Everything is generated with one ``torch.Generator`` on the target device, vectorised
over images: every layer's signed distance is evaluated on the whole pixel grid of the
batch at once and composited back to front (:mod:`cvbook.render.composite`). Distances
are approximate for ellipses (the radial scaling ``(|q / a| - 1) min(a)``), exact enough
for a 0.5-pixel anti-aliased edge.

Example::

    >>> w = FaceWorld(num_train=20, num_test=5, seed=0)
    >>> b = w.sample(4, "train", generator=torch.Generator().manual_seed(0))
    >>> b.images.shape, b.landmarks.shape, b.identity.shape
    (torch.Size([4, 3, 64, 64]), torch.Size([4, 5, 2]), torch.Size([4]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from cvbook.core.validate import check_choice, check_float, check_int, check_tensor
from cvbook.render.composite import coverage, over

__all__ = ["LANDMARKS", "FaceBatch", "FaceConfig", "FaceIdentities", "FaceWorld"]

#: Landmark names, in order (MAFL's five).
LANDMARKS: tuple[str, ...] = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")

#: Skin textures (``FaceIdentities.texture`` indexes this).
TEXTURES: tuple[str, ...] = ("none", "stripes", "spots", "checker")


@dataclass(frozen=True)
class FaceConfig:
    """Settings of the faces world.

    Attributes:
        image_size: side of the square images, pixels (>= 16).
        face_radius: the face frame's unit as a fraction of the image side (the head's
            half-width is about 0.9 of it; 0.23 at 64 px gives an inter-ocular distance
            of about 11 px).
        rotation: standard deviation of the in-plane head rotation, degrees.
        scale: standard deviation of the log head scale.
        translation: standard deviation of the head's centre, fraction of the image side.
        yaw: standard deviation of the sideways slide of the inner features (face units).
        expression: multiplier of the expression jitter (0 = a neutral face).
        clutter: amplitude of the background's colour field (0 = flat).
        blobs: number of background blobs per image.
        edge_softness: anti-aliased edge width, pixels.
    """

    image_size: int = 64
    face_radius: float = 0.23
    rotation: float = 6.0
    scale: float = 0.05
    translation: float = 0.03
    yaw: float = 0.05
    expression: float = 1.0
    clutter: float = 0.3
    blobs: int = 3
    edge_softness: float = 0.5

    def __post_init__(self) -> None:
        check_int(self.image_size, "image_size", min_value=16, max_value=4096)
        check_float(self.face_radius, "face_radius", min_value=0.05, max_value=0.4)
        check_float(self.rotation, "rotation", min_value=0.0, max_value=45.0)
        check_float(self.scale, "scale", min_value=0.0, max_value=0.5)
        check_float(self.translation, "translation", min_value=0.0, max_value=0.2)
        check_float(self.yaw, "yaw", min_value=0.0, max_value=0.3)
        check_float(self.expression, "expression", min_value=0.0, max_value=2.0)
        check_float(self.clutter, "clutter", min_value=0.0, max_value=1.0)
        check_int(self.blobs, "blobs", min_value=0, max_value=16)
        check_float(self.edge_softness, "edge_softness", min_value=0.0, open_min=True)


@dataclass
class FaceIdentities:
    """A table of ``M`` identities (every field has ``M`` rows; colours are RGB in
    [0, 1], lengths in face units)."""

    head: torch.Tensor          # (M, 2) semi-axes (a_x, a_y)
    skin: torch.Tensor          # (M, 3)
    hair: torch.Tensor          # (M, 3)
    iris: torch.Tensor          # (M, 3)
    lips: torch.Tensor          # (M, 3)
    hairline: torch.Tensor      # (M,) y of the hairline at the centre
    hair_length: torch.Tensor   # (M,) y down to which hair frames the face
    eye_x: torch.Tensor         # (M,) half the eye spacing
    eye_y: torch.Tensor         # (M,)
    eye_size: torch.Tensor      # (M,)
    nose_y: torch.Tensor        # (M,) nose tip height
    mouth_x: torch.Tensor       # (M,) half the mouth width
    mouth_y: torch.Tensor       # (M,)
    texture: torch.Tensor       # (M,) int64 index into TEXTURES
    tex_freq: torch.Tensor      # (M,) cycles per face unit
    tex_angle: torch.Tensor     # (M,) radians
    tex_phase: torch.Tensor     # (M, 2)
    tex_colour: torch.Tensor    # (M, 3)
    tex_contrast: torch.Tensor  # (M,)
    glasses: torch.Tensor       # (M,) bool
    glasses_colour: torch.Tensor  # (M, 3)
    band: torch.Tensor          # (M,) bool
    band_colour: torch.Tensor   # (M, 3)
    band_y: torch.Tensor        # (M,)

    def __len__(self) -> int:
        return self.head.shape[0]

    def __getitem__(self, index: torch.Tensor) -> FaceIdentities:
        return FaceIdentities(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def random(cls, m: int, *, generator: torch.Generator,
               device: torch.device | str = "cpu") -> FaceIdentities:
        """Draw ``m`` identities with ``generator`` (on ``device``)."""
        m = check_int(m, "m", min_value=1)
        f32 = dict(device=device, dtype=torch.float32)

        def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(m, *shape, generator=generator, **f32)

        skin_tone = u(0.25, 0.95)
        skin = torch.stack((skin_tone, 0.75 * skin_tone + u(-0.05, 0.08),
                            0.55 * skin_tone + u(-0.05, 0.1)), -1).clamp(0, 1)
        return cls(
            head=torch.stack((u(0.78, 0.98), u(1.0, 1.2)), -1),
            skin=skin, hair=u(0.0, 1.0, 3) ** 1.5, iris=u(0.0, 0.8, 3),
            lips=torch.stack((u(0.5, 0.9), u(0.1, 0.35), u(0.15, 0.4)), -1),
            hairline=u(-0.8, -0.45), hair_length=u(-0.4, 0.9),
            eye_x=u(0.32, 0.42), eye_y=u(-0.22, -0.08), eye_size=u(0.85, 1.2),
            nose_y=u(0.15, 0.3), mouth_x=u(0.24, 0.38), mouth_y=u(0.5, 0.65),
            texture=torch.randint(0, len(TEXTURES), (m,), generator=generator, device=device),
            tex_freq=u(1.2, 3.0), tex_angle=u(0.0, math.pi), tex_phase=u(0.0, 2 * math.pi, 2),
            tex_colour=u(0.0, 1.0, 3), tex_contrast=u(0.25, 0.5),
            glasses=torch.rand(m, generator=generator, **f32) < 0.35,
            glasses_colour=u(0.0, 0.6, 3),
            band=torch.rand(m, generator=generator, **f32) < 0.35,
            band_colour=u(0.0, 1.0, 3), band_y=u(-0.62, -0.42),
        )


@dataclass
class FaceBatch:
    """Faces and their ground truth (``N`` images of side ``S``).

    Attributes:
        images: ``(N, 3, S, S)`` float in [0, 1].
        landmarks: ``(N, 5, 2)`` pixel ``(x, y)`` in :data:`LANDMARKS` order.
        identity: ``(N,)`` int64 row of the world's identity table.
        centre, angle, scale: ``(N, 2)`` pixels, ``(N,)`` radians, ``(N,)`` the face
            frame's unit in pixels (the pose).
    """

    images: torch.Tensor
    landmarks: torch.Tensor
    identity: torch.Tensor
    centre: torch.Tensor
    angle: torch.Tensor
    scale: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> FaceBatch:
        return FaceBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device: torch.device | str) -> FaceBatch:
        return FaceBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def _ellipse(qx: torch.Tensor, qy: torch.Tensor, cx, cy, ax, ay) -> torch.Tensor:
    """Approximate signed distance (face units) to an axis-aligned ellipse; ``c*``, ``a*``
    broadcast against ``(N, S, S)`` (pass ``(N, 1, 1)`` tensors or floats)."""
    r = torch.sqrt(((qx - cx) / ax) ** 2 + ((qy - cy) / ay) ** 2 + 1e-12)
    return (r - 1) * torch.minimum(torch.as_tensor(ax), torch.as_tensor(ay))


def _col(c: torch.Tensor) -> torch.Tensor:
    return c[:, :, None, None]


def _v(x: torch.Tensor) -> torch.Tensor:
    return x[:, None, None]


class FaceWorld:
    """A fixed population of identities, split into train and test, and a renderer.

    Args:
        num_train, num_test: identities in each split (disjoint: see the module
            docstring).
        config: :class:`FaceConfig`.
        seed: seed of the identity table (drawn on the CPU, so one seed gives the same
            people on every device).
        device: where images are generated.
    """

    SPLITS = ("train", "test")

    def __init__(self, num_train: int = 2000, num_test: int = 300, *,
                 config: FaceConfig | None = None, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        self.num_train = check_int(num_train, "num_train", min_value=1)
        self.num_test = check_int(num_test, "num_test", min_value=1)
        self.config = config if config is not None else FaceConfig()
        if not isinstance(self.config, FaceConfig):
            raise TypeError(f"config must be a FaceConfig, got {type(self.config).__name__}")
        self.seed = check_int(seed, "seed", min_value=0)
        self.device = torch.device(device)
        g = torch.Generator().manual_seed(self.seed)
        table = FaceIdentities.random(self.num_train + self.num_test, generator=g)
        self.identities = FaceIdentities(**{f.name: getattr(table, f.name).to(self.device)
                                            for f in fields(FaceIdentities)})

    def split_ids(self, split: str) -> torch.Tensor:
        """``(M,)`` identity rows of ``split`` (``"train"`` or ``"test"``)."""
        check_choice(split, "split", self.SPLITS)
        lo, hi = (0, self.num_train) if split == "train" else \
            (self.num_train, self.num_train + self.num_test)
        return torch.arange(lo, hi, device=self.device)

    def sample_ids(self, n: int, split: str, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n,)`` identities of ``split`` in which neighbours differ, cyclically
        (``out[i] != out[(i + 1) % n]``), so "the next sample in the batch" is always
        another person, as DVE's auxiliary image needs. A random permutation of the
        split, truncated to ``n``; a longer batch cycles through the same permutation
        (with the last entry moved off the first's identity when the cycle would close on
        it)."""
        n = check_int(n, "n", min_value=1)
        ids = self.split_ids(split)
        m = len(ids)
        if m < 2 or (m == 2 and n > 2 and n % 2):
            raise ValueError(f"split {split!r} has {m} identities: too few for a batch of {n} "
                             f"whose neighbours all differ")
        dev = generator.device if generator is not None else self.device
        perm = torch.randperm(m, generator=generator, device=dev).to(self.device)
        idx = torch.arange(n, device=self.device) % m
        if n > 2 and (n - 1) % m == 0:
            idx[-1] = 1  # differs from perm[0] (the first) and perm[m - 1] (the one before)
        return ids[perm[idx]]

    def sample(self, n: int, split: str = "train", *,
               generator: torch.Generator | None = None) -> FaceBatch:
        """Render ``n`` faces of ``split`` (identities from :meth:`sample_ids`)."""
        return self.render(self.sample_ids(n, split, generator=generator), generator=generator)

    def render(self, identity: torch.Tensor, *,
               generator: torch.Generator | None = None) -> FaceBatch:
        """Render one face per entry of ``identity`` (``(N,)`` int64 rows of the table),
        each with its own pose, expression and background.

        Args:
            identity: ``(N,)`` identity rows.
            generator: a ``torch.Generator`` on the world's device (default: global RNG).

        Returns:
            a :class:`FaceBatch`.
        """
        identity = check_tensor(identity, "identity", shape="N")
        if identity.dtype != torch.int64:
            raise TypeError(f"identity must be int64, got {identity.dtype}")
        if generator is not None and generator.device.type != self.device.type:
            raise ValueError(f"generator is on {generator.device}, but the world is on "
                             f"{self.device}")
        return _render(self.identities[identity.to(self.device)], identity.to(self.device),
                       self.config, generator, self.device)


def _render(p: FaceIdentities, identity: torch.Tensor, cfg: FaceConfig,
            g: torch.Generator | None, device: torch.device) -> FaceBatch:
    n, S = len(p), cfg.image_size
    f32 = dict(device=device, dtype=torch.float32)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g, **f32)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, **f32)

    coords = torch.arange(S, **f32)
    py, px = torch.meshgrid(coords, coords, indexing="ij")  # pixel centres at integers

    # --- pose: face frame -> pixels, p = centre + unit * R(angle) q
    centre = (S - 1) / 2 + cfg.translation * S * randn(n, 2)
    angle = math.radians(cfg.rotation) * randn(n)
    unit = cfg.face_radius * S * torch.exp(cfg.scale * randn(n))
    cos, sin = torch.cos(angle), torch.sin(angle)
    dx, dy = px[None] - _v(centre[:, 0]), py[None] - _v(centre[:, 1])
    qx = (_v(cos) * dx + _v(sin) * dy) / _v(unit)  # R(-angle) (p - centre) / unit
    qy = (-_v(sin) * dx + _v(cos) * dy) / _v(unit)
    soft = cfg.edge_softness

    def cov(d: torch.Tensor) -> torch.Tensor:  # face-unit distance -> coverage (N, 1, S, S)
        return coverage(d * _v(unit), soft)[:, None]

    # --- expression (per image)
    e = cfg.expression
    yaw = cfg.yaw * randn(n)
    eye_open = (1 - 0.35 * e * rand(n)).clamp(0.3, 1)
    gaze = 0.03 * e * randn(n, 2)
    smile = 0.06 * e * randn(n)
    mouth_open = 0.05 * e * rand(n)
    mouth_w = p.mouth_x * (1 + 0.08 * e * randn(n))

    # --- background: base colour, a smooth colour field, a few blobs
    base = 0.2 + 0.6 * rand(n, 3, 1, 1)
    K = 5
    ang = 2 * math.pi * rand(n, K)
    cyc = (1 + 3 * rand(n, K)) * (2 * math.pi / S)
    phase = 2 * math.pi * rand(n, K)
    fx = (cyc * torch.cos(ang))[..., None, None]  # (N, K, 1, 1)
    fy = (cyc * torch.sin(ang))[..., None, None]
    wave = torch.sin(fx * px + fy * py + phase[..., None, None])
    field = torch.einsum("nkhw,nkc->nchw", wave, rand(n, K, 3) - 0.5) / math.sqrt(K)
    img = (base + 2 * cfg.clutter * field).clamp(0, 1)
    for _ in range(cfg.blobs):  # a handful of layers, each batched over images
        bc = S * rand(n, 2)
        br = S * (0.05 + 0.12 * rand(n))
        d = torch.sqrt((px[None] - _v(bc[:, 0])) ** 2 + (py[None] - _v(bc[:, 1])) ** 2) - _v(br)
        img = over(img, rand(n, 3, 1, 1), coverage(d, soft)[:, None])

    ax, ay = _v(p.head[:, 0]), _v(p.head[:, 1])
    # --- hair behind the head (frames the face down to hair_length)
    d_hair = torch.maximum(_ellipse(qx, qy, 0.0, -0.08, ax * 1.15, ay * 1.12),
                           qy - _v(p.hair_length))
    img = over(img, _col(p.hair), cov(d_hair))
    # --- head, with its face-fixed texture
    d_head = _ellipse(qx, qy, 0.0, 0.0, ax, ay)
    t = _v(p.tex_freq) * 2 * math.pi
    ta = _v(p.tex_angle)
    u1 = qx * torch.cos(ta) + qy * torch.sin(ta)
    u2 = -qx * torch.sin(ta) + qy * torch.cos(ta)
    s1 = torch.sin(t * u1 + _v(p.tex_phase[:, 0]))
    s2 = torch.sin(t * u2 + _v(p.tex_phase[:, 1]))
    patterns = torch.stack((torch.zeros_like(s1), 0.5 + 0.5 * s1,
                            torch.sigmoid(8 * (s1 * s2 - 0.5)),
                            torch.sigmoid(6 * s1 * s2)), 1)  # (N, 4, S, S)
    pat = patterns.gather(1, p.texture[:, None, None, None].expand(n, 1, S, S))
    skin = _col(p.skin) + _v(p.tex_contrast)[:, None] * pat * (_col(p.tex_colour) - _col(p.skin))
    img = over(img, skin, cov(d_head))
    # --- hair cap on the head (above a curved hairline)
    d_cap = torch.maximum(d_head, qy - (_v(p.hairline) + 0.35 * qx ** 2))
    img = over(img, _col(p.hair), cov(d_cap))
    # --- hair band across the forehead
    d_band = torch.maximum(d_head - 0.02, (qy - _v(p.band_y)).abs() - 0.07)
    img = over(img, _col(p.band_colour), cov(d_band) * _v(p.band.float())[:, None])

    # inner features slide with the yaw
    ex, ey = _v(p.eye_x), _v(p.eye_y)
    yw = _v(yaw)
    esz = _v(p.eye_size)
    eyes_c = []
    for side in (-1.0, 1.0):  # the two eyes (image left, image right)
        cx = side * ex + yw
        d_brow = torch.maximum((qy - (ey - 0.17 * esz)).abs() - 0.035,
                               (qx - cx).abs() - 0.14 * esz)
        img = over(img, _col(p.hair * 0.8), cov(d_brow))
        d_white = _ellipse(qx, qy, cx, ey, 0.12 * esz, 0.075 * esz * _v(eye_open))
        img = over(img, torch.full_like(base, 0.95), cov(d_white))
        ix, iy = cx + _v(gaze[:, 0]), ey + _v(gaze[:, 1])
        d_iris = torch.maximum(_ellipse(qx, qy, ix, iy, 0.06 * esz, 0.06 * esz), d_white)
        img = over(img, _col(p.iris), cov(d_iris))
        d_pupil = torch.maximum(_ellipse(qx, qy, ix, iy, 0.025 * esz, 0.025 * esz), d_white)
        img = over(img, torch.full_like(base, 0.05), cov(d_pupil))
        eyes_c.append((cx, ey))
        # glasses: a ring round the eye
        ring = (torch.sqrt((qx - cx) ** 2 + (qy - ey) ** 2) - 0.19 * esz).abs() - 0.025
        img = over(img, _col(p.glasses_colour), cov(ring) * _v(p.glasses.float())[:, None])
    bridge = torch.maximum((qy - ey).abs() - 0.02,
                           (qx - yw).abs() - (ex - 0.19 * esz).clamp_min(0.02))
    img = over(img, _col(p.glasses_colour), cov(bridge) * _v(p.glasses.float())[:, None])

    # --- nose: a shaded ridge ending at the tip (the landmark)
    ny = _v(p.nose_y)
    nx = 1.4 * yw
    d_nose = _ellipse(qx, qy, nx, ny - 0.1, 0.07, 0.15)
    img = over(img, _col(p.skin * 0.7), cov(d_nose))
    d_nostril = _ellipse(qx, qy, nx, ny, 0.05, 0.025)
    img = over(img, _col(p.skin * 0.35), cov(d_nostril))

    # --- mouth: lips between the two corners, opening with the expression
    mx, my, mw = yw, _v(p.mouth_y), _v(mouth_w)
    curve = qy - my + _v(smile) * (1 - ((qx - mx) / mw) ** 2)  # smile lifts the corners
    d_lips = torch.maximum(((qx - mx) / mw).abs() - 1,
                           curve.abs() - (0.04 + _v(mouth_open)) * (1 - ((qx - mx) / mw) ** 2
                                                                      ).clamp_min(0.15))
    img = over(img, _col(p.lips), cov(d_lips * 0.3))
    d_gap = torch.maximum(((qx - mx) / mw).abs() - 0.85,
                          curve.abs() - 0.6 * _v(mouth_open) - 0.008)
    img = over(img, torch.full_like(base, 0.1), cov(d_gap * 0.3))

    # --- landmarks, face frame -> pixels
    q = torch.stack([
        torch.stack((eyes_c[0][0][:, 0, 0], ey[:, 0, 0]), -1),
        torch.stack((eyes_c[1][0][:, 0, 0], ey[:, 0, 0]), -1),
        torch.stack((nx[:, 0, 0], ny[:, 0, 0]), -1),
        torch.stack((yaw - mouth_w, p.mouth_y), -1),
        torch.stack((yaw + mouth_w, p.mouth_y), -1),
    ], 1)  # (N, 5, 2) face units
    rot = torch.stack((torch.stack((cos, -sin), -1), torch.stack((sin, cos), -1)), 1)
    landmarks = centre[:, None] + unit[:, None, None] * q @ rot.transpose(1, 2)
    return FaceBatch(images=img.clamp(0, 1).contiguous(), landmarks=landmarks,
                     identity=identity, centre=centre, angle=angle, scale=unit)
