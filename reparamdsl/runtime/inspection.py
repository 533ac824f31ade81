"""Inspect a compiled train step: graph count, graph breaks, recompiles and FLOPs."""

from __future__ import annotations

import time

import attrs
import torch
from torch.utils.flop_counter import FlopCounterMode


@attrs.frozen
class StepReport:
    graphs: int
    graph_breaks: int
    break_reasons: tuple[str, ...]
    compile_seconds: float
    flops_per_step: int


def first_batch(trainer, rows: int | None = None) -> dict[str, torch.Tensor]:
    """Return the first training batch, of `rows` sequences (or pairs) instead of `train.batch` when given."""
    batch = next(trainer.task.train_batches(rows or trainer.train["batch"], trainer.seed, start=0))
    return {k: v.to(trainer.device) for k, v in batch.items()}


def explain_step(trainer, batch: dict[str, torch.Tensor]) -> StepReport:
    """Trace the step with `torch._dynamo.explain` (this applies one update) and count its FLOPs."""
    import torch._dynamo

    flops = count_flops(trainer, batch)
    start = time.perf_counter()
    explanation = torch._dynamo.explain(trainer._step)(trainer.named_params, batch, trainer.lr, trainer.max_norm)
    elapsed = time.perf_counter() - start
    reasons = tuple(_format_reason(reason) for reason in explanation.break_reasons)
    return StepReport(explanation.graph_count, explanation.graph_break_count, reasons, elapsed, flops)


def count_flops(trainer, batch: dict[str, torch.Tensor]) -> int:
    """FLOPs of the forward and backward pass of one step (the optimizer update is not counted)."""
    from torch.func import grad

    counter = FlopCounterMode(display=False)
    with counter:
        grad(lambda params: trainer._loss(params, batch)[0])(trainer.named_params)
    return int(counter.get_total_flops())


def _format_reason(reason) -> str:
    frames = getattr(reason, "user_stack", None) or []
    where = ""
    if frames:
        frame = frames[-1]
        where = f" at {frame.filename}:{frame.lineno}"
    return f"{reason.reason}{where}"
