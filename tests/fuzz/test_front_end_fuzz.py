"""Property tests: the front end returns, for every input, plans or positioned diagnostics, never a traceback.

Set RP_FUZZ_EXAMPLES (default 60) for longer runs, e.g. RP_FUZZ_EXAMPLES=20000.
"""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reparamdsl.diagnostics import ProgramError
from reparamdsl.semantics.frontend import check_file, check_source
from reparamdsl.syntax.parser import parse_program
from tests.fuzz.diagnostic_checks import assert_positioned
from tests.fuzz.grammar_programs import mutated_programs, programs
from tests.fuzz.limits import EXAMPLES, time_limit

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("RP_FUZZ_RANDOM") is None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_without_traceback(text: str) -> None:
    with time_limit():
        try:
            check_source(text, "fuzz.rp")
        except ProgramError as error:
            assert_positioned(error)


@FUZZ
@given(programs())
def test_generated_program_parses(text):
    parse_program(text, "fuzz.rp")


@FUZZ
@given(programs())
def test_generated_program_checks_without_traceback(text):
    check_without_traceback(text)


@FUZZ
@given(mutated_programs())
def test_mutated_program_checks_without_traceback(text):
    check_without_traceback(text)


@FUZZ
@given(st.text(max_size=200))
def test_random_text_checks_without_traceback(text):
    check_without_traceback(text)


@FUZZ
@given(st.binary(max_size=200), programs())
def test_random_bytes_file_checks_without_traceback(noise, text):
    data = text.encode("utf-8")
    position = len(data) // 2
    data = data[:position] + noise + data[position:]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "fuzz.rp")
        with open(path, "wb") as handle:
            handle.write(data)
        with time_limit():
            try:
                check_file(path)
            except ProgramError as error:
                assert_positioned(error)


@FUZZ
@given(programs(), st.dictionaries(st.sampled_from(["train.steps", "lm.width", "x", "a.b.c", "train.optimizer.lr"]),
                                   st.text(max_size=20), max_size=3))
def test_overrides_check_without_traceback(text, overrides):
    with time_limit():
        try:
            check_source(text, "fuzz.rp", overrides)
        except ProgramError as error:
            assert_positioned(error)


def test_invalid_utf8_file_reports_position(tmp_path):
    path = tmp_path / "latin1.rp"
    path.write_bytes(b"let a = 1\nlet b = \"caf\xe9\"\n")
    try:
        check_file(str(path))
    except ProgramError as error:
        assert_positioned(error)
        (diagnostic,) = error.diagnostics
        assert "invalid UTF-8 byte 0xe9" in diagnostic.message
        assert (diagnostic.span.line, diagnostic.span.column) == (2, 13)
    else:
        raise AssertionError("a non-UTF-8 file was accepted")
