"""The standard SAC actor: a tanh-squashed diagonal Gaussian."""

from __future__ import annotations

import torch

from reparamdsl.components.rl.layers import gaussian_log_prob, mlp, squash_log_det
from reparamdsl.components.rl.policies.base import Policy, env_dims


class GaussianPolicy(Policy):
    """u = tanh(mu(s) + sigma(s) * eps) with log sigma squashed into [log_std_min, log_std_max]."""

    def __init__(self, obs_dim, action_dim, action_scale, hidden: int, depth: int,
                 log_std_min: float, log_std_max: float):
        super().__init__(obs_dim, action_dim, action_scale)
        self.net = mlp(obs_dim, hidden, depth, 2 * action_dim)
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max

    def distribution_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self.net(obs).chunk(2, dim=-1)
        # tanh keeps the gradient alive near the bounds, unlike a hard clamp
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(raw) + 1.0)
        return mean, log_std

    def forward(self, obs, noise=None):
        mean, log_std = self.distribution_params(obs)
        if noise is None:
            noise = torch.randn_like(mean)

        pre_tanh = mean + log_std.exp() * noise
        log_prob = gaussian_log_prob(noise, log_std) - squash_log_det(pre_tanh) - self.log_scale_sum
        return torch.tanh(pre_tanh), log_prob

    def act(self, obs):
        mean, _ = self.distribution_params(obs)
        return torch.tanh(mean)

    def bc_loss(self, obs, action):
        mean, log_std = self.distribution_params(obs)
        noise = (self.pre_tanh(action) - mean) * torch.exp(-log_std)
        return -gaussian_log_prob(noise, log_std).mean()


def build(params: dict, ctx) -> GaussianPolicy:
    obs_dim, action_dim, action_scale = env_dims(params["env"], ctx)
    return GaussianPolicy(obs_dim, action_dim, action_scale, params["hidden"], params["depth"],
                          params["log_std_min"], params["log_std_max"])
