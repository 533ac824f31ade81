"""Tests of `rpc fmt`: layout, comments, idempotence, and an unchanged AST and plan hash."""

from __future__ import annotations

import pathlib
import re

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reparamdsl.cli.main import main
from reparamdsl.diagnostics import ProgramError, Span
from reparamdsl.semantics.frontend import check_source
from reparamdsl.syntax.parser import parse_program
from reparamdsl.tooling.formatter import format_source
from tests.fuzz.grammar_programs import _relayout, programs
from tests.fuzz.limits import EXAMPLES

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "programs").rglob("*.rp"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def shape(node):
    """The AST without positions: what formatting must not change."""
    if isinstance(node, tuple):
        return tuple(shape(child) for child in node)
    if attrs.has(type(node)) and not isinstance(node, Span):
        fields = [f.name for f in attrs.fields(type(node)) if f.name != "path"]
        return (type(node).__name__,) + tuple(shape(getattr(node, name)) for name in fields
                                              if not isinstance(getattr(node, name), Span))
    return node


def comments(text: str) -> list[str]:
    """Comment texts, found by the language's own token parser (a '#' inside a string is no comment)."""
    from reparamdsl.tooling.tokens import program_tokens

    return [token.value.rstrip() for token in program_tokens(text) if token.type == "COMMENT"]


def assert_same_program(original: str, formatted: str) -> None:
    assert shape(parse_program(formatted, "f.rp")) == shape(parse_program(original, "f.rp"))
    assert comments(formatted) == comments(original)
    assert format_source(formatted) == formatted


def test_shipped_programs_exist():
    assert SHIPPED, "no programs under programs/"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_program_format_idempotent_and_hash_unchanged(path):
    source = path.read_text(encoding="utf-8")
    formatted = format_source(source, str(path))

    assert_same_program(source, formatted)
    original_plans, _ = check_source(source, str(path))
    formatted_plans, _ = check_source(formatted, str(path))
    assert [p.hash for p in formatted_plans] == [p.hash for p in original_plans]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
@settings(PROPERTY, max_examples=max(10, EXAMPLES // 3))
@given(data=st.data())
def test_relaid_shipped_program_keeps_hash(path, data):
    source = path.read_text(encoding="utf-8")
    scrambled = _relayout(data.draw, source)
    formatted = format_source(scrambled, str(path))

    assert_same_program(scrambled, formatted)
    original_plans, _ = check_source(source, str(path))
    formatted_plans, _ = check_source(formatted, str(path))
    assert [p.hash for p in formatted_plans] == [p.hash for p in original_plans]


@PROPERTY
@given(programs())
def test_generated_program_format_keeps_ast(text):
    assert_same_program(text, format_source(text))


def test_format_layout_of_messy_program():
    source = (
        'import "a.rp"\nimport "b.rp"   # trailing\nlet w=2*-3 + (4-1)  # c1\nlet z = [1,2,\n 3,]\n'
        '# lead comment\ndata   corpus=text{ # brace\nsource="x" tokenizer=bpe(vocab=4096,) '
        'context = 200   steps, holdout=2%}\n'
        'model lm = llama(1, heads = -x.y) on a.b {\n  width = f(a = g { q = 1 }, # inner\n   b)\n\n\n'
        '  empty = h {}\n}\ntrain{steps=2k}#end\n'
    )
    expected = (
        'import "a.rp"\n'
        'import "b.rp"  # trailing\n'
        '\n'
        'let w = 2 * -3 + (4 - 1)  # c1\n'
        'let z = [1, 2, 3]\n'
        '\n'
        '# lead comment\n'
        'data corpus = text {  # brace\n'
        '    source = "x"\n'
        '    tokenizer = bpe(vocab = 4096)\n'
        '    context = 200 steps\n'
        '    holdout = 2%\n'
        '}\n'
        '\n'
        'model lm = llama(1, heads = -x.y) on a.b {\n'
        '    width = f(\n'
        '        a = g {\n'
        '            q = 1\n'
        '        },  # inner\n'
        '        b,\n'
        '    )\n'
        '\n'
        '    empty = h {}\n'
        '}\n'
        '\n'
        'train {\n'
        '    steps = 2k\n'
        '}  #end\n'
    )
    assert format_source(source) == expected


def test_format_keeps_hash_string_and_unit_words():
    source = 'let s = "a # not a comment"\ntrain {\n  log_every = 5\n  steps = 10 steps\n}\n'
    formatted = format_source(source)
    assert '"a # not a comment"' in formatted
    assert shape(parse_program(formatted, "f.rp")) == shape(parse_program(source, "f.rp"))
    assert re.search(r"^    log_every = 5$", formatted, re.MULTILINE)


def test_format_syntax_error_raises_program_error():
    with pytest.raises(ProgramError) as caught:
        format_source("let a = \n", "bad.rp")
    assert caught.value.diagnostics[0].span.line >= 1


def test_fmt_cli_check_rewrite_and_errors(tmp_path):
    messy = tmp_path / "messy.rp"
    messy.write_text("let a=1\n", encoding="utf-8")
    clean = tmp_path / "clean.rp"
    clean.write_text("let a = 1\n", encoding="utf-8")
    broken = tmp_path / "broken.rp"
    broken.write_text("let a = = 1\n", encoding="utf-8")
    runner = CliRunner()

    checked = runner.invoke(main, ["fmt", "--check", str(messy), str(clean)])
    assert checked.exit_code == 1
    assert f"would reformat {messy}" in checked.output
    assert messy.read_text(encoding="utf-8") == "let a=1\n"

    assert runner.invoke(main, ["fmt", "--check", str(clean)]).exit_code == 0

    rewritten = runner.invoke(main, ["fmt", str(messy)])
    assert rewritten.exit_code == 0
    assert messy.read_text(encoding="utf-8") == "let a = 1\n"

    failed = runner.invoke(main, ["fmt", str(broken)])
    assert failed.exit_code == 1
    assert "broken.rp:1:9" in failed.output
    assert broken.read_text(encoding="utf-8") == "let a = = 1\n"


def test_fmt_cli_drops_byte_order_mark(tmp_path):
    marked = tmp_path / "marked.rp"
    marked.write_bytes(b"\xef\xbb\xbflet a=1\n")
    runner = CliRunner()

    checked = runner.invoke(main, ["fmt", "--check", str(marked)])
    assert checked.exit_code == 1
    assert f"would reformat {marked}" in checked.output

    rewritten = runner.invoke(main, ["fmt", str(marked)])
    assert rewritten.exit_code == 0, rewritten.output
    assert marked.read_bytes() == b"let a = 1\n"

    piped = runner.invoke(main, ["fmt", "-"], input="\ufefflet a=1\n")
    assert piped.exit_code == 0, piped.output
    assert piped.output == "let a = 1\n"
