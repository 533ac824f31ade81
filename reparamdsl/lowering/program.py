"""`Program`: a checked plan lowered to modules, a task and a compiled step."""

from __future__ import annotations

import logging

import torch

from reparamdsl.diagnostics import Diagnostic, ProgramError
from reparamdsl.lowering.build import build_plan, resolve_device
from reparamdsl.runtime.task import SupervisedTask, Task
from reparamdsl.semantics.plan import Plan
from reparamdsl.semantics.registry import Registry, default_registry

logger = logging.getLogger(__name__)


class Program:
    """A compiled program: its plan, built declarations, task and train step.

    Attributes:
        plan: the resolved, hashed plan.
        built: built objects by declaration name (data sources, models, hooks...).
        task: the objective's task.
        model: the trained model of a supervised task (None for tasks without one).
        hooks: training hooks of the reparameterizations.
    """

    def __init__(self, plan: Plan, ctx, device: torch.device, seed: int):
        self.plan = plan
        self.ctx = ctx
        self.device = device
        self.seed = seed
        self.built = ctx.built
        self.hooks = ctx.hooks
        objective = plan.objective()
        self.task: Task | None = ctx.built[objective.name] if objective is not None else None
        self.model = getattr(self.task, "model", None)
        self._trainer = None

    @classmethod
    def from_plan(cls, plan: Plan, device: str = "auto", seed: int | None = None,
                  registry: Registry | None = None) -> Program:
        registry = registry or default_registry()
        seed = plan.train_params().get("seed", 0) if seed is None else seed
        torch_device = resolve_device(device)
        ctx = build_plan(plan, registry, torch_device, seed)
        return cls(plan, ctx, torch_device, seed)

    @property
    def train(self) -> dict:
        return self.plan.train_params()

    def trainer(self):
        """Return the supervised trainer (optimizer state and the compiled step), creating it once."""
        from reparamdsl.runtime.trainer import SupervisedTrainer

        if not isinstance(self.task, SupervisedTask):
            raise TypeError(f"objective '{self.plan.objective().component}' has its own training loop; "
                            "use program.run()")
        if self._trainer is None:
            self._trainer = SupervisedTrainer(self.task, self.train, self.device, self.hooks, self.seed)
        return self._trainer

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Run one compiled optimizer step on `batch`; returns its metrics (floats and 0-dimensional tensors)."""
        return self.trainer().step(batch)

    def parameter_counts(self) -> dict[str, int]:
        """Count trainable and frozen parameters and buffers of every model."""
        counts = {"trainable": 0, "frozen": 0, "buffers": 0}
        seen: set[int] = set()
        for obj in self.built.values():
            if not isinstance(obj, torch.nn.Module):
                continue
            for param in obj.parameters():
                if id(param) in seen:
                    continue
                seen.add(id(param))
                counts["trainable" if param.requires_grad else "frozen"] += param.numel()
            for buffer in obj.buffers():
                if id(buffer) not in seen:
                    seen.add(id(buffer))
                    counts["buffers"] += buffer.numel()
        return counts

    def run(self, out_dir: str | None = None, resume_dir: str | None = None, progress: bool = True,
            overrides: dict | None = None) -> dict[str, float]:
        """Train for the schedule; returns the final metrics. Writes a run folder when `out_dir` is set."""
        from reparamdsl.runtime.session import run_program

        if self.plan.objective() is None:
            raise ProgramError([Diagnostic(
                f"program '{self.plan.program}' declares no objective: nothing to train",
                hint="add an objective declaration and a train block, or import this file from a program")],
                {})

        return run_program(self, out_dir=out_dir, resume_dir=resume_dir, progress=progress,
                           overrides=overrides or {})
