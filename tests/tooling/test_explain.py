"""`rpc explain` and `explain_program`: graph count, graph breaks with source lines, recompilations."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch
from click.testing import CliRunner

from reparamdsl.api import compile_file
from reparamdsl.cli.main import main
from reparamdsl.tooling.explain import explain_program

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROGRAM = str(ROOT / "programs/lm_adamw.rp")
TINY = {"lm.width": 32, "lm.depth": 1, "corpus.max_files": 20, "train.batch": 4, "train.compile_backend": "eager"}


@pytest.fixture
def program():
    return compile_file(PROGRAM, TINY, device="cpu")


def test_explain_whole_step_is_one_graph(program):
    report = explain_program(program, steps=3)
    assert report.graphs == 1
    assert report.graph_breaks == ()
    assert report.recompiles == 0
    assert report.compiled_frames == 1
    assert report.compile_seconds > 0
    assert len(report.step_seconds) == 3


def test_explain_reports_graph_break_source_line(program):
    optimizer = program.trainer().optimizer
    update = optimizer.update

    def update_with_break(*args, **kwargs):
        torch._dynamo.graph_break()  # the break under test
        return update(*args, **kwargs)

    optimizer.update = update_with_break
    report = explain_program(program, steps=2)
    # The break sits two calls below the step (step -> clip-and-update -> optimizer), and
    # dynamo splits each frame on the way around it, so there are more than two graphs.
    assert report.graphs > 1
    (graph_break,) = report.graph_breaks
    assert graph_break.file == __file__
    assert "the break under test" in graph_break.source
    assert graph_break.line == update_with_break.__code__.co_firstlineno + 1


def test_explain_counts_recompilation_on_new_shape(program):
    task = program.task
    batches = task.train_batches

    def shrinking_batches(batch_size, seed, start=0):
        for index, batch in enumerate(batches(batch_size, seed, start)):
            yield {key: value[:2] if index >= 2 else value for key, value in batch.items()}

    task.train_batches = shrinking_batches
    report = explain_program(program, steps=3)
    assert report.recompiles == 1
    assert report.compiled_frames == 2
    assert report.recompile_reasons, "Dynamo gave no recompile reason"


def test_explain_cli_prints_json():
    overrides = [f"{key}={value}" for key, value in TINY.items()]
    result = CliRunner().invoke(main, ["explain", PROGRAM, *overrides, "--device", "cpu", "--steps", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["graphs"] == 1
    assert report["graph_breaks"] == []
    assert report["steps"] == 2
