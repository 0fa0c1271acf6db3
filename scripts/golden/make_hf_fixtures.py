#!/usr/bin/python3
"""Hugging Face Time-MoE folders for the interop tests, both directions.

    /usr/bin/python3 scripts/golden/make_hf_fixtures.py                 # (a) PyTorch-written folders
    /usr/bin/python3 scripts/golden/make_hf_fixtures.py --check         # recompute (a), compare, write nothing
    /usr/bin/python3 scripts/golden/make_hf_fixtures.py --check-export DIR
        # (b) load OUR exported folder DIR into the PyTorch reference with strict names, record
        #     what it predicts in test/fixtures/hf/export-check.json

(a) writes test/fixtures/hf/:
  series.csv                      one series of 2 * (T + 1) points (one column, "value")
  tiny-{f32,bf16,f16}/            config.json (TimeMoeConfig keys) + model.safetensors in that dtype
  expected.json                   per dtype, computed in float64 from exactly the stored weights:
      train_loss   total loss (ar + 0.02 aux) on the first window (what train.js logs at step 1)
      valid_loss   the same on the second window (train.js's "valid before training")
      predictions  every head on the first window's inputs
      forecast     H points after the series' last T points, in original units, generated as
                   Time-MoE's generate does (growing sequence, head = largest <= what is left)
  Windows are normalised as the engine's data pipeline does (src/train/data/windows.ts): mean and
  population std of the T inputs, scale = std + 1e-5, x' = (x - mean) * (1 / scale) rounded to f32.

(b) records, for the folder export.js wrote from test/fixtures/hf/finetuned (our checkpoint):
  the SHA-256 of its model.safetensors and config.json, the config keys checked against
  TimeMoeConfig, and the predictions and forecast PyTorch computes from it (float64).

No `safetensors` or `transformers` package is used (Debian has neither): the format is written and
read here with struct + json (8-byte little-endian header length, JSON header, raw LE data), and
the model is timemoe_ref.TimeMoeRef, whose module tree and state-dict names are Time-MoE's.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timemoe_ref import TimeMoeRef, loss_terms  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "test", "fixtures", "hf")

# A tiny Time-MoE in TimeMoeConfig terms: experts get intermediate_size // top_k = 8 hidden units,
# the shared expert intermediate_size = 16.
HF_CONFIG = {
    "architectures": ["TimeMoeForPrediction"],
    "model_type": "time_moe",
    "input_size": 1,
    "hidden_size": 16,
    "intermediate_size": 16,
    "horizon_lengths": [1, 3, 5],
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "num_experts_per_tok": 2,
    "num_experts": 4,
    "max_position_embeddings": 4096,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-6,
    "use_cache": True,
    "use_dense": False,
    "rope_theta": 10000,
    "attention_dropout": 0.0,
    "apply_aux_loss": True,
    "router_aux_loss_factor": 0.02,
    "tie_word_embeddings": False,
}
# TimeMoeConfig.__init__'s keyword arguments, plus what PretrainedConfig itself writes.
TIMEMOE_KEYS = {
    "input_size", "hidden_size", "intermediate_size", "horizon_lengths", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "num_experts_per_tok", "num_experts", "max_position_embeddings",
    "initializer_range", "rms_norm_eps", "use_cache", "use_dense", "rope_theta", "attention_dropout",
    "apply_aux_loss", "router_aux_loss_factor", "tie_word_embeddings",
}
PRETRAINED_KEYS = {"model_type", "architectures", "torch_dtype", "transformers_version"}

T = 12          # context length
H = 9           # forecast horizon: heads 5 + 3 + 1, three autoregressive passes
AUX_FACTOR = 0.02
DTYPES = {"f32": (torch.float32, "F32"), "bf16": (torch.bfloat16, "BF16"), "f16": (torch.float16, "F16")}
TOPK_GAP = 1e-3
NORM_EPS = 1e-5


def ref_config(hf: dict) -> dict:
    k = hf["num_experts_per_tok"]
    return {
        "hidden": hf["hidden_size"], "layers": hf["num_hidden_layers"], "heads": hf["num_attention_heads"],
        "experts": hf["num_experts"], "top_k": k, "moe_intermediate": hf["intermediate_size"] // k,
        "shared_intermediate": hf["intermediate_size"], "horizons": list(hf["horizon_lengths"]),
        "rope_theta": float(hf["rope_theta"]), "rms_eps": hf["rms_norm_eps"],
        "aux_factor": AUX_FACTOR, "z_coef": 0.0,
    }


# ----------------------------------------------------------------------------- safetensors

ST_DTYPES = {"F32": (np.float32, torch.float32), "F16": (np.float16, torch.float16), "BF16": (None, torch.bfloat16), "F64": (np.float64, torch.float64)}


def tensor_bytes(t: torch.Tensor, code: str) -> bytes:
    t = t.detach().contiguous()
    if code == "BF16":  # numpy has no bfloat16: its bits are the int16 view
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    return t.to(ST_DTYPES[code][1]).numpy().astype(np.dtype(ST_DTYPES[code][0]).newbyteorder("<")).tobytes()


def write_safetensors(path: str, tensors: dict, code: str) -> None:
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        b = tensor_bytes(tensors[name], code)
        header[name] = {"dtype": code, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def read_safetensors(path: str) -> dict:
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        chunk = data[a:b]
        if e["dtype"] == "BF16":
            bits = np.frombuffer(chunk, dtype="<i2").astype(np.int32) << 16
            arr = bits.astype("<i4").view("<f4")
        else:
            arr = np.frombuffer(chunk, dtype=np.dtype(ST_DTYPES[e["dtype"]][0]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.astype(np.float64).reshape(e["shape"]))
    return out


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ----------------------------------------------------------------------------- model and data

def build_series(g: torch.Generator) -> torch.Tensor:
    """2 * (T + 1) points: level 20, a noisy sine; float32-representable."""
    n = 2 * (T + 1)
    t = torch.arange(n, dtype=torch.float64)
    u = torch.rand(3, generator=g, dtype=torch.float64)
    x = 20 + (1 + 1.5 * u[0]) * torch.sin(2 * math.pi * t / (5 + 6 * u[1]) + 6.28 * u[2]) + 0.15 * torch.randn(n, generator=g, dtype=torch.float64)
    return x.float().double()


def build_model(seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    model = TimeMoeRef(ref_config(HF_CONFIG))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("model.embed_layer."):
                p.normal_(0.0, 0.5, generator=g)
            elif name.endswith("norm.weight"):
                p.normal_(0.0, 1.0, generator=g).mul_(0.1).add_(1.0)
            else:
                p.normal_(0.0, 0.2, generator=g)
    return model.double(), build_series(g)


def quantised(model: TimeMoeRef, dtype) -> TimeMoeRef:
    """The same model with every weight rounded to `dtype` (values kept in float64)."""
    q = TimeMoeRef(model.cfg).double()
    q.load_state_dict({k: v.to(dtype).double() for k, v in model.state_dict().items()}, strict=True)
    return q


def normalise(x: torch.Tensor):
    """The engine's per-window normalisation of the T inputs; returns (x' as f32 values, mean, scale)."""
    mean = x[:T].mean()
    std = torch.sqrt(((x[:T] - mean) ** 2).mean())
    scale = std + NORM_EPS if std > 0 else torch.tensor(1.0, dtype=torch.float64)
    return ((x - mean) * (1.0 / scale)).float().double(), mean, scale


def head_for(horizons, remaining):
    index = 0
    for i in range(1, len(horizons)):
        if horizons[i] > remaining:
            break
        index = i
    return index, min(horizons[index], remaining)


def topk_gap(logits_list, k: int) -> float:
    gap = math.inf
    for logits in logits_list:
        s, _ = torch.sort(torch.softmax(logits, -1), -1, descending=True)
        gap = min(gap, (s[:, k - 1] - s[:, k]).min().item())
    return gap


def generate(model: TimeMoeRef, ctx: torch.Tensor, horizon: int):
    """Time-MoE's generate on one normalised context [T]: growing sequence, head by what is left."""
    horizons = model.cfg["horizons"]
    seq = ctx.clone().unsqueeze(0)
    out, logits = [], []
    while len(out) < horizon:
        idx, take = head_for(horizons, horizon - len(out))
        o = model(seq)
        logits += o["router_logits"]
        p = o["predictions"][idx][0, -1, :take]
        out += p.tolist()
        seq = torch.cat([seq, p.unsqueeze(0)], dim=1)
    return out, logits


