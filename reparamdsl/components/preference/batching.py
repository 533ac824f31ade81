"""Pad tokenized examples into the fixed-layout batches the objectives read.

Paired batch (B pairs); every tensor has the pair index first, so splitting a
batch along dim 0 (gradient accumulation) keeps pairs whole:
- `tokens` (B, 2, T) int64: [:, 0] the chosen sequence, [:, 1] the rejected
  one, right-padded with the pad id;
- `attention_mask` (B, 2, T) int64: 1 on real tokens;
- `response_mask` (B, 2, T) bool: true on response tokens (EOS included);
- `ref_logps` (B, 2) fp32: reference log-probs, only when they were precomputed.

Unpaired (KTO) batch (B completions): the same keys, where [:, 1] pairs each
prompt with another example's completion for the KL estimate, plus
`desirable` (B,) bool.
"""

from __future__ import annotations

import torch


def padded_length(longest: int, pad_multiple: int, max_length: int) -> int:
    """Round up to a multiple of `pad_multiple`, but never past `max_length` (or `longest`, if it is longer)."""
    rounded = -(-longest // pad_multiple) * pad_multiple
    return max(min(rounded, max_length), longest)


def collate_sequences(sequences: list[tuple[list[int], list[int]]], pad_id: int, length: int,
                      padding_side: str = "right") -> dict[str, torch.Tensor]:
    """Pad (prompt, response) id lists into tokens, attention mask and response mask of width `length`."""
    rows = len(sequences)
    tokens = torch.full((rows, length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((rows, length), dtype=torch.long)
    response_mask = torch.zeros((rows, length), dtype=torch.bool)

    for row, (prompt, response) in enumerate(sequences):
        size = len(prompt) + len(response)
        start = 0 if padding_side == "right" else length - size
        tokens[row, start:start + size] = torch.tensor(prompt + response, dtype=torch.long)
        attention_mask[row, start:start + size] = 1
        response_mask[row, start + len(prompt):start + size] = True
    return {"tokens": tokens, "attention_mask": attention_mask, "response_mask": response_mask}


def stack_pairs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Turn (2B, ...) rows laid out first-halves-then-second-halves into (B, 2, ...)."""
    return {key: value.view(2, -1, *value.shape[1:]).transpose(0, 1).contiguous() for key, value in batch.items()}


def flatten_pairs(value: torch.Tensor) -> torch.Tensor:
    """Inverse of `stack_pairs` for one tensor: (B, 2, ...) to (2B, ...), all first members, then all second."""
    return value.transpose(0, 1).reshape(-1, *value.shape[2:])


def collate_pairs(pairs: list, pad_id: int, pad_multiple: int, max_length: int,
                  padding_side: str = "right") -> dict[str, torch.Tensor]:
    sequences = [(p.prompt, p.chosen) for p in pairs] + [(p.prompt, p.rejected) for p in pairs]
    longest = max(len(prompt) + len(response) for prompt, response in sequences)
    length = padded_length(longest, pad_multiple, max_length)
    return stack_pairs(collate_sequences(sequences, pad_id, length, padding_side))


def collate_unpaired(examples: list, partners: list, pad_id: int, pad_multiple: int, max_length: int,
                     padding_side: str = "right") -> dict[str, torch.Tensor]:
    """Collate completions and, for the KL estimate, each prompt with its partner's completion.

    A mismatched sequence is cut to `max_length` at the end of the completion.
    """
    matched = [(e.prompt, e.completion) for e in examples]
    mismatched = [(e.prompt, partner.completion[:max(max_length - len(e.prompt), 1)])
                  for e, partner in zip(examples, partners, strict=True)]
    sequences = matched + mismatched
    longest = max(len(prompt) + len(response) for prompt, response in sequences)
    length = padded_length(longest, pad_multiple, max_length)
    batch = stack_pairs(collate_sequences(sequences, pad_id, length, padding_side))
    batch["desirable"] = torch.tensor([e.desirable for e in examples], dtype=torch.bool)
    return batch
