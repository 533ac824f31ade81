"""Building blocks shared by the policies and critics: MLPs and the flow-time embedding."""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp(in_dim: int, hidden: int, depth: int, out_dim: int, layer_norm: bool = False,
        activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Return `depth` hidden layers of width `hidden` (optionally LayerNorm before the activation) and a linear head."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers.append(nn.Linear(width, hidden))
        if layer_norm:
            layers.append(nn.LayerNorm(hidden))
        layers.append(activation())
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class TimeEmbedding(nn.Module):
    """Sinusoidal features of the flow time t in [0, 1], frequencies spaced geometrically from 1 to 1000."""

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2:
            raise ValueError(f"time embedding size must be even, got {dim}")
        frequencies = torch.exp(torch.linspace(0.0, math.log(1000.0), dim // 2))
        self.register_buffer("frequencies", frequencies, persistent=False)
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.unsqueeze(-1) * self.frequencies  # (..., dim/2)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


def squash_log_det(pre_tanh: torch.Tensor) -> torch.Tensor:
    """Return log(1 - tanh(x)^2) summed over the last axis, as 2 (log 2 - x - softplus(-2x)).

    The direct form loses all precision once tanh(x) rounds to 1 (|x| > 9 in float32);
    this one stays exact for every finite x.
    """
    return (2.0 * (math.log(2.0) - pre_tanh - nn.functional.softplus(-2.0 * pre_tanh))).sum(-1)


def gaussian_log_prob(noise: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Return log N(mean + std * noise; mean, std^2) summed over the last axis, from the standard noise."""
    return (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2.0 * math.pi)).sum(-1)
