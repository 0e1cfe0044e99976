"""Tests of cvbook.core: seeding, devices, presets, fit, checkpoints, results sidecars."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from cvbook.core import (
    Results,
    autocast,
    fit,
    get_device,
    load_all_results,
    load_checkpoint,
    results_table,
    save_checkpoint,
    seed_everything,
    select_preset,
    sha256_file,
)
from cvbook.core.notebook import start
from cvbook.core.results import validate_sidecar
from cvbook.core.validate import check_choice, check_float, check_int, check_range, check_tensor


# ----------------------------------------------------------------------------- seeding
def test_seed_everything_reproduces_all_generators():
    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))  # noqa: NPY002 (the legacy global is seeded too)
    seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))  # noqa: NPY002
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("bad,err", [(-1, ValueError), (1.5, TypeError), ("0", TypeError),
                                     (True, TypeError)])
def test_seed_everything_rejects_bad_seed(bad, err):
    with pytest.raises(err, match="seed"):
        seed_everything(bad)


def test_seed_everything_rejects_bad_threads():
    with pytest.raises(ValueError, match="threads"):
        seed_everything(0, threads=0)


# ----------------------------------------------------------------------------- devices
def test_get_device_auto_and_cpu():
    assert get_device("cpu").type == "cpu"
    assert get_device("auto").type in ("cpu", "cuda", "mps")


@pytest.mark.parametrize("bad", ["tpu", "gpu0", 3])
def test_get_device_rejects_unknown(bad):
    with pytest.raises((ValueError, TypeError), match="device"):
        get_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_get_device_cuda_unavailable_is_clear():
    with pytest.raises(ValueError, match="CUDA is not available"):
        get_device("cuda")


def test_autocast_is_noop_on_cpu():
    with autocast("cpu", enabled=True):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


# ----------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class _Cfg:
    epochs: int = 3
    lr: float = 0.1
    name: str = "a"
    ks: tuple[int, ...] = (1, 2)
    opt: int | None = None

    def validate(self):
        check_int(self.epochs, "epochs", min_value=1)


PRESETS = {"cpu": _Cfg(), "full": _Cfg(epochs=90)}


def test_select_preset_applies_overrides_and_keeps_none():
    cfg = select_preset(PRESETS, "full", lr=1, epochs=None, opt=4)
    assert cfg == _Cfg(epochs=90, lr=1.0, opt=4)
    assert isinstance(cfg.lr, float)


def test_select_preset_unknown_name_lists_valid():
    with pytest.raises(ValueError, match="valid presets: cpu, full"):
        select_preset(PRESETS, "gpu")


def test_select_preset_unknown_parameter_lists_valid():
    with pytest.raises(ValueError, match="unknown parameter 'epoch'.*valid parameters: epochs"):
        select_preset(PRESETS, "cpu", epoch=3)


@pytest.mark.parametrize("kw", [dict(epochs=1.5), dict(lr="fast"), dict(name=3),
                                dict(ks=5), dict(epochs=True)])
def test_select_preset_type_errors(kw):
    with pytest.raises(TypeError, match="parameter"):
        select_preset(PRESETS, "cpu", **kw)


def test_select_preset_runs_validate():
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        select_preset(PRESETS, "cpu", epochs=0)


# ----------------------------------------------------------------------------- validators
def test_validators():
    assert check_int(3, "x", min_value=1) == 3
    assert check_float(2, "x") == 2.0
    assert check_range((0.1, 0.5), "r", low=0, high=1) == (0.1, 0.5)
    with pytest.raises(ValueError, match="r must satisfy"):
        check_range((0.6, 0.5), "r", low=0, high=1)
    with pytest.raises(ValueError, match="x must be > 0"):
        check_float(0.0, "x", min_value=0, open_min=True)
    with pytest.raises(ValueError, match="NaN"):
        check_float(float("nan"), "x")
    with pytest.raises(ValueError, match=r"shape \(\*, 3\)"):
        check_tensor(torch.zeros(2, 4), "t", shape=(None, 3))
    with pytest.raises(TypeError, match="floating"):
        check_tensor(torch.zeros(2, dtype=torch.long), "t", floating=True)
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_tensor([1, 2], "t")
    with pytest.raises(ValueError, match="one of"):
        check_choice("x", "c", ("a", "b"))


# ----------------------------------------------------------------------------- fit
def _regression_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3


def _mse(net, batch):
    x, y = batch
    loss = ((net(x) - y) ** 2).mean()
    return loss, {"mae": (net(x) - y).abs().mean()}


def test_fit_converges_and_records_history():
    torch.manual_seed(0)
    x, y = _regression_data()
    model = nn.Linear(3, 1)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    hist = fit(model, batches, _mse, torch.optim.SGD(model.parameters(), lr=0.1), epochs=30,
               progress=False)
    assert len(hist) == 30 and len(hist.metrics["mae"]) == 30
    assert hist.loss[-1] < 1e-4 < hist.loss[0]
    assert torch.allclose(model.weight, torch.tensor([[1.0, -2.0, 0.5]]), atol=1e-2)


def test_fit_matches_a_hand_written_loop():
    x, y = _regression_data()
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    torch.manual_seed(1)
    a = nn.Linear(3, 1)
    b = nn.Linear(3, 1)
    b.load_state_dict(a.state_dict())
    fit(a, batches, lambda n, bt: ((n(bt[0]) - bt[1]) ** 2).mean(),
        torch.optim.SGD(a.parameters(), lr=0.05, momentum=0.9), epochs=3, progress=False)
    opt = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        for xb, yb in batches:
            opt.zero_grad()
            ((b(xb) - yb) ** 2).mean().backward()
            opt.step()
    assert torch.allclose(a.weight, b.weight, atol=1e-6)


def test_fit_callable_data_scheduler_and_set_mode():
    x, y = _regression_data()
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    modes = []

    def set_mode(m):
        m.eval()
        modes.append(m.training)

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    fit(model, lambda epoch: [(x, y)], lambda n, b: ((n(b[0]) - b[1]) ** 2).mean(), opt,
        epochs=2, scheduler=sched, progress=False, set_mode=set_mode)
    assert modes == [False, False]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.025)


def test_fit_rejects_bad_input():
    m = nn.Linear(3, 1)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x, y = _regression_data()
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        fit(m, [(x, y)], _mse, opt, epochs=0)
    with pytest.raises(TypeError, match="model must be"):
        fit("net", [(x, y)], _mse, opt, epochs=1)
    with pytest.raises(TypeError, match="optimizer must be"):
        fit(m, [(x, y)], _mse, "sgd", epochs=1)
    with pytest.raises(TypeError, match="scalar tensor"):
        fit(m, [(x, y)], lambda n, b: n(b[0]) - b[1], opt, epochs=1, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        fit(m, [], _mse, opt, epochs=1, progress=False)
    with pytest.raises(ValueError, match="scheduler_step"):
        fit(m, [(x, y)], _mse, opt, epochs=1, scheduler_step="batch")


DDP_SCRIPT = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler
    from cvbook.core.train import fit, init_distributed
    rank, world = init_distributed("gloo")
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g); y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    ds = TensorDataset(x, y)
    sampler = DistributedSampler(ds, shuffle=False) if world > 1 else None
    per_rank = 32 // world
    loader = DataLoader(ds, batch_size=per_rank, sampler=sampler, shuffle=False)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hist = fit(model, loader, lambda n, b: ((n(b[0]) - b[1]) ** 2).mean(), opt, epochs=3,
               progress=False)
    if rank == 0:
        torch.save({"w": model.weight.detach(), "loss": hist.loss}, sys.argv[1])
    if world > 1:
        dist.destroy_process_group()
""")


