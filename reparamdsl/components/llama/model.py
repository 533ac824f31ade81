"""The LLaMA decoder and its builder.

Module names are part of the interface, because reparameterizations select
submodules by them: `embed`, `layers.{i}.attn.{q,k,v,o}`,
`layers.{i}.mlp.{gate,up,down}`, `layers.{i}.attn_norm`, `layers.{i}.mlp_norm`,
`norm` and `head`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from reparamdsl.components.llama.layers import RMSNorm, Rotary, SwiGLU, apply_rotary
from reparamdsl.components.llama.sizes import swiglu_hidden


class Attention(nn.Module):
    """Causal self-attention with rotary embeddings and grouped-query key/value heads."""

    def __init__(self, width: int, heads: int, kv_heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.kv_heads = kv_heads
        self.head_dim = width // heads
        self.dropout = dropout
        self.q = nn.Linear(width, heads * self.head_dim, bias=False)
        self.k = nn.Linear(width, kv_heads * self.head_dim, bias=False)
        self.v = nn.Linear(width, kv_heads * self.head_dim, bias=False)
        self.o = nn.Linear(heads * self.head_dim, width, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.k(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, D)
        v = self.v(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)

        if self.kv_heads != self.heads:
            # Query head h reads key/value head h // (heads / kv_heads).
            groups = self.heads // self.kv_heads
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)

        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)  # (B, H, T, D)
        return self.o(y.transpose(1, 2).reshape(B, T, self.heads * self.head_dim))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(attn_norm(x)), then x + mlp(mlp_norm(x))."""

    def __init__(self, width: int, heads: int, kv_heads: int, hidden: int, norm_eps: float, dropout: float):
        super().__init__()
        self.attn_norm = RMSNorm(width, norm_eps)
        self.attn = Attention(width, heads, kv_heads, dropout)
        self.mlp_norm = RMSNorm(width, norm_eps)
        self.mlp = SwiGLU(width, hidden)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.residual_dropout(self.attn(self.attn_norm(x), cos, sin))
        return x + self.residual_dropout(self.mlp(self.mlp_norm(x)))


class LlamaModel(nn.Module):
    """A LLaMA-style decoder: forward(tokens (B, T) int64) returns logits (B, T, vocab)."""

    def __init__(self, vocab: int, width: int, depth: int, heads: int, kv_heads: int | None = None,
                 hidden: int | None = None, mlp_ratio: float = 8 / 3, multiple_of: int = 64,
                 context: int = 2048, rope_theta: float = 10000.0, norm_eps: float = 1e-5,
                 tie_embeddings: bool = False, dropout: float = 0.0):
        super().__init__()
        kv_heads = kv_heads or heads
        if width % heads or heads % kv_heads or (width // heads) % 2:
            raise ValueError(f"invalid attention shape: width {width}, heads {heads}, kv_heads {kv_heads} "
                             "(width / heads must be even and heads divisible by kv_heads)")

        self.context = context
        self.embed = nn.Embedding(vocab, width)
        self.embed_dropout = nn.Dropout(dropout)
        self.rotary = Rotary(width // heads, context, rope_theta)
        hidden = swiglu_hidden(width, mlp_ratio, hidden, multiple_of)
        self.layers = nn.ModuleList(
            Block(width, heads, kv_heads, hidden, norm_eps, dropout) for _ in range(depth)
        )
        self.norm = RMSNorm(width, norm_eps)
        self.head = nn.Linear(width, vocab, bias=False)
        if tie_embeddings:
            self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        if T > self.context:
            raise ValueError(f"sequence length {T} exceeds the model's context {self.context}; "
                             "raise the llama `context` parameter")

        cos, sin = self.rotary(T)
        x = self.embed_dropout(self.embed(tokens))  # (B, T, width)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.head(self.norm(x))  # (B, T, vocab)


def init_weights(model: LlamaModel, std: float, generator: torch.Generator | None = None) -> None:
    """Draw embeddings and projections from N(0, std^2); residual outputs (o, down) use std / sqrt(2 * depth).

    The smaller residual scale keeps the variance of the residual stream from
    growing with depth, since each block adds two branches to it.
    """
    residual_std = std / math.sqrt(2 * len(model.layers))
    with torch.no_grad():
        nn.init.normal_(model.embed.weight, std=std, generator=generator)
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear) and module.weight is not model.embed.weight:
                scale = residual_std if name.endswith((".o", ".down")) else std
                nn.init.normal_(module.weight, std=scale, generator=generator)


def build_llama(params: dict, ctx) -> LlamaModel:
    model = LlamaModel(
        vocab=params["vocab"], width=params["width"], depth=params["depth"], heads=params["heads"],
        kv_heads=params["kv_heads"], hidden=params["hidden"], mlp_ratio=params["mlp_ratio"],
        multiple_of=params["multiple_of"], context=params["context"], rope_theta=params["rope_theta"],
        norm_eps=params["norm_eps"], tie_embeddings=params["tie_embeddings"], dropout=params["dropout"],
    )
    # Seeded by declaration name, so two llama declarations start from different weights.
    init_weights(model, params["init_std"], ctx.generator(f"model:{ctx.current}"))
    return model.to(ctx.device)
