"""Sweeps: each point of `sweep(...)` runs in its own folder, one after another; --dry-run lists them."""

from __future__ import annotations

import json
import os

from tests.runtime.conftest import invoke, read_metrics

SWEEP = ("train.optimizer.lr=sweep(1e-3, 3e-3)", "train.steps=3", "train.checkpoint_every=0", "train.eval_every=0")


def saved_lr(run_dir: str) -> float:
    with open(os.path.join(run_dir, "plan.json"), encoding="utf-8") as handle:
        plan = json.load(handle)
    train = next(d for d in plan["declarations"] if d["kind"] == "train")
    return train["params"]["optimizer"]["params"]["lr"]


def test_dry_run_lists_points_and_writes_nothing(lm_program, tmp_path):
    out_dir = tmp_path / "sweep"

    result = invoke("run", lm_program, *SWEEP, "--out", str(out_dir), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "# 2 sweep points, run one after another:" in result.stdout
    listed = [line for line in result.stdout.splitlines() if line.startswith("#   ")]
    assert len(listed) == 2
    assert all(str(out_dir) in line for line in listed)
    assert not out_dir.exists()


def test_sweep_runs_each_point_in_own_folder(lm_program, tmp_path):
    out_dir = tmp_path / "sweep"

    result = invoke("run", lm_program, *SWEEP, "--out", str(out_dir), "--no-progress")

    assert result.exit_code == 0, result.output
    folders = sorted(str(out_dir / name) for name in os.listdir(out_dir))
    assert len(folders) == 2
    assert sorted(saved_lr(folder) for folder in folders) == [1e-3, 3e-3]
    for folder in folders:
        assert [r["step"] for r in read_metrics(folder) if "train/loss" in r] == [1, 2, 3]
        assert os.path.isfile(os.path.join(folder, "checkpoints", "final", "state.json"))
    peak_lr = {saved_lr(folder): max(r.get("train/lr", 0.0) for r in read_metrics(folder)) for folder in folders}
    assert peak_lr[3e-3] > peak_lr[1e-3]
