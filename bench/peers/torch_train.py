"""PyTorch CPU eager peer of bench/train.bench.ts: full Time-MoE training steps of the
identical model (scripts/golden/timemoe_ref.py TimeMoeRef + loss_terms) with AdamW and
global-norm clipping, on a random batch of the same shape as ours.

One step = zero_grad, forward + loss terms (Huber heads, pooled aux, z), backward,
clip_grad_norm_, AdamW.step, and reading the loss (float), like our Trainer.step.
Weight decay on weights only (not norms / biases), as src/optim/adamw.ts.

Prints one JSON object: {"threads", "ms_samples" (ms per step, one per timed step), "cpu_ms_samples"
(process CPU time per step, all threads),
"ms_best", "ms_median", "fwd_ms", "fwd_bwd_ms", "tokens", "params", "torch", "loss"}.
Run with Debian's /usr/bin/python3 (python3-torch 1.13 + OpenBLAS) on the CPU, or with
--device cuda on a GPU machine (bench/gpu/check.sh): the same model moved to CUDA, fp32 with TF32
off (a true f32 peer of our f32 kernels), experts looped as in Time-MoE, and the device
synchronised before each step's clock is read.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "golden"))

import peer_common
from peer_common import blas_gflops, load_torch  # noqa: E402 (after the path set-up)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="TimeMoeRef config dict as JSON")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--context", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()

    torch = load_torch(a.threads)
    from timemoe_ref import TimeMoeRef, loss_terms

    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    cfg = json.loads(a.config)
    model = TimeMoeRef(cfg, device=dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    series = torch.randn(a.batch, a.context + 1, device=dev)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        terms = loss_terms(model, series)
        terms["total_loss"].backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        return float(terms["total_loss"])

    for _ in range(a.warmup):
        step()
    per = []
    cpu = []  # process CPU time (all threads) per step: the work, less exposed to a loaded machine
    loss = None
    for _ in range(a.steps):
        sync()
        t0 = time.perf_counter()
        c0 = time.process_time()
        loss = step()
        sync()
        per.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)

    # Breakdown (best of a few): forward + loss only, and forward + backward.
    def best_of(fn, n):
        ts = []
        for _ in range(n):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            ts.append((time.perf_counter() - t0) * 1000)
        return min(ts)

    def fwd():
        with torch.no_grad():
            float(loss_terms(model, series)["total_loss"])

    def fwd_bwd():
        opt.zero_grad(set_to_none=True)
        loss_terms(model, series)["total_loss"].backward()

    reps = max(1, min(3, a.steps))
    fwd_ms = best_of(fwd, reps)
    fwd_bwd_ms = best_of(fwd_bwd, reps)
    s = sorted(per)
    json.dump(
        {
            "threads": a.threads,
            "ms_samples": per,
            "cpu_ms_samples": cpu,
            "ms_best": s[0],
            "ms_median": s[len(s) // 2],
            "fwd_ms": fwd_ms,
            "fwd_bwd_ms": fwd_bwd_ms,
            "tokens": a.batch * a.context,
            "params": sum(p.numel() for p in model.parameters()),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "blas_note": peer_common.BLAS_NOTE,
            "blas_gflops": blas_gflops(torch, dev),
            "loss": loss,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
