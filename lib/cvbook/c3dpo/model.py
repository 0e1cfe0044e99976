"""C3DPO: canonical 3D pose networks for non-rigid structure from motion.

Novotny, Ravi, Graham, Neverova, Vedaldi, ICCV 2019 (arXiv:1909.02533).

Given only 2D keypoints ``Y`` (``K`` points, with visibility ``v``) of many instances
of a deformable object class, C3DPO learns

* a factorisation network Phi: ``Y, v -> (alpha, R)`` with shape coefficients
  ``alpha`` in R^D, decoded by a *shared linear basis* into the canonical shape
  ``X = B alpha + b`` (``K x 3``), and a rotation ``R = exp([w]x)``, so that the
  orthographic projection ``Pi R X`` reproduces ``Y`` (paper Sec. 3.1, Eq. 1-3);
* a canonicalisation network Psi that maps any rotated canonical shape ``R' X`` back to
  ``X`` through the same basis (Sec. 3.2). Its existence is exactly what makes the
  decomposition into shape and viewpoint unique (Theorem 1), so training Psi jointly
  removes the rotation ambiguity that plain NRSfM suffers from.

The baselines -- rigid Tomasi-Kanade factorisation and the flat ``z = 0`` prediction --
and a reader of the official release's keypoint JSON format are here too.
Everything is written from the paper; no code of the official release is used.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from cvbook.core.batched import batched_forward
from cvbook.core.validate import Shapes, check_float, check_int, check_tensor
from cvbook.geometry.so3 import axis_angle_to_matrix, elementary_rotation, random_axis_angle
from cvbook.nn.blocks import ResidualMLPBlock

__all__ = [
    "C3DPO",
    "Canonicaliser",
    "Factoriser",
    "center_keypoints",
    "c3dpo_loss",
    "flat_depth",
    "inplane_rotation",
    "init_official_",
    "load_keypoints_json",
    "pseudo_huber",
    "reprojection_loss",
    "tomasi_kanade",
]


# ---------------------------------------------------------------------------- inputs
def _check_kp(y: object, vis: object, shapes: Shapes | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Check keypoints ``y`` ``(N, K, 2)`` and visibility ``vis`` ``(N, K)`` (the public
    functions' boundary; the private helpers below trust their inputs)."""
    s = Shapes() if shapes is None else shapes
    y = s.check(y, "y", "N K 2", floating=True)
    vis = s.check(vis, "vis", "N K")
    return y, vis.to(y.dtype)


