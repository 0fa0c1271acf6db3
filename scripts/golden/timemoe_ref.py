"""Plain-PyTorch reference of the Time-MoE model as webgpu-moe implements it.

No `transformers` dependency. The module tree and state-dict names mirror
Hugging Face's Time-MoE (TimeMoeForPrediction), so `state_dict()` keys are
exactly the names the TypeScript engine uses (docs/DESIGN.md §5).

Semantics (the contract the golden fixture pins down):
  * embedding  h = silu(x * gate_w) * (x * emb_w)                 (input_size 1)
  * per layer  h += o_proj(causal_attn(rope(q), rope(k), v)) of RMSNorm(h)
               h += sparse_moe(RMSNorm(h)) + sigmoid(b . sg) * shared(b)
    - router probs = softmax(b Wg^T); top-k by prob, ties -> lower index;
      weights are the picked probs, NOT renormalised (norm_topk_prob False)
  * final RMSNorm, one Linear(d -> horizon) head per horizon
  * ar loss = mean over heads of masked Huber(delta 2) vs the unfolded labels
  * aux loss = HF/Time-MoE pooled load balancing over all layers' logits
  * z loss   = mean over all layers' tokens of logsumexp(logits)^2 (ours)
  * total    = ar + aux_factor * aux + z_coef * z

Config dict keys: hidden, layers, heads, experts, top_k, moe_intermediate,
shared_intermediate, horizons, and optionally rope_theta (10000), rms_eps
(1e-6), aux_factor (0.02), z_coef (0.0).

Usage:
    model = TimeMoeRef(cfg)
    terms = loss_terms(model, series)   # series [B, T+1]
    terms["total_loss"].backward()
"""
from __future__ import annotations

import math
from typing import Dict, List

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULTS = {
    "rope_theta": 10000.0,
    "rms_eps": 1e-6,
    "aux_factor": 0.02,
    "z_coef": 0.0,
    "huber_delta": 2.0,
}


def full_config(cfg: dict) -> dict:
    out = dict(DEFAULTS)
    out.update(cfg)
    return out


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float, fk: dict):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d, **fk))
        self.eps = eps

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        var = h.pow(2).mean(-1, keepdim=True)
        return self.weight * (h * torch.rsqrt(var + self.eps))


