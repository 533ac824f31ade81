"""The supervised run loop: steps, logging, evaluation, checkpoints, interrupts."""

from __future__ import annotations

import logging
import os
import time

from reparamdsl.runtime.checkpoint import CheckpointError, CheckpointState, rng_state, set_rng_state
from reparamdsl.runtime.distributed import Distributed, shard_batches
from reparamdsl.runtime.hooks import collect_metrics
from reparamdsl.runtime.metrics import as_float

logger = logging.getLogger(__name__)


class RunInterrupted(Exception):
    """The run stopped on SIGINT or SIGTERM after writing a checkpoint."""

    def __init__(self, signal_name: str, step: int, checkpoint: str | None):
        super().__init__(f"stopped by {signal_name} at step {step}")
        self.signal_name = signal_name
        self.step = step
        self.checkpoint = checkpoint


def save_state(trainer, run, step: int, final: bool = False) -> str | None:
    state = {
        "hooks": [hook.state_dict() for hook in trainer.hooks],
        "rng": rng_state(),
    }
    return run.save_checkpoint(step, trainer.state_tensors(), state, final=final)


def check_checkpoint_fits(trainer, checkpoint: CheckpointState) -> None:
    """Raise `CheckpointError` unless the checkpoint has the RNG and hook state and every state tensor of `trainer`.

    Runs before the run folder is touched, so a checkpoint that cannot be restored changes nothing on disk.
    """
    state_path = os.path.join(checkpoint.path, "state.json")
    if "rng" not in checkpoint.state:
        raise CheckpointError(f"corrupt checkpoint state {state_path}: missing 'rng'")
    hooks_state = checkpoint.state.get("hooks", [])
    if not isinstance(hooks_state, list) or len(hooks_state) != len(trainer.hooks) \
            or not all(isinstance(entry, dict) for entry in hooks_state):
        raise CheckpointError(f"corrupt checkpoint state {state_path}: 'hooks' should be a list of "
                              f"{len(trainer.hooks)} objects, one per reparameterization")

    expected = trainer.state_tensors()
    missing = [name for name in expected if name not in checkpoint.tensors]
    reshaped = [name for name, value in expected.items()
                if name in checkpoint.tensors and checkpoint.tensors[name].shape != value.shape]
    unexpected = [name for name in checkpoint.tensors if name not in expected]
    if missing or reshaped or unexpected:
        problems = []
        if missing:
            problems.append(f"{len(missing)} tensors missing (first: {missing[0]})")
        if reshaped:
            name = reshaped[0]
            problems.append(f"{len(reshaped)} with another shape (first: {name}, "
                            f"{tuple(checkpoint.tensors[name].shape)} instead of {tuple(expected[name].shape)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
        raise CheckpointError(f"checkpoint {checkpoint.path} does not fit this program's model and optimizer: "
                              + "; ".join(problems))


def restore_state(trainer, checkpoint: CheckpointState) -> int:
    """Load model, optimizer, hook and RNG state; return the step the checkpoint was written after."""
    try:
        trainer.load_state_tensors(checkpoint.tensors)
    except (KeyError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"checkpoint {checkpoint.path} does not fit this program's model and optimizer: "
                              f"{first_line}") from None
    try:
        for hook, hook_state in zip(trainer.hooks, checkpoint.state.get("hooks", [])):
            hook.load_state_dict(hook_state)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {checkpoint.path} has an invalid hook state: {error!r}") from None
    set_rng_state(checkpoint.state["rng"])
    trainer.step_count = checkpoint.step
    return trainer.step_count


def supervised_loop(trainer, run) -> dict[str, float]:
    train = run.train
    total = train["steps"]
    distributed = run.distributed or Distributed()
    start = restore_state(trainer, run.resume) if run.resume is not None else 0
    if start >= total:
        logger.warning("the run already finished: its checkpoint is at step %d of %d", start, total)
        return {}

    # Batches are indexed by step, so a resumed run continues with the batch that follows the checkpoint.
    batches = shard_batches(trainer.task.train_batches(train["batch"], run.seed, start=start), distributed)
    progress = run.progress
    final_metrics: dict[str, float] = {}
    last_time, last_step = time.perf_counter(), start

    for step in range(start + 1, total + 1):
        batch = next(batches)
        metrics = trainer.step(batch)

        if step % train["log_every"] == 0 or step == total:
            now = time.perf_counter()
            metrics["charts/steps_per_sec"] = (step - last_step) / max(now - last_time, 1e-9)
            last_time, last_step = now, step
            metrics.update(collect_metrics(trainer.hooks))
            metrics = {k: as_float(v) for k, v in metrics.items()}
            run.log(step, metrics)
            progress.update(step, {k: metrics[k] for k in ("train/loss", "train/lr") if k in metrics})
            final_metrics.update(metrics)
        else:
            progress.update(step)

        if train["eval_every"] and step % train["eval_every"] == 0 and step != total:
            evaluation = trainer.evaluate(train["eval_batches"])
            run.log(step, evaluation)
            progress.write(format_summary(step, evaluation))

        if train["checkpoint_every"] and step % train["checkpoint_every"] == 0 and step != total:
            save_state(trainer, run, step)

        # Every process must stop after the same step, or the others would wait in the next all-reduce.
        if distributed.any(run.stop_requested is not None):
            checkpoint = save_state(trainer, run, step)
            raise RunInterrupted(run.stop_requested or "a signal to another process", step, checkpoint)

    evaluation = trainer.evaluate(train["eval_batches"])
    if evaluation:
        run.log(max(total, start), evaluation)
        progress.write(format_summary(max(total, start), evaluation))
    final_metrics.update(evaluation)
    save_state(trainer, run, max(total, start), final=True)
    return final_metrics


def format_summary(step: int, metrics: dict[str, float]) -> str:
    parts = [f"{key.split('/', 1)[-1]} {value:.4f}" for key, value in metrics.items()]
    return f"step {step}: eval " + ", ".join(parts)
