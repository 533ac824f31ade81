"""Velocity fields of the flow policy: v(s, A_i, t_i) for one Euler step.

Each builder returns a factory `(obs_dim, action_dim, time_dim) -> nn.Module`,
because a velocity is declared inside a policy before the environment's sizes
are known. Every module maps (state (B, S), action (B, D), time features (B, T))
to a velocity (B, D) and treats each sample independently.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from reparamdsl.components.rl.layers import mlp

VelocityFactory = Callable[[int, int, int], nn.Module]


class MLPVelocity(nn.Module):
    """The naive baseline: one MLP over [s, A_i, t]."""

    def __init__(self, obs_dim: int, action_dim: int, time_dim: int, hidden: int, depth: int):
        super().__init__()
        self.net = mlp(obs_dim + action_dim + time_dim, hidden, depth, action_dim, activation=nn.SiLU)

    def forward(self, state, action, time_features):
        return self.net(torch.cat([state, action, time_features], dim=-1))


class GatedVelocity(nn.Module):
    """Flow-G: v = g * (v_hat - A_i) with the gate g = sigmoid(MLP(s, A_i, t)).

    With g = 1 one Euler step of size dt moves A_i a fraction dt of the way to
    the candidate v_hat, like a GRU update, so the Jacobian dA_{i+1}/dA_i stays
    near (1 - dt) I instead of compounding over the K steps. The gate's output
    layer starts at weights 0 and bias `gate_bias` (5 gives g = 0.993).
    """

    def __init__(self, obs_dim: int, action_dim: int, time_dim: int, hidden: int, depth: int, gate_bias: float):
        super().__init__()
        in_dim = obs_dim + action_dim + time_dim
        self.candidate = mlp(in_dim, hidden, depth, action_dim, activation=nn.SiLU)
        self.gate = mlp(in_dim, hidden, depth, action_dim, activation=nn.SiLU)
        nn.init.zeros_(self.gate[-1].weight)
        nn.init.constant_(self.gate[-1].bias, gate_bias)

    def forward(self, state, action, time_features):
        inputs = torch.cat([state, action, time_features], dim=-1)
        gate = torch.sigmoid(self.gate(inputs))
        return gate * (self.candidate(inputs) - action)


class CrossAttentionBlock(nn.Module):
    """Pre-norm decoder block for a single query token: cross-attention to the state tokens, then an MLP.

    Self-attention over one token is a linear map of that token, so the block omits it.
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"decoder width {width} must be divisible by heads {heads}")
        self.heads = heads
        self.query_norm = nn.LayerNorm(width)
        self.context_norm = nn.LayerNorm(width)
        self.query = nn.Linear(width, width)
        self.key_value = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, token: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, N, C = context.shape
        H = self.heads
        q = self.query(self.query_norm(token)).view(B, 1, H, C // H).transpose(1, 2)  # (B, H, 1, C/H)
        k, v = self.key_value(self.context_norm(context)).split(C, dim=-1)
        k = k.view(B, N, H, C // H).transpose(1, 2)  # (B, H, N, C/H)
        v = v.view(B, N, H, C // H).transpose(1, 2)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, 1, C)
        token = token + self.out(attended)
        return token + self.mlp(self.mlp_norm(token))


class DecodedVelocity(nn.Module):
    """Flow-T: one action-time token decoded against a state embedding of `context_tokens` tokens.

    Attention runs within each sample's own tokens, so permuting the batch
    permutes the velocities. The decoder's residual stream carries A_i and t to
    the output, which keeps the step Jacobian well conditioned.
    """

    def __init__(self, obs_dim: int, action_dim: int, time_dim: int, width: int, heads: int, depth: int,
                 context_tokens: int):
        super().__init__()
        self.width = width
        self.context_tokens = context_tokens
        self.state_embed = nn.Sequential(nn.Linear(obs_dim, width), nn.SiLU(), nn.Linear(width, width * context_tokens))
        self.token_embed = nn.Linear(action_dim + time_dim, width)
        self.blocks = nn.ModuleList(CrossAttentionBlock(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, action_dim)

    def forward(self, state, action, time_features):
        context = self.state_embed(state).view(state.shape[0], self.context_tokens, self.width)  # (B, N, C)
        token = self.token_embed(torch.cat([action, time_features], dim=-1)).unsqueeze(1)  # (B, 1, C)
        for block in self.blocks:
            token = block(token, context)
        return self.head(self.norm(token.squeeze(1)))


def build_mlp(params: dict, ctx) -> VelocityFactory:
    def make(obs_dim: int, action_dim: int, time_dim: int) -> nn.Module:
        return MLPVelocity(obs_dim, action_dim, time_dim, params["hidden"], params["depth"])

    return make


def build_gated(params: dict, ctx) -> VelocityFactory:
    def make(obs_dim: int, action_dim: int, time_dim: int) -> nn.Module:
        return GatedVelocity(obs_dim, action_dim, time_dim, params["hidden"], params["depth"], params["gate_bias"])

    return make


def build_decoded(params: dict, ctx) -> VelocityFactory:
    def make(obs_dim: int, action_dim: int, time_dim: int) -> nn.Module:
        return DecodedVelocity(obs_dim, action_dim, time_dim, params["width"], params["heads"], params["depth"],
                               params["context_tokens"])

    return make
