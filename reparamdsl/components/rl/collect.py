"""Collect an offline dataset (see `offline.py` for the npz format) by running a policy in an environment.

The command line is `rpc collect` (reparamdsl/cli/collect_cmd.py): it records a
trained run's actor or uniform random actions.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch

from reparamdsl.components.rl.envs import GymVectorEnv
from reparamdsl.components.rl.offline import REQUIRED_KEYS, save_dataset

logger = logging.getLogger(__name__)

UnitPolicy = Callable[[np.ndarray], np.ndarray]
"""Map observations (num_envs, obs_dim) to actions (num_envs, action_dim) in the unit box [-1, 1]."""


def actor_policy(actor: torch.nn.Module, deterministic: bool = False, obs_transform=None) -> UnitPolicy:
    """Wrap a policy module (`forward` samples, `act` is deterministic) as a numpy `UnitPolicy`.

    `obs_transform` maps a float32 observation tensor to the actor's input,
    such as the observation normalization the actor was trained with.
    """
    device = next(actor.parameters()).device

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            inputs = torch.as_tensor(obs, dtype=torch.float32, device=device)
            if obs_transform is not None:
                inputs = obs_transform(inputs)
            actions = actor.act(inputs) if deterministic else actor(inputs)[0]
        return actions.cpu().numpy()

    return act


def random_policy(env: GymVectorEnv, seed: int) -> UnitPolicy:
    """Return a policy of uniform random actions in the unit box, seeded by `seed`."""
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, (env.num_envs, env.action_dim)).astype(np.float32)

    return act


def collect(env: GymVectorEnv, steps: int, path: str, actor=None, deterministic: bool = False, seed: int = 0,
            obs_transform=None, policy: UnitPolicy | None = None) -> dict[str, np.ndarray]:
    """Run a policy for `steps` stored transitions and save them to `path`; return the saved arrays.

    The policy is `policy` when given, else `actor` wrapped by `actor_policy`,
    else uniform random actions. The dataset stores raw observations and
    actions in the environment's units.
    """
    if policy is None:
        policy = random_policy(env, seed) if actor is None else actor_policy(actor, deterministic, obs_transform)
    rows: dict[str, list[np.ndarray]] = {key: [] for key in REQUIRED_KEYS}
    stored = 0
    obs = env.reset(seed=seed)

    while stored < steps:
        step = env.step(policy(obs))
        valid = step.valid
        rows["observations"].append(step.obs[valid])
        rows["actions"].append(env.to_env_action(step.actions)[valid].reshape(-1, env.action_dim))
        rows["rewards"].append(step.rewards[valid])
        rows["next_observations"].append(step.next_obs[valid])
        rows["terminated"].append(step.terminated[valid])
        rows["truncated"].append(step.truncated[valid])
        stored += int(valid.sum())
        obs = env.obs

    data = {key: np.concatenate(value)[:steps] for key, value in rows.items()}
    save_dataset(path, data, env)
    returns, _ = env.pop_episodes()
    logger.info("collected %d transitions from %s into %s (%d episodes, mean return %s)", steps, env.env_id, path,
                len(returns), f"{np.mean(returns):.1f}" if returns else "n/a")
    return data
