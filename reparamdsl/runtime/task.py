"""Tasks: the trainable units that objectives build for the runtime."""

from __future__ import annotations

from collections.abc import Iterator

import torch


class Task:
    """A trainable unit built from an `objective` declaration.

    Every task has `fit(run)`, which trains for the schedule in `run.train`
    and returns the final metrics. `run` is a `reparamdsl.runtime.run.RunContext`.
    """

    def fit(self, run) -> dict[str, float]:
        raise NotImplementedError


class SupervisedTask(Task):
    """A task trained by minibatch gradient steps on a fixed data set.

    Subclasses set `model` and implement `loss`, `train_batches` and
    `eval_batches`. The shared trainer (`reparamdsl.runtime.trainer`)
    compiles `loss` into one step together with the backward pass and the
    optimizer update.
    """

    model: torch.nn.Module

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return the scalar loss and 0-dimensional metric tensors for one batch.

        Called inside the compiled step: tensor operations only, no `.item()`,
        no Python branching on tensor values.
        """
        raise NotImplementedError

    def train_batches(self, batch_size: int, seed: int, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """Yield training batches forever, deterministically from `seed`, skipping the first `start`."""
        raise NotImplementedError

    def eval_batches(self, batch_size: int, max_batches: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Yield the held-out batches, in the same order every time."""
        raise NotImplementedError

    def eval_summary(self, means: dict[str, float]) -> dict[str, float]:
        """Turn averaged eval metrics into the reported ones (for example add perplexity)."""
        return means

    def fit(self, run) -> dict[str, float]:
        from reparamdsl.runtime.trainer import SupervisedTrainer, fit_supervised

        trainer = SupervisedTrainer(self, run.train, run.device, run.hooks, run.seed)
        return fit_supervised(trainer, run)
