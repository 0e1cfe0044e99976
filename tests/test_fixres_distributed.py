"""Under ``torchrun`` (2 CPU processes, gloo): :func:`cvbook.core.train.fit` shards a
``DataLoader`` with a ``DistributedSampler`` (disjoint shards covering the data, reshuffled
every epoch), and :func:`cvbook.fixres.topk_accuracy` shards the evaluation exactly and sums
the counts, so every process reports the single-process accuracy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from cvbook.core.train import fit, init_distributed
    from cvbook import fixres
    from cvbook.nn import ConvNet

    rank, world = init_distributed("gloo")
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(torch.arange(20.0)[:, None]), batch_size=3, shuffle=True)
    seen = {}
    lin = torch.nn.Linear(1, 1)

    def loss_fn(net, batch):
        (x,) = batch
        seen.setdefault(epoch[0], []).extend(int(v) for v in x[:, 0].tolist())
        return net(x).pow(2).mean()

    epoch = [0]
    fit(lin, loader, loss_fn, torch.optim.SGD(lin.parameters(), lr=0.0), epochs=2,
        progress=False, on_epoch_end=lambda e, h: epoch.__setitem__(0, e + 1))

    class Src:  # a folder-like source: a sequential evaluation DataLoader
        num_classes = 7
        def test_batches(self, k):
            g = torch.Generator().manual_seed(1)
            x, y = torch.rand(23, 3, k, k, generator=g), torch.randint(0, 7, (23,), generator=g)
            return DataLoader(TensorDataset(x, y), batch_size=4, shuffle=False)

    torch.manual_seed(0)
    model = ConvNet(7, widths=(4, 8))
    acc = fixres.topk_accuracy(model, Src(), 16, topk=(1, 5))
    # fixres.train under torchrun: the one-cycle schedule is sized on this process's shard
    # and runs to its end (all total_steps steps; unsharded it would stop halfway)
    made = []

    class Recorded(torch.optim.lr_scheduler.OneCycleLR):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    torch.optim.lr_scheduler.OneCycleLR = Recorded

    class TrainSrc:
        def train_batches(self, k, augment=True):
            g = torch.Generator().manual_seed(2)
            x, y = torch.rand(26, 3, k, k, generator=g), torch.randint(0, 7, (26,), generator=g)
            return DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True)

    torch.manual_seed(0)
    net = ConvNet(7, widths=(4, 8))
    fixres.train(net, TrainSrc(), 16, epochs=2, lr=0.1, progress=False)
    sched = made[0]
    schedule = {"steps": sched.last_epoch, "total": sched.total_steps}
    out = sys.argv[1]
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"world": world, "seen": seen, "acc": acc, "schedule": schedule}, f)
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fit_and_evaluation_under_torchrun(tmp_path: Path):
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent / "lib") + os.pathsep + \
        env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(script),
           str(tmp_path)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    for epoch in ("0", "1"):
        a, b = (r["seen"][epoch] for r in ranks)
        assert len(a) == len(b) == 10 and not set(a) & set(b)
        assert sorted(a + b) == list(range(20))
    assert ranks[0]["seen"]["0"] != ranks[0]["seen"]["1"]  # reshuffled with set_epoch
    # the evaluation: both processes report the single-process accuracy
    from torch.utils.data import DataLoader, TensorDataset

    from cvbook import fixres
    from cvbook.nn import ConvNet

    class Src:
        num_classes = 7

        def test_batches(self, k):
            g = torch.Generator().manual_seed(1)
            x, y = torch.rand(23, 3, k, k, generator=g), torch.randint(0, 7, (23,), generator=g)
            return DataLoader(TensorDataset(x, y), batch_size=4, shuffle=False)

    torch.manual_seed(0)
    ref = fixres.topk_accuracy(ConvNet(7, widths=(4, 8)), Src(), 16, topk=(1, 5))
    for r in ranks:
        assert {int(k): v for k, v in r["acc"].items()} == ref
    for r in ranks:  # 26 images, 2 processes, batch 4: 4 steps a process and epoch
        assert r["schedule"]["total"] == r["schedule"]["steps"] == 2 * 4
