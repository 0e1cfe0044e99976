"""Generation rate of the faces world and of DVE's pairs (images per second), batched vs
one image at a time, at 64 px (the default preset) and 128 px, on the CPU (and on CUDA
when available).

    python benchmarks/bench_faces.py [--n 256] [--threads 2]

Prints one line per (device, size, what): images/s batched, images/s one at a time, and
the ratio. "pairs" is faces plus :func:`cvbook.data.pairs.warped_pairs` (two TPS warps
and two jitters per face). A script, not a timed test: timings depend on the machine.
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_time

from cvbook.data.faces import FaceConfig, FaceWorld
from cvbook.data.pairs import PairConfig, warped_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=256, help="images per measurement")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"{'device':6} {'size':>5} {'what':>6} {'batched img/s':>14} {'loop img/s':>11} "
          f"{'ratio':>6}")
    for dev in devices:
        for size in (64, 128):
            world = FaceWorld(2000, 300, config=FaceConfig(image_size=size), device=dev)
            pcfg = PairConfig(crop=size // 8)
            n = args.n if dev.type == "cuda" else max(32, args.n // (size // 64) ** 2)
            g = torch.Generator(device=dev).manual_seed(0)

            def faces(k: int):
                return world.sample(k, "train", generator=g)

            def pairs(k: int):
                f = faces(k)
                return warped_pairs(f.images, f.landmarks, config=pcfg, generator=g)

            for what, fn in (("faces", faces), ("pairs", pairs)):
                batched = n / best_time(lambda fn=fn: fn(n), dev)
                m = min(n, 32)
                loop = m / best_time(lambda fn=fn: [fn(1) for _ in range(m)], dev,
                                     repeats=1)
                print(f"{dev.type:6} {size:5d} {what:>6} {batched:14.0f} {loop:11.0f} "
                      f"{batched / loop:6.1f}", flush=True)


if __name__ == "__main__":
    main()
