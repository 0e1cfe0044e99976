"""Generation rate of the scenes world (images per second), vectorised vs one image at a
time, at 64 and 128 px, on the CPU (and on CUDA when available).

    python benchmarks/bench_scenes.py [--n 512] [--threads 2]

Prints one line per (device, size): images/s batched, images/s one at a time, and the
ratio. A script, not a timed test: timings depend on the machine.
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_time

from cvbook.data.scenes import SceneConfig, make_scenes


def rate(fn, n: int, device: torch.device, repeats: int = 3) -> float:
    return n / best_time(fn, device, repeats=repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=512, help="images per measurement")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"{'device':6} {'size':>5} {'batched img/s':>14} {'loop img/s':>11} {'ratio':>6}")
    for dev in devices:
        for size in (64, 128):
            cfg = SceneConfig(image_size=size)
            n = args.n if dev.type == "cuda" else max(64, args.n // (size // 64) ** 2)
            batched = rate(lambda: make_scenes(n, cfg, seed=0, device=dev), n, dev)
            m = min(n, 64)
            g = torch.Generator(device=dev).manual_seed(0)
            loop = rate(lambda: [make_scenes(1, cfg, generator=g, device=dev) for _ in range(m)],
                        m, dev)
            print(f"{dev.type:6} {size:5d} {batched:14.0f} {loop:11.0f} {batched / loop:6.1f}")


if __name__ == "__main__":
    main()
