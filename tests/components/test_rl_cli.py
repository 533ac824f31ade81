"""`rpc run` of the SAC Flow program and `rpc collect` from its run folder, through the CLI."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from reparamdsl.cli.main import main
from reparamdsl.components.rl.policies.flow import FlowPolicy
from reparamdsl.components.rl.policies.velocity import GatedVelocity

FLOW_PROGRAM = "programs/sac_flow_g_pendulum.rp"
TINY = ["train.steps=240", "train.log_every=40", "train.compile=false", "sac_loss.learning_starts=60",
        "sac_loss.batch=16", "sac_loss.eval_every=0", "sac_loss.eval_episodes=2", "pendulum.max_episode_steps=40",
        "actor.velocity.hidden=16", "actor.noise_hidden=16", "critic.hidden=16"]


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "flow"
    result = invoke("run", FLOW_PROGRAM, *TINY, "--no-progress", "--device", "cpu", "--out", str(folder))
    assert result.exit_code == 0, result.output
    return folder


def pendulum_reward(obs: np.ndarray, torque: np.ndarray) -> np.ndarray:
    """Pendulum-v1 reward from (cos, sin, angular velocity) and torque, written out from its definition."""
    angle = np.arctan2(obs[:, 1], obs[:, 0])
    return -(angle**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * torque**2)


def test_run_writes_returns_losses_checkpoint(flow_run):
    records = [json.loads(line) for line in (flow_run / "metrics.jsonl").read_text().splitlines()]
    returns = [r for r in records if "charts/episodic_return" in r]
    losses = [r for r in records if "losses/qf_loss" in r]

    assert [r["step"] for r in returns] == [40, 80, 120, 160, 200, 240]
    assert all(r["charts/episodic_length"] == 40.0 for r in returns)
    assert losses and all(r["step"] >= 60 for r in losses)
    assert all(np.isfinite(r["losses/actor_loss"]) for r in losses if "losses/actor_loss" in r)
    assert (flow_run / "checkpoints" / "final" / "tensors.safetensors").is_file()
    assert json.loads((flow_run / "checkpoints" / "final" / "state.json").read_text())["step"] == 240


def test_collect_deterministic_matches_checkpoint_actor(flow_run, tmp_path):
    out = tmp_path / "expert.npz"
    result = invoke("collect", str(flow_run), "--steps", "50", "--deterministic", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = np.load(out)

    # An actor built by hand from the same sizes, loaded straight from the safetensors file.
    actor = FlowPolicy(3, 1, [2.0], GatedVelocity(3, 1, 16, 16, 2, 5.0), 4, 16, 16, -5.0, 0.0)
    tensors = load_file(str(flow_run / "checkpoints" / "final" / "tensors.safetensors"))
    loaded = actor.load_state_dict({name[len("actor."):]: value for name, value in tensors.items()
                                    if name.startswith("actor.")}, strict=False)
    assert not set(loaded.missing_keys) & {name for name, _ in actor.named_parameters()}
    with torch.no_grad():
        expected = actor.act(torch.as_tensor(data["observations"])).numpy() * 2.0

    assert data["observations"].shape == (50, 3)
    np.testing.assert_allclose(data["actions"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data["rewards"], pendulum_reward(data["observations"], data["actions"][:, 0]),
                               rtol=1e-4, atol=1e-4)
    assert data["truncated"].sum() == 1  # the run's 40-step limit carries over


def test_collect_random_stays_in_box(tmp_path):
    out = tmp_path / "random.npz"
    result = invoke("collect", "--env", "Pendulum-v1", "--random", "--steps", "120", "--envs", "2",
                    "--max-episode-steps", "30", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = np.load(out)

    assert data["actions"].shape == (120, 1)
    assert data["actions"].min() >= -2.0
    assert data["actions"].max() <= 2.0
    assert data["actions"].std() > 0.8  # uniform on [-2, 2] has std 1.15
    assert data["truncated"].sum() == 4
    assert not data["terminated"].any()
    np.testing.assert_allclose(data["rewards"], pendulum_reward(data["observations"], data["actions"][:, 0]),
                               rtol=1e-4, atol=1e-4)


def test_collect_rejects_bad_arguments(tmp_path):
    missing = invoke("collect", "--steps", "5", "--out", str(tmp_path / "x.npz"))
    both = invoke("collect", str(tmp_path), "--env", "Pendulum-v1", "--random", "--steps", "5",
                  "--out", str(tmp_path / "x.npz"))
    not_a_run = invoke("collect", str(tmp_path), "--steps", "5", "--out", str(tmp_path / "x.npz"))

    assert missing.exit_code == 2
    assert "--env ID --random" in missing.output
    assert both.exit_code == 2
    assert "not both" in both.output
    assert not_a_run.exit_code == 1
    assert "plan.json is missing" in not_a_run.output


@pytest.mark.parametrize("program", ["sac_pendulum", "sac_flow_g_pendulum", "sac_flow_t_pendulum",
                                     "sac_flow_g_halfcheetah", "sac_offline_to_online_pendulum"])
def test_sac_program_checks(program):
    result = invoke("check", f"programs/{program}.rp")

    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_offline_to_online_program_runs(tmp_path):
    folder = tmp_path / "o2o"
    result = invoke("run", "programs/sac_offline_to_online_pendulum.rp", "train.steps=40", "train.log_every=10",
                    "train.compile=false", "sac_loss.offline_steps=20", "sac_loss.batch=16", "sac_loss.eval_every=0",
                    "sac_loss.eval_episodes=1", "pendulum.max_episode_steps=20", "actor.velocity.hidden=16",
                    "actor.noise_hidden=16", "critic.hidden=16", "--no-progress", "--device", "cpu",
                    "--out", str(folder))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    offline = [r for r in records if "offline/bc_loss" in r]
    online = [r for r in records if "losses/bc_loss" in r]

    assert [r["step"] for r in offline] == [10, 20]
    # With a dataset the buffer is full from the start, so updates begin at the first online step.
    assert [r["step"] for r in online] == [10, 20, 30, 40]
    assert all(r["losses/bc_loss"] > 0 for r in online)