def test_fit_under_torchrun_ddp_matches_single_process(tmp_path):
    """Two gloo processes on the CPU, each with half of every batch, take exactly the
    steps of one process on whole batches (DDP averages the gradients)."""
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT)
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    import os

    env.update({k: v for k, v in os.environ.items() if k.startswith(("PYTHON", "VIRTUAL"))})
    # DistributedSampler(shuffle=False) gives rank r the indices r, r+2, ...; with 16 per
    # rank, a step's two half-batches together are exactly the single process's batch of
    # 32, and DDP's gradient average equals the whole batch's mean gradient.
    single = tmp_path / "single.pt"
    subprocess.run([sys.executable, str(script), str(single)], check=True, env=env,
                   timeout=120)
    ddp = tmp_path / "ddp.pt"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                    "--master_port=29533", str(script), str(ddp)], check=True, env=env,
                   timeout=240, capture_output=True)
    a, b = torch.load(single), torch.load(ddp)
    assert len(b["loss"]) == 3
    assert torch.allclose(a["w"], b["w"], atol=1e-6), (a["w"], b["w"])
    assert np.allclose(a["loss"], b["loss"], rtol=1e-5)
    assert b["loss"][-1] < b["loss"][0]


# ----------------------------------------------------------------------------- checkpoints
def test_checkpoint_roundtrip_and_hash(tmp_path):
    sd = nn.Linear(3, 2).state_dict()
    path = tmp_path / "w.pt"
    digest = save_checkpoint(path, dict(sd), meta={"seed": 0, "acc": 0.9})
    assert digest == sha256_file(path)
    side = json.loads((tmp_path / "w.pt.json").read_text())
    assert side["sha256"] == digest and side["seed"] == 0
    out = load_checkpoint(path)
    assert all(torch.equal(out[k], sd[k]) for k in sd)


