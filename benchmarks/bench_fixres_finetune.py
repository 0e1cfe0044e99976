"""FixRes fine-tuning: the cached path (the frozen trunk run once per resolution, the epochs
on the head alone; :func:`cvbook.fixres.fixres_finetune` with ``cached=True``) against the
plain loop that runs the whole network every epoch, as the official code does. Both compute
the same thing (``tests/test_fixres.py``); the ratio is the speed-up that lets chapter 03
fine-tune at every resolution of its sweep.

    python benchmarks/bench_fixres_finetune.py [--k 32] [--epochs 10] [--n 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from cvbook import fixres


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = dataclasses.replace(fixres.PRESETS["cpu"], n_train=args.n, n_test=200)
    src = fixres.build_source(cfg, seed=0)
    model = fixres.build_model(cfg, src.num_classes).eval()
    times = {}
    for cached in (False, True):
        t = time.perf_counter()
        fixres.fixres_finetune(model, src, args.k, epochs=args.epochs, lr=cfg.finetune_lr,
                               cached=cached, progress=False)
        times[cached] = time.perf_counter() - t
    print(f"cpu: fine-tune at {args.k}px, {args.epochs} epochs of {args.n} images: plain loop "
          f"{times[False]:.1f} s, cached trunk {times[True]:.1f} s, "
          f"ratio {times[False] / times[True]:.1f}x")


if __name__ == "__main__":
    main()
