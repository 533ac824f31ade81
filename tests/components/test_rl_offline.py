"""Offline datasets: collection round trip, validation errors and the offline-to-online loop."""

import numpy as np
import pytest
import torch

from reparamdsl.components.rl.collect import collect
from reparamdsl.components.rl.critics import QEnsemble
from reparamdsl.components.rl.envs import GymVectorEnv
from reparamdsl.components.rl.offline import load_dataset
from reparamdsl.components.rl.policies.flow import FlowPolicy
from reparamdsl.components.rl.policies.velocity import GatedVelocity
from reparamdsl.components.rl.sac import SACConfig, SACTask
from reparamdsl.diagnostics import ProgramError
from tests.components.test_rl_sac import FakeRun


@pytest.fixture
def pendulum():
    env = GymVectorEnv("Pendulum-v1", num_envs=2, max_episode_steps=20, seed=0)
    yield env
    env.close()


def test_collect_round_trip(tmp_path, pendulum):
    path = str(tmp_path / "data.npz")
    data = collect(pendulum, 100, path, seed=1)
    loaded = load_dataset(path, pendulum)

    assert loaded["obs"].shape == (100, 3)
    assert data["truncated"].sum() > 0
    np.testing.assert_allclose(loaded["actions"] * 2.0, data["actions"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(loaded["next_obs"], data["next_observations"])


def test_missing_dataset_names_file(tmp_path, pendulum):
    path = str(tmp_path / "absent.npz")
    with pytest.raises(ProgramError, match="absent.npz: file not found"):
        load_dataset(path, pendulum)


def test_shape_mismatch_names_file(tmp_path, pendulum):
    path = str(tmp_path / "wide.npz")
    np.savez(path, observations=np.zeros((4, 5)), actions=np.zeros((4, 1)), rewards=np.zeros(4),
             next_observations=np.zeros((4, 5)), terminated=np.zeros(4, bool), truncated=np.zeros(4, bool))
    with pytest.raises(ProgramError, match="wide.npz: observations have 5 values per row"):
        load_dataset(path, pendulum)


def test_action_box_mismatch_names_file(tmp_path, pendulum):
    path = str(tmp_path / "box.npz")
    np.savez(path, observations=np.zeros((4, 3)), actions=np.full((4, 1), 3.0), rewards=np.zeros(4),
             next_observations=np.zeros((4, 3)), terminated=np.zeros(4, bool), truncated=np.zeros(4, bool))
    with pytest.raises(ProgramError, match="box.npz: action row 0"):
        load_dataset(path, pendulum)


def test_row_count_mismatch_names_file(tmp_path, pendulum):
    path = str(tmp_path / "rows.npz")
    np.savez(path, observations=np.zeros((4, 3)), actions=np.zeros((3, 1)), rewards=np.zeros(4),
             next_observations=np.zeros((4, 3)), terminated=np.zeros(4, bool), truncated=np.zeros(4, bool))
    with pytest.raises(ProgramError, match="rows.npz: arrays have different numbers of rows"):
        load_dataset(path, pendulum)


def test_offline_to_online_runs(tmp_path, pendulum):
    path = str(tmp_path / "data.npz")
    collect(pendulum, 200, path, seed=1)
    torch.manual_seed(0)
    actor = FlowPolicy(3, 1, pendulum.action_scale, GatedVelocity(3, 1, 8, 16, 1, 5.0), 2, 8, 16, -5.0, 0.0)
    critic = QEnsemble(3, 1, 16, 1, 2, False)
    config = SACConfig(learning_starts=0, batch=32, eval_every=0, eval_episodes=2, dataset=path,
                       offline_steps=30, bc_weight=0.5)
    task = SACTask(actor, critic, pendulum, config)

    run = FakeRun(steps=40)
    task.fit(run)

    assert task.counters["offline_updates"] == 30
    assert task.counters["updates"] == 40
    assert task.buffer.size == 240
    assert any("offline/bc_loss" in metrics for _, metrics in run.logs)
