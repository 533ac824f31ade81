"""Write pendulum_swingup.npz: 10k Pendulum-v1 transitions from a noisy energy-based swing-up controller.

Run from the repository root: `python programs/data/make_pendulum_dataset.py`.
The format is the offline dataset format of reparamdsl.components.rl.offline.

Pendulum-v1 (m = l = 1, g = 10, angle 0 upright) follows
theta'' = 15 sin(theta) + 3 u, so H = theta'^2 / 2 + 15 cos(theta) has
dH/dt = 3 u theta' and equals 15 at rest upright. Far from upright the
controller pumps energy with u = k (15 - H) sign(theta'); near upright it
balances with a PD law. Gaussian noise on every action and a share of
uniform random actions keep the data diverse, so the dataset is neither
expert-only nor random-only.
"""

from __future__ import annotations

import argparse
import logging
import os

import numpy as np

from reparamdsl.components.rl.collect import collect
from reparamdsl.components.rl.envs import GymVectorEnv

MAX_TORQUE = 2.0
UPRIGHT_ENERGY = 15.0


def swing_up_torque(obs: np.ndarray) -> np.ndarray:
    """Return the controller's torque in [-2, 2] for observations (N, 3) of (cos, sin, angular velocity)."""
    cos, sin, velocity = obs[:, 0], obs[:, 1], obs[:, 2]
    angle = np.arctan2(sin, cos)

    energy = 0.5 * velocity**2 + UPRIGHT_ENERGY * cos
    pump = 0.5 * (UPRIGHT_ENERGY - energy) * np.sign(velocity + 1e-6)
    balance = -(10.0 * angle + 2.0 * velocity)
    torque = np.where(cos > 0.85, balance, pump)
    return np.clip(torque, -MAX_TORQUE, MAX_TORQUE)


def noisy_controller(noise_std: float, random_share: float, seed: int):
    """Return a unit-box policy: the controller plus Gaussian noise, or a uniform action with `random_share`."""
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray) -> np.ndarray:
        unit = swing_up_torque(obs) / MAX_TORQUE + rng.normal(0.0, noise_std, obs.shape[0])
        uniform = rng.uniform(-1.0, 1.0, obs.shape[0])
        unit = np.where(rng.random(obs.shape[0]) < random_share, uniform, unit)
        return np.clip(unit, -1.0, 1.0).astype(np.float32).reshape(-1, 1)

    return act


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="transitions to record")
    parser.add_argument("--noise", type=float, default=0.3, help="std of the Gaussian noise on unit-box actions")
    parser.add_argument("--random-share", type=float, default=0.3, help="fraction of uniform random actions")
    parser.add_argument("--seed", type=int, default=0, help="environment and noise seed")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "pendulum_swingup.npz"),
                        help="output .npz path")
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    env = GymVectorEnv("Pendulum-v1", num_envs=1, seed=args.seed)
    try:
        collect(env, args.steps, args.out, seed=args.seed,
                policy=noisy_controller(args.noise, args.random_share, args.seed))
    finally:
        env.close()


if __name__ == "__main__":
    main()
