"""PyTorch peer of the matmul sweep in bench/gpu/check.ts: torch.matmul on the same shapes.

--shapes takes a JSON list of {"name", "M", "N", "K", "transB"}; each is timed in f32 (TF32 off,
a true f32 product like ours) and f16 (tensor cores, f32 accumulation inside cuBLAS) on --device.
Timing: CUDA events around `iters` products after a warm-up, median of --samples. Inputs are
random (never zeros). Prints one JSON object: {"device", "torch", "rows": [{name, dtype, ms, gflops}]}.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common  # noqa: E402
from peer_common import load_torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--target-ms", type=float, default=50.0, help="time per sample")
    a = ap.parse_args()
    torch = load_torch(os.cpu_count() or 1)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rows = []
    for s in json.loads(a.shapes):
        M, N, K = s["M"], s["N"], s["K"]
        for dtype in (torch.float32, torch.float16):
            if dtype == torch.float16 and not cuda:
                continue
            x = torch.rand(M, K, device=dev, dtype=dtype) * 2 - 1
            w = torch.rand(N, K, device=dev, dtype=dtype) * 2 - 1 if s.get("transB") else torch.rand(K, N, device=dev, dtype=dtype) * 2 - 1
            op = (lambda: x @ w.t()) if s.get("transB") else (lambda: x @ w)
            op()
            sync()
            import time

            t0 = time.perf_counter()
            op()
            sync()
            one = max(time.perf_counter() - t0, 1e-6)
            iters = max(1, min(1000, int(a.target_ms / 1000 / one)))
            per = []
            for _ in range(a.samples):
                if cuda:
                    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    e0.record()
                    for _ in range(iters):
                        op()
                    e1.record()
                    sync()
                    per.append(e0.elapsed_time(e1) / iters)
                else:
                    t0 = time.perf_counter()
                    for _ in range(iters):
                        op()
                    per.append((time.perf_counter() - t0) * 1000 / iters)
            ms = sorted(per)[len(per) // 2]
            rows.append({"name": s["name"], "dtype": "f32" if dtype == torch.float32 else "f16", "ms": ms, "gflops": 2 * M * N * K / ms / 1e6})
            del x, w
    json.dump({"device": torch.cuda.get_device_name(dev) if cuda else "cpu", "torch": torch.__version__, "blas_note": peer_common.BLAS_NOTE, "rows": rows}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
