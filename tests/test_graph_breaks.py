"""Every shipped program's train step compiles to one graph with no breaks and no recompiles."""

import glob
import os

import pytest
import torch

from reparamdsl.lowering.program import Program
from reparamdsl.runtime.task import SupervisedTask
from reparamdsl.semantics.frontend import check_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = sorted(glob.glob(os.path.join(ROOT, "programs", "*.rp")))

# Overrides that shrink each program so that tracing takes seconds; the
# structure of the step (model, reparameterizations, objective) is unchanged.
SHRINK = {
    "lm_adamw.rp": {"lm.width": "32", "lm.depth": "1", "corpus.max_files": "8", "corpus.context": "32",
                    "train.batch": "4"},
    "poet_lm.rp": {"width": "32", "lm.depth": "1", "corpus.max_files": "8", "corpus.context": "32",
                   "train.batch": "4"},
    "poet_llama_60m.rp": {"lm.width": "32", "lm.depth": "1", "lm.heads": "4", "lm.hidden": "64",
                          "lm.vocab": "512", "corpus.max_files": "8", "lm.context": "32", "train.batch": "4"},
}


def build(path, extra=None):
    overrides = dict(SHRINK.get(os.path.basename(path), {}))
    overrides.update(extra or {})
    plans, _ = check_file(path, overrides)
    return Program.from_plan(plans[0], device="cpu")


@pytest.mark.parametrize("path", PROGRAMS, ids=[os.path.basename(p) for p in PROGRAMS])
def test_program_step_has_no_graph_breaks(path):
    from reparamdsl.runtime.inspection import explain_step, first_batch

    program = build(path)
    if not isinstance(program.task, SupervisedTask):
        explain = getattr(program.task, "explain", None)
        if explain is None:
            pytest.skip("this task traces its own update step in its component tests")
        report = explain()
    else:
        trainer = program.trainer()
        report = explain_step(trainer, first_batch(trainer))

    assert report.graph_breaks == 0, report.break_reasons
    assert report.graphs == 1


@pytest.mark.parametrize("path", PROGRAMS, ids=[os.path.basename(p) for p in PROGRAMS])
def test_program_step_does_not_recompile(path):
    from torch._dynamo.utils import counters

    program = build(path, {"train.compile": "true", "train.compile_backend": "eager"})
    torch._dynamo.reset()
    counters.clear()
    if not isinstance(program.task, SupervisedTask):
        check_own_loop_update_does_not_recompile(program.task)
        return
    trainer = program.trainer()
    batches = program.task.train_batches(program.train["batch"], program.seed)

    trainer.step(next(batches))
    graphs_after_warmup = counters["stats"]["unique_graphs"]
    for _ in range(3):
        trainer.step(next(batches))

    assert graphs_after_warmup == 1
    assert counters["stats"]["unique_graphs"] == graphs_after_warmup


def check_own_loop_update_does_not_recompile(task):
    """SAC: after the first actor and critic-only updates, further updates reuse their graphs."""
    from torch._dynamo.utils import counters

    setup = getattr(task, "setup", None)
    if setup is None:
        pytest.skip("this task has no update step to compile")
    setup(torch.device("cpu"), 0, 64, compile_step=True, backend="eager")
    fill_replay_buffer(task)

    for _ in range(4):
        task.update_once()
    graphs_after_warmup = counters["stats"]["unique_graphs"]
    for _ in range(6):
        task.update_once()

    assert 1 <= graphs_after_warmup <= 2
    assert counters["stats"]["unique_graphs"] == graphs_after_warmup


def fill_replay_buffer(task):
    import numpy as np

    count = max(task.config.batch, 2)
    generator = np.random.default_rng(0)
    obs = generator.standard_normal((count, task.env.obs_dim)).astype(np.float32)
    actions = generator.uniform(-1, 1, (count, task.env.action_dim)).astype(np.float32)
    task.buffer.add(obs, actions, generator.standard_normal(count).astype(np.float32), obs, np.zeros(count, np.float32))
