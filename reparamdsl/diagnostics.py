"""Source spans, diagnostics and the language's error type.

Every stage of the compiler reports problems as `Diagnostic` values that carry
a `Span`. Stages collect them in a `DiagnosticSink` so that one `rpc check`
prints every mistake at once; `ProgramError` carries the collected list out of
the library. This module imports nothing heavy, so the check path stays fast.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import attrs


@attrs.frozen
class Span:
    """A region of a source file; lines and columns start at 1, `end_column` is exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def point(cls, file: str, line: int, column: int) -> Span:
        return cls(file, line, column, line, column + 1)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@attrs.frozen
class Diagnostic:
    """One problem found in a program: where it is, what is wrong and how to fix it."""

    message: str
    span: Span | None = None
    hint: str | None = None
    severity: str = "error"
    notes: tuple[tuple[str, Span | None], ...] = ()


class ProgramError(Exception):
    """A program failed to parse, resolve, check or build; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = tuple(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(self.render(color=False))

    def render(self, color: bool = False) -> str:
        return render_all(self.diagnostics, self.sources, color=color)


class DiagnosticSink:
    """Collects diagnostics from several stages; deduplicates identical reports."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []
        self._seen: set[tuple] = set()

    def error(self, message: str, span: Span | None = None, hint: str | None = None,
              notes: tuple[tuple[str, Span | None], ...] = ()) -> None:
        self.add(Diagnostic(message, span, hint, "error", notes))

    def add(self, diagnostic: Diagnostic) -> None:
        key = (diagnostic.message, diagnostic.span, diagnostic.severity)
        if key in self._seen:
            return
        self._seen.add(key)
        self._items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        for diagnostic in diagnostics:
            self.add(diagnostic)

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return tuple(sorted(self._items, key=_sort_key))

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self._items)

    def raise_if_errors(self, sources: dict[str, str] | None = None) -> None:
        if self.has_errors:
            raise ProgramError(self.diagnostics, sources)


def _sort_key(diagnostic: Diagnostic) -> tuple:
    span = diagnostic.span
    if span is None:
        return ("", 0, 0)
    return (span.file, span.line, span.column)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return a hint naming the closest candidate to a misspelled `name`, if any is close."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    if matches:
        return f"did you mean '{matches[0]}'?"
    return None


def render(diagnostic: Diagnostic, sources: dict[str, str], color: bool = False) -> str:
    """Format one diagnostic as `file:line:col: error: message`, the source line, a caret line and a hint."""
    red, blue, bold, reset = ("\x1b[31m", "\x1b[34m", "\x1b[1m", "\x1b[0m") if color else ("", "", "", "")
    span = diagnostic.span
    lines = []

    location = f"{span}: " if span is not None else ""
    lines.append(f"{bold}{location}{red}{diagnostic.severity}:{reset}{bold} {diagnostic.message}{reset}")

    if span is not None:
        lines.extend(_source_excerpt(span, sources, blue, red, reset))

    for note, note_span in diagnostic.notes:
        where = f"{note_span}: " if note_span is not None else ""
        lines.append(f"  {blue}note:{reset} {where}{note}")

    if diagnostic.hint:
        lines.append(f"  {blue}hint:{reset} {diagnostic.hint}")
    return "\n".join(lines)


def _source_excerpt(span: Span, sources: dict[str, str], blue: str, red: str, reset: str) -> list[str]:
    text = sources.get(span.file)
    if text is None:
        return []

    # Split on "\n" only, as Lark counts lines; str.splitlines also breaks at \x1c, \x85, \u2028...
    source_lines = [line.rstrip("\r") for line in text.split("\n")]
    if not 1 <= span.line <= len(source_lines):
        return []

    line = source_lines[span.line - 1].expandtabs(1)
    if span.end_line == span.line:
        width = max(1, span.end_column - span.column)
    else:
        width = max(1, len(line) - span.column + 1)
    gutter = str(span.line)
    pad = " " * len(gutter)
    marker = "^" + "~" * (width - 1)
    return [
        f"{blue}{gutter} |{reset} {line}",
        f"{blue}{pad} |{reset} {' ' * (span.column - 1)}{red}{marker}{reset}",
    ]


def render_all(diagnostics: Iterable[Diagnostic], sources: dict[str, str], color: bool = False) -> str:
    diagnostics = tuple(diagnostics)
    parts = [render(d, sources, color) for d in diagnostics]
    errors = sum(1 for d in diagnostics if d.severity == "error")
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''} found")
    return "\n".join(parts)
