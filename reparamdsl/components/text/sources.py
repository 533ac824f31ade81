"""File discovery, decoding and the held-out split of a `text` data source.

The held-out split is chosen by file, never by seed. Files are ranked by the
SHA-256 of their path relative to the source root, and the first
`round(holdout * n)` of them are held out. That count is raised to one and
capped at n - 1 when `holdout` is positive and there are at least two files.
The same file list therefore always gives the same split.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import sysconfig

import attrs

from reparamdsl.diagnostics import Diagnostic, ProgramError

logger = logging.getLogger(__name__)

STDLIB_SOURCE = "python-stdlib"

# Folders of the standard library that hold third-party packages, test suites
# or bytecode rather than library code.
STDLIB_EXCLUDED_DIRS = frozenset({
    "site-packages", "dist-packages", "__pycache__",
    "test", "tests", "idle_test", "test_tools",
})


@attrs.frozen
class SourceFile:
    """One file of a corpus: its absolute path and the path that names it in the split."""

    path: str
    name: str


def stdlib_files() -> list[SourceFile]:
    """List the standard library's own `.py` files, without site-packages and test folders."""
    root = sysconfig.get_paths()["stdlib"]
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in STDLIB_EXCLUDED_DIRS)
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                files.append(SourceFile(path, os.path.relpath(path, root)))
    return files


def glob_files(patterns: list[str]) -> list[SourceFile]:
    """Expand absolute paths or glob patterns (`**` allowed) into files, without duplicates."""
    seen: dict[str, SourceFile] = {}
    for pattern in patterns:
        root = _glob_root(pattern)
        for path in sorted(glob.glob(pattern, recursive=True)):
            if os.path.isfile(path) and path not in seen:
                seen[path] = SourceFile(path, os.path.relpath(path, root))
    return sorted(seen.values(), key=lambda f: f.path)


def _glob_root(pattern: str) -> str:
    """Return the longest leading folder of a pattern that has no glob characters."""
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or os.sep


def resolve_source(source, max_files: int | None) -> list[SourceFile]:
    """Return the files of a `source` plan value, sorted by path and cut to `max_files`.

    `max_files` keeps the first files in the hash order of the split, so a small
    run still has files on both sides of the split.
    """
    files = stdlib_files() if source == STDLIB_SOURCE else glob_files(list(source))
    files = sorted(files, key=lambda f: f.path)
    if max_files is not None and len(files) > max_files:
        files = sorted(sorted(files, key=_rank)[:max_files], key=lambda f: f.path)
    return files


def _rank(file: SourceFile) -> str:
    return hashlib.sha256(file.name.encode("utf-8")).hexdigest()


def split_holdout(files: list[SourceFile], holdout: float) -> tuple[list[SourceFile], list[SourceFile]]:
    """Split files into (train, held-out) by a fixed hash of their names; see the module docstring."""
    if holdout <= 0 or len(files) < 2:
        if holdout > 0:
            logger.warning("only %d file(s) in the corpus: nothing is held out for evaluation", len(files))
        return list(files), []

    count = min(len(files) - 1, max(1, round(holdout * len(files))))
    ranked = sorted(files, key=_rank)
    held_out = {file.path for file in ranked[:count]}
    train = [file for file in files if file.path not in held_out]
    evaluation = [file for file in files if file.path in held_out]
    return train, evaluation


def read_text(path: str, encoding: str, errors: str) -> tuple[str, bool]:
    """Read a file; return its text and whether strict decoding failed (so `errors` was applied)."""
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        return raw.decode(encoding), False
    except UnicodeDecodeError as error:
        if errors == "strict":
            raise _decode_error(path, raw, encoding, error) from error
        return raw.decode(encoding, errors=errors), True


def _decode_error(path: str, raw: bytes, encoding: str, error: UnicodeDecodeError) -> ProgramError:
    # Counting b"\n" gives the line for ASCII-compatible encodings, not for UTF-16 or UTF-32.
    line = raw.count(b"\n", 0, error.start) + 1
    return ProgramError([Diagnostic(
        f"{path}:{line}: the file is not valid {encoding}: {error.reason} (byte 0x{raw[error.start]:02x})",
        span=None,
        hint=f"convert the file to {encoding}, or set encoding_errors = replace to decode it anyway",
    )])
