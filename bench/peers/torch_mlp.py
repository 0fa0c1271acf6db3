"""PyTorch CPU eager peer of bench/mlp.bench.ts: one training step of a
256 -> 1024 (ReLU) -> 256 MLP, batch 256, MSE loss, plain SGD (lr 0.01).

Prints one JSON object: {"threads", "ms_median", "ms_best", "steps", "samples", "ms_samples",
"torch", "loss0", "loss_last"} (ms per step; each sample times `steps` steps in a row).
Run with Debian's /usr/bin/python3 (python3-torch 1.13 + OpenBLAS), not a pyenv python3.
"""
import argparse
import json
import sys
import time

import peer_common
from peer_common import blas_gflops, load_torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--din", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--samples", type=int, default=7)
    ap.add_argument("--sample-ms", type=float, default=300.0)
    a = ap.parse_args()

    torch = load_torch(a.threads)
    model = torch.nn.Sequential(
        torch.nn.Linear(a.din, a.hidden), torch.nn.ReLU(), torch.nn.Linear(a.hidden, a.din)
    )
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    x = torch.randn(a.batch, a.din)
    y = torch.randn(a.batch, a.din)
    loss_fn = torch.nn.MSELoss()

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    loss0 = float(step())  # warm-up (allocator, first BLAS calls)
    t0 = time.perf_counter()
    step()
    one = max(time.perf_counter() - t0, 1e-5)
    iters = max(1, min(2000, round(a.sample_ms / 1000 / one)))
    per = []
    last = None
    for _ in range(a.samples):
        t0 = time.perf_counter()
        for _ in range(iters):
            last = step()
        per.append((time.perf_counter() - t0) / iters * 1000)
    per.sort()
    json.dump(
        {
            "threads": a.threads,
            "ms_median": per[len(per) // 2],
            "ms_best": per[0],
            "steps": iters,
            "samples": a.samples,
            "ms_samples": per,
            "torch": torch.__version__,
            "blas_note": peer_common.BLAS_NOTE,
            "blas_gflops": blas_gflops(torch),
            "loss0": loss0,
            "loss_last": float(last),
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
