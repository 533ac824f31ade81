"""Assertions shared by the fuzz tests about what a `ProgramError` carries."""

from __future__ import annotations

from reparamdsl.diagnostics import ProgramError

# Diagnostics about a whole file (it cannot be read) have no position.
WHOLE_FILE_MESSAGES = ("program file not found", "expected a program file, found a folder", "cannot read")


def assert_positioned(error: ProgramError) -> None:
    """Every diagnostic has a span inside its source, unless it is about the whole file."""
    assert error.diagnostics, "a ProgramError without diagnostics"
    for diagnostic in error.diagnostics:
        span = diagnostic.span
        if span is None:
            assert diagnostic.message.startswith(WHOLE_FILE_MESSAGES), f"no position: {diagnostic.message}"
            continue
        assert span.line >= 1, f"{diagnostic.message} at {span}"
        assert span.column >= 1, f"{diagnostic.message} at {span}"
        assert (span.end_line, span.end_column) >= (span.line, span.column), f"{diagnostic.message} at {span}"
        source = error.sources.get(span.file)
        if source is not None:
            assert span.line <= source.count("\n") + 1, f"{diagnostic.message} at {span}: past the end"
        error.render()
