"""Tests of the shipped preference programs: they check, and `rpc run` trains and evaluates them."""

import json
import os

import pytest
from click.testing import CliRunner

from reparamdsl.cli.main import main

PROGRAMS = os.path.join(os.path.dirname(__file__), "..", "..", "programs")
TINY = ("policy.width=16", "policy.depth=1", "policy.heads=2", "train.steps=3", "train.batch=2",
        "train.schedule.warmup=0", "train.eval_every=3", "train.eval_batches=1", "train.log_every=1",
        "train.compile=false", "prefs.max_rows=40", "prefs.max_length=128", "prefs.max_prompt_length=64")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("name", ["simpo.rp", "dpo.rp"])
def test_preference_program_checks(name):
    result = invoke("check", os.path.join(PROGRAMS, name))
    assert result.exit_code == 0, result.output


def read_metrics(run: str) -> list[dict]:
    with open(os.path.join(run, "metrics.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.mark.parametrize("name", ["simpo.rp", "dpo.rp"])
def test_preference_program_runs_through_cli(name, tmp_path):
    run = str(tmp_path / "run")
    result = invoke("run", os.path.join(PROGRAMS, name), *TINY, "--out", run, "--device", "cpu", "--no-progress")
    assert result.exit_code == 0, result.output

    records = read_metrics(run)
    train = [r for r in records if "train/rewards/accuracies" in r]
    evals = [r for r in records if "eval/rewards/accuracies" in r]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert evals and evals[-1]["step"] == 3
    for prefix, group in (("train/", train), ("eval/", evals)):
        for record in group:
            for key in ("rewards/margins", "rewards/chosen", "rewards/rejected", "logps/chosen_avg"):
                assert prefix + key in record, (record["step"], prefix + key)
    final = evals[-1]
    assert 0.0 <= final["eval/rewards/accuracies"] <= 1.0
    margin = final["eval/rewards/chosen"] - final["eval/rewards/rejected"]
    assert abs(final["eval/rewards/margins"] - margin) < 1e-4
    assert os.path.isfile(os.path.join(run, "checkpoints", "final", "tensors.safetensors"))
