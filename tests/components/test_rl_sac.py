"""The SAC update and loop: TD targets, twin-Q vmap, temperature, compilation and learning."""

import functools

import gymnasium as gym
import numpy as np
import torch

from reparamdsl.components.rl.critics import QEnsemble
from reparamdsl.components.rl.envs import GymVectorEnv
from reparamdsl.components.rl.policies.flow import FlowPolicy
from reparamdsl.components.rl.policies.gaussian import GaussianPolicy
from reparamdsl.components.rl.policies.velocity import GatedVelocity
from reparamdsl.components.rl.sac import SACConfig, SACTask
from reparamdsl.components.rl.update import UpdateConfig, init_update_state, sac_update, soft_td_target

S, D = 3, 1


class FakeRun:
    def __init__(self, steps: int, seed: int = 0):
        self.train = {"steps": steps, "log_every": 100, "compile": False}
        self.device = torch.device("cpu")
        self.seed = seed
        self.resume = None
        self.stop_requested = None
        self.progress = None
        self.logs = []
        self.checkpoints = []

    def log(self, step, metrics):
        self.logs.append((step, metrics))

    def save_checkpoint(self, step, tensors, state, final=False):
        self.checkpoints.append((step, tensors, state))


class TargetBandit(gym.Env):
    """One-step episodes: reward -(a - target(s))^2 with target(s) = 0.8 s, s ~ U(-1, 1)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-1.0, 1.0, (1,)).astype(np.float32)
        return self.state.copy(), {}

    def step(self, action):
        reward = -float((np.asarray(action)[0] - 0.8 * self.state[0]) ** 2)
        return self.state.copy(), reward, True, False, {}


gym.register("TargetBanditRL-v0", entry_point=TargetBandit)


def make_update(actor, critic, autotune=True, target_entropy=-1.0):
    state = init_update_state(actor, critic, 0.2, {"actor": 1e-3, "critic": 1e-3, "alpha": 1e-2}, S,
                              torch.device("cpu"))
    config = UpdateConfig(0.99, 0.005, target_entropy, autotune, 0.0, False)
    return state, functools.partial(sac_update, actor, critic, config)


def random_batch(size=32):
    return {"obs": torch.randn(size, S), "actions": torch.rand(size, D) * 2 - 1, "rewards": torch.randn(size),
            "next_obs": torch.randn(size, S), "terminated": (torch.rand(size) < 0.5).float()}


def test_td_target_terminated_does_not_bootstrap():
    rewards = torch.tensor([1.0, 1.0])
    terminated = torch.tensor([1.0, 0.0])  # the second row is a truncated or ongoing transition
    next_q, next_log_prob = torch.tensor([10.0, 10.0]), torch.tensor([-2.0, -2.0])

    target = soft_td_target(rewards, terminated, next_q, next_log_prob, torch.tensor(0.5), 0.9)

    torch.testing.assert_close(target, torch.tensor([1.0, 1.0 + 0.9 * (10.0 + 0.5 * 2.0)]))


def test_truncated_transition_stored_as_bootstrapping():
    env = GymVectorEnv("Pendulum-v1", num_envs=1, max_episode_steps=3)
    env.reset(seed=0)
    steps = [env.step(np.zeros((1, 1))) for _ in range(3)]
    env.close()
    assert steps[-1].truncated[0]
    assert not steps[-1].terminated[0]


def test_twin_q_vmap_matches_members():
    torch.manual_seed(0)
    critic = QEnsemble(S, D, 32, 2, 2, layer_norm=True)
    obs, actions = torch.randn(7, S), torch.randn(7, D)
    q = critic(obs, actions)
    for index in range(2):
        separate = critic.member(index)(torch.cat([obs, actions], -1)).squeeze(-1)
        torch.testing.assert_close(q[index], separate)
    assert not torch.allclose(q[0], q[1])


def test_temperature_moves_toward_target():
    torch.manual_seed(0)
    actor, critic = GaussianPolicy(S, D, [1.0], 16, 1, -5.0, 2.0), QEnsemble(S, D, 16, 1, 2, False)
    # A target far above the achievable entropy raises alpha; a target far below lowers it.
    for target_entropy, direction in ((50.0, 1.0), (-50.0, -1.0)):
        state, update = make_update(actor, critic, target_entropy=target_entropy)
        start = state["log_alpha"]["log_alpha"].item()
        for _ in range(20):
            metrics = update(state, random_batch(), True, False)
        assert (state["log_alpha"]["log_alpha"].item() - start) * direction > 0
        assert metrics["losses/alpha"].item() > 0


def test_update_no_graph_breaks():
    torch.manual_seed(0)
    actor = FlowPolicy(S, D, [2.0], GatedVelocity(S, D, 8, 16, 1, 5.0), 2, 8, 16, -5.0, 0.0)
    critic = QEnsemble(S, D, 16, 1, 2, True)
    state, update = make_update(actor, critic)
    explanation = torch._dynamo.explain(update)(state, random_batch(), True, False)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_same_seed_same_first_updates():
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        actor = FlowPolicy(S, D, [2.0], GatedVelocity(S, D, 8, 16, 1, 5.0), 2, 8, 16, -5.0, 0.0)
        critic = QEnsemble(S, D, 16, 1, 2, False)
        state, update = make_update(actor, critic)
        batch = random_batch()
        for _ in range(3):
            update(state, batch, True, False)
        results.append(torch.cat([value.flatten() for value in state["actor"].values()]))
    assert torch.equal(results[0], results[1])


def bandit_return(actor, episodes=200) -> float:
    rng = np.random.default_rng(123)
    states = rng.uniform(-1.0, 1.0, (episodes, 1)).astype(np.float32)
    with torch.no_grad():
        actions = actor.act(torch.from_numpy(states)).numpy()
    return float(-((actions - 0.8 * states) ** 2).mean())


def test_sac_learns_target_bandit():
    torch.manual_seed(0)
    env = GymVectorEnv("TargetBanditRL-v0", num_envs=4, seed=0)
    actor = FlowPolicy(1, 1, env.action_scale, GatedVelocity(1, 1, 8, 32, 2, 5.0), 2, 8, 32, -5.0, 0.0)
    critic = QEnsemble(1, 1, 32, 2, 2, False)
    config = SACConfig(gamma=0.0, learning_starts=200, batch=64, utd=0.25, eval_every=0, eval_episodes=4,
                       actor_lr=3e-3, critic_lr=3e-3, alpha=0.02, autotune=False)
    task = SACTask(actor, critic, env, config)

    before = bandit_return(actor)
    run = FakeRun(steps=1600)
    task.fit(run)
    after = bandit_return(actor)

    # A uniform random action scores -(1/3 + 0.64/3) = -0.55 on average; the optimum is 0.
    assert after > -0.05, (before, after)
    assert after > before + 0.05
    assert any("losses/qf_loss" in metrics for _, metrics in run.logs)
    assert run.checkpoints and "replay.obs" in run.checkpoints[-1][1]


def test_fit_sets_and_restores_cpu_threads(monkeypatch):
    env = GymVectorEnv("TargetBanditRL-v0", num_envs=2, seed=0)
    actor = GaussianPolicy(1, 1, env.action_scale, 8, 1, -5.0, 2.0)
    critic = QEnsemble(1, 1, 8, 1, 2, False)
    task = SACTask(actor, critic, env, SACConfig(learning_starts=4, batch=4, eval_every=0, eval_episodes=1,
                                                 cpu_threads=1))
    seen = []
    update_once = task.update_once

    def recording_update(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return update_once(*args, **kwargs)

    monkeypatch.setattr(task, "update_once", recording_update)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        task.fit(FakeRun(steps=10))
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)

    assert seen
    assert set(seen) == {1}
    assert after == 2


def test_sps_window_skips_first_update():
    env = GymVectorEnv("TargetBanditRL-v0", num_envs=1, seed=0)
    actor = GaussianPolicy(1, 1, env.action_scale, 8, 1, -5.0, 2.0)
    critic = QEnsemble(1, 1, 8, 1, 2, False)
    task = SACTask(actor, critic, env, SACConfig(learning_starts=10, batch=4, eval_every=0, eval_episodes=1))
    run = FakeRun(steps=40)
    run.train["log_every"] = 10

    task.fit(run)
    sps_steps = [step for step, metrics in run.logs if "charts/sps" in metrics]
    loss_steps = [step for step, metrics in run.logs if "losses/qf_loss" in metrics]

    # The first update happens at step 10 and its window has no steps after it.
    assert loss_steps == [10, 20, 30, 40]
    assert sps_steps == [20, 30, 40]


def test_evaluation_seeds_differ_across_run_seeds(monkeypatch):
    env = GymVectorEnv("TargetBanditRL-v0", num_envs=1, seed=0)
    actor = GaussianPolicy(1, 1, env.action_scale, 8, 1, -5.0, 2.0)
    critic = QEnsemble(1, 1, 8, 1, 2, False)
    task = SACTask(actor, critic, env, SACConfig(eval_episodes=10))
    task.device = torch.device("cpu")
    seeds = []
    spawn = env.spawn

    def recording_spawn(num_envs, seed):
        seeds.append(seed)
        return spawn(num_envs, seed)

    monkeypatch.setattr(env, "spawn", recording_spawn)
    for run_seed, step in ((0, 2000), (1, 2000), (0, 4000), (1, 1999)):
        task.evaluate(run_seed, step)

    # Each evaluation resets sub-environment i with seed + i: no two of these ten-seed ranges may overlap.
    starts = sorted(seeds)
    assert len(set(starts)) == 4
    assert all(later - earlier >= 10 for earlier, later in zip(starts, starts[1:]))
