"""The frozen reference model of DPO-style objectives: a copy of the starting policy, or its log-probs once."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch

from reparamdsl.components.preference.batching import flatten_pairs
from reparamdsl.components.preference.logps import forward_logits, masked_sum, token_logps


def frozen_copy(policy: torch.nn.Module) -> torch.nn.Module:
    """Deep-copy the policy as it is now, in eval mode, with gradients off."""
    reference = copy.deepcopy(policy)
    reference.eval()
    reference.requires_grad_(False)
    return reference


def sequence_logps(model: torch.nn.Module, batch: dict[str, torch.Tensor], pass_mask: bool) -> torch.Tensor:
    """Summed response log-probs (B, 2) of a collated batch, from one forward pass over its 2B rows."""
    tokens = flatten_pairs(batch["tokens"])
    logits = forward_logits(model, tokens, flatten_pairs(batch["attention_mask"]), pass_mask)
    logps = masked_sum(token_logps(logits, tokens), flatten_pairs(batch["response_mask"]))
    return logps.view(2, -1).transpose(0, 1)


@torch.no_grad()
def precompute_logps(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]], pass_mask: bool,
                     device: torch.device) -> torch.Tensor:
    """Run `model` once over `batches` in eval mode; return (N, 2) summed log-probs, one row per example.

    Column 0 is the chosen (or matched) sequence, column 1 the rejected (or
    KL-mismatched) one, following the row layout of collated batches.
    """
    was_training = model.training
    model.eval()
    rows = []
    try:
        for batch in batches:
            batch = {key: value.to(device) for key, value in batch.items()}
            rows.append(sequence_logps(model, batch, pass_mask).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(rows) if rows else torch.zeros((0, 2))


def chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def precompute_split(model: torch.nn.Module, examples: list, collate: Callable[[list[int]], dict],
                     pass_mask: bool, device: torch.device, batch_size: int = 8) -> torch.Tensor:
    """Reference log-probs of every example of one split, collated by index in chunks of `batch_size`."""
    indices = list(range(len(examples)))
    return precompute_logps(model, (collate(chunk) for chunk in chunks(indices, batch_size)), pass_mask, device)
