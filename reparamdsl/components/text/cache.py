"""The on-disk cache of trained tokenizers and token arrays.

Entries live under `$REPARAMDSL_CACHE`, or `~/.cache/reparamdsl/` when that
variable is unset. Each entry is named by a hash of everything it depends on,
so a changed file, parameter or library version yields a new entry rather
than a stale one. Writes go to a temporary file in the same folder followed by
`os.replace`, so a reader never sees a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable

CACHE_ENV = "REPARAMDSL_CACHE"


def cache_dir(area: str) -> str:
    """Return (and create) the cache folder of one area, such as `tokenizers`."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "reparamdsl")
    path = os.path.join(root, area)
    os.makedirs(path, exist_ok=True)
    return path


def files_fingerprint(files: Iterable[str]) -> list[list]:
    """Return [path, size, mtime in ns] for each file: what a cache key must change with."""
    rows = []
    for path in files:
        stat = os.stat(path)
        rows.append([path, stat.st_size, stat.st_mtime_ns])
    return rows


def cache_key(payload: object) -> str:
    """Hash a JSON-serializable description of an entry's inputs."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """Call `write(temporary_path)`, then move the result to `path` in one step."""
    folder = os.path.dirname(path)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(descriptor)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
