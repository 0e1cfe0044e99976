"""A short training probe for DVE on the faces world (CPU, about a minute per model on 2
idle cores): the loss falls, and the matching errors on held-out identities are printed
beside the no-matching baseline.

    python benchmarks/probe_dve_training.py [--steps 120] [--batch 8] [--dims 16] [--seed 0]

Trains SmallNet with and without DVE for each ``--dims`` value and prints the loss at
the start and end (mean of the first / last 10 steps), the mean same / different
identity matching error (pixels) on 256 test faces, and the %IOD of the landmark
regressor (fit on 512 training faces' frozen descriptors, tested on 256 test faces). A
script, not a test: numbers depend on the machine, and a probe is far from the converged
models the chapter reports. On a shared machine pass ``--threads 1``.
"""

from __future__ import annotations

import argparse
import time

import torch

from cvbook.data.faces import FaceWorld
from cvbook.data.pairs import PairConfig
from cvbook.dve import SmallNet, evaluate_landmarks, evaluate_matching, train_descriptor

#: Milder warps than DVE's 100 px CelebA crops (the world already jitters the pose).
PROBE_PAIRS = PairConfig(rotation=8.0, scale=0.08, translation=0.08, sigma=0.005,
                         sigma_large=0.02, crop=8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--batch", type=int, default=8, help="pairs per step")
    ap.add_argument("--dims", type=int, nargs="+", default=[16])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    world = FaceWorld(2000, 300, seed=args.seed)
    print(f"{'C':>3} {'DVE':>4} {'loss start':>10} {'loss end':>9} {'same px':>8} "
          f"{'diff px':>8} {'%IOD':>5} {'s':>5}")
    for dim in args.dims:
        for dve in (False, True):
            torch.manual_seed(args.seed)
            g = torch.Generator().manual_seed(args.seed)
            net = SmallNet(dim)
            t = time.perf_counter()
            hist = train_descriptor(net, world, steps=args.steps, batch_size=args.batch,
                                    dve=dve, pairs=PROBE_PAIRS, generator=g)
            ev = evaluate_matching(net, world, n=256, pairs=PROBE_PAIRS,
                                   generator=torch.Generator().manual_seed(1000 + args.seed))
            lm = evaluate_landmarks(net, world, n_train=512, n_test=256, pairs=PROBE_PAIRS,
                                    generator=torch.Generator().manual_seed(2000 + args.seed))
            dt = time.perf_counter() - t
            start, end = sum(hist[:10]) / 10, sum(hist[-10:]) / 10
            print(f"{dim:3d} {str(dve):>4} {start:10.3f} {end:9.3f} "
                  f"{ev['same'].mean():8.2f} {ev['different'].mean():8.2f} "
                  f"{lm['iod'].mean():5.2f} {dt:5.0f}",
                  flush=True)
    print(f"no matching: same {ev['none_same'].mean():.2f} px, "
          f"different {ev['none_different'].mean():.2f} px; mean-shape %IOD "
          f"{lm['iod_mean_shape'].mean():.2f}")


if __name__ == "__main__":
    main()
