"""Per-token and per-sequence log-probabilities of responses under a causal LM.

Every objective in this area is a function of these values only. Rows of a
paired batch are laid out as `[chosen_0 .. chosen_{B-1}, rejected_0 .. rejected_{B-1}]`
so one forward pass scores both responses of every pair.
"""

from __future__ import annotations

import inspect

import torch


def accepts_attention_mask(model: torch.nn.Module) -> bool:
    """Return whether `model.forward` takes an `attention_mask` keyword (Hugging Face wrappers do, llama does not)."""
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "attention_mask" in parameters


def forward_logits(model: torch.nn.Module, tokens: torch.Tensor, attention_mask: torch.Tensor,
                   pass_mask: bool) -> torch.Tensor:
    """Run the model on right-padded tokens (B, T) and return logits (B, T, V).

    A model without an attention mask still gives exact logits on the real
    tokens because padding only ever follows them and attention is causal.
    """
    if pass_mask:
        return model(tokens, attention_mask=attention_mask)
    return model(tokens)


def token_logps(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Return log p(tokens[:, t] | tokens[:, :t]) as (B, T) in fp32; position 0 has no prediction and gets 0.

    The log-softmax runs in fp32 whatever dtype autocast gave the logits, so
    fp16/bf16 logits never round the normalizer.
    """
    logits = logits[:, :-1].float()                        # (B, T-1, V) predicts tokens 1..T-1
    targets = tokens[:, 1:].unsqueeze(-1)                  # (B, T-1, 1)
    picked = logits.gather(-1, targets).squeeze(-1)        # (B, T-1)
    logps = picked - torch.logsumexp(logits, dim=-1)
    return torch.nn.functional.pad(logps, (1, 0))          # (B, T), aligned with tokens


def masked_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum `values` (B, T) over the positions where `mask` is true.

    `where` rather than a product, so a non-finite value at a masked position
    (an extreme prompt logit) never turns the sum into NaN.
    """
    return torch.where(mask, values, torch.zeros_like(values)).sum(-1)


def response_lengths(response_mask: torch.Tensor) -> torch.Tensor:
    """Number of response tokens per row (EOS included), as fp32 (B,)."""
    return response_mask.sum(-1).float()


def split_pairs(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a (2B, ...) tensor of chosen-then-rejected rows into its chosen and rejected halves."""
    half = values.shape[0] // 2
    return values[:half], values[half:]
