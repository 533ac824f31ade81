"""Regression inputs that once crashed or hung the front end; each must now fail with a positioned diagnostic."""

from __future__ import annotations

import pathlib

import pytest

from reparamdsl.diagnostics import ProgramError
from reparamdsl.semantics.frontend import check_file
from tests.fuzz.diagnostic_checks import assert_positioned
from tests.fuzz.limits import time_limit

CRASHERS = sorted((pathlib.Path(__file__).parent / "crashers").iterdir())

EXPECTED_MESSAGES = {
    "deep_sign.rp": "nests more than",
    "deep_list.rp": "nests more than",
    "long_sum.rp": "nests more than",
    "huge_int_division.rp": "arithmetic result is too large",
    "huge_int_plus_float.rp": "arithmetic result is too large",
    "sweep_explosion.rp": "the sweeps expand to 1073741824 points",
}


def test_crashers_corpus_is_not_empty():
    assert len(CRASHERS) >= len(EXPECTED_MESSAGES)


@pytest.mark.parametrize("path", CRASHERS, ids=[path.name for path in CRASHERS])
def test_crasher_checks_without_traceback(path):
    with time_limit():
        try:
            check_file(str(path))
        except ProgramError as error:
            assert_positioned(error)
            expected = EXPECTED_MESSAGES.get(path.name)
            if expected is not None:
                assert any(expected in d.message for d in error.diagnostics), error.render()
            return
    assert path.name not in EXPECTED_MESSAGES, f"{path.name} was expected to be rejected"
