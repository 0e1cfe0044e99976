"""Extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019, arXiv:1910.08485).

An extremal perturbation is the mask ``m_a`` of a fixed area ``a`` that maximises the
model's reward on the perturbed image (Eq. 4 of the paper)::

    m_a = argmax_{m ∈ M, area(m) = a} Φ(m ⊗ x),

where ``m ⊗ x`` keeps the image where ``m = 1`` and blurs (or fades) it where ``m = 0``
(Eq. 1-2), and ``M`` holds *smooth* masks (Eq. 7-9: a smooth max-convolution of a coarse
parameter grid). The area constraint is enforced with the ranking penalty of Eq. 6::

    E(m) = Φ(m ⊗ x) − λ ‖vecsort(m) − r_a‖² / |Ω|,

with ``r_a`` the sorted mask of area ``a`` and ``λ`` grown geometrically during the
optimisation. Everything here is batched: all images and all areas are optimised
together as one batch of ``N·A`` masks.

:func:`channel_extremal_perturbation` applies the same idea to the channels of an
intermediate layer (paper §4.3), and :func:`invert_features` shows what the selected
channels encode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cvbook.attribution.core import (
    Target,
    _check_input,
    get_module,
    preserve_model,
    reward,
    target_indices,
)
from cvbook.attribution.smooth_mask import (  # noqa: F401  (re-exported)
    SmoothMask,
    _SmoothMax,
    smooth_max_brute_force,
)
from cvbook.core.validate import check_choice, check_float, check_int, check_tensor
from cvbook.image.filters import blur_pyramid, gaussian_blur, gaussian_kernel1d  # noqa: F401

PERTURBATIONS = ("blur", "fade")
VARIANTS = ("preserve", "delete", "dual")
REWARDS = ("simple", "contrastive")


# --------------------------------------------------------------------------- perturbation
def apply_perturbation(pyramid: torch.Tensor, mask: torch.Tensor, index: torch.Tensor
                       ) -> torch.Tensor:
    """``m ⊗ x`` (paper Eq. 1-2): each pixel picks its blur level by linear
    interpolation, mask 1 = original, 0 = most perturbed.

    Args:
        pyramid: ``(N, L, C, H, W)`` from :func:`blur_pyramid` (``L = 2`` levels
            ``[baseline, x]`` give the "fade" perturbation).
        mask: ``(B, 1, H, W)`` in [0, 1].
        index: ``(B,)`` image of each mask.

    Returns:
        ``(B, C, H, W)``.
    """
    _, L, C, H, W = pyramid.shape
    pos = mask.clamp(0, 1) * (L - 1)
    lo = pos.detach().floor().clamp(max=L - 2)
    frac = pos - lo
    # gather the two levels of every pixel straight from the pyramid: no (B, L, C, H, W)
    # copy per call (8x the perturbed batch, the bulk of the memory traffic at 224 px)
    dev = pyramid.device
    n = index.view(-1, 1, 1, 1)
    lvl = lo.long()                                          # (B, 1, H, W)
    c = torch.arange(C, device=dev).view(1, -1, 1, 1)
    h = torch.arange(H, device=dev).view(1, 1, -1, 1)
    w = torch.arange(W, device=dev).view(1, 1, 1, -1)
    a = pyramid[n, lvl, c, h, w]                             # (B, C, H, W)
    b = pyramid[n, lvl + 1, c, h, w]
    return a + frac * (b - a)


# --------------------------------------------------------------------------- smooth masks
AREA_CONVENTIONS = ("image", "frame")


def area_reference(areas: torch.Tensor, num_pixels: int, image_pixels: int) -> torch.Tensor:
    """Sorted reference masks ``r_a`` (paper Eq. 6): ``(A,) -> (A, num_pixels)``, zeros
    followed by ``round(a · image_pixels)`` ones.

    The paper counts the area as a fraction of the image, ``a|Ω|`` ones
    (``image_pixels = H·W``) over the vector of the full mask with its margin
    (``num_pixels``); TorchRay counts ``a`` of the padded frame
    (``image_pixels = num_pixels``), a mask ``(H+2m)(W+2m)/(HW)`` times larger.
    """
    ones = (areas * image_pixels).round().long().clamp(max=num_pixels)
    idx = torch.arange(num_pixels, device=areas.device)
    return (idx[None] >= (num_pixels - ones)[:, None]).float()


def ranking_penalty(values: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """The area constraint of paper Eq. 6, ``‖vecsort(m) − r_a‖² / |Ω|``, per row:
    ``(B, P)`` mask values and ``(B, P)`` sorted references -> ``(B,)``. The definition
    (a full sort); :func:`ranking_penalty_topk` is the same number, faster."""
    return ((values.sort(dim=1).values - ref) ** 2).mean(1)


def ranking_penalty_topk(values: torch.Tensor, ones: torch.Tensor, k_max: int
                         ) -> torch.Tensor:
    """Eq. 6 without the full sort: for a binary reference with ``n`` ones,
    ``‖vecsort(m) − r_a‖² = Σ m² − 2·(sum of the n largest m) + n`` exactly, and only the
    ``n`` largest values need ranking (a top-k).

    Args:
        values: ``(B, P)`` mask values.
        ones: ``(B,)`` int number of ones of each row's reference.
        k_max: ``max(ones)`` as a Python int (given once, so that no step syncs).

    Returns:
        ``(B,)`` the penalty, equal to :func:`ranking_penalty`.
    """
    P = values.shape[1]
    if k_max <= 0:
        return values.pow(2).mean(1)
    top = values.topk(k_max, dim=1, sorted=True).values                  # (B, k_max)
    head = torch.arange(k_max, device=values.device)[None] < ones[:, None]
    return (values.pow(2).sum(1) - 2 * (top * head).sum(1) + ones.to(values.dtype)) / P


def _ascent_step(opt: torch.optim.Optimizer, params: torch.Tensor, energy: torch.Tensor
                 ) -> None:
    """One step up the energy of every row, then the parameters are clamped to [0, 1]
    (the parameters, not the mask, as in the paper)."""
    opt.zero_grad(set_to_none=True)
    (-energy.sum()).backward()
    opt.step()
    with torch.no_grad():
        params.clamp_(0, 1)


# --------------------------------------------------------------------------- optimisation
@dataclass
class ExtremalResult:
    """What :func:`extremal_perturbation` returns (N images, A areas).

    Attributes:
        masks: ``(N, A, H, W)`` the image part of each extremal mask, in [0, 1].
        areas: ``(A,)`` the target areas.
        mask_areas: ``(N, A)`` achieved area, the constrained quantity: the full mask's
            sum (margin included) over the image's pixel count (``"image"`` convention,
            the paper) or over the frame's (``"frame"``, TorchRay).
        image_areas: ``(N, A)`` the mean of the image part of the mask.
        rewards: ``(N, A)`` the final reward ``Φ(m_a ⊗ x)`` (for "delete" the reward of
            the deleted image; for "dual" preserve minus delete).
        full_reward: ``(N,)`` the reward of the unperturbed image.
        baseline_reward: ``(N,)`` the reward of the fully perturbed image.
        history: ``(iterations, N, A)`` the energy ``E(m)`` along the optimisation.
        params: ``(N, A, gh, gw)`` the optimised parameters.
    """

    masks: torch.Tensor
    areas: torch.Tensor
    mask_areas: torch.Tensor
    image_areas: torch.Tensor
    rewards: torch.Tensor
    full_reward: torch.Tensor
    baseline_reward: torch.Tensor
    history: torch.Tensor
    params: torch.Tensor

    @property
    def area_error(self) -> torch.Tensor:
        """``(N, A)`` achieved minus target area."""
        return self.mask_areas - self.areas[None]

    def normalised_rewards(self) -> torch.Tensor:
        """``(N, A)`` ``(Φ(m_a⊗x) − Φ(blurred)) / (Φ(x) − Φ(blurred))``: 0 = no more
        evidence than the fully perturbed image, 1 = as much as the whole image."""
        den = (self.full_reward - self.baseline_reward)[:, None]
        return (self.rewards - self.baseline_reward[:, None]) / den.where(
            den.abs() > 1e-6, torch.full_like(den, 1e-6))

    def saliency(self, smooth: float = 0.0) -> torch.Tensor:
        """``(N, 1, H, W)``: the masks summed over areas (the paper's pointing-game map),
        optionally blurred with ``σ = smooth · min(H, W)``."""
        s = self.masks.sum(1, keepdim=True)
        if smooth > 0:
            s = gaussian_blur(s, smooth * min(s.shape[-2:]))
        return s


def _class_reward(output: torch.Tensor, target: Target, kind: str) -> torch.Tensor:
    if kind == "simple":
        return reward(output, target)
    idx = target_indices(target, output.shape[0], output.device)
    if idx is None:
        raise ValueError("reward='contrastive' needs class targets (the best other class "
                         "is subtracted); a callable target can implement its own contrast")
    scores = output.float().flatten(2).mean(2) if output.ndim > 2 else output.float()
    own = scores.gather(1, idx[:, None])[:, 0]
    others = scores.scatter(1, idx[:, None], float("-inf")).amax(1)
    return own - others


def _fast_reward(target: Target, kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The reward of the optimisation loop, for targets already checked: no validation,
    no host sync (``target`` is an ``(B,)`` index tensor or a callable)."""
    if not isinstance(target, torch.Tensor):
        def call(out: torch.Tensor) -> torch.Tensor:
            return target(out).float()  # type: ignore[operator]
        return call
    idx = target[:, None]

    def score(out: torch.Tensor) -> torch.Tensor:
        s = out.float().flatten(2).mean(2) if out.ndim > 2 else out.float()
        own = s.gather(1, idx)[:, 0]
        if kind == "simple":
            return own
        return own - s.scatter(1, idx, float("-inf")).amax(1)
    return score


def _repeat_target(target: Target, n: int, a: int, device: torch.device) -> Target:
    idx = target_indices(target, n, device)
    return target if idx is None else idx.repeat_interleave(a)


def extremal_perturbation(
    model: nn.Module, input: torch.Tensor, target: Target, *,
    areas: Sequence[float] = (0.1,), variant: str = "preserve",
    perturbation: str = "blur", reward_kind: str = "simple",
    step: int = 7, sigma: float = 21.0, temperature: float = 20.0,
    substeps: int | None = None, num_levels: int = 8, max_blur: float = 20.0,
    iterations: int = 800, lr: float = 0.01, momentum: float = 0.9, dampening: float = 0.9,
    lambda_start: float = 300.0, lambda_growth: float = 1.0035, jitter: bool = True,
    area_convention: str = "image",
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> ExtremalResult:
    """Extremal perturbations (paper Eq. 4-9), all images and all areas in one batch.

    Args:
        model: the network (left exactly as found).
        input: ``(N, C, H, W)`` images.
        target: class index / indices or a callable reward (see
            :func:`cvbook.attribution.core.reward`).
        areas: target areas ``a`` as fractions of the image (each in (0, 1]).
        variant: ``"preserve"`` (maximise ``Φ(m⊗x)``), ``"delete"`` (minimise the reward
            of the image with the mask's region perturbed) or ``"dual"`` (both).
        perturbation: ``"blur"`` (a pyramid of ``num_levels`` Gaussian blurs up to
            ``max_blur`` pixels) or ``"fade"`` (``x·m``: fade to black).
        reward_kind: ``"simple"`` (the target's logit) or ``"contrastive"`` (the target's
            logit minus the best other one).
        step, sigma, temperature, substeps: the smooth mask family
            (:class:`SmoothMask`).
        iterations: SGD iterations (800 in the paper).
        lr, momentum, dampening: SGD settings (0.01, 0.9, 0.9 in the paper).
        lambda_start, lambda_growth: ``λ`` starts at 300 and is multiplied by 1.0035
            after every iteration.
        jitter: flip the perturbed image horizontally every other iteration.
        area_convention: ``"image"`` (the paper: ``r_a`` holds ``a·H·W`` ones, the area
            is a fraction of the image) or ``"frame"`` (TorchRay: ``a`` of the padded
            frame's pixels, a larger mask); the penalty always sees the full mask.
        callback: ``callback(iteration, masks)`` after every iteration (for animations).

    Returns:
        An :class:`ExtremalResult`.

    Note:
        The ranking penalty fixes the *sorted profile* of the mask, not its sum; chapter
        01 measures how far the achieved area (``mask_areas``) lands from ``a``. The
        loop is sync-free: targets are checked once before it, the penalty uses a top-k
        (:func:`ranking_penalty_topk`) instead of a full sort.
    """
    _check_input(input)
    check_tensor(input, "input", ndim=4, floating=True)
    check_choice(variant, "variant", VARIANTS)
    check_choice(perturbation, "perturbation", PERTURBATIONS)
    check_choice(reward_kind, "reward_kind", REWARDS)
    check_choice(area_convention, "area_convention", AREA_CONVENTIONS)
    iterations = check_int(iterations, "iterations", min_value=1)
    for name, v in (("lr", lr), ("lambda_start", lambda_start),
                    ("lambda_growth", lambda_growth)):
        check_float(v, name, min_value=0.0, open_min=True)
    check_float(momentum, "momentum", min_value=0.0, max_value=1.0)
    check_float(dampening, "dampening", min_value=0.0, max_value=1.0)
    if isinstance(areas, (int, float)):
        areas = (areas,)
    if not isinstance(areas, (Sequence, torch.Tensor)) or len(areas) == 0:
        raise ValueError(f"areas must be a non-empty sequence of fractions, got {areas!r}")
    area_t = torch.as_tensor([float(check_float(a, "areas[i]", min_value=0.0, max_value=1.0))
                              for a in areas], device=input.device)
    if (area_t <= 0).any():
        raise ValueError("areas must be > 0")
    N, _, H, W = input.shape
    A = len(area_t)
    dev = input.device
    gen = SmoothMask((H, W), step=step, sigma=sigma, temperature=temperature,
                     substeps=substeps, device=dev)
    x = input.detach().float()
    if perturbation == "blur":
        pyramid = blur_pyramid(x, num_levels=num_levels, max_sigma=max_blur)
    else:
        pyramid = torch.stack([torch.zeros_like(x), x], 1)
    index = torch.arange(N, device=dev).repeat_interleave(A)        # (B,) image per row
    P = gen.num_pixels_full
    den_pixels = H * W if area_convention == "image" else P
    ones = (area_t * den_pixels).round().long().clamp(max=P).repeat(N)      # (B,)
    k_max = int(ones.max())                                         # once, before the loop
    init = {"preserve": 1.0, "delete": 0.0, "dual": 0.5}[variant]
    params = torch.full((N * A, 1, *gen.grid), init, device=dev, requires_grad=True)
    opt = torch.optim.SGD([params], lr=lr, momentum=momentum, dampening=dampening)
    history = torch.zeros(iterations, N * A, device=dev)

    with preserve_model(model):
        with torch.no_grad():   # the checked path: targets are validated here, once
            full_r = _class_reward(model(x), target, reward_kind)
            base_r = _class_reward(model(pyramid[:, 0]), target, reward_kind)
        idx = target_indices(target, N, dev)
        score = _fast_reward(target if idx is None else idx.repeat_interleave(A),
                             reward_kind)
        score2 = _fast_reward(target if idx is None else idx.repeat_interleave(A).repeat(2),
                              reward_kind)

        def rewards_of(mask_img: torch.Tensor, flip: bool) -> torch.Tensor:
            batches = []
            if variant in ("preserve", "dual"):
                batches.append(apply_perturbation(pyramid, mask_img, index))
            if variant in ("delete", "dual"):
                batches.append(apply_perturbation(pyramid, 1 - mask_img, index))
            xin = torch.cat(batches, 0) if len(batches) > 1 else batches[0]
            if flip:
                xin = xin.flip(-1)
            out = model(xin)
            if variant == "preserve":
                return score(out)
            if variant == "delete":
                return -score(out)
            r = score2(out)
            return r[:N * A] - r[N * A:]

        lam = float(lambda_start)
        for it in range(iterations):
            mask_full = gen._generate(params)
            mask_img = gen.crop(mask_full)
            r = rewards_of(mask_img, flip=jitter and it % 2 == 1)
            energy = r - lam * ranking_penalty_topk(mask_full.flatten(1), ones, k_max)
            _ascent_step(opt, params, energy)
            history[it] = energy.detach()
            lam *= lambda_growth
            if callback is not None:
                callback(it, mask_img.detach())
        with torch.no_grad():
            mask_full = gen._generate(params)
            mask_img = gen.crop(mask_full)
            if variant == "delete":
                final = score(model(apply_perturbation(pyramid, 1 - mask_img, index)))
            else:
                final = score(model(apply_perturbation(pyramid, mask_img, index)))
                if variant == "dual":
                    final = final - score(model(apply_perturbation(pyramid, 1 - mask_img,
                                                                   index)))
    return ExtremalResult(
        masks=mask_img.detach().view(N, A, H, W),
        areas=area_t,
        mask_areas=(mask_full.detach().flatten(1).sum(1) / den_pixels).view(N, A),
        image_areas=mask_img.detach().flatten(1).mean(1).view(N, A),
        rewards=final.view(N, A),
        full_reward=full_r,
        baseline_reward=base_r,
        history=history.view(iterations, N, A),
        params=params.detach().view(N, A, *gen.grid),
    )


# --------------------------------------------------------------------------- channels
@dataclass
class ChannelResult:
    """What :func:`channel_extremal_perturbation` returns.

    Attributes:
        masks: ``(N, A, K)`` channel masks in [0, 1] (1 = kept).
        areas: ``(A,)`` target fractions of the ``K`` channels.
        rewards: ``(N, A)`` reward with only the masked channels (preserve).
        full_reward: ``(N,)`` reward of the intact network.
        history: ``(iterations, N, A)`` energy.
    """

    masks: torch.Tensor
    areas: torch.Tensor
    rewards: torch.Tensor
    full_reward: torch.Tensor
    history: torch.Tensor

    def top_channels(self, k: int, area_index: int = 0) -> torch.Tensor:
        """``(N, k)`` indices of the ``k`` channels with the largest mask values."""
        return self.masks[:, area_index].topk(k, dim=1).indices


def channel_extremal_perturbation(
    model: nn.Module, input: torch.Tensor, target: Target, *, layer: str,
    areas: Sequence[float] = (0.1,), variant: str = "preserve",
    reward_kind: str = "simple", iterations: int = 300, lr: float = 0.05,
    momentum: float = 0.9, dampening: float = 0.9, lambda_start: float = 300.0,
    lambda_growth: float = 1.0035,
) -> ChannelResult:
    """Channel attribution (paper §4.3): a spatially constant mask ``m ∈ [0,1]^K``
    multiplies the ``K`` channels of ``layer``; the same ranking area constraint (Eq. 6,
    over channels) keeps a fraction ``a`` of them; all images and areas in one batch.

    Args:
        layer: module name whose ``(N, K, h, w)`` output is masked.
        areas: fractions of the channels to keep.
        variant: ``"preserve"`` (keep the masked channels, zero the rest) or ``"delete"``
            (zero the masked channels).
        others: as in :func:`extremal_perturbation`.

    Returns:
        A :class:`ChannelResult`.
    """
    _check_input(input)
    check_choice(variant, "variant", ("preserve", "delete"))
    check_choice(reward_kind, "reward_kind", REWARDS)
    iterations = check_int(iterations, "iterations", min_value=1)
    module = get_module(model, layer)
    if module is None:
        raise ValueError("layer must name an intermediate module, not the input")
    if isinstance(areas, (int, float)):
        areas = (areas,)
    area_t = torch.as_tensor([check_float(a, "areas[i]", min_value=0.0, max_value=1.0)
                              for a in areas], device=input.device)
    N, A = input.shape[0], len(area_t)
    dev = input.device
    x = input.detach().float().repeat_interleave(A, 0)
    tgt = _repeat_target(target, N, A, dev)
    state: dict[str, torch.Tensor] = {}

    def hook(mod, inp, out):
        if not isinstance(out, torch.Tensor) or out.ndim < 2:
            raise TypeError(f"layer {layer!r} must output an (N, K, ...) tensor")
        if "mask" not in state:
            return None
        m = state["mask"] if variant == "preserve" else 1 - state["mask"]
        return out * m.view(*m.shape, *([1] * (out.ndim - 2))).to(out.dtype)

    with preserve_model(model):
        handle = module.register_forward_hook(hook)
        try:
            with torch.no_grad():
                out0 = model(input.detach().float())
                full_r = _class_reward(out0, target, reward_kind)
                probe = {}
                h2 = module.register_forward_hook(lambda m, i, o: probe.setdefault("k", o))
                model(input[:1].detach().float())
                h2.remove()
                K = probe["k"].shape[1]
            ref = area_reference(area_t, K, K).repeat(N, 1)
            init = 1.0 if variant == "preserve" else 0.0
            params = torch.full((N * A, K), init, device=dev, requires_grad=True)
            opt = torch.optim.SGD([params], lr=lr, momentum=momentum, dampening=dampening)
            history = torch.zeros(iterations, N * A, device=dev)
            lam = float(lambda_start)
            for it in range(iterations):
                state["mask"] = params
                r = _class_reward(model(x), tgt, reward_kind)
                if variant == "delete":
                    r = -r
                energy = r - lam * ranking_penalty(params, ref)
                _ascent_step(opt, params, energy)
                history[it] = energy.detach()
                lam *= lambda_growth
            with torch.no_grad():
                state["mask"] = params
                final = _class_reward(model(x), tgt, reward_kind)
        finally:
            handle.remove()
    return ChannelResult(masks=params.detach().view(N, A, K), areas=area_t,
                         rewards=final.view(N, A), full_reward=full_r,
                         history=history.view(iterations, N, A))


def invert_features(model: nn.Module, input: torch.Tensor, *, layer: str,
                    channel_mask: torch.Tensor | None = None, iterations: int = 200,
                    lr: float = 0.05, tv_weight: float = 0.05,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Feature inversion (Mahendran & Vedaldi 2015), restricted to some channels: find an
    image ``z`` whose activations at ``layer`` match those of ``input`` on the channels
    selected by ``channel_mask``,

        min_z ‖m ⊙ (φ(z) − φ(x))‖² / ‖m ⊙ φ(x)‖² + tv_weight · TV(z),   z ∈ [0, 1],

    all images in one batch (Adam). What the salient channels encode is what survives in
    ``z``: compare with the inversion from all channels.

    Args:
        input: ``(N, 3, H, W)`` images.
        channel_mask: ``(N, K)`` weights in [0, 1] (``None``: all channels).

    Returns:
        ``(N, 3, H, W)`` reconstructions.
    """
    _check_input(input)
    module = get_module(model, layer)
    if module is None:
        raise ValueError("layer must name an intermediate module")
    iterations = check_int(iterations, "iterations", min_value=1)
    feats: dict[str, torch.Tensor] = {}
    with preserve_model(model):
        handle = module.register_forward_hook(lambda m, i, o: feats.__setitem__("f", o))
        try:
            with torch.no_grad():
                model(input.detach().float())
                ref = feats["f"].detach()
            m = (torch.ones(ref.shape[:2], device=ref.device) if channel_mask is None
                 else check_tensor(channel_mask, "channel_mask",
                                   shape=tuple(ref.shape[:2])).float())
            m = m.view(*m.shape, *([1] * (ref.ndim - 2)))
            norm = (m * ref).pow(2).flatten(1).sum(1).clamp(min=1e-8)
            z = (0.5 + 0.05 * torch.randn(input.shape, generator=generator,
                                          device=input.device)).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(iterations):
                model(z)
                err = (m * (feats["f"] - ref)).pow(2).flatten(1).sum(1) / norm
                tv = ((z[..., 1:, :] - z[..., :-1, :]).abs().flatten(1).mean(1)
                      + (z[..., :, 1:] - z[..., :, :-1]).abs().flatten(1).mean(1))
                loss = (err + tv_weight * tv).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    z.clamp_(0, 1)
        finally:
            handle.remove()
    return z.detach()
