"""Initializations of the fixed weight W0; POET keeps its singular values for the whole run."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)

INIT_SCHEMES = ("normalized_gaussian", "uniform_spectrum", "xavier", "standard", "loaded")


def _normalize_rows(weight: torch.Tensor, what: str) -> torch.Tensor:
    norms = weight.norm(dim=1, keepdim=True)
    zero_rows = int((norms == 0).sum())
    if zero_rows:
        logger.warning("%s: %d all-zero rows stay zero under row normalization", what, zero_rows)
    return weight / norms.clamp_min(torch.finfo(weight.dtype).tiny)


def _semi_orthogonal(rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    """Return a Haar-random rows×cols matrix with orthonormal rows or columns (all singular values 1)."""
    tall = rows >= cols
    gaussian = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(q.dtype)   # the sign fix makes the draw Haar-uniform
    return (q if tall else q.transpose(0, 1)).float()


def initial_weight(existing: torch.Tensor, scheme: str, generator: torch.Generator, what: str = "weight") -> torch.Tensor:
    """Return W0 (float32, the shape of `existing`) for one of `INIT_SCHEMES`.

    - normalized_gaussian: i.i.d. N(0, 1) entries, then each row (output neuron) scaled to unit norm;
    - uniform_spectrum: a random semi-orthogonal matrix, so every singular value is 1;
    - xavier: N(0, 2 / (m + n)) entries (Xavier/Glorot normal);
    - standard: the layer's current weight as the model initialized it;
    - loaded: the layer's current weight with rows scaled to unit norm, for fine-tuning a pretrained model.
    """
    rows, cols = existing.shape
    existing = existing.detach().float().cpu()

    if scheme == "normalized_gaussian":
        weight = _normalize_rows(torch.randn(rows, cols, generator=generator), what)
    elif scheme == "uniform_spectrum":
        weight = _semi_orthogonal(rows, cols, generator)
    elif scheme == "xavier":
        weight = torch.randn(rows, cols, generator=generator) * (2.0 / (rows + cols)) ** 0.5
    elif scheme == "standard":
        weight = existing.clone()
    elif scheme == "loaded":
        weight = _normalize_rows(existing.clone(), what)
    else:
        raise ValueError(f"POET init '{scheme}' is invalid: expected one of {', '.join(INIT_SCHEMES)}")
    return weight
