"""Bad input to `rpc run`: one-line errors, the right exit codes, and nothing on disk changed."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from tests.runtime.conftest import LM_PROGRAM, REPO, folder_snapshot, invoke, make_lm_program

SHORT = ("train.steps=4", "train.checkpoint_every=2", "train.eval_every=0")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("bad-input")
    program = make_lm_program(folder)
    out_dir = str(folder / "run")
    result = invoke("run", program, *SHORT, "--out", out_dir, "--no-progress")
    assert result.exit_code == 0, result.output
    return {"folder": folder, "program": program, "run": out_dir}


@pytest.fixture
def run_copy(finished_run, tmp_path) -> str:
    copy = str(tmp_path / "run")
    shutil.copytree(finished_run["run"], copy)
    return copy


def assert_one_line_error(result, exit_code: int, fragment: str) -> None:
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_missing_checkpoint_file_is_reported(run_copy):
    os.remove(os.path.join(run_copy, "checkpoints", "final", "tensors.safetensors"))
    before = folder_snapshot(run_copy)

    result = invoke("run", "--resume", run_copy, "--no-progress")

    assert_one_line_error(result, 1, "checkpoint file missing")
    assert folder_snapshot(run_copy) == before


def test_corrupt_checkpoint_file_is_reported(run_copy):
    tensors = os.path.join(run_copy, "checkpoints", "final", "tensors.safetensors")
    with open(tensors, "r+b") as handle:
        handle.seek(8)
        handle.write(b"\xff" * 64)
    before = folder_snapshot(run_copy)

    result = invoke("run", "--resume", run_copy, "--no-progress")

    assert_one_line_error(result, 1, "corrupt checkpoint tensors")
    assert "move" in result.stderr
    assert folder_snapshot(run_copy) == before


def _drop_rng(state):
    del state["rng"]


def _garble_torch_rng(state):
    state["rng"]["torch"] = "x"


def _negative_step(state):
    state["step"] = -3


def _hooks_not_a_list(state):
    state["hooks"] = {"merges": 1}


@pytest.mark.parametrize("edit, fragment", [
    (_drop_rng, "missing 'rng'"),
    (_garble_torch_rng, "invalid 'rng'"),
    (_negative_step, "negative step -3"),
    (_hooks_not_a_list, "'hooks' should be a list"),
])
def test_invalid_checkpoint_state_is_reported(run_copy, edit, fragment):
    state_path = os.path.join(run_copy, "checkpoints", "final", "state.json")
    with open(state_path, encoding="utf-8") as handle:
        state = json.load(handle)
    edit(state)
    with open(state_path, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    before = folder_snapshot(run_copy)

    result = invoke("run", "--resume", run_copy, "--no-progress")

    assert_one_line_error(result, 1, fragment)
    assert folder_snapshot(run_copy) == before


def test_checkpoint_of_other_model_is_reported(run_copy, tmp_path):
    wrong = {"model/embed.weight": torch.zeros(3, 3)}
    from safetensors.torch import save_file

    save_file(wrong, os.path.join(run_copy, "checkpoints", "final", "tensors.safetensors"))
    before = folder_snapshot(run_copy)

    result = invoke("run", "--resume", run_copy, "--no-progress", "--allow-plan-change")

    assert_one_line_error(result, 1, "does not fit this program")
    assert folder_snapshot(run_copy) == before


def test_run_folder_of_other_program_is_rejected(run_copy, finished_run):
    other = finished_run["folder"] / "other.rp"
    other.write_text(LM_PROGRAM.replace("width = 32", "width = 16"), encoding="utf-8")
    before = folder_snapshot(run_copy)

    result = invoke("run", str(other), "--resume", run_copy, "--no-progress")

    assert_one_line_error(result, 1, "contains a run of program 'lm', not 'other'")
    assert folder_snapshot(run_copy) == before


def test_changed_override_shows_the_change(run_copy, finished_run):
    before = folder_snapshot(run_copy)

    result = invoke("run", finished_run["program"], "train.steps=5", "train.checkpoint_every=2",
                    "train.eval_every=0", "--resume", run_copy, "--no-progress")

    assert result.exit_code == 1
    assert "no longer matches" in result.stderr
    assert "steps" in result.stderr
    assert "4" in result.stderr
    assert "5" in result.stderr
    assert "--allow-plan-change" in result.stderr
    assert folder_snapshot(run_copy) == before


def test_existing_run_folder_is_not_overwritten(run_copy, finished_run):
    before = folder_snapshot(run_copy)

    result = invoke("run", finished_run["program"], *SHORT, "--out", run_copy, "--no-progress")

    assert_one_line_error(result, 1, "already holds a run")
    assert folder_snapshot(run_copy) == before


def test_folder_without_plan_is_not_a_run(tmp_path):
    result = invoke("run", "--resume", str(tmp_path), "--no-progress")

    assert_one_line_error(result, 1, "plan.json is missing")


@pytest.mark.parametrize("args, fragment", [
    (("--nproc", "0", "--device", "cpu"), "--nproc must be at least 1"),
    (("--nproc", "100000", "--device", "cpu"), "CPU cores"),
    (("train.batch=7", "--nproc", "2", "--device", "cpu"), "train.batch = 7 does not split over 2 processes"),
    (("train.batch=6", "train.grad_accum=2", "--nproc", "2", "--device", "cpu"),
     "per-process batch 3 (train.batch 6 / 2 processes) is not divisible by train.grad_accum = 2"),
])
def test_wrong_nproc_is_reported(finished_run, tmp_path, args, fragment):
    out_dir = str(tmp_path / "never")

    result = invoke("run", finished_run["program"], *SHORT, "--out", out_dir, *args)

    assert_one_line_error(result, 2, fragment)
    assert not os.path.exists(out_dir)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_nproc_on_cuda_without_cuda_is_reported(finished_run, tmp_path):
    result = invoke("run", finished_run["program"], *SHORT, "--out", str(tmp_path / "never"),
                    "--nproc", "2", "--device", "cuda")

    assert_one_line_error(result, 2, "needs CUDA")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA to count the devices")
def test_nproc_above_gpu_count_is_reported(finished_run, tmp_path):
    count = torch.cuda.device_count()

    result = invoke("run", finished_run["program"], *SHORT, "--out", str(tmp_path / "never"),
                    "--nproc", str(count + 1), "--device", "cuda")

    assert_one_line_error(result, 2, f"this machine has {count}")


def test_nproc_with_reinforcement_learning_is_reported(tmp_path):
    program = os.path.join(REPO, "programs", "sac_pendulum.rp")

    result = invoke("run", program, "--out", str(tmp_path / "never"), "--nproc", "2", "--device", "cpu")

    assert_one_line_error(result, 2, "run in one process; drop --nproc")
    assert not os.path.exists(tmp_path / "never")
