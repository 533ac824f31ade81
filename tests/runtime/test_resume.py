"""Exact resume: a run killed with SIGKILL and resumed logs the same metrics as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.runtime.conftest import (folder_snapshot, invoke, make_lm_program, read_metrics, rpc_command, start_rpc,
                                   subprocess_env, without_timing)


def run_rpc(*args: str) -> subprocess.CompletedProcess:
    """Run `rpc ARGS` in a fresh process, as the killed run was, so no state of this test process leaks in."""
    return subprocess.run(rpc_command(*args), env=subprocess_env(), capture_output=True, text=True, timeout=600)


def kill_after_checkpoint(program: str, out_dir: str, step: int) -> None:
    """Start a run and SIGKILL it as soon as the checkpoint of `step` is complete."""
    process = start_rpc("run", program, "--out", out_dir, "--no-progress")
    state = os.path.join(out_dir, "checkpoints", f"step-{step:08d}", "state.json")
    deadline = time.monotonic() + 120
    try:
        while not os.path.exists(state):
            if process.poll() is not None:
                raise AssertionError(f"the run ended before step {step}: {process.stderr.read()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no checkpoint at step {step} after 120 s")
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict:
    """One program and its uninterrupted run, shared by the tests of this module."""
    folder = tmp_path_factory.mktemp("resume")
    program = make_lm_program(folder)
    out_dir = str(folder / "full")
    result = run_rpc("run", program, "--out", out_dir, "--no-progress")
    assert result.returncode == 0, result.stderr
    return {"program": program, "folder": folder, "full": out_dir, "metrics": read_metrics(out_dir)}


@pytest.mark.parametrize("kill_step", [3, 6, 9])
def test_resume_after_sigkill_matches_uninterrupted(shared, kill_step):
    uninterrupted = shared["metrics"]
    out_dir = str(shared["folder"] / f"killed-{kill_step}")
    kill_after_checkpoint(shared["program"], out_dir, kill_step)

    result = run_rpc("run", "--resume", out_dir, "--no-progress")

    assert result.returncode == 0, result.stderr
    resumed = read_metrics(out_dir)
    assert [r["step"] for r in resumed] == [r["step"] for r in uninterrupted]
    for expected, actual in zip(without_timing(uninterrupted), without_timing(resumed)):
        assert actual == expected, f"step {expected['step']} differs"


def test_resume_of_finished_run_changes_nothing(shared):
    before = folder_snapshot(shared["full"])

    result = invoke("run", "--resume", shared["full"], "--no-progress")

    assert result.exit_code == 0, result.output
    assert "already finished" in result.stderr
    after = folder_snapshot(shared["full"])
    assert {k: v for k, v in after.items() if not k.startswith("tensorboard")} == \
        {k: v for k, v in before.items() if not k.startswith("tensorboard")}
