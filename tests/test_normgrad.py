"""Batched meta-saliency (chapter 02): the vmapped fast path equals the one-image-at-a-time
definition (step, explain, restore) for every method it covers, each image gets its own
step, and the model (weights, batch-norm statistics, flags) is left exactly as found."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cvbook.attribution as A
from cvbook.nn import SceneCNN


def scene_net() -> nn.Module:
    torch.manual_seed(0)
    m = SceneCNN(num_classes=4, width=4)
    with torch.no_grad():  # non-trivial batch-norm statistics
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


@pytest.fixture
def x():
    # continuous random images: no exact ties in the max-pools, whose gradient routing
    # would otherwise depend on rounding (and so on the batch size)
    return torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(3))


TARGETS = torch.tensor([0, 1, 2, 3, 1])


def one_at_a_time(method):
    """The same method behind a lambda: meta_saliency cannot batch it and falls back to
    the reference loop (one image: step, explain, restore)."""
    return lambda m, xx, t, **kw: method(m, xx, t, **kw)


CASES = {
    "normgrad": (A.normgrad, dict(layer="features.relu2")),
    "selective": (A.normgrad, dict(layer="features.relu3", variant="selective")),
    "proper": (A.normgrad, dict(layer="features.conv4", variant="proper")),
    "resized": (A.normgrad, dict(layer="features.relu3", resize=True)),
    "gradient@input": (A.gradient, {}),
    "gradcam": (A.grad_cam, dict(layer="features.relu5")),
    "linear": (A.linear_approx, dict(layer="features.relu1")),
}


@pytest.mark.parametrize("adversarial", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_meta_saliency_equals_reference_loop(case, adversarial, x):
    net = scene_net()
    method, kw = CASES[case]
    fast = A.meta_saliency(net, x, TARGETS, lr=0.05, method=method, adversarial=adversarial,
                           **kw)
    ref = A.meta_saliency(net, x, TARGETS, lr=0.05, method=one_at_a_time(method),
                          adversarial=adversarial, **kw)
    assert fast.shape == ref.shape
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-5 * ref.abs().max().item())
    plain = method(net, x, TARGETS, **kw)
    assert not torch.allclose(fast, plain, rtol=1e-3, atol=1e-6)  # the step does something


def test_each_image_gets_its_own_step(x):
    net = scene_net()
    batch = A.meta_saliency(net, x, TARGETS, lr=0.1, layer="features.relu3")
    for i in range(len(x)):
        alone = A.meta_saliency(net, x[i:i + 1], TARGETS[i:i + 1], lr=0.1,
                                layer="features.relu3")
        torch.testing.assert_close(batch[i:i + 1], alone, rtol=1e-4, atol=1e-7)


def test_chunks_and_zero_step(x):
    net = scene_net()
    whole = A.meta_saliency(net, x, TARGETS, lr=0.1, layer="features.relu2",
                            variant="selective")
    chunked = A.meta_saliency(net, x, TARGETS, lr=0.1, layer="features.relu2",
                              variant="selective", chunk_size=2)
    torch.testing.assert_close(whole, chunked, rtol=1e-5, atol=1e-8)
    zero = A.meta_saliency(net, x, TARGETS, lr=0.0, layer="features.relu2")
    torch.testing.assert_close(zero, A.normgrad(net, x, TARGETS, layer="features.relu2"),
                               rtol=1e-5, atol=1e-8)


def test_model_left_exactly_as_found_batch_norm_untouched(x):
    net = scene_net().train()          # in training mode: batch norm would update ...
    net.features.bn2.eval()
    net.fc.weight.requires_grad_(False)
    net.features.conv1.weight.grad = torch.ones_like(net.features.conv1.weight)
    before = A.model_state(net)
    A.meta_saliency(net, x, TARGETS, lr=0.1, layer="features.relu3")
    A.adversarial_locations(net, x, TARGETS, lr=0.1, layer="features.conv2",
                            variant="proper")
    A.class_sensitivity(net, x, lambda m, xx, t: A.meta_saliency(m, xx, t, lr=0.01,
                                                                  layer="features.relu1"))
    after = A.model_state(net)
    for key in ("training", "inplace", "requires_grad", "hooks"):
        assert before[key] == after[key], key
    for k, v in before["params"].items():   # weights and running statistics, bit for bit
        assert torch.equal(v, after["params"][k]), k
    assert torch.equal(net.features.conv1.weight.grad,
                       torch.ones_like(net.features.conv1.weight))


class SharedReLU(nn.Module):
    """One ReLU module called twice (the probe reports its last call) and a dense,
    fully-convolutional output (cross-entropy averaged over positions)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.body = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 6, 3, padding=1)), ("bn", nn.BatchNorm2d(6))]))
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Conv2d(6, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.conv2(self.relu(self.body(x)))))