class InputEmbedding(nn.Module):
    """Time-MoE TimeMoeInputEmbedding: SwiGLU of two Linear(1 -> d), no bias."""

    def __init__(self, d: int, fk: dict):
        super().__init__()
        self.emb_layer = nn.Linear(1, d, bias=False, **fk)
        self.gate_layer = nn.Linear(1, d, bias=False, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, T, 1]
        return F.silu(self.gate_layer(x)) * self.emb_layer(x)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(seq_len: int, head_dim: int, theta: float, dtype, device):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim))
    pos = torch.arange(seq_len, dtype=torch.float64, device=device)
    freqs = torch.outer(pos, inv_freq)  # [T, hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, hd]
    return emb.cos().to(dtype), emb.sin().to(dtype)


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, theta: float, fk: dict):
        super().__init__()
        assert d % heads == 0 and (d // heads) % 2 == 0
        self.heads = heads
        self.head_dim = d // heads
        self.theta = theta
        self.q_proj = nn.Linear(d, d, bias=True, **fk)
        self.k_proj = nn.Linear(d, d, bias=True, **fk)
        self.v_proj = nn.Linear(d, d, bias=True, **fk)
        self.o_proj = nn.Linear(d, d, bias=False, **fk)

    def forward(self, a: torch.Tensor) -> torch.Tensor:  # a [B, T, d]
        B, T, d = a.shape
        H, hd = self.heads, self.head_dim
        q = self.q_proj(a).view(B, T, H, hd).transpose(1, 2)  # [B, H, T, hd]
        k = self.k_proj(a).view(B, T, H, hd).transpose(1, 2)
        v = self.v_proj(a).view(B, T, H, hd).transpose(1, 2)
        cos, sin = rope_cos_sin(T, hd, self.theta, a.dtype, a.device)  # [T, hd]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)  # [B, H, T, T]
        causal = torch.ones(T, T, dtype=torch.bool, device=a.device).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        p = torch.softmax(scores, dim=-1)
        o = torch.matmul(p, v)  # [B, H, T, hd]
        o = o.transpose(1, 2).reshape(B, T, d)
        return self.o_proj(o)


class SwiGLU(nn.Module):
    """Time-MoE TimeMoeTemporalBlock: down(silu(gate x) * up x), no biases."""

    def __init__(self, d: int, inter: int, fk: dict):
        super().__init__()
        self.gate_proj = nn.Linear(d, inter, bias=False, **fk)
        self.up_proj = nn.Linear(d, inter, bias=False, **fk)
        self.down_proj = nn.Linear(inter, d, bias=False, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def topk_stable(probs: torch.Tensor, k: int):
    """Top-k along the last dim, descending; equal values -> lower index first."""
    vals, idx = torch.sort(probs, dim=-1, descending=True, stable=True)
    return vals[..., :k], idx[..., :k]


class SparseMoe(nn.Module):
    def __init__(self, d: int, experts: int, top_k: int, moe_inter: int, shared_inter: int, fk: dict):
        super().__init__()
        self.num_experts = experts
        self.top_k = top_k
        self.gate = nn.Linear(d, experts, bias=False, **fk)
        self.experts = nn.ModuleList([SwiGLU(d, moe_inter, fk) for _ in range(experts)])
        self.shared_expert = SwiGLU(d, shared_inter, fk)
        self.shared_expert_gate = nn.Linear(d, 1, bias=False, **fk)

    def forward(self, b: torch.Tensor):
        """b [N, d] -> (ffn_out [N, d], router_logits [N, E], top_idx [N, k])."""
        N, d = b.shape
        logits = self.gate(b)
        probs = torch.softmax(logits, dim=-1)
        weights, idx = topk_stable(probs, self.top_k)  # [N, k]; not renormalised
        out = torch.zeros_like(b)
        for j, expert in enumerate(self.experts):
            tok, slot = torch.nonzero(idx == j, as_tuple=True)
            # An expert with no tokens still runs on an empty batch, so its
            # parameters get an (exactly zero) gradient instead of None.
            y = expert(b.index_select(0, tok)) * weights[tok, slot].unsqueeze(-1)
            out = out.index_add(0, tok, y)
        shared = torch.sigmoid(self.shared_expert_gate(b)) * self.shared_expert(b)
        return out + shared, logits, idx


class DecoderLayer(nn.Module):
    def __init__(self, c: dict, fk: dict):
        super().__init__()
        d = c["hidden"]
        self.self_attn = Attention(d, c["heads"], c["rope_theta"], fk)
        self.ffn_layer = SparseMoe(d, c["experts"], c["top_k"], c["moe_intermediate"], c["shared_intermediate"], fk)
        self.input_layernorm = RMSNorm(d, c["rms_eps"], fk)
        self.post_attention_layernorm = RMSNorm(d, c["rms_eps"], fk)

    def forward(self, h: torch.Tensor):
        B, T, d = h.shape
        h = h + self.self_attn(self.input_layernorm(h))
        b = self.post_attention_layernorm(h).reshape(B * T, d)
        ffn, logits, idx = self.ffn_layer(b)
        return h + ffn.view(B, T, d), logits, idx


class Backbone(nn.Module):
    def __init__(self, c: dict, fk: dict):
        super().__init__()
        self.embed_layer = InputEmbedding(c["hidden"], fk)
        self.layers = nn.ModuleList([DecoderLayer(c, fk) for _ in range(c["layers"])])
        self.norm = RMSNorm(c["hidden"], c["rms_eps"], fk)


class OutputLayer(nn.Module):
    def __init__(self, d: int, horizon: int, fk: dict):
        super().__init__()
        self.out_layer = nn.Linear(d, horizon, bias=False, **fk)

    def forward(self, h):
        return self.out_layer(h)


class TimeMoeRef(nn.Module):
    """device='meta' builds the module without allocating (parameter counting)."""

    def __init__(self, cfg: dict, device=None, dtype=None):
        super().__init__()
        self.cfg = full_config(cfg)
        c = self.cfg
        fk = {"device": device, "dtype": dtype}
        self.model = Backbone(c, fk)
        self.lm_heads = nn.ModuleList([OutputLayer(c["hidden"], hz, fk) for hz in c["horizons"]])

    def forward(self, x: torch.Tensor):
        """x [B, T] -> dict(predictions: list of [B, T, hz], router_logits: list of [N, E], top_idx: list of [N, k])."""
        h = self.model.embed_layer(x.unsqueeze(-1))
        all_logits, all_idx = [], []
        for layer in self.model.layers:
            h, logits, idx = layer(h)
            all_logits.append(logits)
            all_idx.append(idx)
        h = self.model.norm(h)
        preds = [head(h) for head in self.lm_heads]
        return {"predictions": preds, "router_logits": all_logits, "top_idx": all_idx}


def unfold_targets(labels: torch.Tensor, loss_mask: torch.Tensor, hz: int):
    """labels, loss_mask [B, T] -> target, mask [B, T, hz]; past the end: 0, mask 0."""
    B, T = labels.shape
    pad_l = F.pad(labels, (0, hz - 1), value=0.0)
    pad_m = F.pad(loss_mask, (0, hz - 1), value=0.0)
    return pad_l.unfold(-1, hz, 1), pad_m.unfold(-1, hz, 1)  # [B, T, hz]


def ar_head_loss(pred: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor, delta: float) -> torch.Tensor:
    hz = pred.shape[-1]
    target, mask = unfold_targets(labels, loss_mask, hz)
    h = F.huber_loss(pred, target, reduction="none", delta=delta)
    return (h * mask).sum() / mask.sum()


def pooled_aux_loss(all_logits: List[torch.Tensor], top_k: int, experts: int) -> torch.Tensor:
    """HF transformers / Time-MoE load_balancing_loss_func without attention mask
    (balanced = top_k; gradient through the mean router probabilities only)."""
    logits = torch.cat(all_logits, dim=0)  # [L*N, E]
    probs = torch.softmax(logits, dim=-1)
    _, sel = topk_stable(probs, top_k)
    one_hot = F.one_hot(sel, experts).to(probs.dtype)  # [L*N, k, E]
    tokens_per_expert = one_hot.mean(dim=0)  # [k, E]
    router_prob = probs.mean(dim=0)  # [E]
    return experts * (tokens_per_expert * router_prob.unsqueeze(0)).sum()


def z_loss(all_logits: List[torch.Tensor]) -> torch.Tensor:
    logits = torch.cat(all_logits, dim=0)
    return torch.logsumexp(logits, dim=-1).pow(2).mean()


def loss_terms(model: TimeMoeRef, series: torch.Tensor, loss_mask: torch.Tensor | None = None) -> Dict[str, object]:
    """series [B, T+1]: input s[:, :T], labels s[:, 1:]. Returns the loss terms
    (tensors with grad) plus routing statistics (detached)."""
    c = model.cfg
    x = series[:, :-1]
    labels = series[:, 1:]
    if loss_mask is None:
        loss_mask = torch.ones_like(labels)
    out = model(x)
    head_losses = [ar_head_loss(p, labels, loss_mask, c["huber_delta"]) for p in out["predictions"]]
    ar = torch.stack(head_losses).mean()
    aux = pooled_aux_loss(out["router_logits"], c["top_k"], c["experts"])
    z = z_loss(out["router_logits"])
    total = ar + c["aux_factor"] * aux + c["z_coef"] * z

    E, k = c["experts"], c["top_k"]
    fractions, switch, probs_all = [], [], []
    with torch.no_grad():
        for logits, idx in zip(out["router_logits"], out["top_idx"]):
            N = logits.shape[0]
            counts = torch.bincount(idx.reshape(-1), minlength=E).to(logits.dtype)
            f = counts / (N * k)
            P = torch.softmax(logits, dim=-1).mean(0)
            fractions.append(f)
            switch.append(E * (f * P).sum())
            probs_all.append(torch.softmax(logits, dim=-1))
    return {
        "head_losses": head_losses,
        "ar_loss": ar,
        "aux_loss": aux,
        "z_loss": z,
        "total_loss": total,
        "expert_fractions": fractions,
        "switch_losses": switch,
        "router_probs": probs_all,
        "predictions": out["predictions"],
        "router_logits": out["router_logits"],
        "top_idx": out["top_idx"],
    }


# Parameter groups (same names as src/model/config.ts countParameters).
def param_group(name: str) -> str:
    if name.startswith("model.embed_layer."):
        return "embedding"
    if ".self_attn." in name:
        return "attention"
    if name.endswith("layernorm.weight") or name == "model.norm.weight":
        return "norm"
    if name.endswith(".ffn_layer.gate.weight"):
        return "router"
    if ".ffn_layer.experts." in name:
        return "experts"
    if ".ffn_layer.shared_expert" in name:  # shared_expert.* and shared_expert_gate
        return "shared_expert"
    if name.startswith("lm_heads."):
        return "head"
    raise ValueError(f"unknown parameter {name}")


def count_parameters(model: nn.Module) -> Dict[str, object]:
    c = model.cfg
    groups = {g: 0 for g in ["embedding", "attention", "norm", "router", "experts", "shared_expert", "head"]}
    for name, p in model.named_parameters():
        groups[param_group(name)] += p.numel()
    total = sum(groups.values())
    per_expert = 3 * c["hidden"] * c["moe_intermediate"]
    active = total - c["layers"] * (c["experts"] - c["top_k"]) * per_expert
    return {"total": total, "active": active, "groups": groups}
