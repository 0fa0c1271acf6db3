"""PyTorch's side of scripts/attention-accuracy.ts (docs/KERNELS.md, "Accuracy of long sums").

  model --T 1024 [--B 1] [--seed 0] --out FILE
      The tiny Time-MoE of make_golden.py (its init and series, any seed) at context T: writes
      the parameters, series, top-k picks and predictions in float64 and float32 to FILE, for
      `npx tsx scripts/attention-accuracy.ts --model FILE`, and prints PyTorch f32's error.
  peer DIR
      PyTorch f32 attention (matmul, softmax, matmul, as timemoe_ref.Attention; autograd backward)
      on the inputs `npx tsx scripts/attention-accuracy.ts --dump DIR` wrote; prints, per shape,
      the median and largest over seeds of max|err| / max|ref| and of rms(err) / rms(ref) against
      the float64 results there.

Errors are over whole tensors, as the TypeScript side prints them. Run with
Debian's /usr/bin/python3 (python3-torch), single-threaded as make_golden.py.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as mg  # noqa: E402
from timemoe_ref import TimeMoeRef  # noqa: E402

OUTPUTS = ("o", "lse", "dq", "dk", "dv")


def rel_max(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / np.abs(ref).max())


def rel_rms(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sqrt(((a - ref) ** 2).sum() / (ref ** 2).sum()))


def model(args):
    mg.SEQ_LEN, mg.BATCH = args.T, args.B
    ref, series = mg.build_tiny(args.seed)  # float64 module, float32-representable values
    preds, idx = {}, None
    for dtype in (torch.float64, torch.float32):
        m = TimeMoeRef(ref.cfg, dtype=dtype)
        with torch.no_grad():
            for p, p0 in zip(m.parameters(), ref.parameters()):
                p.copy_(p0.to(dtype))
            out = m(series[:, :-1].to(dtype))
        preds[dtype] = {str(h): p.double().reshape(-1).tolist() for h, p in zip(ref.cfg["horizons"], out["predictions"])}
        top = [i.reshape(-1).tolist() for i in out["top_idx"]]
        if idx is None:
            idx = top
        elif top != idx:
            print("warning: float32 picks other experts than float64 for some token; pick another seed")
    flat = {d: np.concatenate([np.array(v) for v in p.values()]) for d, p in preds.items()}
    print(f"T={args.T} B={args.B} seed={args.seed}: PyTorch f32 predictions max|err|/max|ref| {rel_max(flat[torch.float32], flat[torch.float64]):.2e}")
    c = ref.cfg
    keys = ("hidden", "layers", "heads", "experts", "top_k", "moe_intermediate", "shared_intermediate", "horizons", "rope_theta", "rms_eps")
    with open(args.out, "w") as f:
        json.dump({
            "config": {**{k: c[k] for k in keys}, "batch": args.B, "seq_len": args.T},
            "series": series.tolist(),
            "params": {n: {"shape": list(p.shape), "data": p.detach().reshape(-1).tolist()} for n, p in ref.named_parameters()},
            "pred64": preds[torch.float64],
            "pred32": preds[torch.float32],
            "top_idx": idx,
        }, f)


def peer(args):
    with open(os.path.join(args.dir, "cases.json")) as f:
        cases = json.load(f)
    errs = {}
    for c in cases:
        T, H, hd = c["T"], c["H"], c["hd"]
        n = T * H * hd
        x = np.fromfile(os.path.join(args.dir, c["inputs"]), dtype=np.float32).reshape(4, 1, T, H, hd)
        flat = np.fromfile(os.path.join(args.dir, c["ref"]), dtype=np.float64)
        sizes = {"o": n, "lse": H * T, "dq": n, "dk": n, "dv": n}
        ref, at = {}, 0
        for name in OUTPUTS:
            ref[name] = flat[at:at + sizes[name]]
            at += sizes[name]
        q, k, v, dO = [torch.tensor(a).transpose(1, 2).contiguous() for a in x]  # [1, H, T, hd]
        for t in (q, k, v):
            t.requires_grad_(True)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        lse = torch.logsumexp(s, dim=-1)
        o = torch.matmul(torch.softmax(s, dim=-1), v)
        o.backward(dO)
        back = lambda t: t.detach().transpose(1, 2).reshape(-1).double().numpy()  # noqa: E731
        got = {"o": back(o), "lse": lse.detach().reshape(-1).double().numpy(), "dq": back(q.grad), "dk": back(k.grad), "dv": back(v.grad)}
        e = errs.setdefault((T, H, hd), {name: ([], []) for name in OUTPUTS})
        for name in OUTPUTS:
            e[name][0].append(rel_max(got[name], ref[name]))
            e[name][1].append(rel_rms(got[name], ref[name]))
    for (T, H, hd), e in errs.items():
        seeds = len(e["o"][0])
        cells = [f"{name} {np.median(m):.2e} (max {max(m):.2e})" for name, (m, _) in e.items()]
        print(f"T={T} H={H} hd={hd} PyTorch f32, max|err|/max|ref|, median over {seeds} seeds: " + "  ".join(cells))
        cells = [f"{name} {np.median(r):.2e} (max {max(r):.2e})" for name, (_, r) in e.items()]
        print(f"T={T} H={H} hd={hd} PyTorch f32, rms(err)/rms(ref), median over {seeds} seeds: " + "  ".join(cells))


def main():
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("--T", type=int, default=1024)
    m.add_argument("--B", type=int, default=1)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True)
    p = sub.add_parser("peer")
    p.add_argument("dir")
    args = ap.parse_args()
    if args.cmd == "model":
        model(args)
    else:
        peer(args)


if __name__ == "__main__":
    main()
