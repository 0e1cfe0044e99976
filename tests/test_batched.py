"""cvbook.core.batched: eval_mode restores every module's mode even on error;
batched_forward equals one big forward."""

import pytest
import torch

from cvbook.core.batched import batched_forward, eval_mode


def _net():
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6),
                               torch.nn.Dropout(0.3), torch.nn.Linear(6, 2))


@pytest.mark.parametrize("n", [1, 3, 10])
def test_batched_forward_equals_one_forward(device, n):
    net = _net().to(device)
    x = torch.randn(n, 4, device=device)
    net.eval()
    ref = net(x)
    net.train()
    out = batched_forward(net, x, batch_size=3)
    torch.testing.assert_close(out, ref)
    assert net.training and not out.requires_grad


def test_structured_outputs_and_fn():
    net = _net()
    x, y = torch.randn(5, 4), torch.randn(5, 2)
    tup = batched_forward(net, x, y, batch_size=2, fn=lambda a, b: (net(a), b * 2))
    assert isinstance(tup, tuple) and torch.equal(tup[1], y * 2)
    d = batched_forward(net, x, batch_size=2, fn=lambda a: {"z": net(a)})
    assert d["z"].shape == (5, 2)


def test_mode_restored_even_on_error_and_per_module():
    net = _net().train()
    net[1].eval()  # a frozen BatchNorm inside a training model stays frozen

    def boom(a):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        batched_forward(net, torch.randn(3, 4), fn=boom)
    assert net.training and not net[1].training and net[0].training
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert net.training and not net[1].training


def test_bad_inputs():
    net = _net()
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        batched_forward(net, torch.randn(3, 4), batch_size=0)
    with pytest.raises(ValueError, match=r"inputs\[1\] must have N = 3 rows"):
        batched_forward(net, torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="empty"):
        batched_forward(net, torch.randn(0, 4))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        with eval_mode("net"):
            pass