def test_shared_module_and_dense_output(x):
    net = SharedReLU().eval()
    t = torch.tensor([0, 1, 2, 0, 1])
    for kw in (dict(layer="relu"), dict(layer="body.conv1", variant="proper")):
        fast = A.meta_saliency(net, x, t, lr=0.2, **kw)
        ref = A.meta_saliency(net, x, t, lr=0.2, method=one_at_a_time(A.normgrad), **kw)
        torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-6 * ref.abs().max().item())


def test_validation(x):
    net = scene_net()
    with pytest.raises(ValueError, match="chunk_size"):
        A.meta_saliency(net, x, TARGETS, layer="features.relu1", chunk_size=0)
    with pytest.raises(ValueError, match="class targets"):
        A.meta_saliency(net, x, lambda out: out[:, 0], layer="features.relu1")
    with pytest.raises(ValueError, match="proper"):
        A.meta_saliency(net, x, TARGETS, layer="features.relu1", variant="proper")
    with pytest.raises(ValueError, match="variant"):
        A.meta_saliency(net, x, TARGETS, layer="features.relu1", variant="nope")
    with pytest.raises(ValueError, match="not a module"):
        A.meta_saliency(net, x, TARGETS, layer="features.nope")


def test_fast_path_is_taken_for_library_methods(x, monkeypatch):
    import importlib

    N = importlib.import_module("cvbook.attribution.normgrad")  # the module, not the function
    calls = []
    real = N._meta_saliency_batched
    monkeypatch.setattr(N, "_meta_saliency_batched",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    net = scene_net()
    A.meta_saliency(net, x, TARGETS, layer="features.relu3", variant="selective")
    A.meta_saliency(net, x, TARGETS, method=A.grad_cam, layer="features.relu5")
    assert len(calls) == 2
    A.meta_saliency(net, x, TARGETS, method=one_at_a_time(A.normgrad),
                    layer="features.relu3")
    assert len(calls) == 2


def test_random_direction_control_and_stats(x):
    net = scene_net()
    st: dict = {}
    g = torch.Generator().manual_seed(0)
    rnd = A.meta_saliency(net, x, TARGETS, lr=0.01, layer="features.relu2",
                          direction="random", generator=g, stats=st)
    st_grad: dict = {}
    grd = A.meta_saliency(net, x, TARGETS, lr=0.01, layer="features.relu2", stats=st_grad)
    assert rnd.shape == grd.shape and not torch.allclose(rnd, grd)
    # the random step has the gradient step's per-tensor norms, hence its total size
    torch.testing.assert_close(st["rel_change"], st_grad["rel_change"], rtol=1e-4, atol=0)
    assert (st_grad["rel_change"] > 0).all()
    assert st["probs"].shape == (x.shape[0], net(x).shape[1])
    torch.testing.assert_close(st["probs"].sum(1), torch.ones(x.shape[0]))
    st0: dict = {}
    A.meta_saliency(net, x, TARGETS, lr=0.0, layer="features.relu2", stats=st0)
    with torch.no_grad():
        torch.testing.assert_close(st0["probs"], net(x).softmax(1), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="direction"):
        A.meta_saliency(net, x, TARGETS, layer="features.relu2", direction="up")


def test_dense_step_loss_sums_logits_over_positions():
    import importlib

    N = importlib.import_module("cvbook.attribution.normgrad")
    out = torch.randn(1, 3, 4, 5)
    c = torch.tensor(1)
    ref = F.cross_entropy(out.sum((2, 3)), c[None])        # the authors' form
    torch.testing.assert_close(N._step_loss(out, c), ref)
