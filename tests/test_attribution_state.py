"""Every attribution method leaves the model exactly as it found it: train/eval flags,
``requires_grad``, ``.grad``, in-place ReLUs, hooks and weights, also on an exception."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

import cvbook.attribution as A


def messy_net() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 4, 3, padding=1)), ("bn1", nn.BatchNorm2d(4)),
        ("relu1", nn.ReLU(inplace=True)), ("conv2", nn.Conv2d(4, 5, 3, padding=1)),
        ("relu2", nn.ReLU(inplace=True)), ("drop", nn.Dropout(0.5, inplace=True)),
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(5, 3)),
    ]))
    m.train()               # a model mid-training ...
    m.bn1.eval()            # ... with one part frozen,
    m.conv1.weight.requires_grad_(False)  # a frozen parameter,
    m.fc.weight.grad = torch.ones_like(m.fc.weight)   # an accumulated gradient,
    m.relu2.register_forward_hook(lambda mod, i, o: None)  # and a user's hook
    return m


METHODS = {
    "gradient": lambda m, x, t: A.gradient(m, x, t),
    "gradient@layer": lambda m, x, t: A.gradient(m, x, t, layer="relu1"),
    "deconvnet": lambda m, x, t: A.deconvnet(m, x, t),
    "guided_backprop": lambda m, x, t: A.guided_backprop(m, x, t),
    "grad_cam": lambda m, x, t: A.grad_cam(m, x, t, layer="relu2"),
    "linear_approx": lambda m, x, t: A.linear_approx(m, x, t, layer="relu1"),
    "excitation_backprop": lambda m, x, t: A.excitation_backprop(m, x, t, layer="relu1"),
    "contrastive_eb": lambda m, x, t: A.contrastive_excitation_backprop(m, x, t,
                                                                        layer="relu1"),
    "rise": lambda m, x, t: A.rise(m, x, t, num_masks=4, grid=2),
    "smoothgrad": lambda m, x, t: A.smoothgrad(m, x, t, num_samples=2),
    "extremal": lambda m, x, t: A.extremal_perturbation(m, x, t, areas=(0.2, 0.4), step=4,
                                                        sigma=4.0, iterations=2,
                                                        max_blur=2.0),
    "channel_extremal": lambda m, x, t: A.channel_extremal_perturbation(
        m, x, t, layer="relu2", iterations=2),
    "invert_features": lambda m, x, t: A.invert_features(m, x, layer="relu1", iterations=2),
    "normgrad": lambda m, x, t: A.normgrad(m, x, t, layer="relu1"),
    "normgrad_proper": lambda m, x, t: A.normgrad(m, x, t, layer="conv2", variant="proper"),
    "normgrad_selective": lambda m, x, t: A.normgrad(m, x, t, layer="relu1",
                                                     variant="selective"),
    "layer_saliencies": lambda m, x, t: A.layer_saliencies(m, x, t, ["relu1", "relu2"]),
    "meta_saliency": lambda m, x, t: A.meta_saliency(m, x, t, lr=0.1, layer="relu1"),
    "adversarial": lambda m, x, t: A.adversarial_locations(m, x, t, lr=0.1, layer="relu1"),
    "class_sensitivity": lambda m, x, t: A.class_sensitivity(m, x, A.normgrad,
                                                             layer="relu1"),
}


def assert_same(before, after):
    for key in ("training", "inplace", "requires_grad", "hooks"):
        assert before[key] == after[key], key
    for (n, g0), (_, g1) in zip(before["grad"], after["grad"]):
        assert (g0 is None) == (g1 is None) and (g0 is None or torch.equal(g0, g1)), n
    for k, v in before["params"].items():
        assert torch.equal(v, after["params"][k]), k


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_leaves_model_as_found(name):
    m = messy_net()
    x = torch.rand(2, 3, 8, 8)
    before = A.model_state(m)
    METHODS[name](m, x, [0, 2])
    assert_same(before, A.model_state(m))


class Boom(RuntimeError):
    pass


def exploding(out):
    raise Boom("reward failed")


@pytest.mark.parametrize("name", sorted(set(METHODS) - {"invert_features",
                                                        "class_sensitivity"}))
def test_method_leaves_model_as_found_on_exception(name):
    m = messy_net()
    x = torch.rand(2, 3, 8, 8)
    before = A.model_state(m)
    if name in ("meta_saliency", "adversarial"):
        # the failure happens inside the explained method, after the weights moved
        def bad(model, inp, target, **kw):
            raise Boom("method failed")
        with pytest.raises(Boom):
            A.meta_saliency(m, x, [0, 2], lr=0.5, method=bad)
    else:
        with pytest.raises(Boom):
            METHODS[name](m, x, exploding)
    assert_same(before, A.model_state(m))