def window_loss(model: TimeMoeRef, w: torch.Tensor):
    xn, _, _ = normalise(w)
    terms = loss_terms(model, xn.unsqueeze(0))
    return terms, xn


def outputs(model: TimeMoeRef, series: torch.Tensor) -> dict:
    with torch.no_grad():
        tr, _ = window_loss(model, series[: T + 1])
        va, _ = window_loss(model, series[T + 1:])
        ctx = series[-T:]
        xn, mean, scale = normalise(ctx)
        fc, fc_logits = generate(model, xn, H)
    gap = topk_gap(tr["router_logits"] + va["router_logits"] + fc_logits, model.cfg["top_k"])
    return {
        "train_loss": tr["total_loss"].item(),
        "valid_loss": va["total_loss"].item(),
        "predictions": {str(h): p.reshape(-1).tolist() for h, p in zip(model.cfg["horizons"], tr["predictions"])},
        "forecast": [v * scale.item() + mean.item() for v in fc],
        "forecast_normalised": fc,
        "forecast_mean": mean.item(),
        "forecast_scale": scale.item(),
        "min_topk_gap": gap,
    }


def choose_seed() -> int:
    for seed in range(500):
        model, series = build_model(seed)
        if all(outputs(quantised(model, dt), series)["min_topk_gap"] > TOPK_GAP for dt, _ in DTYPES.values()):
            return seed
    raise SystemExit("no seed keeps every top-k pick clear of ties")


