"""The run context: what a task's `fit` gets from the runtime."""

from __future__ import annotations

import logging
import signal

import torch

from reparamdsl.runtime.hooks import TrainingHook

logger = logging.getLogger(__name__)


class RunContext:
    """Schedule parameters, device, metric sinks, progress and checkpointing of one run.

    Attributes:
        train: plan parameters of the `train` declaration (steps, batch, optimizer, ...).
        device: the training device.
        seed: the run seed.
        hooks: training hooks appended by reparameterizations.
        out_dir: the run folder, or None for a run that writes nothing.
        resume: the checkpoint to resume from (`CheckpointState` with `tensors`, `state`, `step`), or None.
        distributed: the process group's rank and size (`Distributed`); one process has rank 0 of 1.
    """

    def __init__(self, train: dict, device: torch.device, seed: int, hooks: list[TrainingHook],
                 out_dir: str | None, metrics_sink, progress, checkpoints, resume=None, distributed=None):
        self.train = train
        self.device = device
        self.seed = seed
        self.hooks = hooks
        self.out_dir = out_dir
        self.metrics_sink = metrics_sink
        self.progress = progress
        self.checkpoints = checkpoints
        self.resume = resume
        self.distributed = distributed
        self.stop_requested: str | None = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record metrics with namespaced keys (`train/loss`, `eval/loss`, `charts/sps`)."""
        self.metrics_sink.log(step, metrics)

    def save_checkpoint(self, step: int, tensors: dict[str, torch.Tensor], state: dict, final: bool = False) -> str | None:
        """Write a checkpoint atomically: `tensors` as safetensors, `state` as JSON; return its folder.

        Only the process that owns the run folder writes (rank 0 of a distributed
        run; the others return None). The state gets a `runtime` entry with the
        length of metrics.jsonl, so a resume can drop the records written after
        this checkpoint.
        """
        if self.checkpoints is None:
            return None
        runtime = {"metrics_bytes": self.metrics_sink.position()}
        return self.checkpoints.save(step, tensors, {**state, "runtime": runtime}, final=final)

    def install_signal_handlers(self) -> None:
        """Turn SIGINT and SIGTERM into a stop request that the loop honours after the current step."""

        def request_stop(signum, frame):
            name = signal.Signals(signum).name
            # A second Ctrl-C aborts at once. Other repeats are ignored: torchrun forwards a
            # SIGTERM to workers that already got the terminal's SIGINT.
            if self.stop_requested == "SIGINT" and name == "SIGINT":
                raise KeyboardInterrupt
            if self.stop_requested is not None:
                return
            self.stop_requested = name
            logger.warning("received %s: stopping after this step and writing a checkpoint", name)

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
