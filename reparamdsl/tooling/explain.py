"""`rpc explain`: how a program's train step compiles: graphs, graph breaks, recompilations, compile time.

Two passes over the step:
1. `torch._dynamo.explain` traces it once and lists every graph break with its
   reason and the user source line where it happened;
2. the step is compiled with the program's backend wrapped in a counting
   backend and run for a few optimizer steps on real batches. This counts the
   graphs compiled at the first step and the recompilations after it, and
   collects Dynamo's recompile reasons and compile times.

Both passes apply optimizer updates, so the program's model is trained for
`steps + 1` steps afterwards; explain a fresh program, not one being trained.
"""

from __future__ import annotations

import linecache
import time

import attrs
import torch


@attrs.frozen
class GraphBreak:
    """One graph break: Dynamo's reason and the user frame where it happened (None when unknown)."""

    reason: str
    file: str | None
    line: int | None
    source: str | None

    def __str__(self) -> str:
        where = f" at {self.file}:{self.line}" if self.file else ""
        text = f"\n    {self.source}" if self.source else ""
        return f"{self.reason}{where}{text}"


@attrs.frozen
class ExplainReport:
    """The result of compiling and running the train step, as `rpc explain` prints it."""

    backend: str
    graphs: int
    graph_breaks: tuple[GraphBreak, ...]
    steps: int
    compiled_frames: int
    recompiles: int
    recompile_reasons: tuple[str, ...]
    compile_seconds: float
    step_seconds: tuple[float, ...]

    def format(self) -> str:
        lines = [f"backend {self.backend}: {self.graphs} graph(s), {len(self.graph_breaks)} graph break(s)"]
        lines += [f"  break: {graph_break}" for graph_break in self.graph_breaks]
        lines.append(f"ran {self.steps} step(s): {self.compiled_frames} frame(s) compiled, "
                     f"{self.recompiles} recompilation(s), {self.compile_seconds:.2f} s compiling")
        lines += [f"  recompiled: {reason}" for reason in self.recompile_reasons]
        shown = ", ".join(f"{seconds:.3f}" for seconds in self.step_seconds)
        lines.append(f"step times (s): {shown}")
        return "\n".join(lines)


class _CountingBackend:
    """Wrap a compiler backend; count the graphs it receives and the seconds it spends."""

    def __init__(self, backend: str):
        self.backend = backend
        self.graphs = 0
        self.seconds = 0.0

    def __call__(self, graph_module, example_inputs):
        from torch._dynamo.backends.registry import lookup_backend

        self.graphs += 1
        start = time.perf_counter()
        compiled = lookup_backend(self.backend)(graph_module, example_inputs)
        self.seconds += time.perf_counter() - start
        return compiled


def explain_program(program, steps: int = 3, backend: str | None = None) -> ExplainReport:
    """Explain the compiled train step of a supervised `program` (a `reparamdsl.lowering.program.Program`).

    `backend` defaults to the program's `train.compile_backend`.
    """
    import torch._dynamo
    from torch._dynamo.utils import clear_compilation_metrics, get_compilation_metrics

    from reparamdsl.runtime.inspection import first_batch

    trainer = program.trainer()
    backend = backend or program.train.get("compile_backend", "inductor")
    batch = first_batch(trainer)

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(trainer._step)(trainer.named_params, batch, trainer.lr, trainer.max_norm)
    # A break inside a nested call splits every enclosing frame, and Dynamo reports it once per
    # frame; the user sees one break per source location.
    breaks = tuple(dict.fromkeys(_graph_break(reason) for reason in explanation.break_reasons))

    torch._dynamo.reset()
    clear_compilation_metrics()
    counter = _CountingBackend(backend)
    trainer._step_fn = torch.compile(trainer._step, backend=counter, dynamic=False)
    batches = trainer.task.train_batches(trainer.train["batch"], trainer.seed, start=0)
    step_seconds = []
    first_step_graphs = 0
    for index in range(steps):
        start = time.perf_counter()
        trainer.step(next(batches))
        step_seconds.append(time.perf_counter() - start)
        if index == 0:
            first_step_graphs = counter.graphs

    metrics = get_compilation_metrics()
    frame_seconds = sum(m.entire_frame_compile_time_s or 0.0 for m in metrics)
    reasons = tuple(m.recompile_reason for m in metrics if m.recompile_reason)
    compiled_frames = len([m for m in metrics if not m.is_runtime])
    return ExplainReport(backend=backend, graphs=explanation.graph_count, graph_breaks=breaks, steps=steps,
                         compiled_frames=compiled_frames, recompiles=counter.graphs - first_step_graphs,
                         recompile_reasons=reasons, compile_seconds=max(frame_seconds, counter.seconds),
                         step_seconds=tuple(step_seconds))


def _graph_break(reason) -> GraphBreak:
    frames = getattr(reason, "user_stack", None) or []
    if not frames:
        return GraphBreak(str(reason.reason).strip(), None, None, None)
    frame = frames[-1]
    source = (getattr(frame, "line", None) or linecache.getline(frame.filename, frame.lineno)).strip() or None
    return GraphBreak(str(reason.reason).strip().splitlines()[0], frame.filename, frame.lineno, source)


__all__ = ["ExplainReport", "GraphBreak", "explain_program"]
