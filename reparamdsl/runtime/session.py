"""A run session: the run folder, resume checks, signal handling and the task's fit."""

from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import signal
import sys

import torch

from reparamdsl.runtime.checkpoint import CheckpointError, CheckpointManager, latest_checkpoint, read_checkpoint
from reparamdsl.runtime.distributed import Distributed, DistributedError, check_batch
from reparamdsl.runtime.loop import RunInterrupted, check_checkpoint_fits, supervised_loop
from reparamdsl.runtime.metrics import MetricsSink, Progress, rewind_metrics
from reparamdsl.runtime.run import RunContext
from reparamdsl.runtime.task import SupervisedTask
from reparamdsl.semantics.plan import Plan, diff_plans

logger = logging.getLogger(__name__)


class RunFolderError(RuntimeError):
    """A run folder cannot be used: missing, from another program, or would be overwritten."""


def default_run_dir(plan: Plan, root: str = "runs") -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    label = plan.program
    if plan.sweep is not None:
        label += "-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in plan.sweep["label"])[:80]
    path = os.path.join(root, f"{label}-{stamp}")
    suffix = 1
    while os.path.exists(path):
        suffix += 1
        path = os.path.join(root, f"{label}-{stamp}-{suffix}")
    return path


def environment_info(device: torch.device) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        own_version = version("reparamdsl")
    except PackageNotFoundError:
        own_version = "unknown"
    info = {"python": sys.version.split()[0], "torch": torch.__version__, "reparamdsl": own_version,
            "platform": platform.platform(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def check_resume(run_dir: str, plan: Plan, allow_mismatch: bool) -> str:
    """Return the checkpoint folder to resume from; rejects a folder whose plan differs from `plan`."""
    plan_path = os.path.join(run_dir, "plan.json")
    if not os.path.isdir(run_dir):
        raise RunFolderError(f"run folder not found: {run_dir}")
    if not os.path.isfile(plan_path):
        raise RunFolderError(f"{run_dir} is not a run folder: plan.json is missing")
    with open(plan_path, encoding="utf-8") as handle:
        try:
            saved = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RunFolderError(f"corrupt plan file {plan_path}: {error}") from None
    if not isinstance(saved, dict):
        raise RunFolderError(f"corrupt plan file {plan_path}: expected a JSON object")

    if saved.get("hash") != plan.hash and not allow_mismatch:
        if saved.get("program") != plan.program:
            raise RunFolderError(f"{run_dir} contains a run of program '{saved.get('program')}', not '{plan.program}'; "
                                 "resume it with its own program, or start a new run with another --out")
        changes = diff_plans({"declarations": saved.get("declarations"), "sweep": saved.get("sweep")},
                             {"declarations": plan.content()["declarations"], "sweep": plan.sweep})
        shown = "\n  ".join(changes[:20]) or "(the plan formats differ)"
        raise RunFolderError(
            f"the program no longer matches the run in {run_dir} (plan {saved.get('hash')} vs {plan.hash}):\n  {shown}\n"
            "resume with the same program and overrides, or pass --allow-plan-change to resume anyway")

    checkpoint = latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    if checkpoint is None:
        raise RunFolderError(f"no complete checkpoint in {run_dir}/checkpoints to resume from")
    return checkpoint


def run_program(program, out_dir: str | None, resume_dir: str | None = None, progress: bool = True,
                overrides: dict | None = None, allow_plan_change: bool = False,
                handle_signals: bool = False, distributed: Distributed | None = None) -> dict[str, float]:
    """Train `program` in a run folder (or without one when `out_dir` and `resume_dir` are None).

    With `distributed` (several processes started by torchrun) every process
    trains and only rank 0 writes the run folder.
    """
    plan = program.plan
    distributed = distributed or Distributed()
    train = plan.train_params()
    if distributed.enabled:
        _check_distributable(program, train, distributed)

    resume = None
    if resume_dir is not None:
        resume = _read_resume_checkpoint(check_resume(resume_dir, plan, allow_plan_change), program.device)
        out_dir = resume_dir
        logger.info("resuming from %s (step %d)", resume.path, resume.step)

    trainer = None
    if isinstance(program.task, SupervisedTask):
        trainer = _supervised_trainer(program, train, distributed)
        if resume is not None:
            check_checkpoint_fits(trainer, resume)

    writes = out_dir is not None and distributed.is_main
    checkpoints = None
    if writes:
        _prepare_run_dir(out_dir, plan, overrides or {}, program.device, resuming=resume is not None)
        if resume is not None:
            dropped = rewind_metrics(out_dir, resume.state)
            if dropped:
                logger.info("dropped %d metric records written after the checkpoint at step %d", dropped, resume.step)
        checkpoints = CheckpointManager(os.path.join(out_dir, "checkpoints"), keep=train["keep_checkpoints"])

    sink = MetricsSink(out_dir if writes else None, purge_step=resume.step + 1 if resume is not None else None)
    bar = Progress(train["steps"], initial=resume.step if resume is not None else 0,
                   enabled=progress and distributed.is_main)
    run = RunContext(train, program.device, program.seed, program.hooks, out_dir, sink, bar,
                     checkpoints, resume=resume, distributed=distributed)
    previous = _install_signals(run) if handle_signals else None
    try:
        if trainer is not None:
            result = supervised_loop(trainer, run)
        else:
            result = program.task.fit(run)
    finally:
        bar.close()
        sink.close()
        if previous is not None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    program.history = sink.history
    if run.stop_requested is not None and not isinstance(program.task, SupervisedTask):
        # Tasks with their own loop return after writing their checkpoint; report it like the supervised loop.
        checkpoint = latest_checkpoint(os.path.join(out_dir, "checkpoints")) if writes else None
        raise RunInterrupted(run.stop_requested, _checkpoint_step(checkpoint), checkpoint)
    return result


def _checkpoint_step(checkpoint: str | None) -> int | None:
    if checkpoint is None:
        return None
    try:
        with open(os.path.join(checkpoint, "state.json"), encoding="utf-8") as handle:
            return int(json.load(handle)["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _supervised_trainer(program, train: dict, distributed: Distributed):
    from reparamdsl.runtime.trainer import SupervisedTrainer

    if not distributed.enabled:
        return program.trainer()
    if train["parallel"] == "fsdp":
        from reparamdsl.runtime.sharded import ShardedTrainer

        return ShardedTrainer(program.task, train, program.device, program.hooks, program.seed,
                              distributed=distributed)
    return SupervisedTrainer(program.task, train, program.device, program.hooks, program.seed, distributed=distributed)


def _read_resume_checkpoint(path: str, device: torch.device):
    try:
        return read_checkpoint(path, device)
    except CheckpointError as error:
        raise CheckpointError(f"{error}; move {path} out of the checkpoints folder to resume from the one "
                              "before it") from None


def _check_distributable(program, train: dict, distributed: Distributed) -> None:
    if not isinstance(program.task, SupervisedTask):
        raise DistributedError(f"objective '{program.plan.objective().component}' has its own training loop and "
                               "runs in one process; drop --nproc")
    check_batch(train["batch"], train["grad_accum"], distributed.world_size)


def _install_signals(run: RunContext) -> dict:
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    run.install_signal_handlers()
    return previous


def _prepare_run_dir(out_dir: str, plan: Plan, overrides: dict, device: torch.device, resuming: bool) -> None:
    if not resuming and os.path.exists(os.path.join(out_dir, "plan.json")):
        raise RunFolderError(f"{out_dir} already holds a run; choose another --out or resume it with --resume {out_dir}")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise RunFolderError(f"{out_dir} is a file, not a folder; choose another --out")
    os.makedirs(out_dir, exist_ok=True)
    if resuming:
        return
    with open(os.path.join(out_dir, "plan.json"), "w", encoding="utf-8") as handle:
        handle.write(plan.to_json())
    with open(os.path.join(out_dir, "overrides.json"), "w", encoding="utf-8") as handle:
        json.dump(overrides, handle, indent=1, sort_keys=True)
    with open(os.path.join(out_dir, "environment.json"), "w", encoding="utf-8") as handle:
        json.dump(environment_info(device), handle, indent=1, sort_keys=True)


__all__ = ["CheckpointError", "DistributedError", "RunFolderError", "run_program", "default_run_dir"]