def make(check: bool) -> int:
    torch.set_num_threads(1)
    seed = choose_seed()
    model, series = build_model(seed)
    expected = {"seed": seed, "context_length": T, "horizon": H, "aux_factor": AUX_FACTOR, "series": series.tolist(), "dtypes": {}}
    files = {}
    for name, (dt, code) in DTYPES.items():
        q = quantised(model, dt)
        expected["dtypes"][name] = outputs(q, series)
        files[name] = (q, code)
    if check:
        with open(os.path.join(FIX, "expected.json")) as f:
            old = json.load(f)
        same = json.dumps(old, sort_keys=True) == json.dumps(expected, sort_keys=True)
        print("expected.json is up to date" if same else "expected.json differs from a fresh computation")
        return 0 if same else 1
    os.makedirs(FIX, exist_ok=True)
    with open(os.path.join(FIX, "series.csv"), "w") as f:
        f.write("value\n" + "".join(f"{repr(v)}\n" for v in series.tolist()))
    for name, (q, code) in files.items():
        d = os.path.join(FIX, f"tiny-{name}")
        os.makedirs(d, exist_ok=True)
        cfg = dict(HF_CONFIG, torch_dtype={"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[code])
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        write_safetensors(os.path.join(d, "model.safetensors"), q.state_dict(), code)
        # The stored bytes must give back exactly the weights the outputs came from.
        back = read_safetensors(os.path.join(d, "model.safetensors"))
        assert all(torch.equal(back[k], v) for k, v in q.state_dict().items()), name
    with open(os.path.join(FIX, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    for name, e in expected["dtypes"].items():
        print(f"{name}: train loss {e['train_loss']:.6f} valid loss {e['valid_loss']:.6f} forecast[0] {e['forecast'][0]:.5f} min top-k gap {e['min_topk_gap']:.2e}")
    print(f"seed {seed}; wrote {FIX}")
    return 0


def check_export(folder: str) -> int:
    """(b): our exported folder in PyTorch, strict names; record its predictions."""
    torch.set_num_threads(1)
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    unknown = sorted(set(cfg) - TIMEMOE_KEYS - PRETRAINED_KEYS)
    missing = sorted(TIMEMOE_KEYS - set(cfg))
    assert not unknown, f"config.json keys TimeMoeConfig does not know: {unknown}"
    assert not missing, f"config.json lacks TimeMoeConfig keys: {missing}"
    assert cfg["model_type"] == "time_moe"
    assert cfg["use_dense"] ^ cfg["apply_aux_loss"], "TimeMoeConfig asserts use_dense XOR apply_aux_loss"
    model = TimeMoeRef(ref_config(cfg)).double()
    state = read_safetensors(os.path.join(folder, "model.safetensors"))
    result = model.load_state_dict(state, strict=True)  # raises on any missing or unexpected name
    assert not result.missing_keys and not result.unexpected_keys
    with open(os.path.join(FIX, "expected.json")) as f:
        series = torch.tensor(json.load(f)["series"], dtype=torch.float64)
    out = outputs(model, series)
    record = {
        "folder": "export.js --checkpoint test/fixtures/hf/finetuned --out <dir>",
        "model_safetensors_sha256": sha256(os.path.join(folder, "model.safetensors")),
        "config_json_sha256": sha256(os.path.join(folder, "config.json")),
        "strict_load": {"missing_keys": [], "unexpected_keys": [], "tensors": len(state)},
        "config_keys_checked": sorted(TIMEMOE_KEYS),
        **{k: out[k] for k in ["train_loss", "valid_loss", "predictions", "forecast", "forecast_normalised", "forecast_mean", "forecast_scale", "min_topk_gap"]},
    }
    assert out["min_topk_gap"] > TOPK_GAP, f"top-k gap {out['min_topk_gap']} too small to compare f32 with f64"
    path = os.path.join(FIX, "export-check.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(f"strict load of {len(state)} tensors OK; train loss {out['train_loss']:.6f}; forecast[0] {out['forecast'][0]:.5f}; min top-k gap {out['min_topk_gap']:.2e}; wrote {path}")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--check-export", metavar="DIR")
    a = ap.parse_args()
    sys.exit(check_export(a.check_export) if a.check_export else make(a.check))
