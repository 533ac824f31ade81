"""Collect an offline dataset (see `offline.py` for the npz format) by running a policy in an environment.

Command line: `python -m reparamdsl.components.rl.collect --env Pendulum-v1 --steps 10000 --out data.npz`
records a uniform random policy.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from reparamdsl.components.rl.envs import GymVectorEnv
from reparamdsl.components.rl.offline import REQUIRED_KEYS, save_dataset

logger = logging.getLogger(__name__)


def collect(env: GymVectorEnv, steps: int, path: str, actor=None, deterministic: bool = False, seed: int = 0,
            obs_transform=None) -> dict[str, np.ndarray]:
    """Run `actor` (None: uniform random actions) for `steps` stored transitions and save them to `path`.

    `obs_transform` maps a float32 observation tensor to the actor's input
    (observation normalization); the dataset always stores raw observations.
    Returns the saved arrays.
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, list[np.ndarray]] = {key: [] for key in REQUIRED_KEYS}
    stored = 0
    obs = env.reset(seed=seed)
    device = next(actor.parameters()).device if actor is not None else torch.device("cpu")

    while stored < steps:
        if actor is None:
            actions = rng.uniform(-1.0, 1.0, (env.num_envs, env.action_dim)).astype(np.float32)
        else:
            with torch.no_grad():
                inputs = torch.as_tensor(obs, dtype=torch.float32, device=device)
                if obs_transform is not None:
                    inputs = obs_transform(inputs)
                actions = (actor.act(inputs) if deterministic else actor(inputs)[0]).cpu().numpy()

        step = env.step(actions)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Record an offline RL dataset as npz.")
    parser.add_argument("--env", required=True, help="gymnasium id, such as Pendulum-v1")
    parser.add_argument("--steps", type=int, required=True, help="transitions to record")
    parser.add_argument("--out", required=True, help="output .npz path")
    parser.add_argument("--envs", type=int, default=1, help="sub-environments stepped together")
    parser.add_argument("--max-episode-steps", type=int, default=None, help="time limit per episode")
    parser.add_argument("--seed", type=int, default=0, help="environment and action seed")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    env = GymVectorEnv(args.env, args.envs, max_episode_steps=args.max_episode_steps, seed=args.seed)
    try:
        # TODO: record a trained actor from a program checkpoint once `rpc collect` lowers programs.
        collect(env, args.steps, args.out, seed=args.seed)
    finally:
        env.close()


if __name__ == "__main__":
    main()
