"""The flow policy: K noisy Euler steps of a velocity field, then tanh.

Sampling (uniform grid t_i = i / K, dt = 1 / K):

    A_0 ~ N(0, I)
    A_{i+1} = A_i + v(s, A_i, t_i) dt + sigma(s) eps_i,   eps_i ~ N(0, I) fresh at every step
    u = tanh(A_K),   env action = scale * u + bias

Every step is a Gaussian transition, so the sampled path has the exact
log-density

    log N(A_0; 0, I) + sum_i log N(A_{i+1}; A_i + v_i dt, sigma^2) - sum log(scale (1 - tanh(A_K)^2)),

which is what `forward` returns as log pi; the tanh term uses the softplus
form. This is a density over the whole path (A_0 ... A_K), not the marginal
density of the action, and SAC's entropy term uses it as a tractable surrogate.
Every variant keeps the -log sigma terms. The SAC Flow reference code drops
them in its Flow-T variant, so there the entropy bonus ignores sigma.
"""

from __future__ import annotations

import torch
from torch import nn

from reparamdsl.components.rl.layers import TimeEmbedding, gaussian_log_prob, mlp, squash_log_det
from reparamdsl.components.rl.policies.base import Policy, env_dims, standard_normal_entropy


class FlowPolicy(Policy):
    """A flow-based actor trained end to end through its noise-augmented Euler rollout."""

    def __init__(self, obs_dim, action_dim, action_scale, velocity: nn.Module, steps: int, time_dim: int,
                 noise_hidden: int, log_std_min: float, log_std_max: float):
        super().__init__(obs_dim, action_dim, action_scale)
        self.velocity = velocity
        self.steps = steps
        self.time_embedding = TimeEmbedding(time_dim)
        self.noise_std = mlp(obs_dim, noise_hidden, 1, action_dim)
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max
        self.register_buffer("times", torch.arange(steps, dtype=torch.float32) / steps, persistent=False)

    def noise_log_std(self, obs: torch.Tensor) -> torch.Tensor:
        raw = self.noise_std(obs)
        return self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(raw) + 1.0)

    def step_velocity(self, obs: torch.Tensor, action: torch.Tensor, i: int) -> torch.Tensor:
        time_features = self.time_embedding(self.times[i]).expand(obs.shape[0], -1)
        return self.velocity(obs, action, time_features)

    def rollout(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Sample one path; `noise` (K + 1, B, D) contains A_0 then eps_0 ... eps_{K-1}.

        Returns the path (K + 1, B, D), the step means (K, B, D), log sigma (B, D) and log pi (B,).
        """
        B, K, D = obs.shape[0], self.steps, self.action_dim
        if noise is None:
            noise = torch.randn(K + 1, B, D, device=obs.device, dtype=obs.dtype)
        log_std = self.noise_log_std(obs)
        std = log_std.exp()
        dt = 1.0 / K

        action = noise[0]
        log_prob = gaussian_log_prob(action, torch.zeros_like(action))
        path, means = [action], []
        for i in range(K):
            mean = action + self.step_velocity(obs, action, i) * dt
            action = mean + std * noise[i + 1]
            log_prob = log_prob + gaussian_log_prob(noise[i + 1], log_std)
            path.append(action)
            means.append(mean)

        log_prob = log_prob - squash_log_det(action) - self.log_scale_sum
        return {"path": torch.stack(path), "means": torch.stack(means), "log_std": log_std, "log_prob": log_prob}

    def forward(self, obs, noise=None):
        rollout = self.rollout(obs, noise)
        return torch.tanh(rollout["path"][-1]), rollout["log_prob"]

    def act(self, obs):
        """Return the deterministic action: A_0 = 0 and no step noise."""
        action = torch.zeros(obs.shape[0], self.action_dim, device=obs.device, dtype=obs.dtype)
        for i in range(self.steps):
            action = action + self.step_velocity(obs, action, i) / self.steps
        return torch.tanh(action)

    def bc_loss(self, obs, action):
        """Return the flow-matching loss toward dataset actions, on the straight path from N(0, I) to atanh(u)."""
        target = self.pre_tanh(action)
        source = torch.randn_like(target)
        t = torch.rand(obs.shape[0], 1, device=obs.device, dtype=obs.dtype)
        point = (1.0 - t) * source + t * target
        velocity = self.velocity(obs, point, self.time_embedding(t.squeeze(-1)))
        return (velocity - (target - source)).pow(2).sum(-1).mean()

    def default_target_entropy(self) -> float:
        """Return -D plus the entropy of the A_0 prior.

        log pi counts log N(A_0; 0, I), whose expected value no parameter can
        change. Adding its entropy D/2 log(2 pi e) keeps the usual -D target
        for everything the actor controls.
        """
        return -float(self.action_dim) + standard_normal_entropy(self.action_dim)


def build(params: dict, ctx) -> FlowPolicy:
    obs_dim, action_dim, action_scale = env_dims(params["env"], ctx)
    velocity = params["velocity"]
    if isinstance(velocity, str):
        spec = ctx.registry.get("velocity", velocity)
        velocity = {"kind": "velocity", "component": velocity,
                    "params": {param.name: param.default for param in spec.params}}
    make_velocity = ctx.build(velocity)
    return FlowPolicy(obs_dim, action_dim, action_scale, make_velocity(obs_dim, action_dim, params["time_dim"]),
                      params["steps"], params["time_dim"], params["noise_hidden"],
                      params["log_std_min"], params["log_std_max"])
