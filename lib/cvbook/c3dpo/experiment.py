"""Chapter 07's experiment: the puppet data, the training recipe and the evaluation
harness (the paper's protocol, Sec. 4).

* data: :func:`puppet_split` (independent figures, one random view each),
  :func:`puppet_multiview` (a few figures, each seen from many viewpoints, for the
  canonical consistency) and :func:`split_keypoints` (the official release's keypoints);
* training: :func:`make_model` and :func:`train_c3dpo` (Adam with a one-cycle schedule
  through :func:`cvbook.core.fit`, fresh random mini-batches every epoch);
* evaluation: :func:`predict_depths` (the networks and the two baselines),
  :func:`evaluate_depths` (MPJPE with and without the depth flip, stress) and
  :func:`multiview_consistency` with its control :func:`shape_spread`, and the
  supervised upper bound :func:`train_supervised_lifter`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from cvbook.c3dpo.model import (
    C3DPO,
    c3dpo_loss,
    center_keypoints,
    flat_depth,
    init_official_,
    load_keypoints_json,
    tomasi_kanade,
)
from cvbook.c3dpo.presets import C3DPOConfig
from cvbook.core.train import History, fit
from cvbook.core.validate import Shapes, check_int
from cvbook.data.puppet import Identity, KeypointBatch, PuppetWorld
from cvbook.metrics.pose import canonical_consistency, depth_metrics, group_mean, pose_errors

__all__ = [
    "STEPS_PER_EPOCH",
    "evaluate_depths",
    "evaluate_official",
    "image_points",
    "load_official",
    "make_model",
    "multiview_consistency",
    "predict_depths",
    "puppet_multiview",
    "puppet_split",
    "split_keypoints",
    "shape_spread",
    "train_c3dpo",
    "train_supervised_lifter",
]

STEPS_PER_EPOCH = 100


# ---------------------------------------------------------------------------- data
def puppet_split(world: PuppetWorld, n: int, cfg: C3DPOConfig, *,
                 occlusion: float | None = None,
                 generator: torch.Generator | None = None) -> KeypointBatch:
    """``n`` independent puppets, each seen once from a random viewpoint (orthographic),
    with ``cfg``'s noise, pose spread and random occlusion (``occlusion`` overrides
    ``cfg.occlusion``); no self-occlusion."""
    occ = cfg.occlusion if occlusion is None else occlusion
    return world.sample_keypoints(n, generator=generator, occlusion=occ, noise=cfg.noise,
                                  spread=cfg.spread, self_occlusion=False,
                                  elevation=_elevation(cfg))


def _elevation(cfg: C3DPOConfig) -> tuple[float, float]:
    e = math.radians(cfg.elevation)
    return (-e, e)


def puppet_multiview(world: PuppetWorld, n_figures: int, n_views: int, cfg: C3DPOConfig, *,
                     generator: torch.Generator | None = None) -> KeypointBatch:
    """``n_figures`` puppets (identity and pose), each seen from ``n_views`` random
    viewpoints: a batch of ``n_figures * n_views`` samples, figure-major."""
    n_figures = check_int(n_figures, "n_figures", min_value=1)
    n_views = check_int(n_views, "n_views", min_value=1)
    ident = world.sample_identities(n_figures, generator=generator)
    poses = world.sample_angles(n_figures, generator=generator, spread=cfg.spread)

    def rep(t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(n_views, 0)

    return world.sample_keypoints(
        n_figures * n_views, generator=generator, occlusion=cfg.occlusion, noise=cfg.noise,
        self_occlusion=False, angles=rep(poses), elevation=_elevation(cfg),
        identity=Identity(rep(ident.bone_lengths), rep(ident.radii), rep(ident.colors)))


def split_keypoints(data: Mapping[str, torch.Tensor], n_test: int, *,
                    generator: torch.Generator | None = None,
                    device: torch.device | str = "cpu") -> dict[str, torch.Tensor | None]:
    """A random train/test split of keypoints read by
    :func:`~cvbook.c3dpo.model.load_keypoints_json` (the full preset).

    At most a fifth of the samples, and at most ``n_test``, go to the test set. The
    keypoints are centred on their visible mean and scaled by the standard deviation of
    the visible coordinates (the same scale for the 3D points, when present).

    Returns:
        ``train_y`` ``(N_train, K, 2)``, ``train_v``, ``test_y``, ``test_v`` and
        ``test_gt`` ``(N_test, K, 3)`` (``None`` without 3D points), on ``device``.
    """
    s = Shapes()
    kp = s.check(data["keypoints"], "keypoints", "N K 2", floating=True)
    vis = s.check(data["visible"], "visible", "N K")
    n_test = min(check_int(n_test, "n_test", min_value=1), kp.shape[0] // 5)
    if n_test < 1:
        raise ValueError(f"keypoints must hold at least 5 samples to split; got {kp.shape[0]}")
    perm = torch.randperm(kp.shape[0], generator=generator)
    te, tr = perm[:n_test], perm[n_test:]
    kp = center_keypoints(kp, vis)
    scale = kp[vis.bool()].std()
    gt = data.get("points3d")
    return {"train_y": (kp[tr] / scale).to(device), "train_v": vis[tr].to(device),
            "test_y": (kp[te] / scale).to(device), "test_v": vis[te].to(device),
            "test_gt": None if gt is None else gt[te].to(device) / scale}


def load_official(cfg: C3DPOConfig, *, device: torch.device | str = "cpu"
                  ) -> dict[str, dict[str, object]]:
    """The full preset's data: the official release's training and evaluation files
    (``cfg.files()``: ``<dataset>_train.json``, ``<dataset>_val.json``), read with
    :func:`~cvbook.c3dpo.model.load_keypoints_json` and left in the file's units (the
    release feeds ``kp_loc`` to the network as stored; Phi centres it on the visible
    mean).

    Returns:
        ``{"train": ..., "val": ...}``, each a dict with ``keypoints`` ``(N, K, 2)``,
        ``visible`` ``(N, K)`` and, when present, ``points3d`` ``(N, K, 3)``, ``scale``
        ``(N,)`` and ``group`` (``N`` labels), tensors on ``device``.
    """
    out = {}
    for name, f in zip(("train", "val"), cfg.files()):
        d = load_keypoints_json(f)
        out[name] = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                     for k, v in d.items()}
    if "points3d" in out["val"] and "points3d" not in out["train"]:
        raise ValueError(f"{cfg.files()[0].name} has no kp_loc_3d but {cfg.files()[1].name} "
                         "has: the global depth sign is chosen on training samples with 3D "
                         "ground truth")
    K = {name: d["keypoints"].shape[1] for name, d in out.items()}
    if K["train"] != K["val"]:
        raise ValueError(f"the training and evaluation files must have the same number of "
                         f"keypoints; got {K['train']} and {K['val']}")
    return out


# ---------------------------------------------------------------------------- training
def make_model(cfg: C3DPOConfig, n_keypoints: int, *, canonicalise: bool = True,
               seed: int | None = None, device: torch.device | str = "cpu") -> C3DPO:
    """C3DPO (or, ``canonicalise=False``, the "without Psi" ablation) sized by ``cfg``.

    ``seed`` seeds torch's global generator before the weights are drawn, so that both
    models of a comparison start from the same initialisation of Phi. ``cfg.init ==
    "official"`` then redraws them as the release does
    (:func:`~cvbook.c3dpo.model.init_official_`).
    """
    if seed is not None:
        torch.manual_seed(seed)
    model = C3DPO(n_keypoints, cfg.n_basis, cfg.width, cfg.n_blocks,
                  canonicalise=canonicalise)
    if cfg.init == "official":
        init_official_(model)
    return model.to(device)


def train_c3dpo(cfg: C3DPOConfig, y: torch.Tensor, vis: torch.Tensor, *,
                canonicalise: bool = True, seed: int | None = None,
                generator: torch.Generator | None = None, desc: str | None = None,
                progress: bool = True) -> tuple[C3DPO, History]:
    """Train a model of ``cfg`` on keypoints ``y`` ``(N, K, 2)``, visibility ``vis``
    ``(N, K)`` by minimising ``l_re + l_can`` (Eq. 3 and 5).

    ``cfg.steps`` steps in epochs of :data:`STEPS_PER_EPOCH` mini-batches of
    ``cfg.batch_size`` samples drawn with replacement (``generator``, on the data's
    device), as the official release draws random samples. ``cfg.optimizer``: ``"adam"``
    with a one-cycle learning-rate schedule peaking at ``cfg.lr`` (converges within the
    CPU budget), or ``"sgd"``, the official recipe (momentum 0.9, weight decay
    ``cfg.weight_decay``, learning rate / 10 after 2/3 and 8/9 of the steps).

    Psi's random rotations come from their own stream, seeded by one draw from
    ``generator`` made whether or not the model has Psi: the mini-batches and in-plane
    angles then depend only on ``generator``'s state, so C3DPO and C3DPO without Psi
    started from the same state see the same batches (a batch-matched ablation).

    Returns:
        ``(model, history)``; the model is on the data's device.
    """
    s = Shapes()
    s.check(y, "y", "N K 2", floating=True)
    s.check(vis, "vis", "N K")
    model = make_model(cfg, y.shape[1], canonicalise=canonicalise, seed=seed,
                       device=y.device)
    epochs = max(1, cfg.steps // STEPS_PER_EPOCH)
    per_epoch = min(cfg.steps, STEPS_PER_EPOCH)
    rot_seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=y.device))
    rot_gen = torch.Generator(device=y.device).manual_seed(rot_seed)

    def batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        idx = torch.randint(0, y.shape[0], (per_epoch, cfg.batch_size),
                            generator=generator, device=y.device)
        return [(y[i], vis[i]) for i in idx]

    def loss_fn(model: C3DPO, batch: tuple[torch.Tensor, torch.Tensor]):
        return c3dpo_loss(model, *batch, eps=cfg.eps, inplane=cfg.inplane,
                          n_rotations=cfg.n_rotations, generator=generator,
                          rotation_generator=rot_gen,
                          center_reprojection=cfg.reprojection == "centred")

    total = epochs * per_epoch
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=[round(total * 60 / 90), round(total * 80 / 90)], gamma=0.1)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total,
                                                    pct_start=0.1)
    if desc is None:
        desc = "C3DPO" if canonicalise else "C3DPO without Psi"
    hist = fit(model, batches, loss_fn, opt, epochs=epochs, scheduler=sched,
               scheduler_step="step", desc=desc, progress=progress)
    return model, hist


# ---------------------------------------------------------------------------- evaluation
def predict_depths(models: Mapping[str, C3DPO], y: torch.Tensor, vis: torch.Tensor, *,
                   rigid: str | None = "rigid factorisation",
                   flat: str | None = "flat depth") -> dict[str, torch.Tensor]:
    """Depths ``(N, K)`` predicted for keypoints ``y`` ``(N, K, 2)`` by each model (in
    the camera frame, Phi's ``R X``) and by the baselines: Tomasi-Kanade fitted on
    ``y`` itself (key ``rigid``) and flat depth (key ``flat``); ``None`` skips one."""
    s = Shapes()
    s.check(y, "y", "N K 2", floating=True)
    s.check(vis, "vis", "N K")
    out = {name: m.predict(y, vis)["points"][..., 2] for name, m in models.items()}
    if rigid is not None:
        out[rigid] = tomasi_kanade(y, vis)["depth"]
    if flat is not None:
        out[flat] = flat_depth(y)
    return out


def evaluate_depths(depths: Mapping[str, torch.Tensor], gt: torch.Tensor
                    ) -> dict[str, dict[str, torch.Tensor]]:
    """:func:`cvbook.metrics.pose.depth_metrics` of every prediction ``(N, K)`` against
    the ground-truth points ``gt`` ``(N, K, 3)``: ``{name: {"mpjpe", "mpjpe_best",
    "stress"}}``, each a 0-dim tensor (mean over samples)."""
    return {name: depth_metrics(d, gt) for name, d in depths.items()}


def multiview_consistency(models: Mapping[str, C3DPO], views: KeypointBatch,
                          n_figures: int) -> dict[str, torch.Tensor]:
    """Mean canonical consistency (:func:`cvbook.metrics.pose.canonical_consistency`)
    of each model over a :func:`puppet_multiview` batch of ``n_figures`` figures."""
    n_figures = check_int(n_figures, "n_figures", min_value=1)
    n = views.keypoints.shape[0]
    if n % n_figures:
        raise ValueError(f"views must hold n_figures={n_figures} figures with the same "
                         f"number of views each; got {n} samples")
    out = {}
    for name, m in models.items():
        shapes = m.predict(views.keypoints, views.visible)["shape"]
        out[name] = canonical_consistency(shapes.reshape(n_figures, n // n_figures, -1, 3)
                                          ).mean()
    return out


def image_points(models: Mapping[str, C3DPO], y: torch.Tensor, vis: torch.Tensor, *,
                 rigid: str | None = "rigid factorisation",
                 flat: str | None = "flat depth") -> dict[str, torch.Tensor]:
    """Each method's 3D points ``(N, K, 3)`` in the image frame, as the official release
    evaluates them (``shape_image_coord`` with ``replace_keypoints_with_input``): the
    input ``x, y`` for visible keypoints, the reprojection (centred on its own visible
    mean, then moved to the input's visible mean) for missing ones, and the predicted
    depth. The flat baseline keeps the input ``x, y`` everywhere; Tomasi-Kanade uses its
    imputed measurements."""
    s = Shapes()
    s.check(y, "y", "N K 2", floating=True)
    s.check(vis, "vis", "N K")
    v = vis.to(y.dtype)

    def vismean(t: torch.Tensor) -> torch.Tensor:
        return (t * v[..., None]).sum(1, keepdim=True) / v.sum(1).clamp_min(1)[:, None, None]

    mean = vismean(y)
    keep = vis.bool()[..., None]
    out = {}
    for name, m in models.items():
        P = m.predict(y, vis)["points"]
        # the loss compares centred point sets, so Phi's projection carries an arbitrary
        # 2D offset: re-centre it on its own visible mean before moving it to the input's
        xy = torch.where(keep, y, P[..., :2] - vismean(P[..., :2]) + mean)
        out[name] = torch.cat([xy, P[..., 2:]], -1)
    if rigid is not None:
        tk = tomasi_kanade(y, vis)
        out[rigid] = torch.cat([y, tk["depth"][..., None]], -1)
    if flat is not None:
        out[flat] = torch.cat([y, flat_depth(y)[..., None]], -1)
    return out


def evaluate_official(points: Mapping[str, torch.Tensor], gt: torch.Tensor, *,
                      root: int | None = 0, scale: torch.Tensor | None = None,
                      group: list | None = None, n_groups: int | None = None
                      ) -> dict[str, dict[str, float]]:
    """The official evaluation (``dataset/eval_zoo.py``) of every method's points
    ``(N, K, 3)`` (:func:`image_points`) against ``gt`` ``(N, K, 3)``: per sample
    :func:`cvbook.metrics.pose.pose_errors` (Human3.6M: ``root=0``, the hip, and
    ``scale`` to millimetres), then the mean per group (the 15 actions) and the mean of
    the group means (:func:`cvbook.metrics.pose.group_mean`); a plain mean without
    ``group``. ``n_groups`` (15 for Human3.6M, as the release asserts) checks the number
    of distinct groups.

    Returns:
        ``{method: {"mpjpe_orig", "mpjpe_best", "stress"}}`` as floats.
    """
    if n_groups is not None:
        found = len(set(group)) if group is not None else 0
        if found != n_groups:
            raise ValueError(f"the evaluation expects {n_groups} groups (actions); the file "
                             f"has {found}")
    table = {}
    for name, P in points.items():
        e = pose_errors(P, gt, root=root, scale=scale)
        table[name] = {k: float(group_mean(e[k], group)[0]) if group is not None
                       else float(e[k].mean()) for k in ("mpjpe_orig", "mpjpe_best", "stress")}
    return table


def shape_spread(models: Mapping[str, C3DPO], views: KeypointBatch, n_figures: int
                 ) -> dict[str, dict[str, float]]:
    """Within- and between-figure spread of the canonical shapes, the control for
    :func:`multiview_consistency` (a model that outputs one mean shape has a perfect
    consistency of 0).

    For a :func:`puppet_multiview` batch of ``n_figures`` figures (figure-major):
    ``within`` is :func:`cvbook.metrics.pose.canonical_consistency` of each figure's views
    averaged over figures, ``between`` the same spread of the figures' mean canonical
    shapes around their grand mean, ``ratio = within / between``, and ``alpha_within``
    the fraction of the variance of the shape coefficients ``alpha`` that lies within
    figures. The key ``"truth"`` holds ``between`` for the true shapes (world frame).

    Returns:
        ``{name: {"within", "between", "ratio", "alpha_within"}}`` and
        ``{"truth": {"between"}}``, floats.
    """
    n_figures = check_int(n_figures, "n_figures", min_value=2)
    n = views.keypoints.shape[0]
    if n % n_figures:
        raise ValueError(f"views must hold n_figures={n_figures} figures with the same "
                         f"number of views each; got {n} samples")
    out: dict[str, dict[str, float]] = {}
    for name, m in models.items():
        with torch.no_grad():
            pred = m.predict(views.keypoints, views.visible)
        X = pred["shape"].reshape(n_figures, n // n_figures, -1, 3)
        X = X - X.mean(-2, keepdim=True)
        within = float(canonical_consistency(X).mean())
        between = float(canonical_consistency(X.mean(1)[None])[0])
        a = pred["alpha"].reshape(n_figures, n // n_figures, -1)
        a_within = float(a.var(1, unbiased=False).mean(0).sum())
        a_total = float(a.reshape(n, -1).var(0, unbiased=False).sum())
        out[name] = {"within": within, "between": between, "ratio": within / between,
                     "alpha_within": a_within / max(a_total, 1e-12)}
    G = views.joints_world.reshape(n_figures, n // n_figures, -1, 3)[:, 0]
    out["truth"] = {"between": float(canonical_consistency(G[None])[0])}
    return out


class SupervisedLifter(torch.nn.Module):
    """A plain 2-layer MLP that maps centred 2D keypoints and visibility ``[Y v, v]``
    ``(N, 3K)`` to centred depths ``(N, K)``: the supervised upper bound of the chapter
    (trained with ground-truth depth, which C3DPO never sees)."""

    def __init__(self, n_keypoints: int, width: int = 256) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3 * n_keypoints, width), torch.nn.ReLU(),
            torch.nn.Linear(width, width), torch.nn.ReLU(),
            torch.nn.Linear(width, n_keypoints))

    def forward(self, y: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        v = vis.to(y.dtype)
        mean = (y * v[..., None]).sum(1, keepdim=True) / v.sum(1).clamp_min(1)[:, None, None]
        x = torch.cat([((y - mean) * v[..., None]).flatten(1), v], 1)
        d = self.net(x)
        return d - d.mean(1, keepdim=True)


def train_supervised_lifter(y: torch.Tensor, vis: torch.Tensor, gt: torch.Tensor, *,
                            steps: int = 600, batch_size: int = 256, lr: float = 1e-3,
                            width: int = 256, seed: int | None = None,
                            generator: torch.Generator | None = None) -> SupervisedLifter:
    """Fit :class:`SupervisedLifter` to the ground-truth depths ``gt[..., 2]`` (mean depth
    removed) of keypoints ``y`` ``(N, K, 2)``, ``vis`` ``(N, K)``: Adam, mean squared
    error, ``steps`` mini-batches drawn with replacement (``generator``). ``seed`` draws
    the initial weights without touching torch's global random stream."""
    s = Shapes()
    s.check(y, "y", "N K 2", floating=True)
    s.check(vis, "vis", "N K")
    s.check(gt, "gt", "N K 3", floating=True)
    steps = check_int(steps, "steps", min_value=1)
    with torch.random.fork_rng(devices=[]):  # a seed here leaves the global stream alone
        if seed is not None:
            torch.manual_seed(seed)
        model = SupervisedLifter(y.shape[1], width).to(y.device)
    target = gt[..., 2] - gt[..., 2].mean(1, keepdim=True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        i = torch.randint(0, y.shape[0], (batch_size,), generator=generator, device=y.device)
        loss = (model(y[i], vis[i]) - target[i]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