def _center(y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    mean = (y * v[..., None]).sum(1, keepdim=True) / v.sum(1).clamp_min(1)[:, None, None]
    return y - mean


def _pseudo_huber(d2: torch.Tensor, eps: float) -> torch.Tensor:
    return eps * (torch.sqrt(1 + d2 / (eps * eps)) - 1)


def _reprojection(y: torch.Tensor, y_hat: torch.Tensor, v: torch.Tensor, eps: float,
                  center_hat: bool = True) -> torch.Tensor:
    y_hat = _center(y_hat, v) if center_hat else y_hat
    d2 = ((_center(y, v) - y_hat) ** 2).sum(-1)
    return (v * _pseudo_huber(d2, eps)).sum() / v.sum().clamp_min(1)


def center_keypoints(y: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
    """Subtract from each sample the mean of its *visible* keypoints (masked centring).

    Args:
        y: ``(N, K, 2)`` keypoints.
        vis: ``(N, K)`` visibility (bool or 0/1).

    Returns:
        ``(N, K, 2)`` centred keypoints (invisible ones are shifted too, but carry no
        information).

    >>> y = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]]])
    >>> center_keypoints(y, torch.tensor([[1, 1, 0]]))  # the mean of the visible two
    tensor([[[-1.,  0.],
             [ 1.,  0.],
             [ 8.,  9.]]])
    """
    y, v = _check_kp(y, vis)
    return _center(y, v)


def pseudo_huber(d2: torch.Tensor, eps: float = 0.01) -> torch.Tensor:
    """The robust penalty of the paper, applied to a *squared* distance ``d2``:
    ``h(d2) = eps (sqrt(1 + d2 / eps^2) - 1)``: about ``d2 / (2 eps)`` (quadratic in the
    distance) for ``d2 << eps^2`` and about ``sqrt(d2) - eps`` (linear in the distance,
    robust to outliers) for ``d2 >> eps^2`` (Sec. 3.1)."""
    d2 = check_tensor(d2, "d2", floating=True)
    eps = check_float(eps, "eps", min_value=0.0, open_min=True)
    return _pseudo_huber(d2, eps)


def reprojection_loss(y: torch.Tensor, y_hat: torch.Tensor, vis: torch.Tensor,
                      eps: float = 0.01) -> torch.Tensor:
    """``l_re = sum_{n,k} v_nk h(||y_nk - y_hat_nk||^2) / sum_{n,k} v_nk`` (Eq. 3),
    normalised by the number of visible points in the whole batch.

    Both point sets are centred on their visible mean first, so that the unknown 2D
    translation drops out. Shapes: ``y``, ``y_hat`` ``(N, K, 2)``, ``vis`` ``(N, K)``.
    """
    s = Shapes()
    y, v = _check_kp(y, vis, s)
    s.check(y_hat, "y_hat", "N K 2", floating=True)
    return _reprojection(y, y_hat, v, check_float(eps, "eps", min_value=0.0, open_min=True))


def inplane_rotation(theta: torch.Tensor) -> torch.Tensor:
    """Rotations ``R_z(theta)`` ``(N, 3, 3)`` about the camera axis for angles ``(N,)``;
    their top-left ``2 x 2`` block rotates image points."""
    return elementary_rotation("z", check_tensor(theta, "theta", ndim=1, floating=True))


# ---------------------------------------------------------------------------- networks
def _trunk(d_in: int, width: int, n_blocks: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                         *[ResidualMLPBlock(width) for _ in range(n_blocks)])


class Factoriser(nn.Module):
    """Phi: 2D keypoints -> shape coefficients, canonical shape and viewpoint.

    The input is ``[Y * v, v]`` (``3K`` numbers; Sec. 3.1). The basis is one linear
    layer ``alpha -> B alpha + b`` whose bias is the mean shape; the rotation head
    predicts an axis-angle ``w`` and ``R = exp([w]x)`` (Rodrigues).

    Args:
        n_keypoints: ``K``.
        n_basis: ``D``, the number of shape basis vectors (10 for Human3.6M).
        width: trunk width (1024 in the paper).
        n_blocks: residual blocks (6 in the paper).
    """

    def __init__(self, n_keypoints: int, n_basis: int = 10, width: int = 256,
                 n_blocks: int = 3) -> None:
        super().__init__()
        self.K = check_int(n_keypoints, "n_keypoints", min_value=2)
        self.D = check_int(n_basis, "n_basis", min_value=1)
        width = check_int(width, "width", min_value=8)
        n_blocks = check_int(n_blocks, "n_blocks", min_value=0)
        self.trunk = _trunk(3 * self.K, width, n_blocks)
        self.alpha_head = nn.Linear(width, self.D)
        self.rot_head = nn.Linear(width, 3)
        self.basis = nn.Linear(self.D, 3 * self.K)
        with torch.no_grad():
            self.rot_head.weight.mul_(0.1)
            self.rot_head.bias.zero_()
            self.basis.weight.normal_(0.0, 0.01)
            self.basis.bias.normal_(0.0, 0.1)

    def decode(self, alpha: torch.Tensor) -> torch.Tensor:
        """``X = B alpha + b``: coefficients ``(N, D)`` -> canonical shapes ``(N, K, 3)``."""
        Shapes(D=self.D).check(alpha, "alpha", "N D", floating=True)
        return self._decode(alpha)

    def _decode(self, alpha: torch.Tensor) -> torch.Tensor:
        return self.basis(alpha).reshape(-1, self.K, 3)

    def forward(self, y: torch.Tensor, vis: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args:
            y: ``(N, K, 2)`` keypoints (centred here on the visible mean).
            vis: ``(N, K)`` visibility.

        Returns:
            a dict with ``alpha`` ``(N, D)``, ``shape`` (canonical ``X``, ``(N, K, 3)``),
            ``R`` ``(N, 3, 3)``, ``points`` (camera frame ``R X``, ``(N, K, 3)``) and
            ``y_hat`` (``Pi R X``, ``(N, K, 2)``).
        """
        y, v = _check_kp(y, vis, Shapes(K=self.K))
        return self._factorise(y, v)

    def _factorise(self, y: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
        yc = _center(y, v) * v[..., None]
        feat = self.trunk(torch.cat([yc, v[..., None]], -1).flatten(1))
        alpha = self.alpha_head(feat)
        R = axis_angle_to_matrix(self.rot_head(feat))
        X = self._decode(alpha)
        P = X @ R.transpose(-1, -2)
        return {"alpha": alpha, "shape": X, "R": R, "points": P, "y_hat": P[..., :2]}


class Canonicaliser(nn.Module):
    """Psi: a rotated canonical shape ``R' X`` ``(N, K, 3)`` -> coefficients
    ``alpha'`` ``(N, D)``, to be decoded with Phi's *own* basis (Sec. 3.2)."""

    def __init__(self, n_keypoints: int, n_basis: int = 10, width: int = 256,
                 n_blocks: int = 3) -> None:
        super().__init__()
        self.K = check_int(n_keypoints, "n_keypoints", min_value=2)
        self.D = check_int(n_basis, "n_basis", min_value=1)
        self.trunk = _trunk(3 * self.K, check_int(width, "width", min_value=8),
                            check_int(n_blocks, "n_blocks", min_value=0))
        self.head = nn.Linear(width, self.D)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Shapes(K=self.K).check(X, "X", "N K 3", floating=True)
        return self._canonicalise(X)

    def _canonicalise(self, X: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(X.flatten(1)))


class C3DPO(nn.Module):
    """Phi and (optionally) Psi together.

    Args:
        n_keypoints, n_basis, width, n_blocks: see :class:`Factoriser`.
        canonicalise: build Psi (``False`` gives the "without Psi" ablation).
    """

    def __init__(self, n_keypoints: int, n_basis: int = 10, width: int = 256,
                 n_blocks: int = 3, canonicalise: bool = True) -> None:
        super().__init__()
        self.phi = Factoriser(n_keypoints, n_basis, width, n_blocks)
        self.psi = Canonicaliser(n_keypoints, n_basis, width, n_blocks) if canonicalise else None

    def forward(self, y: torch.Tensor, vis: torch.Tensor) -> dict[str, torch.Tensor]:
        """Phi's outputs (see :meth:`Factoriser.forward`)."""
        return self.phi(y, vis)

    @torch.no_grad()
    def predict(self, y: torch.Tensor, vis: torch.Tensor,
                batch_size: int = 4096) -> dict[str, torch.Tensor]:
        """Inference in eval mode in chunks; returns Phi's outputs, detached."""
        y, v = _check_kp(y, vis, Shapes(K=self.phi.K))
        batch_size = check_int(batch_size, "batch_size", min_value=1)
        return batched_forward(self, y, v, batch_size=batch_size, fn=self.phi._factorise)


@torch.no_grad()
def init_official_(model: nn.Module, std: float = 0.01) -> nn.Module:
    """Re-initialise ``model`` in place as the official release does (its ``conv1x1``
    layers and batch norms): every linear layer's weights ``~ N(0, std^2)`` (``std`` =
    ``weight_init_std``, 0.01) and biases 0, so the mean shape ``b`` starts at 0, and
    every batch norm's scale ``~ U(0, 1)`` (bias 0). Draws from torch's global generator.
    Returns ``model``.

    >>> m = init_official_(C3DPO(5, 2, 16, 1))
    >>> float(m.phi.basis.bias.abs().max()), bool((m.phi.trunk[1].weight <= 1).all())
    (0.0, True)
    """
    std = check_float(std, "std", min_value=0.0, open_min=True)
    for mod in model.modules():
        if isinstance(mod, nn.Linear):
            mod.weight.normal_(0.0, std)
            if mod.bias is not None:
                mod.bias.zero_()
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.weight.uniform_(0.0, 1.0)
            mod.bias.zero_()
    return model


def c3dpo_loss(model: C3DPO, y: torch.Tensor, vis: torch.Tensor, *, eps: float = 0.01,
               inplane: float = 0.0, n_rotations: int = 4,
               generator: torch.Generator | None = None,
               rotation_generator: torch.Generator | None = None,
               center_reprojection: bool = True
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training objective ``l_re + l_can`` (Eq. 3 and 5).

    Args:
        model: a :class:`C3DPO` (``model.psi is None`` drops ``l_can``).
        y: ``(N, K, 2)`` keypoints; vis: ``(N, K)``.
        eps: pseudo-Huber scale.
        inplane: maximum in-plane rotation (radians) of the augmentation (Sec. 3.3; the
            official configuration uses pi/8, twice); 0 turns it off. As in the official
            release, the input is first rotated by ``R_1 = R_z(t_1)`` (augmentation, undone
            on the predicted viewpoint: ``R = R_1^T R_Phi``), and a second copy is rotated
            again by ``R_2 = R_z(t_2)`` (equivariance), ``t_1, t_2 ~ U[-inplane, inplane]``.
            The viewpoint comes from the first copy, the shape coefficients from the
            second, which makes the shape invariant to in-plane rotations of the input.
            Each copy goes through Phi on its own (its own batch-norm statistics, the
            official Human3.6M setting ``independent_phi_for_aug``).
        n_rotations: random rotations ``R-hat`` per sample for ``l_can`` (4 in the
            official configuration): Psi sees ``n_rotations`` rotated copies of every
            canonical shape, and ``l_can`` is the mean over all of them and all points.
        generator: random stream for the in-plane rotations (and, without
            ``rotation_generator``, for Psi's rotations).
        rotation_generator: random stream for Psi's rotations ``R-hat``: a separate
            stream keeps ``generator``'s draws (mini-batches, in-plane angles) the same
            with and without Psi, for a batch-matched ablation.
        center_reprojection: centre the reprojection ``Pi R X`` on its visible mean, as
            the input is (the default); ``False`` compares the uncentred ``Pi R X`` with
            the centred input, as the release does (its Phi must then learn to centre
            its shapes).

    Returns:
        ``(loss, {"reproj": ..., "canon": ...})``.
    """
    phi = model.phi if isinstance(model, C3DPO) else model.module.phi  # DDP-wrapped
    psi = model.psi if isinstance(model, C3DPO) else model.module.psi
    y, v = _check_kp(y, vis, Shapes(K=phi.K))
    eps = check_float(eps, "eps", min_value=0.0, open_min=True)
    inplane = check_float(inplane, "inplane", min_value=0.0, max_value=math.pi)
    n_rotations = check_int(n_rotations, "n_rotations", min_value=1)
    n = y.shape[0]
    if inplane > 0:
        th = (2 * torch.rand(2, n, generator=generator, device=y.device, dtype=y.dtype) - 1)
        Rz = inplane_rotation(th.flatten() * inplane).reshape(2, n, 3, 3)
        y1 = y @ Rz[0, :, :2, :2].transpose(-1, -2)  # augmentation
        y2 = y1 @ Rz[1, :, :2, :2].transpose(-1, -2)  # equivariance, relative to y1
        out1 = phi._factorise(y1, v)
        X = phi._factorise(y2, v)["shape"]  # the shape from the second copy
        R = Rz[0].transpose(-1, -2) @ out1["R"]  # the view from the first, rotation undone
        y_hat = (X @ R.transpose(-1, -2))[..., :2]
    else:
        out = phi._factorise(y, v)
        X, y_hat = out["shape"], out["y_hat"]
    l_re = _reprojection(y, y_hat, v, eps, center_hat=bool(center_reprojection))
    parts = {"reproj": l_re.detach()}
    loss = l_re
    if psi is not None:
        Xr = X.repeat(n_rotations, 1, 1)
        g_rot = generator if rotation_generator is None else rotation_generator
        Rr = axis_angle_to_matrix(random_axis_angle(Xr.shape[0], generator=g_rot,
                                                    device=y.device, dtype=y.dtype))
        X_back = phi._decode(psi._canonicalise(Xr @ Rr.transpose(-1, -2)))
        l_can = _pseudo_huber(((Xr - X_back) ** 2).sum(-1), eps).mean()
        loss = loss + l_can
        parts["canon"] = l_can.detach()
    return loss, parts


# ---------------------------------------------------------------------------- baselines
def flat_depth(y: torch.Tensor) -> torch.Tensor:
    """The trivial baseline: every keypoint at depth 0, ``(N, K, 2)`` -> ``(N, K)``."""
    check_tensor(y, "y", shape="N K 2", floating=True)
    return torch.zeros(y.shape[:2], dtype=y.dtype, device=y.device)


def tomasi_kanade(y: torch.Tensor, vis: torch.Tensor, *, n_iter: int = 100
                  ) -> dict[str, torch.Tensor]:
    """Rigid orthographic factorisation (Tomasi and Kanade, 1992) with missing data.

    All ``N`` samples are treated as views of one rigid shape ``S`` (``K x 3``): the
    centred measurement matrix ``W`` (``2N x K``) has rank 3, ``W = M S``. Missing
    entries are filled by alternating a rank-3 SVD fit and re-imputation. The affine
    ambiguity ``M Q, Q^-1 S`` is fixed by the metric constraints (the two rows of every
    camera orthonormal), solved by least squares for ``L = Q Q^T``.

    Args:
        y: ``(N, K, 2)`` keypoints; vis: ``(N, K)`` visibility.
        n_iter: imputation rounds.

    Returns:
        a dict with ``shape`` ``(K, 3)``, ``R`` ``(N, 3, 3)`` (rows: camera axes; the
        third is the cross product of the first two) and ``depth`` ``(N, K)`` (the
        third coordinate of ``R S``, each sample centred).
    """
    y, v = _check_kp(y, vis)
    n_iter = check_int(n_iter, "n_iter", min_value=1)
    N, K, _ = y.shape
    m = v.bool()[:, None, :].expand(N, 2, K).reshape(2 * N, K)
    W0 = _center(y, v).transpose(1, 2).reshape(2 * N, K)
    W = torch.where(m, W0, torch.zeros_like(W0))
    for _ in range(n_iter):  # EM-style imputation of W = M S + t 1^T
        t = W.mean(1, keepdim=True)
        U, s, Vh = torch.linalg.svd(W - t, full_matrices=False)
        W = torch.where(m, W0, (U[:, :3] * s[:3]) @ Vh[:3] + t)
    W = W - W.mean(1, keepdim=True)
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    M = U[:, :3] * s[:3].sqrt()
    S = s[:3].sqrt()[:, None] * Vh[:3]  # (3, K)
    a, b = M[0::2], M[1::2]  # (N, 3) each: x rows and y rows

    def sym_row(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:  # p^T L q, L symmetric
        return torch.stack([p[:, 0] * q[:, 0], p[:, 1] * q[:, 1], p[:, 2] * q[:, 2],
                            p[:, 0] * q[:, 1] + p[:, 1] * q[:, 0],
                            p[:, 0] * q[:, 2] + p[:, 2] * q[:, 0],
                            p[:, 1] * q[:, 2] + p[:, 2] * q[:, 1]], -1)

    A = torch.cat([sym_row(a, a), sym_row(b, b), sym_row(a, b)])
    rhs = torch.cat([torch.ones(2 * N, dtype=y.dtype, device=y.device),
                     torch.zeros(N, dtype=y.dtype, device=y.device)])
    ell = torch.linalg.lstsq(A, rhs[:, None]).solution[:, 0]
    L = torch.stack([ell[0], ell[3], ell[4], ell[3], ell[1], ell[5],
                     ell[4], ell[5], ell[2]]).reshape(3, 3)
    evals, evecs = torch.linalg.eigh(L)
    Q = evecs * evals.clamp_min(1e-9).sqrt()  # L ~ Q Q^T
    Mq = M @ Q
    Sq = torch.linalg.solve(Q, S)  # Q^-1 S, (3, K)
    r1, r2 = Mq[0::2], Mq[1::2]
    r1n = r1 / r1.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    r2n = r2 / r2.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    r3 = torch.linalg.cross(r1n, r2n)
    r3 = r3 / r3.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    R = torch.stack([r1n, r2n, r3], 1)
    depth = r3 @ Sq  # (N, K)
    depth = depth - depth.mean(1, keepdim=True)
    return {"shape": Sq.T.contiguous(), "R": R, "depth": depth}


# ---------------------------------------------------------------------------- real data
def load_keypoints_json(path: str | os.PathLike, *, dtype: torch.dtype = torch.float32
                        ) -> dict[str, torch.Tensor | list[str]]:
    """Read keypoints in the format of the official C3DPO release (Human3.6M,
    PASCAL3D+, Up3D): a JSON list with one object per annotated instance,

    ``{"kp_loc": [[x...], [y...]] (2 x K), "kp_vis": [v...] (K, 0/1),
    "kp_loc_3d": [[x...], [y...], [z...]] (3 x K, optional), "file_name": ...,
    "h36m_info": {"scale": s, "action_name": "Walking", ...} (Human3.6M, optional)}``.

    The downloaded files wrap the list as ``{"dataset": "h36m_train", "data": [...]}``;
    both forms are accepted (``dataset/keypoints_dataset.py`` of the release).

    Returns:
        ``keypoints`` ``(N, K, 2)``, ``visible`` ``(N, K)`` bool and, when every entry
        has them, ``points3d`` ``(N, K, 3)`` (camera frame), ``scale`` ``(N,)`` (the factor
        from the file's units to millimetres, ``h36m_info["scale"]``) and ``group`` (a
        list of ``N`` action names, ``h36m_info["action_name"]``, or PASCAL3D+ classes,
        ``p3d_info["p3d_class"]``), which the official evaluation averages over.

    Raises:
        FileNotFoundError: no file at ``path`` (the message says how to get one).
        ValueError: the file is not valid JSON or not in this format (the message names
            the entry and field at fault).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(
            f"keypoint file not found: {p}. Download the keypoint JSON files of the "
            "official C3DPO release (facebookresearch/c3dpo_nrsfm) and pass the path of "
            "one of them, e.g. data_root='.../h36m_train.json'")
    try:
        db = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p} is not valid JSON: {e}") from e
    if isinstance(db, Mapping) and "data" in db:
        db = db["data"]
    if not isinstance(db, list) or not db:
        raise ValueError(f"{p}: expected a non-empty JSON list of annotations, each with "
                         "'kp_loc' (2 x K) and 'kp_vis' (K)")
    kps, viss, p3, scales, groups = [], [], [], [], []
    K = None
    for i, entry in enumerate(db):
        if not isinstance(entry, Mapping):
            raise ValueError(f"{p}: entry {i} must be an object, got {type(entry).__name__}")
        for key in ("kp_loc", "kp_vis"):
            if key not in entry:
                raise ValueError(f"{p}: entry {i} lacks the required field {key!r}")
        try:
            loc = torch.tensor(entry["kp_loc"], dtype=dtype)
            vis = torch.tensor(entry["kp_vis"], dtype=dtype).flatten()
        except (TypeError, ValueError) as e:
            raise ValueError(f"{p}: entry {i}: kp_loc/kp_vis must be numeric lists ({e})") from e
        if loc.ndim != 2 or loc.shape[0] != 2:
            raise ValueError(f"{p}: entry {i}: kp_loc must be 2 x K, got {tuple(loc.shape)}")
        K = loc.shape[1] if K is None else K
        if loc.shape[1] != K or vis.shape[0] != K:
            raise ValueError(f"{p}: entry {i}: expected K={K} keypoints in kp_loc and "
                             f"kp_vis, got {loc.shape[1]} and {vis.shape[0]}")
        kps.append(loc.T)
        viss.append(vis > 0)
        if "kp_loc_3d" in entry:
            try:
                x3 = torch.tensor(entry["kp_loc_3d"], dtype=dtype)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{p}: entry {i}: kp_loc_3d must be numeric ({e})") from e
            if x3.shape != (3, K):
                raise ValueError(f"{p}: entry {i}: kp_loc_3d must be 3 x {K}, got "
                                 f"{tuple(x3.shape)}")
            p3.append(x3.T)
        info = entry.get("h36m_info")
        if isinstance(info, Mapping):
            if "scale" in info:
                try:
                    scales.append(float(info["scale"]))
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{p}: entry {i}: h36m_info.scale must be a number "
                                     f"({e})") from e
            if "action_name" in info:
                groups.append(str(info["action_name"]))
        elif isinstance(entry.get("p3d_info"), Mapping) and "p3d_class" in entry["p3d_info"]:
            groups.append(str(entry["p3d_info"]["p3d_class"]))
    out: dict = {"keypoints": torch.stack(kps), "visible": torch.stack(viss)}
    if len(p3) == len(kps):
        out["points3d"] = torch.stack(p3)
    if len(scales) == len(kps):
        out["scale"] = torch.tensor(scales, dtype=dtype)
    if len(groups) == len(kps):
        out["group"] = groups
    return out
