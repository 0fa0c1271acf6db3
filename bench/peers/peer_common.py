"""Shared by the PyTorch peers (torch_mlp.py, torch_train.py, torch_matmul.py): torch loaded at a
thread count with OpenBLAS on its best kernels, and the BLAS rate it really runs at."""
import os
import subprocess
import sys
import time

# OpenBLAS kernels for a CPU class, when its runtime detection picked a generic one.
CORE_FOR_FLAGS = [("avx512f", "SkylakeX"), ("avx2", "Haswell")]
GENERIC_CORES = {"prescott", "core2", "katmai", "coppermine", "northwood", "banias", "atom", "nehalem", "unknown"}


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def openblas_core() -> str:
    """The core OpenBLAS picks in a fresh process (it reads OPENBLAS_CORETYPE once, at load)."""
    probe = (
        "import ctypes, ctypes.util, glob\n"
        "names = [ctypes.util.find_library('openblas')] + glob.glob('/usr/lib/x86_64-linux-gnu/openblas*/libopenblas*.so*')\n"
        "for n in names:\n"
        "    if not n: continue\n"
        "    try:\n"
        "        lib = ctypes.CDLL(n); f = lib.openblas_get_corename; f.restype = ctypes.c_char_p; print(f().decode()); break\n"
        "    except OSError: pass\n"
        "else: print('none')\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=20, env=os.environ.copy())
        return out.stdout.strip() or "none"
    except (OSError, subprocess.TimeoutExpired):
        return "none"


def tune_openblas() -> str:
    """Set OPENBLAS_CORETYPE from the CPU's flags when OpenBLAS would run generic kernels (on some
    2-core hosts it falls back to Prescott: an AVX-512 Xeon ran 53 GFLOP/s there and 265 as
    SkylakeX). Returns a description of what it found and did."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} (given)"
    core = openblas_core()
    if core == "none":
        return "no OpenBLAS"
    if core.lower() not in GENERIC_CORES:
        return f"OpenBLAS core {core}"
    flags = cpu_flags()
    for flag, name in CORE_FOR_FLAGS:
        if flag in flags:
            os.environ["OPENBLAS_CORETYPE"] = name
            return f"OpenBLAS picked {core}; set OPENBLAS_CORETYPE={name} ({flag})"
    return f"OpenBLAS core {core} (no better kernels for this CPU)"


BLAS_NOTE = ""


def load_torch(threads: int):
    """torch with `threads` intra-op threads, OpenBLAS on its best kernels, and seed 0."""
    global BLAS_NOTE
    # OpenBLAS sizes its own pool from this and reads the core type at load: set both first.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    BLAS_NOTE = tune_openblas()
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return torch


def blas_gflops(torch, device=None) -> float:
    """GFLOP/s of a 512^3 f32 matmul on `device` (CPU by default): says which BLAS is really loaded
    (Debian's python3-torch runs on the reference BLAS unless libopenblas0-pthread is installed)."""
    dev = device or torch.device("cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    x = torch.rand(512, 512, device=dev)
    x @ x
    sync()
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.1:
        x @ x
        n += 1
    sync()
    return 2 * 512**3 * n / (time.perf_counter() - t0) / 1e9
