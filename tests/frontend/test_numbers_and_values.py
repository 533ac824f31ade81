"""Literal syntax: suffixes, units, percentages, arithmetic and lets."""

import pytest

from reparamdsl.diagnostics import ProgramError
from reparamdsl.semantics.frontend import check_source
from reparamdsl.syntax import ast
from reparamdsl.syntax.parser import parse_number, parse_program, parse_value

PROGRAM_TAIL = (
    'data corpus = text { source = "python-stdlib" context = 64 max_files = 4 }\n'
    "model lm = llama { vocab = corpus.vocab_size width = 64 depth = 2 heads = 4 context = 64 }\n"
    "objective loss = next_token(lm, corpus)\n"
)


@pytest.mark.parametrize("text, value, unit", [
    ("2k", 2000, None),
    ("1.5k", 1500, None),
    ("3M", 3_000_000, None),
    ("1B", 1_000_000_000, None),
    ("3e-4", 3e-4, None),
    ("1_000", 1000, None),
    ("2%", 2, "%"),
    ("0.5%", 0.5, "%"),
    ("200 steps", 200, "steps"),
    ("1 step", 1, "steps"),
    ("2k steps", 2000, "steps"),
    ("3 epochs", 3, "epochs"),
])
def test_parse_number_suffixes_and_units(text, value, unit):
    parsed_value, parsed_unit = parse_number(text)

    assert parsed_value == value
    assert type(parsed_value) is type(value)
    assert parsed_unit == unit


def test_unit_is_not_taken_from_next_line():
    program = parse_program("train {\n  eval_every = 10\n  steps = 20\n}\n", "p.rp")

    entries = program.items[0].entries
    assert [e.key for e in entries] == ["eval_every", "steps"]
    assert entries[0].value.unit is None


def test_spans_cover_tokens():
    program = parse_program("let width = 256 * 2\n", "p.rp")

    let = program.items[0]
    assert isinstance(let.value, ast.BinOp)
    assert (let.name_span.line, let.name_span.column, let.name_span.end_column) == (1, 5, 10)
    assert (let.value.span.column, let.value.span.end_column) == (13, 20)


def plan_params(source, name, overrides=None):
    plans, _ = check_source(PROGRAM_TAIL + source, "/tmp/p.rp", overrides)
    return plans[0].get(name).params


def test_let_arithmetic_and_references():
    params = plan_params("let base = 100\ntrain { steps = base * 3 + 2  batch = 96 / 3  eval_every = base }\n", "train")

    assert params["steps"] == 302
    assert params["batch"] == 32
    assert params["eval_every"] == 100


def test_percent_becomes_fraction():
    plans, _ = check_source(PROGRAM_TAIL.replace("max_files = 4", "max_files = 4 holdout = 5%") + "train {}\n", "/tmp/p.rp")

    assert plans[0].get("corpus").params["holdout"] == pytest.approx(0.05)


def test_reference_to_parameter_and_output():
    plans, _ = check_source(PROGRAM_TAIL + "train { batch = corpus.context  steps = lm.depth }\n", "/tmp/p.rp")
    params = plans[0].get("train").params

    assert params["batch"] == 64
    assert params["steps"] == 2


def test_defaults_fill_the_plan():
    params = plan_params("train { steps = 10 }\n", "train")

    assert params["optimizer"]["component"] == "adamw"
    assert params["optimizer"]["params"]["lr"] == 1e-3
    assert params["schedule"]["component"] == "cosine"
    assert params["precision"] == "auto"


def test_enum_accepts_bare_word_and_string():
    bare = plan_params("train { precision = bf16 }\n", "train")
    quoted = plan_params('train { precision = "bf16" }\n', "train")

    assert bare["precision"] == quoted["precision"] == "bf16"


def test_component_with_block_equals_call():
    block = plan_params("train { optimizer = adamw { lr = 2e-3 } }\n", "train")
    call = plan_params("train { optimizer = adamw(lr = 2e-3) }\n", "train")

    assert block["optimizer"] == call["optimizer"]


@pytest.mark.parametrize("source", ['let a = 200 steps\n', 'let a = "3kk"  # 3kk and 0x10\n', 'let a = 1_000_000\n',
                                    'let a = 2k\n', 'let a = 3.5e-4\n', 'let a = [1, 2]\n'])
def test_number_check_accepts_spaced_and_quoted(source):
    program = parse_program(source, "p.rp")

    assert len(program.items) == 1


def test_override_value_rejects_glued_number():
    with pytest.raises(ProgramError) as raised:
        parse_value("3kk", "override lm.width")

    first = raised.value.diagnostics[0]
    assert first.message == "invalid number '3kk'"
    assert (first.span.line, first.span.column, first.span.end_column) == (1, 1, 4)
    assert "hexadecimal" in first.hint.lower()
