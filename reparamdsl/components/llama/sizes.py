"""Shape arithmetic of the LLaMA model, shared by the torch-free specs and the builder."""

from __future__ import annotations

import math


def swiglu_hidden(width: int, mlp_ratio: float, hidden: int | None, multiple_of: int) -> int:
    """Return the SwiGLU hidden size: `hidden` when given, else `mlp_ratio * width` rounded up to `multiple_of`.

    LLaMA keeps the parameter count of a 4x MLP with two matrices by giving each
    of its three matrices 2/3 of 4 * width, the default ratio 8/3. Rounding up
    to a multiple keeps matrix shapes efficient, so width 256 gives 704.
    """
    if hidden is not None:
        return hidden
    raw = int(mlp_ratio * width)
    return multiple_of * math.ceil(raw / multiple_of)


def params_estimate(vocab: int, width: int, depth: int, heads: int, kv_heads: int, hidden: int,
                    tie_embeddings: bool) -> int:
    """Return the exact number of trainable parameters of `LlamaModel` with these sizes."""
    head_dim = width // heads
    attention = width * heads * head_dim + 2 * width * kv_heads * head_dim + heads * head_dim * width
    mlp = 3 * width * hidden
    norms = 2 * width
    head = 0 if tie_embeddings else vocab * width
    return vocab * width + depth * (attention + mlp + norms) + width + head


def nearest_divisors(width: int, heads: int) -> list[int]:
    """Return the divisors of `width` closest to `heads` (one or two of them, smaller first)."""
    divisors = [d for d in range(1, width + 1) if width % d == 0]
    best = min(abs(d - heads) for d in divisors)
    return [d for d in divisors if abs(d - heads) == best]
