"""DVE's dense equivariance loss in matmul form against the explicit C x HW x HW form:
time (forward + backward) and peak memory, at 48 px (the faces world), 70 px (the
paper's SmallNet crops), 96 px (the hourglass's input after the 20 px border crop of its
136 px images: a 48 x 48 grid at stride 2) and 136 px, stride 2, on the CPU.

    python benchmarks/bench_dve_loss.py [--dim 16] [--batch 1] [--threads 1] [--dve]
    python benchmarks/bench_dve_loss.py --dim 64 --sizes 96    # the full preset's hourglass

Each measurement runs in a fresh subprocess, whose peak resident memory (``ru_maxrss``)
is read before and after the loss; the difference is the loss's peak. Prints one line
per size: positions ``HW``, time and peak of each form and the ratios (naive / matmul),
all from the same run. ``--dve`` adds the descriptor exchange (an auxiliary image) to both
forms. A script, not a timed test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import torch
sys.path.insert(0, {bench!r})
from _timing import best_time
from cvbook.dve import dense_equivariance_loss, naive_dense_equivariance_loss
torch.set_num_threads({threads})
size, dim, b, form, dve = {size}, {dim}, {batch}, {form!r}, {dve}
h = size // 2
g = torch.Generator().manual_seed(0)
src = torch.randn(b, dim, h, h, generator=g, requires_grad=True)
tgt = torch.randn(b, dim, h, h, generator=g, requires_grad=True)
aux = torch.randn(b, dim, h, h, generator=g, requires_grad=True) if dve else None
grid = torch.rand(b, 2 * h, 2 * h, 2, generator=g) * size
fn = dense_equivariance_loss if form == "matmul" else naive_dense_equivariance_loss
def step():
    loss = fn(src, tgt, grid, stride=2, auxiliary=aux)
    loss.backward()
    return loss
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = best_time(step, "cpu", repeats=2, warmup=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({{"s": t, "peak_mb": peak / 1024}}))
"""


def run(size: int, form: str, args) -> dict:
    code = CHILD.format(bench=sys.path[0], threads=args.threads, size=size, dim=args.dim,
                        batch=args.batch, form=form, dve=args.dve)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dve", action="store_true", help="with the descriptor exchange")
    ap.add_argument("--sizes", type=int, nargs="+", default=[48, 70, 96, 136])
    args = ap.parse_args()
    print(f"C={args.dim}, batch {args.batch}, stride 2, {args.threads} thread(s), "
          f"{'DVE' if args.dve else 'plain'} loss, forward + backward")
    print(f"{'size':>5} {'HW':>6} {'matmul s':>9} {'naive s':>9} {'time x':>7} "
          f"{'matmul MB':>10} {'naive MB':>9} {'memory x':>9}")
    for size in args.sizes:
        fast, slow = run(size, "matmul", args), run(size, "naive", args)
        hw = (size // 2) ** 2
        print(f"{size:5d} {hw:6d} {fast['s']:9.3f} {slow['s']:9.3f} "
              f"{slow['s'] / fast['s']:7.1f} {fast['peak_mb']:10.1f} {slow['peak_mb']:9.1f} "
              f"{slow['peak_mb'] / max(fast['peak_mb'], 0.1):9.1f}", flush=True)


if __name__ == "__main__":
    main()
