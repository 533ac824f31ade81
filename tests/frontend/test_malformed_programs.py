"""Each malformed program reports its first error with a pinned message, line and column."""

import os

import pytest

from reparamdsl.diagnostics import ProgramError
from reparamdsl.semantics.frontend import check_file, check_source
from tests.frontend.malformed_cases import CASES


@pytest.mark.parametrize("name, source, message, line, column", CASES, ids=[case[0] for case in CASES])
def test_malformed_program_diagnostic(tmp_path, name, source, message, line, column):
    path = str(tmp_path / f"{name}.rp")

    with pytest.raises(ProgramError) as raised:
        check_source(source, path)

    first = raised.value.diagnostics[0]
    assert first.message == message.replace("{dir}", str(tmp_path))
    assert (first.span.line, first.span.column) == (line, column)
    assert first.span.file == path


def test_malformed_cases_cover_forty_programs():
    assert len(CASES) >= 40


def test_render_shows_source_line_and_caret(tmp_path):
    path = str(tmp_path / "p.rp")
    source = "train {\n    precision = fp16\n}\n"

    with pytest.raises(ProgramError) as raised:
        check_source(source, path)
    text = raised.value.render()

    assert f"{path}:2:17: error: invalid value for 'precision'" in text
    assert "2 |     precision = fp16" in text
    assert "  |                 ^~~~" in text
    assert "hint: did you mean 'bf16'?" in text


def test_import_cycle_is_reported_at_import(tmp_path):
    (tmp_path / "a.rp").write_text('import "b.rp"\nlet x = 1\n')
    (tmp_path / "b.rp").write_text('let y = 2\nimport "a.rp"\n')

    with pytest.raises(ProgramError) as raised:
        check_file(str(tmp_path / "a.rp"))

    first = raised.value.diagnostics[0]
    assert first.message == "import cycle: a.rp -> b.rp -> a.rp"
    assert first.span.file == str(tmp_path / "b.rp")
    assert (first.span.line, first.span.column) == (2, 8)


def test_errors_in_several_declarations_are_all_reported(tmp_path):
    source = (
        'data corpus = text { source = "python-stdlib" context = 0 }\n'
        "model lm = llama { vocab = 10 width = 64 depth = 2 heads = 4 colour = 3 }\n"
        "train { steps = -1 batch = 0 }\n"
    )

    with pytest.raises(ProgramError) as raised:
        check_source(source, str(tmp_path / "p.rp"))
    positions = [(d.span.line, d.span.column) for d in raised.value.diagnostics]

    assert (1, 57) in positions
    assert (2, 62) in positions
    assert (3, 17) in positions
    assert (3, 28) in positions


def test_empty_corpus_is_reported_at_its_declaration(tmp_path):
    from reparamdsl.api import compile_file

    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "p.rp").write_text(
        'data corpus = text { source = ["*.txt"] context = 16 }\n'
        "model lm = llama { vocab = corpus.vocab_size width = 32 depth = 1 heads = 2 context = 16 }\n"
        "objective loss = next_token(lm, corpus)\n"
        "train { steps = 2 compile = false }\n")

    with pytest.raises(ProgramError) as raised:
        compile_file(str(tmp_path / "p.rp"), device="cpu")

    first = raised.value.diagnostics[0]
    assert "no text" in first.message
    assert first.message.endswith("(in data 'corpus')")
    assert (first.span.line, first.span.column) == (1, 6)


def test_non_utf8_program_reports_byte_position(tmp_path):
    path = tmp_path / "p.rp"
    path.write_bytes(b"let a = 1\nlet b = \xff\n")

    with pytest.raises(ProgramError) as raised:
        check_file(str(path))

    first = raised.value.diagnostics[0]
    assert first.message == "invalid UTF-8 byte 0xff in program file"
    assert (first.span.line, first.span.column) == (2, 9)


def test_missing_program_file_is_program_error(tmp_path):
    with pytest.raises(ProgramError) as raised:
        check_file(os.path.join(str(tmp_path), "nope.rp"))
    assert raised.value.diagnostics[0].message.startswith("program file not found")
