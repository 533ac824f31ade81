"""Shared fixtures of the runtime tests: a tiny text corpus, a tiny LM program and CLI runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LM_PROGRAM = """
data corpus = text {
    source = "corpus/*.txt"
    tokenizer = bytes
    context = 16
    holdout = 20%
}

model lm = llama { vocab = corpus.vocab_size  width = 32  depth = 1  heads = 2  context = corpus.context }

objective loss = next_token(lm, corpus)

train {
    steps = 12
    batch = 4
    optimizer = adamw(lr = 3e-3, weight_decay = 0.1)
    schedule = cosine(warmup = 2 steps)
    eval_every = 6 steps
    eval_batches = 2
    log_every = 1
    checkpoint_every = 3
    keep_checkpoints = 10
    compile = false
}
"""


def write_corpus(folder) -> None:
    os.makedirs(folder, exist_ok=True)
    for index in range(12):
        lines = [f"def function_{index}_{line}(x):\n    return x * {line} + {index}  # line {line}\n"
                 for line in range(40)]
        with open(os.path.join(folder, f"file{index:02d}.txt"), "w", encoding="utf-8") as handle:
            handle.write("".join(lines))


def make_lm_program(folder, text: str = LM_PROGRAM) -> str:
    """Write a tiny LM program (12 steps, checkpoints every 3) and its corpus into `folder`."""
    write_corpus(folder / "corpus")
    path = folder / "lm.rp"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def lm_program(tmp_path) -> str:
    return make_lm_program(tmp_path)


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("REPARAMDSL_CACHE", os.path.join(REPO, ".pytest_cache", "reparamdsl"))
    return env


def rpc_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "reparamdsl", *args]


def start_rpc(*args: str, cwd=None) -> subprocess.Popen:
    return subprocess.Popen(rpc_command(*args), cwd=cwd, env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def invoke(*args: str):
    """Run `rpc ARGS` in this process; returns click's result (exit_code, stdout, stderr)."""
    from reparamdsl.cli.main import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def read_metrics(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def without_timing(records: list[dict]) -> list[dict]:
    """Drop the wall-clock metrics, the only ones that may differ between identical runs."""
    return [{key: value for key, value in record.items() if key != "charts/steps_per_sec"} for record in records]


def folder_snapshot(folder) -> dict[str, bytes]:
    """Map every file under `folder` to its bytes, to check that nothing changed."""
    snapshot = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                snapshot[os.path.relpath(path, folder)] = handle.read()
    return snapshot


def wait_for_first_metrics(process: subprocess.Popen, out_dir: str, timeout: float) -> None:
    """Wait until the run in `process` has written a metric record; fail if it exits or times out first."""
    metrics = os.path.join(out_dir, "metrics.jsonl")
    deadline = time.monotonic() + timeout
    while not (os.path.exists(metrics) and os.path.getsize(metrics) > 0):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, f"the run logged nothing within {timeout:.0f} s"
        time.sleep(0.05)
