"""NormGrad, multi-layer saliency and meta-saliency (Rebuffi, Fong, Ji & Vedaldi,
"There and back again: revisiting backpropagation saliency methods", CVPR 2020,
arXiv:2004.02866; first version arXiv:1910.08823).

For a convolution ``y_u = W x̃_u`` with unfolded input patches ``x̃_u`` and output
gradients ``g_u = ∂ℓ/∂y_u``, the weight gradient is a sum over locations (Eq. 2)::

    ∂ℓ/∂W = Σ_u g_u x̃_uᵀ,

and NormGrad scores each location by the Frobenius norm of its term (Eq. 3)::

    s(u) = ‖g_u x̃_uᵀ‖_F = ‖g_u‖₂ ‖x̃_u‖₂.

With a *virtual identity* 1x1 layer inserted after any layer (Eq. 4) the input is the
activation itself, ``s(u) = ‖g_u‖ ‖x_u‖`` (norms over channels): the default. The
*selective* variant keeps the positive part of the diagonal, ``‖max(0, x_u ⊙ g_u)‖``.
Meta-saliency (§4) explains the network after one SGD step toward the explained class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cvbook.attribution.core import (
    AGGREGATIONS,
    Target,
    _check_input,
    get_module,
    preserve_model,
    probe,
    resize_map,
    reward,
    saliency,
    target_indices,
)
from cvbook.core._validate import check_choice, check_float, check_tensor

NORMGRAD_VARIANTS = ("identity", "selective", "proper")


def normgrad(model: nn.Module, input: torch.Tensor, target: Target, *, layer: str,
             variant: str = "identity", resize: bool | Sequence[int] = False) -> torch.Tensor:
    """NormGrad saliency at ``layer`` (Eq. 3-4); ``(N, 1, h, w)``.

    Args:
        layer: module name. For ``variant="proper"`` it must be an ``nn.Conv2d``: its
            input is unfolded with the layer's kernel, stride, padding and dilation and
            the map lives at its output resolution.
        variant: ``"identity"`` (virtual identity layer after ``layer``:
            ``‖g‖·‖x‖``), ``"selective"`` (``‖max(0, x ⊙ g)‖``) or ``"proper"``
            (``‖g_u‖·‖x̃_u‖`` for the real ``k×k`` convolution).
        resize: upsample to the input size (``True``) or to ``(H, W)``.
    """
    check_choice(variant, "variant", NORMGRAD_VARIANTS)
    if variant == "identity":
        return saliency(model, input, target, layer=layer, aggregate="normgrad",
                        resize=resize)
    if variant == "selective":
        return saliency(model, input, target, layer=layer, aggregate="normgrad_selective",
                        resize=resize)
    _check_input(input)
    conv = get_module(model, layer)
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"variant='proper' needs an nn.Conv2d layer, {layer!r} is "
                         f"{type(conv).__name__}")
    seen: dict[str, torch.Tensor] = {}
    with preserve_model(model):
        h = conv.register_forward_pre_hook(lambda m, i: seen.__setitem__("x", i[0]))
        try:
            _, (y,), (g,) = probe(model, input, target, layer)
        finally:
            h.remove()
        with torch.no_grad():
            s = conv_contribution_norms(seen["x"].float(), g.float(), conv)
    if resize:
        s = resize_map(s, input.shape[-2:] if resize is True else resize)
    return s


def conv_contribution_norms(x: torch.Tensor, g: torch.Tensor, conv: nn.Conv2d
                            ) -> torch.Tensor:
    """``‖g_u x̃_uᵀ‖_F`` for every output location ``u`` of ``conv`` (grouped convs:
    the norm over all groups' blocks).

    Args:
        x: ``(N, C_in, H, W)`` the convolution's input.
        g: ``(N, C_out, h, w)`` the gradient at its output.

    Returns:
        ``(N, 1, h, w)``.
    """
    check_tensor(x, "x", ndim=4)
    check_tensor(g, "g", ndim=4)
    G = conv.groups
    patches = F.unfold(x, conv.kernel_size, dilation=conv.dilation, padding=conv.padding,
                       stride=conv.stride)                        # (N, C_in*k*k, L)
    N, _, L = patches.shape
    if L != g.shape[-2] * g.shape[-1]:
        raise ValueError(f"g has {g.shape[-2]}x{g.shape[-1]} locations, the unfolded input "
                         f"{L}; is g the gradient at this conv's output?")
    xn2 = patches.view(N, G, -1, L).pow(2).sum(2)                  # (N, G, L)
    gn2 = g.reshape(N, G, -1, L).pow(2).sum(2)                     # (N, G, L)
    return (xn2 * gn2).sum(1).sqrt().view(N, 1, *g.shape[-2:])


def layer_saliencies(model: nn.Module, input: torch.Tensor, target: Target,
                     layers: Sequence[str | None], *,
                     aggregates: Sequence[str] = ("gradient", "gradcam", "linear", "normgrad",
                                                  "normgrad_selective"),
                     ) -> dict[str, list[torch.Tensor]]:
    """Every aggregation at every layer from *one* forward and backward pass (the
    extract-and-aggregate view, CVPR paper §3).

    Returns:
        ``{aggregate: [(N, 1, h_l, w_l) for each layer]}``.
    """
    _check_input(input)
    for a in aggregates:
        check_choice(a, "aggregates[i]", list(AGGREGATIONS))
    with preserve_model(model):
        _, acts, grads = probe(model, input, target, list(layers))
        with torch.no_grad():
            out = {a: [AGGREGATIONS[a](x.float(), g.float()) for x, g in zip(acts, grads)]
                   for a in aggregates}
    return out


def combine_maps(maps: Sequence[torch.Tensor], size: Sequence[int], *,
                 weights: Sequence[float] | None = None, mode: str = "sum") -> torch.Tensor:
    """Multi-layer saliency (CVPR paper §3.3): resize every ``(N, 1, h_l, w_l)`` map to
    ``size``, min-max normalise each image's map, then take the weighted sum or the
    weighted geometric product ``Π_l s_l^{w_l}``. Returns ``(N, 1, H, W)``."""
    if not maps:
        raise ValueError("maps must hold at least one map")
    check_choice(mode, "mode", ("sum", "product"))
    w = torch.ones(len(maps)) if weights is None else torch.as_tensor(weights, dtype=torch.float)
    if w.shape != (len(maps),) or (w < 0).any():
        raise ValueError(f"weights must be {len(maps)} non-negative numbers")
    w = w / w.sum().clamp(min=1e-12)
    out = None
    for m, wl in zip(maps, w.tolist()):
        r = resize_map(m.float(), size)
        lo = r.flatten(1).amin(1)[:, None, None, None]
        hi = r.flatten(1).amax(1)[:, None, None, None]
        r = (r - lo) / (hi - lo).clamp(min=1e-12)
        term = wl * r if mode == "sum" else (r + 1e-6) ** wl
        out = term if out is None else (out + term if mode == "sum" else out * term)
    return out


def meta_saliency(model: nn.Module, input: torch.Tensor, target: Target, *,
                  method: Callable[..., torch.Tensor] = normgrad, lr: float = 0.0025,
                  adversarial: bool = False, **kwargs) -> torch.Tensor:
    """Meta-saliency (CVPR paper §4, Eq. 8): take one SGD step
    ``θ' = θ − η ∇_θ CE(Φ_θ(x), c)`` toward the explained class ``c`` (eval mode, batch
    norm frozen; for dense outputs the cross-entropy is averaged over positions), compute
    ``method`` with ``θ'``, and put ``θ`` back exactly. ``adversarial=True`` negates the
    loss (the step goes *away* from ``c``): the map then shows *adversarial locations*.

    The step depends on the image, so images are processed one at a time (each is one
    forward/backward pass plus the method's own cost).

    Args:
        method: a saliency function ``method(model, x, target, **kwargs)``.
        lr: the step size ``η`` (0.0025 in the authors' scripts).
        kwargs: passed to ``method`` (``layer=...``).

    Returns:
        ``(N, 1, h, w)`` maps.
    """
    _check_input(input)
    lr = check_float(lr, "lr", min_value=0.0)
    idx = target_indices(target, input.shape[0], input.device)
    if idx is None:
        raise ValueError("meta_saliency needs class targets (the step is a cross-entropy "
                         "step toward the class)")
    maps = []
    with preserve_model(model, freeze=False, restore_params=True):
        params = [p for p in model.parameters() if p.is_floating_point()]
        saved = [p.detach().clone() for p in params]
        for p in params:
            p.requires_grad_(True)
        for i in range(input.shape[0]):
            xi = input[i:i + 1].detach()
            out = model(xi)
            logits = out.float()
            if logits.ndim > 2:
                logits = logits.flatten(2).transpose(1, 2).flatten(0, 1)
                ti = idx[i].expand(logits.shape[0])
            else:
                ti = idx[i:i + 1]
            loss = F.cross_entropy(logits, ti)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            with torch.no_grad():
                sign = 1.0 if adversarial else -1.0
                for p, g in zip(params, grads):
                    if g is not None:
                        p.add_(sign * lr * g)
            try:
                maps.append(method(model, xi, idx[i:i + 1], **kwargs))
            finally:
                with torch.no_grad():
                    for p, v in zip(params, saved):
                        p.copy_(v)
    return torch.cat(maps, 0)


def adversarial_locations(model: nn.Module, input: torch.Tensor, target: Target, *,
                          method: Callable[..., torch.Tensor] = normgrad, lr: float = 0.0025,
                          **kwargs) -> torch.Tensor:
    """Meta-saliency with the loss negated (CVPR paper §4.2): where a step that would
    *unlearn* the class changes the network most. ``(N, 1, h, w)``."""
    return meta_saliency(model, input, target, method=method, lr=lr, adversarial=True,
                         **kwargs)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Spearman rank correlation of ``(N, P)`` tensors (average ranks for ties)
    -> ``(N,)``."""
    check_tensor(a, "a", ndim=2)
    check_tensor(b, "b", shape=tuple(a.shape))

    def ranks(x: torch.Tensor) -> torch.Tensor:
        # average rank of tied values: rank = (#less) + (#equal - 1) / 2, vectorised
        s = x.sort(dim=1).values
        less = torch.searchsorted(s.contiguous(), x.contiguous(), right=False).float()
        leq = torch.searchsorted(s.contiguous(), x.contiguous(), right=True).float()
        return (less + leq - 1) / 2

    ra, rb = ranks(a.float()), ranks(b.float())
    ra = ra - ra.mean(1, keepdim=True)
    rb = rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp(min=1e-12)


def class_sensitivity(model: nn.Module, input: torch.Tensor,
                      method: Callable[..., torch.Tensor], **kwargs) -> torch.Tensor:
    """CVPR paper §5.2: Spearman correlation between the map of the most probable class
    and that of the least probable one, per image; ``(N,)`` (lower = more
    class-sensitive). ``method(model, x, target, **kwargs)``."""
    _check_input(input)
    with preserve_model(model), torch.no_grad():
        out = model(input.detach())
        scores = out.float().flatten(2).mean(2) if out.ndim > 2 else out.float()
    top, bottom = scores.argmax(1), scores.argmin(1)
    both = method(model, torch.cat([input, input]), torch.cat([top, bottom]), **kwargs)
    n = input.shape[0]
    return spearman(both[:n].flatten(1), both[n:].flatten(1))


__all__ = ["NORMGRAD_VARIANTS", "adversarial_locations", "class_sensitivity", "combine_maps",
           "conv_contribution_norms", "layer_saliencies", "meta_saliency", "normgrad",
           "reward", "spearman"]
