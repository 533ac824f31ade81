"""Interrupts and non-finite values: SIGTERM checkpoints and exits 130; NaN stops or skips the step."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch

import reparamdsl as rp
from reparamdsl.runtime.checkpoint import latest_checkpoint, read_checkpoint
from reparamdsl.runtime.trainer import NonFiniteError
from tests.runtime.conftest import invoke, read_metrics, start_rpc, wait_for_first_metrics

# Plain SGD at learning rate 10 without clipping blows the tiny model up within a few steps.
DIVERGE = ("train.optimizer=sgd(lr=10)", "train.clip=none", "train.schedule=constant", "train.steps=30",
           "train.checkpoint_every=2", "train.eval_every=0")


def test_sigterm_writes_checkpoint_and_exits_130(lm_program, tmp_path):
    out_dir = str(tmp_path / "run")
    process = start_rpc("run", lm_program, "train.steps=100000", "train.eval_every=0", "--out", out_dir,
                        "--no-progress")
    wait_for_first_metrics(process, out_dir, timeout=120)

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"resume with: rpc run --resume {out_dir}" in stderr
    checkpoint = latest_checkpoint(os.path.join(out_dir, "checkpoints"))
    assert checkpoint is not None
    stopped_at = read_checkpoint(checkpoint).step
    assert f"stopped by SIGTERM at step {stopped_at}" in stderr
    assert read_metrics(out_dir)[-1]["step"] == stopped_at


def test_nonfinite_stops_with_step_and_quantity(lm_program, tmp_path):
    out_dir = str(tmp_path / "run")

    result = invoke("run", lm_program, *DIVERGE, "--out", out_dir, "--no-progress")

    assert result.exit_code == 1
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith("error: non-finite ")
    bad_step = int(first_line.split(" at step ")[1].split(";")[0])
    assert "loss" in first_line or "gradient norm" in first_line
    assert "last good checkpoint" in first_line

    logged = read_metrics(out_dir)
    assert all(math.isfinite(r["train/loss"]) and math.isfinite(r["train/grad_norm"]) for r in logged)
    assert logged[-1]["step"] == bad_step - 1

    checkpoint = read_checkpoint(latest_checkpoint(os.path.join(out_dir, "checkpoints")))
    assert checkpoint.step == (bad_step - 1) // 2 * 2
    assert all(bool(torch.isfinite(t.float()).all()) for t in checkpoint.tensors.values())


def test_nonfinite_error_names_step_and_quantity(lm_program):
    program = rp.compile_file(lm_program, overrides=dict(o.split("=", 1) for o in DIVERGE), device="cpu")
    trainer = program.trainer()
    batches = program.task.train_batches(program.train["batch"], program.seed)

    with pytest.raises(NonFiniteError) as caught:
        for _ in range(30):
            trainer.step(next(batches))

    assert caught.value.step == trainer.step_count
    assert caught.value.quantity in ("loss", "gradient norm")
    assert not math.isfinite(caught.value.value)


def test_skip_mode_leaves_parameters_unchanged(lm_program):
    overrides = dict(o.split("=", 1) for o in DIVERGE)
    overrides["train.on_nonfinite"] = "skip"
    program = rp.compile_file(lm_program, overrides=overrides, device="cpu")
    trainer = program.trainer()
    batches = program.task.train_batches(program.train["batch"], program.seed)

    skipped = 0
    for _ in range(30):
        before = {name: p.clone() for name, p in trainer.named_params.items()}
        moments = {name: {k: v.clone() for k, v in s.items()} for name, s in trainer.optimizer.state.items()}
        metrics = trainer.step(next(batches))
        if metrics.get("train/skipped") == 1.0:
            skipped += 1
            for name, param in trainer.named_params.items():
                assert torch.equal(param, before[name]), name
            for name, state in trainer.optimizer.state.items():
                for key, value in state.items():
                    if key != "step":
                        assert torch.equal(value, moments[name][key]), (name, key)
    assert skipped > 0


def test_skip_mode_run_finishes_and_logs_skips(lm_program, tmp_path):
    out_dir = str(tmp_path / "run")

    result = invoke("run", lm_program, *DIVERGE, "train.on_nonfinite=skip", "--out", out_dir, "--no-progress")

    assert result.exit_code == 0, result.output
    logged = read_metrics(out_dir)
    assert any(r.get("train/skipped") == 1.0 for r in logged)
    with open(os.path.join(out_dir, "metrics.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            json.loads(line)