def test_checkpoint_detects_corruption(tmp_path):
    path = tmp_path / "w.pt"
    save_checkpoint(path, {"w": torch.ones(3)})
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="state_dict"):
        save_checkpoint(tmp_path / "x.pt", [1, 2])


def test_checkpoint_refuses_arbitrary_objects(tmp_path):
    """weights_only=True: a pickled arbitrary object is refused, not executed."""
    path = tmp_path / "evil.pt"
    torch.save({"obj": _Cfg()}, path)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_checkpoint(path)


# ----------------------------------------------------------------------------- results
def test_results_sidecar_schema_roundtrip(tmp_path):
    r = Results("99_demo", preset="cpu", seed=0)
    r.metric("acc", torch.tensor(0.5))
    r.metric("n", np.int64(3))
    assert r.claim("acc is positive", torch.tensor(True), "acc=0.5") is True
    r.claim("acc is positive", False, "recomputed")  # same claim: replaced, not duplicated
    r.paper_number("top-1", 79.0, "Table 1")
    path = r.write(tmp_path)
    data = json.loads(path.read_text())
    assert validate_sidecar(data) == data
    assert data["metrics"] == {"acc": 0.5, "n": 3}
    assert data["claims"] == [{"claim": "acc is positive", "holds": False,
                               "evidence": "recomputed"}]
    assert set(data["versions"]) == {"cvbook", "torch", "python"}
    assert load_all_results(tmp_path)[0]["chapter"] == "99_demo"
    table = results_table(tmp_path)
    assert "acc is positive" in table and "**no**" in table and "Table 1" in table


def test_results_not_reproduced_is_listed_not_claimed(tmp_path):
    r = Results("99_demo", preset="cpu", seed=0)
    r.claim("mean error below 0.01", True, "0.009")
    r.record_not_reproduced("every mask within 0.01", "max error 0.024")
    r.record_not_reproduced("every mask within 0.01", "max error 0.022")  # replaced
    data = json.loads(r.write(tmp_path).read_text())
    assert data["not_reproduced"] == [{"finding": "every mask within 0.01",
                                       "evidence": "max error 0.022"}]
    assert [c["claim"] for c in data["claims"]] == ["mean error below 0.01"]
    table = results_table(tmp_path)
    assert "every mask within 0.01 | not reproduced | max error 0.022" in table
    with pytest.raises(ValueError, match="evidence"):
        r.record_not_reproduced("x", "")
    data["not_reproduced"] = [{"finding": "x"}]
    (tmp_path / "99_demo.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not_reproduced"):
        load_all_results(tmp_path)


