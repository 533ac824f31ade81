"""Command-line overrides, sweeps and the plan hash."""

import pytest

from reparamdsl.diagnostics import ProgramError
from reparamdsl.semantics.frontend import check_source

PROGRAM = (
    "let width = 64\n"
    'data corpus = text { source = "python-stdlib" context = 64 max_files = 4 }\n'
    "model lm = llama { vocab = corpus.vocab_size width = width depth = 2 heads = 4 context = 64 }\n"
    "objective loss = next_token(lm, corpus)\n"
    "train { steps = 100 optimizer = adamw(lr = 1e-3) }\n"
)


def check(source=PROGRAM, overrides=None):
    plans, _ = check_source(source, "/tmp/prog.rp", overrides)
    return plans


def test_override_parameter_and_let():
    plan = check(overrides={"train.steps": "200", "width": "128"})[0]

    assert plan.get("train").params["steps"] == 200
    assert plan.get("lm").params["width"] == 128


def test_override_nested_component_parameter():
    plan = check(overrides={"train.optimizer.lr": "3e-4", "train.schedule.warmup": "10 steps"})[0]

    assert plan.get("train").params["optimizer"]["params"]["lr"] == pytest.approx(3e-4)
    assert plan.get("train").params["schedule"]["params"]["warmup"] == 10


def test_override_is_type_checked_with_position():
    with pytest.raises(ProgramError) as raised:
        check(overrides={"train.steps": '"many"'})

    first = raised.value.diagnostics[0]
    assert first.message == "invalid value for 'steps': expected an integer, found string 'many'"
    assert first.span.file == "<command line>"
    assert (first.span.line, first.span.column) == (1, 13)


def test_unknown_override_key_suggests():
    with pytest.raises(ProgramError) as raised:
        check(overrides={"train.step": "5"})

    first = raised.value.diagnostics[0]
    assert first.message == "unknown parameter 'step' for train 'train'"


def test_unknown_override_root_suggests():
    with pytest.raises(ProgramError) as raised:
        check(overrides={"widht": "5"})

    first = raised.value.diagnostics[0]
    assert first.message == "unknown override key 'widht'"
    assert first.hint == "did you mean 'width'?"


def test_override_syntax_error_has_position():
    with pytest.raises(ProgramError) as raised:
        check(overrides={"train.steps": "3 +"})

    first = raised.value.diagnostics[0]
    assert first.message.startswith("unexpected end of file")
    assert first.span.file == "<command line>"


def test_sweep_expands_cartesian_product():
    source = PROGRAM.replace("lr = 1e-3", "lr = sweep(1e-3, 3e-4)")
    plans = check(source, overrides={"width": "sweep(64, 128)"})

    points = sorted((p.get("lm").params["width"], p.get("train").params["optimizer"]["params"]["lr"]) for p in plans)
    assert points == [(64, 3e-4), (64, 1e-3), (128, 3e-4), (128, 1e-3)]
    assert len({p.hash for p in plans}) == 4


def test_sweep_values_are_type_checked():
    with pytest.raises(ProgramError) as raised:
        check(overrides={"train.steps": "sweep(10, -1)"})
    assert "out of range" in raised.value.diagnostics[0].message


def test_plan_hash_ignores_layout_and_comments():
    reformatted = "# a comment\n" + PROGRAM.replace(" = ", "=").replace("\n", "\n\n")

    assert check(reformatted)[0].hash == check()[0].hash


def test_plan_hash_changes_with_values():
    assert check(overrides={"train.steps": "101"})[0].hash != check()[0].hash


def test_plan_json_round_trip():
    from reparamdsl.semantics.plan import Plan

    plan = check()[0]
    again = Plan.from_json(plan.to_json())

    assert again.hash == plan.hash
    assert again.content() == plan.content()


def test_override_replaces_positional_argument():
    source = PROGRAM + "model other = llama { vocab = corpus.vocab_size width = 32 depth = 1 heads = 2 context = 64 }\n"

    plan = check(source, overrides={"loss.model": "other"})[0]

    assert plan.get("loss").params["model"] == {"ref": "other"}
    assert plan.get("loss").params["data"] == {"ref": "corpus"}
