"""Unusual but legal or clearly wrong inputs: line endings, BOMs, long chains, odd imports."""

import os

import pytest

import reparamdsl as rp
from reparamdsl.diagnostics import ProgramError
from reparamdsl.semantics.frontend import check_file, check_source


def first_error(source, path="/tmp/edge.rp", overrides=None):
    with pytest.raises(ProgramError) as raised:
        check_source(source, path, overrides)
    return raised.value.diagnostics[0]


def test_cr_line_endings_give_real_lines():
    error = first_error("let a = 1\rlet b = \"x\" * 2\r")

    assert (error.span.line, error.span.column) == (2, 9)


def test_crlf_line_endings_give_real_columns():
    error = first_error("let a = 1\r\nlet b = \"x\" * 2\r\n")

    assert (error.span.line, error.span.column) == (2, 9)


def test_byte_order_mark_is_accepted():
    plans, _ = check_source("\ufefflet a = 1\n", "/tmp/edge.rp")

    assert plans[0].declarations == ()


def test_long_let_chain_is_reported_not_raised():
    lines = [f"let v{i} = v{i + 1}" for i in range(3000)] + ["let v3000 = 1"]

    error = first_error("\n".join(lines) + "\n")

    assert error.message == "references are chained too deeply to check"
    assert error.span is not None


def test_integer_literal_with_thousands_of_digits():
    error = first_error("let a = " + "9" * 5000 + "\n")

    assert error.message.startswith("number ")
    assert error.message.endswith(" is too large")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_api_rejects_non_finite_override(value):
    with pytest.raises(ProgramError) as raised:
        rp.check("let a = 1\n", overrides={"a": value})
    assert raised.value.diagnostics[0].message == f"override 'a' must be a finite number, got {value}"


def test_api_huge_integer_override_is_range_error():
    with pytest.raises(ProgramError) as raised:
        rp.check("let a = 1\n", overrides={"a": 10**5000})
    assert raised.value.diagnostics[0].message == "number 1e999 is too large"


def test_api_rejects_unsupported_override_type():
    with pytest.raises(ProgramError) as raised:
        rp.check("let a = 1\n", overrides={"a": object()})
    assert raised.value.diagnostics[0].message == "override 'a' has unsupported type object"


@pytest.mark.parametrize("source", ["let l = [sweep(1, 2)]\n", "let l = sweep(8, 16) * 2\n"])
def test_sweep_must_be_a_whole_value(source):
    error = first_error(source)

    assert error.message == "sweep(...) is only allowed as a whole parameter or let value"


def test_import_of_folder_says_folder(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "main.rp").write_text('import "lib"\n')

    with pytest.raises(ProgramError) as raised:
        check_file(str(tmp_path / "main.rp"))

    assert raised.value.diagnostics[0].message.startswith("cannot import a folder: lib")


def test_import_through_symlink_loads_once(tmp_path):
    (tmp_path / "lib.rp").write_text("let shared = 3\n")
    os.symlink(tmp_path / "lib.rp", tmp_path / "alias.rp")
    (tmp_path / "main.rp").write_text('import "lib.rp"\nimport "alias.rp"\nlet b = shared\n')

    plans, _ = check_file(str(tmp_path / "main.rp"))

    assert plans[0].declarations == ()


def test_fifo_program_is_rejected_without_blocking(tmp_path):
    path = tmp_path / "pipe.rp"
    os.mkfifo(path)

    with pytest.raises(ProgramError) as raised:
        check_file(str(path))

    assert raised.value.diagnostics[0].message == f"cannot read {path}: not a regular file"


def test_objective_without_train_gets_default_schedule():
    source = ('data corpus = text { source = "python-stdlib" context = 32 max_files = 4 }\n'
              "model lm = llama { vocab = corpus.vocab_size width = 32 depth = 1 heads = 2 context = 32 }\n"
              "objective loss = next_token(lm, corpus)\n")

    plans, _ = check_source(source, "/tmp/edge.rp")

    assert plans[0].train_params()["steps"] == 1000


def test_import_path_with_nul_character():
    error = first_error('import "\x00"\n')

    assert error.message == "import path contains a NUL character"
    assert (error.span.line, error.span.column) == (1, 8)