def test_results_reject_bad_values(tmp_path):
    r = Results("99_demo", preset="cpu", seed=0)
    with pytest.raises(ValueError, match="not finite"):
        r.metric("x", float("nan"))
    with pytest.raises(TypeError, match="number"):
        r.metric("x", "high")
    with pytest.raises(ValueError, match="scalar"):
        r.metric("x", torch.zeros(3))
    with pytest.raises(ValueError, match="non-empty"):
        r.claim("", True, "")
    with pytest.raises(ValueError, match="chapter"):
        Results("", preset="cpu", seed=0)
    (tmp_path / "bad.json").write_text(json.dumps({"chapter": "x"}))
    with pytest.raises(ValueError, match="lacks keys"):
        load_all_results(tmp_path)


def test_start_sets_up_a_session(tmp_path, monkeypatch):
    monkeypatch.setenv("CVBOOK_RESULTS_DIR", str(tmp_path))
    s = start("99_demo", preset="cpu", seed=5, device="cpu")
    assert s.device.type == "cpu" and s.seed == 5 and s.results.seed == 5
    assert s.results.write().parent == tmp_path


# --- cvbook.core.validate: named dimensions that bind across arguments -------------------

def test_shapes_bind_across_arguments_with_one_wording():
    from cvbook.core.validate import Shapes

    s = Shapes()
    s.check(torch.zeros(4, 8), "z", "N D")
    with pytest.raises(ValueError, match=r"^centres must have shape \(K, D\) with D = 8 as in "
                                         r"z \(N, D\); got \(5, 7\)$"):
        s.check(torch.zeros(5, 7), "centres", "K D")
    s.check(torch.zeros(3, 8), "centres", "K D")
    assert (s["N"], s["K"], s["D"]) == (4, 3, 8)


def test_shapes_rank_fixed_sizes_ellipsis_and_types():
    from cvbook.core.validate import Shapes, check_tensor

    with pytest.raises(ValueError, match=r"y must have shape \(N, K, 2\) \(3 dimensions\); "
                                         r"got \(4, 2\)"):
        Shapes().check(torch.zeros(4, 2), "y", "N K 2")
    with pytest.raises(ValueError, match=r"must have shape \(N, K, 2\); got \(4, 5, 3\)"):
        Shapes().check(torch.zeros(4, 5, 3), "y", "N K 2")
    s = Shapes()
    s.check(torch.zeros(2, 6, 17, 3), "pred", "... K 3")
    s.check(torch.zeros(2, 6, 17, 3), "gt", "... K 3")
    with pytest.raises(ValueError, match=r"with \.\.\. = \(2, 6\) as in pred"):
        s.check(torch.zeros(2, 5, 17, 3), "gt2", "... K 3")
    with pytest.raises(ValueError, match=r"K = 17 as in the model"):
        Shapes(K=17).check(torch.zeros(4, 19, 2), "y", "N K 2")
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        Shapes().check([1, 2], "x", "N")
    with pytest.raises(TypeError, match="floating-point"):
        check_tensor(torch.zeros(3, dtype=torch.long), "x", shape="N", floating=True)
    # a failed check binds nothing
    s = Shapes()
    with pytest.raises(ValueError):
        s.check(torch.zeros(4, 3), "a", "N 2")
    assert s.get("N") is None
    with pytest.raises(ValueError, match="may only lead"):
        Shapes().check(torch.zeros(3), "x", "N ...")
