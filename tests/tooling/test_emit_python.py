"""`rpc compile --emit python`: the emitted script logs the same losses as `rpc run` with the same seed."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from reparamdsl.semantics.frontend import check_file
from reparamdsl.tooling.emit import EmitError, emit_python

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMMON = ["train.steps=4", "train.schedule.warmup=1", "train.compile=false", "train.log_every=1",
          "train.eval_every=2", "train.eval_batches=2"]
CASES = {
    "lm": ("programs/lm_adamw.rp", ["lm.width=32", "lm.depth=1", "corpus.max_files=20", "train.batch=4"]),
    "dpo": ("programs/dpo.rp", ["policy.width=32", "policy.depth=1", "prefs.max_rows=40", "train.batch=4"]),
}


def rpc(*arguments: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "reparamdsl", *arguments], cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def read_metrics(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def losses(records: list[dict]) -> list[tuple[int, str, float]]:
    return [(record["step"], key, record[key]) for record in records for key in ("train/loss", "eval/loss")
            if key in record]


@pytest.mark.parametrize("case", sorted(CASES))
def test_emitted_script_reproduces_run_losses(case, tmp_path):
    program, overrides = CASES[case]
    if not (ROOT / program).exists():
        pytest.skip(f"{program} is not shipped")
    overrides = overrides + COMMON

    rpc("run", program, *overrides, "--device", "cpu", "--out", str(tmp_path / "run"), "--no-progress", cwd=ROOT)
    rpc("compile", program, *overrides, "-o", str(tmp_path / "build"), "--device", "cpu", "--no-trace",
        "--emit", "python", cwd=ROOT)
    script = tmp_path / "build" / "train.py"
    result = subprocess.run([sys.executable, str(script), "--device", "cpu", "--metrics", str(tmp_path / "m.jsonl")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr

    expected = losses(read_metrics(tmp_path / "run" / "metrics.jsonl"))
    emitted = losses(read_metrics(tmp_path / "m.jsonl"))
    assert [(step, key) for step, key, _ in emitted] == [(step, key) for step, key, _ in expected]
    assert len([key for _, key, _ in expected if key == "train/loss"]) == 4
    for (step, key, value), (_, _, reference) in zip(emitted, expected):
        assert value == pytest.approx(reference, rel=1e-6, abs=1e-7), f"{key} at step {step}"
    assert "step 4: train/lr" in result.stdout


def test_emitted_script_states_plan_values():
    plans, _ = check_file(str(ROOT / "programs/lm_adamw.rp"), {"lm.width": "48"})
    script = emit_python(plans[0])
    compile(script, "train.py", "exec")
    assert "# model lm = llama" in script
    assert "'width': 48" in script
    assert plans[0].hash in script


def test_emit_rejects_objective_with_own_loop():
    plans, _ = check_file(str(ROOT / "programs/lm_adamw.rp"))
    with pytest.raises(EmitError, match="runs its own training loop"):
        emit_python(plans[0], objective_is_supervised=False)
