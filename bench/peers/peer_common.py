"""Shared by the PyTorch peers (torch_mlp.py, torch_train.py): torch loaded at a thread count,
and the BLAS rate it really runs at."""
import os
import time


def load_torch(threads: int):
    """torch with `threads` intra-op threads and seed 0."""
    # OpenBLAS sizes its own pool from this; set before torch loads it.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return torch


def blas_gflops(torch) -> float:
    """GFLOP/s of a 512^3 f32 matmul at the set thread count: says which BLAS is really loaded
    (Debian's python3-torch runs on the reference BLAS unless libopenblas0-pthread is installed)."""
    x = torch.rand(512, 512)
    x @ x
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.1:
        x @ x
        n += 1
    return 2 * 512**3 * n / (time.perf_counter() - t0) / 1e9
