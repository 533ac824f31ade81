"""Run a measurement in a fresh process, so that runs share no allocator, threads or compile caches."""

from __future__ import annotations

import multiprocessing


def run_isolated(target, *args):
    """Call `target(*args, queue)` in a spawned process and return the one value it puts on `queue`."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result
