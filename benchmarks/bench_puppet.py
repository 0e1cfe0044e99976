"""Generation rate of the puppet world (not a test: run it by hand).

    python benchmarks/bench_puppet.py [--device cpu] [--n 20000] [--threads 2]

Reports poses/s (identity + prior + forward kinematics), frames/s of the full keypoint
pipeline (cameras, projection, self-occlusion, random occlusion, noise) and of motion
sequences, vectorised over the batch versus a naive loop that generates one sample at
a time with the same library calls, and the ratio of the two.
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_time

from cvbook.data.puppet import PuppetWorld


def _rate(fn, n: int, device: torch.device, repeats: int = 3) -> float:
    return n / best_time(fn, device, repeats=repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=20000, help="samples per vectorised call")
    ap.add_argument("--n-loop", type=int, default=200, help="samples for the naive loop")
    ap.add_argument("--frames", type=int, default=32, help="frames per motion sequence")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    world = PuppetWorld(device=device)
    gen = torch.Generator(device=device).manual_seed(0)

    def poses(n: int) -> torch.Tensor:
        ident = world.sample_identities(n, generator=gen)
        return world.forward_kinematics(world.sample_angles(n, generator=gen),
                                        ident.bone_lengths).joints

    def frames(n: int) -> torch.Tensor:
        return world.sample_keypoints(n, generator=gen, occlusion=0.2, noise=0.01).keypoints

    def sequences(n_seq: int) -> torch.Tensor:
        ident = world.sample_identities(n_seq, generator=gen)
        angles, root = world.sample_sequences(n_seq, args.frames, generator=gen)
        return world.forward_kinematics(angles, ident.bone_lengths[:, None], root).joints

    rows = []
    for name, fn in (("poses", poses), ("frames (keypoint pipeline)", frames)):
        vec = _rate(lambda fn=fn: fn(args.n), args.n, device)
        loop = _rate(lambda fn=fn: [fn(1) for _ in range(args.n_loop)], args.n_loop, device,
                     repeats=1)
        rows.append((name, vec, loop))
    n_seq = max(1, args.n // args.frames)
    vec = _rate(lambda: sequences(n_seq), n_seq * args.frames, device)
    loop = _rate(lambda: [sequences(1) for _ in range(max(1, args.n_loop // args.frames))],
                 max(1, args.n_loop // args.frames) * args.frames, device, repeats=1)
    rows.append((f"sequence frames ({args.frames}/seq)", vec, loop))

    print(f"puppet world on {device} ({torch.get_num_threads()} threads), "
          f"{world.num_joints} joints")
    print(f"{'what':<30}{'vectorised /s':>16}{'per-sample loop /s':>20}{'ratio':>9}")
    for name, vec, loop in rows:
        print(f"{name:<30}{vec:>16,.0f}{loop:>20,.0f}{vec / loop:>8.0f}x")


if __name__ == "__main__":
    main()
