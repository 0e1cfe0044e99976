"""Constrained k-means (DTC §3.3): the batched torch version in :mod:`cvbook.cluster` vs
a naive reference that loops over restarts and over points, on the CPU (and on CUDA when
available); and plain k-means against scikit-learn's ``KMeans`` (same restarts and
iterations, Lloyd's algorithm).

    python benchmarks/bench_dtc.py [--n 600] [--d 16] [--k 10] [--threads 2]

Both run the same Lloyd steps from the same k-means++ seeding (the naive one is checked
to give the same labels). Prints seconds per call for each and the ratio. A script, not
a timed test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import torch
from _timing import best_time

from cvbook.cluster import constrained_kmeans, kmeans_pp_init


def naive_constrained_kmeans(x: torch.Tensor, k: int, fixed: torch.Tensor, centres: torch.Tensor,
                             n_iter: int, exclusive: bool) -> torch.Tensor:
    """Reference: one restart at a time, one point at a time (what the vectorised code
    replaces). ``centres``: ``(R, k, D)`` initial centres. Returns ``(R, N)`` labels."""
    a = int(fixed.max()) + 1
    out = []
    for r in range(centres.shape[0]):
        c = centres[r].clone()
        lab = fixed.clone()
        for _ in range(n_iter + 1):
            for i in range(x.shape[0]):  # assignment, point by point
                if fixed[i] >= 0:
                    continue
                best, best_d = -1, float("inf")
                for j in range(a if exclusive else 0, k):
                    dist = float(((x[i] - c[j]) ** 2).sum())
                    if dist < best_d:
                        best, best_d = j, dist
                lab[i] = best
            if _ == n_iter:
                break
            for j in range(k):  # update, cluster by cluster
                m = lab == j
                if bool(m.any()):
                    c[j] = x[m].mean(0)
        out.append(lab)
    return torch.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=600, help="points")
    ap.add_argument("--d", type=int, default=16, help="feature dimension")
    ap.add_argument("--k", type=int, default=10, help="clusters (the first 3 are anchors)")
    ap.add_argument("--n-init", type=int, default=3)
    ap.add_argument("--n-iter", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.d, generator=g, dtype=torch.float64)
    x[: args.n // 4] += 3.0
    fixed = torch.full((args.n,), -1, dtype=torch.int64)
    fixed[: args.n // 4] = torch.arange(args.n // 4) % 3          # three anchor classes
    for dev in devices:
        xd, fd = x.to(dev), fixed.to(dev)

        def fast():
            return constrained_kmeans(xd, args.k, fd, n_iter=args.n_iter,
                                          n_init=args.n_init, exclusive=True,
                                          generator=torch.Generator(dev).manual_seed(1))

        fast()  # warm-up
        t_fast = best_time(fast, dev, repeats=3, warmup=False)
        # the naive loop from the same k-means++ seeding, on the CPU (it is Python-bound)
        anchor_c = torch.stack([x[fixed == a].mean(0) for a in range(3)])
        init = kmeans_pp_init(x, args.k - 3,
                              centres=anchor_c[None].expand(args.n_init, -1, -1).contiguous(),
                              weight=(fixed < 0).double(),
                              generator=torch.Generator().manual_seed(1))
        t0 = time.perf_counter()
        slow = naive_constrained_kmeans(x, args.k, fixed, init, args.n_iter, True)
        t_slow = time.perf_counter() - t0
        # the same restarts, vectorised, from the same seeding: labels agree
        lab_fast = constrained_kmeans(x, args.k, fixed, n_iter=args.n_iter,
                                          n_init=args.n_init, exclusive=True,
                                          generator=torch.Generator().manual_seed(1))[0]
        same = any(bool((lab_fast == s).all()) for s in slow)
        print(f"{dev.type:4s} N={args.n} D={args.d} k={args.k} restarts={args.n_init} "
              f"iters={args.n_iter}: vectorised {t_fast * 1e3:8.1f} ms, naive loop "
              f"{t_slow * 1e3:9.1f} ms, ratio {t_slow / t_fast:7.1f}x, "
              f"best restart found by the naive loop too: {same}")
        # plain k-means: ours (batched restarts, fixed iterations) vs scikit-learn's
        from sklearn.cluster import KMeans

        def ours_plain():
            return constrained_kmeans(xd, args.k, n_iter=args.n_iter, n_init=args.n_init,
                                      generator=torch.Generator(dev).manual_seed(1))

        ours_plain()
        t_ours = best_time(ours_plain, dev, repeats=3, warmup=False)
        xn = x.numpy()
        km = KMeans(args.k, n_init=args.n_init, max_iter=args.n_iter, tol=0.0,
                    algorithm="lloyd", random_state=0)
        t0 = time.perf_counter()
        km.fit(xn)
        t_sk = time.perf_counter() - t0
        print(f"{dev.type:4s} plain k-means: ours {t_ours * 1e3:8.1f} ms, scikit-learn "
              f"{t_sk * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
