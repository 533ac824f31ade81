"""Shared limits of the fuzz tests: example counts and the per-input time limit."""

from __future__ import annotations

import contextlib
import os
import signal

# RP_FUZZ_EXAMPLES raises the number of examples per property for long runs.
EXAMPLES = int(os.environ.get("RP_FUZZ_EXAMPLES", "60"))
SECONDS_PER_INPUT = 10.0


class Hang(Exception):
    """An input took longer than `SECONDS_PER_INPUT` to check."""


@contextlib.contextmanager
def time_limit(seconds: float = SECONDS_PER_INPUT):
    """Raise `Hang` in the main thread when the body runs longer than `seconds` (POSIX only)."""

    def expire(signum, frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
