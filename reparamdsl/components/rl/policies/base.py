"""The actor base class: the action box and the interface the SAC update calls."""

from __future__ import annotations

import math

import torch
from torch import nn

BC_ACTION_LIMIT = 0.999
"""Dataset actions are clipped to this fraction of the unit box before atanh, so the pre-tanh target stays finite."""


class Policy(nn.Module):
    """An actor that samples actions in the unit box [-1, 1]^D.

    `log_prob` is the log-density of the environment's action, scale * u + bias,
    so it includes -sum(log scale); the environment does the affine map itself.

    Subclasses implement:
        forward(obs, noise=None) -> (action (B, D) in [-1, 1], log_prob (B,))
        act(obs) -> the deterministic action used in evaluation
        bc_loss(obs, action) -> a scalar behaviour-cloning loss against dataset actions in [-1, 1]
    """

    def __init__(self, obs_dim: int, action_dim: int, action_scale):
        super().__init__()
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        scale = torch.as_tensor(action_scale, dtype=torch.float32).reshape(action_dim)
        if not torch.all(scale > 0):
            raise ValueError(f"action scale must be positive, got {scale.tolist()}")
        self.register_buffer("action_scale", scale)
        self.log_scale_sum = float(torch.log(scale).sum())
        # Kept outside this module's tree (the wrapper contains the policy, not the other way round).
        object.__setattr__(self, "cloning", BehaviourCloning(self))

    @staticmethod
    def pre_tanh(action: torch.Tensor) -> torch.Tensor:
        return torch.atanh(action.clamp(-BC_ACTION_LIMIT, BC_ACTION_LIMIT))

    def default_target_entropy(self) -> float:
        return -float(self.action_dim)


def standard_normal_entropy(dim: int) -> float:
    """Return the differential entropy of N(0, I_dim): dim/2 * log(2 pi e)."""
    return 0.5 * dim * math.log(2.0 * math.pi * math.e)


def env_dims(env_ref, ctx):
    """Return (obs_dim, action_dim, action_scale) of the built environment a model declaration names.

    Environment declarations are built before models, so the environment is already in `ctx`.
    """
    name = env_ref["ref"] if isinstance(env_ref, dict) else env_ref
    if name not in ctx.built:
        raise ValueError(f"environment '{name}' is not built yet; build env declarations before the models "
                         "that name them")
    env = ctx.get(name)
    return env.obs_dim, env.action_dim, env.action_scale


class BehaviourCloning(nn.Module):
    """`forward(obs, action)` calls the wrapped policy's `bc_loss`.

    `functional_call` only substitutes parameters around `forward`; through
    this wrapper it does so for `bc_loss` too, with names prefixed `policy.`.
    """

    def __init__(self, policy: Policy):
        super().__init__()
        self.policy = policy

    def forward(self, obs, action):
        return self.policy.bc_loss(obs, action)
