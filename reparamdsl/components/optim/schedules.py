"""Learning-rate schedules: the multiplier of the peak learning rate at each step."""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[int, int], float]
"""`schedule(step, total_steps)` returns the learning-rate multiplier for 1-based `step`."""


def _warmup(step: int, warmup: int) -> float | None:
    if warmup > 0 and step <= warmup:
        return step / warmup
    return None


def cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    ramp = _warmup(step, warmup)
    if ramp is not None:
        return ramp
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(1.0, max(0.0, progress))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def linear(step: int, total: int, warmup: int, min_ratio: float) -> float:
    ramp = _warmup(step, warmup)
    if ramp is not None:
        return ramp
    progress = min(1.0, max(0.0, (step - warmup) / max(1, total - warmup)))
    return 1 - (1 - min_ratio) * progress


def constant(step: int, total: int, warmup: int) -> float:
    ramp = _warmup(step, warmup)
    return 1.0 if ramp is None else ramp


def build_cosine(params: dict, ctx) -> Schedule:
    return lambda step, total: cosine(step, total, params["warmup"], params["min_ratio"])


def build_linear(params: dict, ctx) -> Schedule:
    return lambda step, total: linear(step, total, params["warmup"], params["min_ratio"])


def build_constant(params: dict, ctx) -> Schedule:
    return lambda step, total: constant(step, total, params["warmup"])
