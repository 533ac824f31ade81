"""Data-parallel runs on CPU with gloo and 2 processes against the same run in one process.

Tolerance: the 2-process step averages two half-batch gradients where one
process sums over the whole batch, so float sums are ordered differently.
Over 6 AdamW steps of the tiny model the losses agree to about 1e-7
(measured); the tests allow a relative difference of 1e-5.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from reparamdsl.components.llama.model import LlamaModel
from reparamdsl.runtime.checkpoint import latest_checkpoint
from reparamdsl.runtime.distributed import Distributed, DistributedError, check_batch, shard_batches
from reparamdsl.runtime.sharded import shard_units
from reparamdsl.semantics.registry import default_registry
from tests.runtime.conftest import (LM_PROGRAM, REPO, invoke, make_lm_program, read_metrics, subprocess_env,
                                   wait_for_first_metrics)

TOLERANCE = 1e-5
SHORT = ("train.steps=6", "train.checkpoint_every=0", "train.eval_every=0")


def torchrun(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = subprocess_env()
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_two_processes_match_one(lm_program, tmp_path):
    single, double = str(tmp_path / "single"), str(tmp_path / "double")
    assert invoke("run", lm_program, *SHORT, "--out", single, "--no-progress", "--device", "cpu").exit_code == 0

    env = subprocess_env()
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run([sys.executable, "-m", "reparamdsl", "run", lm_program, *SHORT, "--out", double,
                             "--no-progress", "--device", "cpu", "--nproc", "2"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("run folder:") == 1
    one, two = read_metrics(single), read_metrics(double)
    assert [r["step"] for r in one] == [r["step"] for r in two]
    for expected, actual in zip(one, two):
        for key in ("train/loss", "train/grad_norm", "eval/loss"):
            if key in expected:
                assert actual[key] == pytest.approx(expected[key], rel=TOLERANCE), (expected["step"], key)
    assert os.path.isfile(os.path.join(double, "checkpoints", "final", "state.json"))


def test_check_batch_splits_or_rejects():
    assert check_batch(8, 2, world_size=2) == 4
    with pytest.raises(DistributedError, match="train.batch = 3 does not split over 2 processes"):
        check_batch(3, 1, world_size=2)
    with pytest.raises(DistributedError, match="per-process batch 2 .* not divisible by train.grad_accum = 4"):
        check_batch(4, 4, world_size=2)


def test_shards_are_disjoint_and_cover_the_batch():
    batch = {"tokens": torch.arange(24).reshape(6, 4), "scale": torch.tensor(2.0)}
    shards = [next(shard_batches(iter([batch]), Distributed(rank, 3))) for rank in range(3)]

    assert torch.equal(torch.cat([shard["tokens"] for shard in shards]), batch["tokens"])
    assert all(shard["tokens"].shape == (2, 4) for shard in shards)
    assert all(shard["scale"] is batch["scale"] for shard in shards)


POET_PROGRAM = LM_PROGRAM.replace("objective loss", """reparam poet_lm = poet on lm { merge_every = 2 steps }

objective loss""")


@pytest.mark.skipif(default_registry().get("reparam", "poet") is None, reason="the POET component is not installed")
def test_poet_merges_stay_bitwise_equal_across_ranks(tmp_path):
    program = make_lm_program(tmp_path, POET_PROGRAM)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    # The compiled step (aot_eager) carries the gradient all-reduce inside its graph.
    result = torchrun(os.path.join(REPO, "tests", "runtime", "ddp_worker.py"), program, str(out_dir),
                      "train.steps=5", "train.checkpoint_every=0", "train.eval_every=0", "train.compile=true",
                      "train.compile_backend=aot_eager")

    assert result.returncode == 0, result.stderr[-4000:]
    merges = [r["poet/merges"] for r in read_metrics(out_dir / "run") if "poet/merges" in r]
    assert max(merges) == 2.0
    rank0, rank1 = load_file(str(out_dir / "rank0.safetensors")), load_file(str(out_dir / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name


def rpc_nproc2(*args: str) -> subprocess.CompletedProcess:
    env = subprocess_env()
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-m", "reparamdsl", "run", *args, "--no-progress", "--device", "cpu",
                           "--nproc", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_fsdp_two_processes_match_one(lm_program, tmp_path):
    # Two blocks, so FSDP2 wraps each layer and the root; checkpoints every 3 steps.
    options = ("train.steps=6", "train.checkpoint_every=3", "train.eval_every=0", "lm.depth=2")
    single, sharded = str(tmp_path / "single"), str(tmp_path / "sharded")
    assert invoke("run", lm_program, *options, "--out", single, "--no-progress", "--device", "cpu").exit_code == 0

    result = rpc_nproc2(lm_program, *options, "train.parallel=fsdp", "--out", sharded)

    assert result.returncode == 0, result.stderr[-4000:]
    one, two = read_metrics(single), read_metrics(sharded)
    assert [r["step"] for r in one] == [r["step"] for r in two]
    for expected, actual in zip(one, two):
        for key in ("train/loss", "train/grad_norm", "eval/loss"):
            if key in expected:
                assert actual[key] == pytest.approx(expected[key], rel=TOLERANCE), (expected["step"], key)
    # Checkpoints contain the gathered full tensors, in the single-process layout.
    for name in ("step-00000003", "final"):
        expected = load_file(os.path.join(single, "checkpoints", name, "tensors.safetensors"))
        actual = load_file(os.path.join(sharded, "checkpoints", name, "tensors.safetensors"))
        assert expected.keys() == actual.keys()
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=1e-4, atol=1e-5, msg=key)


def test_fsdp_rejects_reparam_programs(tmp_path):
    program = make_lm_program(tmp_path, POET_PROGRAM)

    result = rpc_nproc2(program, "train.parallel=fsdp", "--out", str(tmp_path / "out"))

    assert result.returncode == 2
    assert 'train.parallel = "fsdp" does not support reparam declarations (poet_lm)' in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_shard_units_are_blocks():
    model = LlamaModel(vocab=40, width=16, depth=3, heads=2, context=8)
    units = shard_units(model)
    assert len(units) == 3
    assert all(any(unit is block for block in model.layers) for unit in units)


def test_sigint_stops_two_processes_cleanly(lm_program, tmp_path):
    out_dir = str(tmp_path / "run")
    env = subprocess_env()
    env["OMP_NUM_THREADS"] = "1"
    # A new session plays the terminal's role: Ctrl-C signals the launcher and both workers.
    process = subprocess.Popen([sys.executable, "-m", "reparamdsl", "run", lm_program, "train.steps=100000",
                                "train.eval_every=0", "--out", out_dir, "--no-progress", "--device", "cpu",
                                "--nproc", "2"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_first_metrics(process, out_dir, timeout=300)

    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=300)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"resume with: rpc run --resume {out_dir}" in stderr
    assert latest_checkpoint(os.path.join(out_dir, "checkpoints")) is not None
