"""Exact resume of a reinforcement-learning program (SAC on Pendulum) killed with SIGKILL."""

from __future__ import annotations

import pytest

from tests.runtime.conftest import invoke, read_metrics, without_timing
from tests.runtime.test_resume import kill_after_checkpoint

pytest.importorskip("reparamdsl.components.rl.sac", reason="the RL components are not installed")
pytest.importorskip("gymnasium", reason="gymnasium is not installed")

SAC_PROGRAM = """
env pendulum = gym("Pendulum-v1") { envs = 1 }
model actor = gaussian_policy { env = pendulum  hidden = 16 }
model critic = critic { env = pendulum  hidden = 16 }
objective sac_loss = sac {
    actor = actor
    critic = critic
    env = pendulum
    learning_starts = 10 steps
    eval_every = 0 steps
    eval_episodes = 1
    buffer_size = 500
    batch = 8
}
train {
    steps = 40
    log_every = 5
    checkpoint_every = 10
    keep_checkpoints = 10
    compile = false
}
"""


@pytest.fixture(scope="module")
def sac_runs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("sac")
    program = folder / "sac.rp"
    program.write_text(SAC_PROGRAM, encoding="utf-8")
    full, killed = str(folder / "full"), str(folder / "killed")
    assert invoke("run", str(program), "--out", full, "--no-progress").exit_code == 0

    kill_after_checkpoint(str(program), killed, 20)
    result = invoke("run", "--resume", killed, "--no-progress")

    assert result.exit_code == 0, result.output
    return {"full": comparable(read_metrics(full)), "resumed": comparable(read_metrics(killed))}


def comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "charts/sps"} for r in without_timing(records)]


def test_sac_resume_keeps_records_up_to_checkpoint(sac_runs):
    expected, actual = sac_runs["full"], sac_runs["resumed"]

    assert [r["step"] for r in actual] == [r["step"] for r in expected]
    assert [r for r in actual if r["step"] <= 20] == [r for r in expected if r["step"] <= 20]


def test_sac_resume_matches_uninterrupted(sac_runs):
    assert len(sac_runs["resumed"]) == len(sac_runs["full"])
    for want, got in zip(sac_runs["full"], sac_runs["resumed"]):
        assert got == want, f"step {want['step']} differs"
