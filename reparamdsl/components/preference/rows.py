"""Read JSON, JSONL and gzipped rows, each tagged with its file and line for error messages."""

from __future__ import annotations

import bisect
import gzip
import json
import zlib
from collections.abc import Iterator

import attrs


class PreferenceDataError(ValueError):
    """A preference data file or row is malformed; the message starts with `file:line:`."""


@attrs.frozen
class Row:
    """One JSON value read from a data file and the line where it starts."""

    value: object
    file: str
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _read_text(path: str) -> str:
    try:
        if path.endswith(".gz"):
            raw = _read_gzip(path)
        else:
            with open(path, "rb") as handle:
                raw = handle.read()
    except OSError as error:
        raise PreferenceDataError(f"{path}: cannot read the file: {error}") from error

    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise PreferenceDataError(f"{path}:{line}: the file is not valid UTF-8: {error.reason} "
                                  f"(byte 0x{raw[error.start]:02x}); convert the file to UTF-8") from error


def _read_gzip(path: str) -> bytes:
    # A truncated archive raises EOFError and corrupted deflate data raises
    # zlib.error, neither of which is an OSError.
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise PreferenceDataError(f"{path}: invalid or truncated gzip data ({error})") from error


def _is_jsonl(path: str) -> bool:
    name = path[:-3] if path.endswith(".gz") else path
    return name.endswith(".jsonl")


def read_rows(path: str) -> Iterator[Row]:
    """Yield the rows of one file: lines of a JSONL file, or elements of a JSON list.

    A line of JSONL that is not valid JSON comes back as a `Row` whose value
    is a `PreferenceDataError`, so the caller decides whether to skip it. A
    syntax error inside a JSON list is raised, because parsing cannot resume
    after it.
    """
    text = _read_text(path)
    if _is_jsonl(path):
        yield from _jsonl_rows(path, text)
    else:
        yield from _json_rows(path, text)


def _jsonl_rows(path: str, text: str) -> Iterator[Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Row(json.loads(line), path, number)
        except json.JSONDecodeError as error:
            yield Row(PreferenceDataError(f"{path}:{number}: invalid JSON: {error.msg} (column {error.colno})"),
                      path, number)


def _json_rows(path: str, text: str) -> Iterator[Row]:
    line_starts = [0] + [index + 1 for index, char in enumerate(text) if char == "\n"]

    def line_of(offset: int) -> int:
        return bisect.bisect_right(line_starts, offset)

    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if position < len(text) and text[position] != "[":
        # A single object, or concatenated objects: treat each as a row.
        yield from _object_stream(path, text, position, decoder, line_of)
        return

    position = _skip_space(text, position + 1)
    if position < len(text) and text[position] == "]":
        return
    while position < len(text):
        value, end = _decode_at(path, text, position, decoder)
        yield Row(value, path, line_of(position))

        position = _skip_space(text, end)
        if position < len(text) and text[position] == "]":
            return
        if position >= len(text) or text[position] != ",":
            raise PreferenceDataError(f"{path}:{line_of(position)}: invalid JSON: expected ',' or ']' "
                                      "after a list element")
        position = _skip_space(text, position + 1)
    raise PreferenceDataError(f"{path}:{line_of(len(text))}: invalid JSON: the list is not closed with ']'")


def _object_stream(path, text, position, decoder, line_of) -> Iterator[Row]:
    while position < len(text):
        value, end = _decode_at(path, text, position, decoder)
        yield Row(value, path, line_of(position))
        position = _skip_space(text, end)


def _decode_at(path, text: str, position: int, decoder: json.JSONDecoder):
    """Decode one JSON value starting at `position`; errors name the file and line."""
    try:
        return decoder.raw_decode(text, position)
    except json.JSONDecodeError as error:
        raise PreferenceDataError(f"{path}:{error.lineno}: invalid JSON: {error.msg} "
                                  f"(column {error.colno})") from error


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position
