"""Vector environments and the replay buffer: action rescaling, autoreset handling, final observations."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from reparamdsl.components.rl.envs import GymVectorEnv
from reparamdsl.components.rl.replay import ReplayBuffer


class CounterEnv(gym.Env):
    """obs = [steps since reset, 1]; terminates with probability 0.2 per step, so episodes end both ways."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-3.0, 1.0, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.count = 0
        return np.array([0.0, 1.0], np.float32), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, np.float32))
        self.count += 1
        terminated = bool(self.np_random.random() < 0.2)
        return np.array([self.count, 1.0], np.float32), 1.0, terminated, False, {}


gym.register("CounterRL-v0", entry_point=CounterEnv, max_episode_steps=6)


def run_into_buffer(env: GymVectorEnv, steps: int) -> tuple[ReplayBuffer, int, int]:
    buffer = ReplayBuffer(steps * env.num_envs, env.obs_dim, env.action_dim, torch.device("cpu"))
    rng = np.random.default_rng(0)
    env.reset(seed=3)
    terminated = truncated = 0
    for _ in range(steps):
        step = env.step(rng.uniform(-1.0, 1.0, (env.num_envs, env.action_dim)))
        valid = step.valid
        buffer.add(step.obs[valid], step.actions[valid], step.rewards[valid], step.next_obs[valid],
                   step.terminated[valid])
        terminated += int((step.terminated & valid).sum())
        truncated += int((step.truncated & valid).sum())
    return buffer, terminated, truncated


@pytest.mark.parametrize("autoreset", ["same_step", "next_step"])
def test_counter_env_no_terminal_to_reset(autoreset):
    env = GymVectorEnv("CounterRL-v0", num_envs=4, autoreset=autoreset)
    buffer, terminated, truncated = run_into_buffer(env, 300)
    env.close()

    obs, next_obs = buffer.storage["obs"][: buffer.size], buffer.storage["next_obs"][: buffer.size]
    assert terminated > 0
    assert truncated > 0
    torch.testing.assert_close(next_obs[:, 0], obs[:, 0] + 1.0)


@pytest.mark.parametrize("autoreset", ["same_step", "next_step"])
def test_pendulum_stored_transitions_follow_dynamics(autoreset):
    env = GymVectorEnv("Pendulum-v1", num_envs=3, autoreset=autoreset, max_episode_steps=7)
    buffer, _, truncated = run_into_buffer(env, 200)
    env.close()

    obs = buffer.storage["obs"][: buffer.size].double()
    next_obs = buffer.storage["next_obs"][: buffer.size].double()
    angle = torch.atan2(obs[:, 1], obs[:, 0])
    next_angle = torch.atan2(next_obs[:, 1], next_obs[:, 0])
    # Pendulum integrates theta' = theta + new_thdot * 0.05; a reset observation breaks this.
    step = torch.remainder(next_angle - angle - next_obs[:, 2] * 0.05 + torch.pi, 2 * torch.pi) - torch.pi
    assert truncated > 0
    assert step.abs().max() < 1e-4
    if autoreset == "same_step":
        assert buffer.size == 200 * 3
    else:
        assert buffer.size < 200 * 3


def test_next_step_skips_reset_rows():
    env = GymVectorEnv("Pendulum-v1", num_envs=2, autoreset="next_step", max_episode_steps=5)
    env.reset(seed=0)
    valid = [env.step(np.zeros((2, 1))).valid.copy() for _ in range(12)]
    env.close()
    # steps 1-5 are the episode, step 6 only resets, steps 7-11 the next episode, step 12 resets again
    expected = [True] * 5 + [False] + [True] * 5 + [False]
    assert [bool(v[0]) for v in valid] == expected
    assert [bool(v[1]) for v in valid] == expected


def test_action_rescaling_to_box():
    env = GymVectorEnv("CounterRL-v0", num_envs=3)
    unit = np.array([[-1.0], [0.0], [1.0]])
    np.testing.assert_allclose(env.to_env_action(unit).reshape(-1), [-3.0, -1.0, 1.0])
    np.testing.assert_allclose(env.to_env_action(np.array([[5.0], [-5.0], [0.5]])).reshape(-1), [1.0, -3.0, 0.0])
    env.close()


def test_final_observation_stored_on_truncation():
    env = GymVectorEnv("CounterRL-v0", num_envs=1, autoreset="same_step")
    env.reset(seed=11)
    for _ in range(40):
        step = env.step(np.zeros((1, 1)))
        if step.terminated[0] or step.truncated[0]:
            assert step.next_obs[0, 0] == step.obs[0, 0] + 1.0
            assert env.obs[0, 0] == 0.0
    env.close()


def test_discrete_action_space_rejected():
    with pytest.raises(ValueError, match="CartPole-v1 has a Discrete action space"):
        GymVectorEnv("CartPole-v1")


def test_replay_buffer_wraps_around():
    buffer = ReplayBuffer(5, 1, 1, torch.device("cpu"))
    for start in range(0, 8, 2):
        values = np.arange(start, start + 2, dtype=np.float32)
        buffer.add(values[:, None], values[:, None], values, values[:, None] + 1, np.zeros(2, bool))
    assert buffer.size == 5
    assert sorted(buffer.storage["rewards"].tolist()) == [3.0, 4.0, 5.0, 6.0, 7.0]
    batch = buffer.sample(64, torch.Generator().manual_seed(0))
    torch.testing.assert_close(batch["next_obs"][:, 0], batch["obs"][:, 0] + 1)
