"""Vectorized gymnasium environments with the bookkeeping off-policy RL needs.

Gymnasium 1.x vector environments reset finished sub-environments themselves.
`GymVectorEnv.step` turns each vector step into transitions that are safe to
store:

- `same_step` autoreset (the default here): a finished sub-environment is
  reset inside the same step, its returned observation is the reset one and
  `info["final_obs"]` contains the true last observation. The transition stores
  the final observation as `next_obs`.
- `next_step` autoreset (gymnasium's default): the step after a finished one
  only resets that sub-environment and ignores its action. That step's
  transition would run from a terminal observation to a reset observation,
  so it is marked invalid (`valid = False`) and must not be stored.

Terminated and truncated stay separate: the critic target bootstraps through
truncation (a time limit) and never through termination.
"""

from __future__ import annotations

import logging

import attrs
import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from reparamdsl.components.rl.normalize import RunningMeanStd

logger = logging.getLogger(__name__)

AUTORESET_MODES = {"same_step": AutoresetMode.SAME_STEP, "next_step": AutoresetMode.NEXT_STEP}


@attrs.frozen
class Transitions:
    """One vector step: arrays with a leading sub-environment axis; store only the rows where `valid`."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray


class GymVectorEnv:
    """A seeded gymnasium vector environment whose policy acts in the unit box [-1, 1]^D.

    Attributes:
        obs_dim, action_dim: flat observation and action sizes.
        action_low, action_high, action_scale, action_bias: the environment's box,
            with env action = action_bias + action_scale * u for u in [-1, 1].
        obs_stats: running observation statistics when `normalize_obs` is set, else None.
        episode_returns, episode_lengths: finished episodes since the last `pop_episodes`.
    """

    def __init__(self, env_id: str, num_envs: int = 1, vectorization: str = "sync", autoreset: str = "same_step",
                 max_episode_steps: int | None = None, normalize_obs: bool = False, seed: int = 0):
        self.env_id = env_id
        self.num_envs = num_envs
        self.vectorization = vectorization
        self.autoreset = autoreset
        self.max_episode_steps = max_episode_steps
        self.normalize_obs = normalize_obs
        self.seed = seed

        kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
        self.env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vectorization,
                                vector_kwargs={"autoreset_mode": AUTORESET_MODES[autoreset]}, **kwargs)
        self._check_spaces()

        self.obs_stats = RunningMeanStd((self.obs_dim,)) if normalize_obs else None
        self._obs: np.ndarray | None = None
        self._reset_pending = np.zeros(num_envs, bool)
        self._running_return = np.zeros(num_envs)
        self._running_length = np.zeros(num_envs, np.int64)
        self.episode_returns: list[float] = []
        self.episode_lengths: list[int] = []

    def _check_spaces(self) -> None:
        action_space = self.env.single_action_space
        obs_space = self.env.single_observation_space
        if not isinstance(action_space, gym.spaces.Box):
            self.env.close()
            raise ValueError(f"environment {self.env_id} has a {type(action_space).__name__} action space; "
                             "SAC needs a continuous Box action space")
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            self.env.close()
            raise ValueError(f"environment {self.env_id} has an unbounded action box "
                             f"[{action_space.low}, {action_space.high}]; the policy needs finite bounds to rescale to")
        if not isinstance(obs_space, gym.spaces.Box):
            self.env.close()
            raise ValueError(f"environment {self.env_id} has a {type(obs_space).__name__} observation space; "
                             "only Box observations are supported")

        self.obs_dim = int(np.prod(obs_space.shape))
        self.action_dim = int(np.prod(action_space.shape))
        self.action_low = action_space.low.astype(np.float64).reshape(-1)
        self.action_high = action_space.high.astype(np.float64).reshape(-1)
        self.action_scale = (self.action_high - self.action_low) / 2.0
        self.action_bias = (self.action_high + self.action_low) / 2.0
        self._action_shape = action_space.shape

    def to_env_action(self, unit_actions: np.ndarray) -> np.ndarray:
        """Map actions from [-1, 1]^D (clipped first) to the environment's box."""
        unit = np.clip(np.asarray(unit_actions, np.float64), -1.0, 1.0)
        env_actions = self.action_bias + self.action_scale * unit
        env_actions = np.clip(env_actions, self.action_low, self.action_high)
        dtype = self.env.single_action_space.dtype
        return env_actions.astype(dtype).reshape((self.num_envs, *self._action_shape))

    def _flat(self, obs) -> np.ndarray:
        return np.asarray(obs, np.float32).reshape(self.num_envs, self.obs_dim)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every sub-environment; sub-environment i gets seed `seed + i` (default: the env's seed)."""
        seed = self.seed if seed is None else seed
        obs, _ = self.env.reset(seed=[seed + i for i in range(self.num_envs)])
        self.env.action_space.seed(seed)
        self._obs = self._flat(obs)
        self._reset_pending[:] = False
        self._running_return[:] = 0.0
        self._running_length[:] = 0
        if self.obs_stats is not None:
            self.obs_stats.update(self._obs)
        return self._obs

    @property
    def obs(self) -> np.ndarray:
        """The observations the policy acts on next (reset observations after an episode ends)."""
        if self._obs is None:
            raise RuntimeError(f"environment {self.env_id} was stepped before reset(); call reset(seed) first")
        return self._obs

    def step(self, unit_actions: np.ndarray) -> Transitions:
        obs = self.obs
        next_obs, rewards, terminated, truncated, info = self.env.step(self.to_env_action(unit_actions))
        next_obs = self._flat(next_obs)
        rewards = np.asarray(rewards, np.float64)
        terminated = np.asarray(terminated, bool)
        truncated = np.asarray(truncated, bool)

        final_obs = next_obs.copy()
        if self.autoreset == "same_step":
            valid = np.ones(self.num_envs, bool)
            if "_final_obs" in info:
                for i in np.flatnonzero(info["_final_obs"]):
                    final_obs[i] = np.asarray(info["final_obs"][i], np.float32).reshape(self.obs_dim)
        else:
            valid = ~self._reset_pending
            self._reset_pending = terminated | truncated

        self._track_episodes(rewards, terminated | truncated, valid)
        if self.obs_stats is not None:
            self.obs_stats.update(next_obs)
        self._obs = next_obs

        return Transitions(obs=obs, actions=np.asarray(unit_actions, np.float32).reshape(self.num_envs, -1),
                           rewards=rewards.astype(np.float32), next_obs=final_obs, terminated=terminated,
                           truncated=truncated, valid=valid)

    def _track_episodes(self, rewards, done, valid) -> None:
        self._running_return += np.where(valid, rewards, 0.0)
        self._running_length += valid
        for i in np.flatnonzero(done & valid):
            self.episode_returns.append(float(self._running_return[i]))
            self.episode_lengths.append(int(self._running_length[i]))
            self._running_return[i] = 0.0
            self._running_length[i] = 0

    def pop_episodes(self) -> tuple[list[float], list[int]]:
        """Return and clear the returns and lengths of the episodes finished since the last call."""
        returns, lengths = self.episode_returns, self.episode_lengths
        self.episode_returns, self.episode_lengths = [], []
        return returns, lengths

    def spawn(self, num_envs: int, seed: int) -> GymVectorEnv:
        """Return a new environment with this one's settings (for evaluation), without its own statistics."""
        return GymVectorEnv(self.env_id, num_envs, "sync", "same_step", self.max_episode_steps, False, seed)

    def close(self) -> None:
        self.env.close()


def build(params: dict, ctx) -> GymVectorEnv:
    return GymVectorEnv(params["id"], params["envs"], params["vectorization"], params["autoreset"],
                        params["max_episode_steps"], params["normalize_obs"], seed=ctx.seed)
