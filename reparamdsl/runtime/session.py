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

from reparamdsl.runtime.checkpoint import CheckpointError, CheckpointManager, latest_checkpoint
from reparamdsl.runtime.metrics import MetricsSink, Progress
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
    """Return the checkpoint to resume from; refuses a folder whose plan differs from `plan`."""
    plan_path = os.path.join(run_dir, "plan.json")
    if not os.path.isdir(run_dir):
        raise RunFolderError(f"run folder not found: {run_dir}")
    if not os.path.isfile(plan_path):
        raise RunFolderError(f"{run_dir} is not a run folder: plan.json is missing")
    with open(plan_path, encoding="utf-8") as handle:
        try:
            saved = json.load(handle)
        except json.JSONDecodeError as error:
            raise RunFolderError(f"corrupt plan file {plan_path}: {error}") from None

    if saved.get("hash") != plan.hash and not allow_mismatch:
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
                handle_signals: bool = False) -> dict[str, float]:
    """Train `program` in a run folder (or without one when `out_dir` and `resume_dir` are None)."""
    plan = program.plan
    resume_checkpoint = None
    if resume_dir is not None:
        resume_checkpoint = check_resume(resume_dir, plan, allow_plan_change)
        out_dir = resume_dir
        logger.info("resuming from %s", resume_checkpoint)

    checkpoints = None
    if out_dir is not None:
        _prepare_run_dir(out_dir, plan, overrides or {}, program.device, resuming=resume_dir is not None)
        checkpoints = CheckpointManager(os.path.join(out_dir, "checkpoints"), keep=plan.train_params()["keep_checkpoints"])

    sink = MetricsSink(out_dir)
    bar = Progress(plan.train_params()["steps"], enabled=progress)
    run = RunContext(plan.train_params(), program.device, program.seed, program.hooks, out_dir, sink, bar,
                     checkpoints, resume=resume_checkpoint)
    previous = _install_signals(run) if handle_signals else None
    try:
        if isinstance(program.task, SupervisedTask):
            from reparamdsl.runtime.trainer import fit_supervised

            result = fit_supervised(program.trainer(), run)
        else:
            result = program.task.fit(run)
    finally:
        bar.close()
        sink.close()
        if previous is not None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    program.history = sink.history
    return result


def _install_signals(run: RunContext) -> dict:
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    run.install_signal_handlers()
    return previous


def _prepare_run_dir(out_dir: str, plan: Plan, overrides: dict, device: torch.device, resuming: bool) -> None:
    if not resuming and os.path.exists(os.path.join(out_dir, "plan.json")):
        raise RunFolderError(f"{out_dir} already holds a run; choose another --out or resume it with --resume {out_dir}")
    os.makedirs(out_dir, exist_ok=True)
    if resuming:
        return
    with open(os.path.join(out_dir, "plan.json"), "w", encoding="utf-8") as handle:
        handle.write(plan.to_json())
    with open(os.path.join(out_dir, "overrides.json"), "w", encoding="utf-8") as handle:
        json.dump(overrides, handle, indent=1, sort_keys=True)
    with open(os.path.join(out_dir, "environment.json"), "w", encoding="utf-8") as handle:
        json.dump(environment_info(device), handle, indent=1, sort_keys=True)


__all__ = ["CheckpointError", "RunFolderError", "run_program", "default_run_dir"]
