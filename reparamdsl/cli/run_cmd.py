"""`rpc run`: train a program in a run folder, or resume one."""

from __future__ import annotations

import json
import logging
import os

import click

logger = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130


class LayoutError(click.ClickException):
    """A process layout that does not fit the machine or the batch: one line on stderr, exit code 2."""

    exit_code = 2


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=None, help="Random seed; the same as the override train.seed=N.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Run folder (default runs/<program>-<timestamp>).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue the run in this folder from its latest checkpoint.")
@click.option("--allow-plan-change", is_flag=True, help="Resume even if the program or overrides changed.")
@click.option("--dry-run", is_flag=True, help="Print the resolved plan(s) and parameter counts; train nothing.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option("--nproc", type=int, default=1, show_default=True,
              help="Data-parallel processes on this machine (one per GPU, or CPU processes with gloo); "
                   "starts torchrun. For several nodes run `torchrun ... -m reparamdsl run ...` directly.")
def run(file, overrides, device, seed, out_dir, resume_dir, allow_plan_change, dry_run, no_progress, nproc) -> None:
    """Train a program. Overrides use the language's syntax: key=value.

    Sweeps (`sweep(a, b)` in the program or an override) expand into one run
    per point, each in its own folder, run one after another.

    \b
    Examples:
      rpc run programs/lm_adamw.rp
      rpc run programs/lm_adamw.rp train.steps=200 lm.width=128
      rpc run programs/lm_adamw.rp "train.optimizer.lr=sweep(1e-3, 3e-4)" --dry-run
      rpc run --resume runs/lm_adamw-20261204-101500
      rpc run programs/lm_adamw.rp --nproc 2 --device cpu
    """
    from reparamdsl.cli.main import split_overrides, validate_device
    from reparamdsl.diagnostics import Diagnostic, ProgramError
    from reparamdsl.semantics.frontend import check_file
    from reparamdsl.semantics.plan import Plan

    if file is not None and "=" in file and not os.path.exists(file):
        # `rpc run --resume DIR key=value` puts the first override in FILE's place.
        raise click.UsageError(f"'{file}' looks like an override, but overrides need the program FILE first")
    if resume_dir is not None and out_dir is not None:
        raise click.UsageError("--out cannot be combined with --resume: a resumed run stays in its own folder")
    if nproc == 1:
        # Several processes get their device checked, with a device count, by the torchrun launcher.
        validate_device(device)
    parsed = split_overrides(overrides)
    if seed is not None:
        if "train.seed" in parsed:
            raise click.UsageError(f"--seed {seed} and the override train.seed={parsed['train.seed']} both set the "
                                   "seed; give one of them")
        parsed["train.seed"] = str(seed)

    if file is None:
        if resume_dir is None:
            raise click.UsageError("give a program FILE, or --resume RUN_DIR to continue a run")
        if parsed:
            raise click.UsageError("overrides need the program FILE; resuming from the run folder uses its saved plan")
        plans = [_saved_plan(resume_dir, Plan)]
    else:
        plans, sources = check_file(file, parsed)
        if plans and plans[0].objective() is None:
            raise ProgramError([Diagnostic(
                f"{file} declares no objective: nothing to train",
                hint="add an objective declaration and a train block, or import this file from a program")], sources)

    if resume_dir is not None and len(plans) > 1:
        raise click.UsageError("--resume continues one run; the program expands to several sweep points")
    folders = _run_folders(plans, out_dir, resume_dir)

    if dry_run:
        _print_dry_run(plans, folders, device)
        return

    if nproc != 1 and not launched_by_torchrun():
        _check_distributable(plans, nproc, device)
        _launch_torchrun(nproc, device, file, overrides, seed, out_dir, folders, resume_dir, allow_plan_change,
                         no_progress)
        return

    for plan, folder in zip(plans, folders):
        _run_one(plan, parsed, device, folder, resume_dir, allow_plan_change, not no_progress)


def _saved_plan(run_dir: str, plan_class):
    if not os.path.isdir(run_dir):
        raise click.ClickException(f"run folder not found: {run_dir}")
    plan_path = os.path.join(run_dir, "plan.json")
    if not os.path.isfile(plan_path):
        raise click.ClickException(f"{run_dir} is not a run folder: plan.json is missing")
    try:
        with open(plan_path, encoding="utf-8") as handle:
            return plan_class.from_json(handle.read())
    except (ValueError, KeyError, TypeError) as error:
        raise click.ClickException(f"corrupt plan file {plan_path}: {error}") from None


def launched_by_torchrun() -> bool:
    from reparamdsl.runtime.distributed import launched_by_torchrun as launched

    return launched()


def _run_folders(plans, out_dir: str | None, resume_dir: str | None) -> list[str]:
    """Pick each plan's run folder: --resume, --out, or runs/<program>-<time>; sweep points go under --out."""
    from reparamdsl.runtime.session import default_run_dir

    if resume_dir is not None:
        return [resume_dir]
    if len(plans) == 1:
        return [out_dir or default_run_dir(plans[0])]
    folders = []
    for plan in plans:
        folder = default_run_dir(plan, root=out_dir or "runs")
        while folder in folders:
            folder += "-1"
        folders.append(folder)
    return folders


def _check_distributable(plans, nproc: int, device: str) -> None:
    """Reject, before any process starts, what every worker process would reject (one line, exit code 2)."""
    from reparamdsl.runtime.distributed import DistributedError, check_batch, check_nproc

    try:
        check_nproc(nproc, device)
    except DistributedError as error:
        raise LayoutError(str(error)) from None
    for plan in plans:
        if plan.of_kind("env"):
            raise LayoutError("programs with env declarations (reinforcement learning) have their own training loop "
                              "and run in one process; drop --nproc")
        train = plan.train_params()
        try:
            check_batch(train["batch"], train["grad_accum"], nproc)
        except DistributedError as error:
            raise LayoutError(str(error)) from None
        reparams = [decl.name for decl in plan.of_kind("reparam")]
        if train["parallel"] == "fsdp" and reparams:
            raise LayoutError(f"train.parallel = \"fsdp\" does not support reparam declarations ({', '.join(reparams)}): "
                              "they rewrite whole weights between steps; use train.parallel = \"ddp\"")


def _launch_torchrun(nproc, device, file, overrides, seed, out_dir, folders, resume_dir, allow_plan_change,
                     no_progress) -> None:
    """Run this command in `nproc` worker processes with torch's elastic launcher; exit with their status.

    The launcher runs in this process (as `torchrun --standalone` would), so a worker failure or an
    interrupt ends with the workers' own one-line messages and exit code rather than a launcher traceback.
    """
    import logging as std_logging

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    command = ["--standalone", f"--nproc-per-node={nproc}", "-m", "reparamdsl", "run", "--device", device]
    if file is not None:
        command += [file, *overrides]
    if seed is not None:
        command += ["--seed", str(seed)]
    if resume_dir is not None:
        command += ["--resume", resume_dir]
    elif len(folders) == 1:
        command += ["--out", folders[0]]
    elif out_dir is not None:
        command += ["--out", out_dir]
    if allow_plan_change:
        command.append("--allow-plan-change")
    if no_progress:
        command.append("--no-progress")

    if "OMP_NUM_THREADS" not in os.environ:
        # Share the cores between the workers (torchrun would set 1 and print a banner about it).
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    # The elastic agent's loggers have their own levels; keep its restatements of worker failures quiet.
    for name in list(std_logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic"):
            std_logging.getLogger(name).setLevel(std_logging.CRITICAL)
    logger.info("starting %d processes: torchrun %s", nproc, " ".join(command))
    try:
        torchrun.run(torchrun.get_args_parser().parse_args(command))
    except ChildFailedError as error:
        _rank, failure = error.get_first_failure()
        code = failure.exitcode if failure.exitcode and failure.exitcode > 0 else 1
        raise SystemExit(code) from None
    except SignalException as error:
        # The workers got the signal too; they write a checkpoint and print how to resume.
        click.echo(f"stopped by {error.sigval.name}", err=True)
        raise SystemExit(EXIT_INTERRUPTED if error.sigval.name == "SIGINT" else 128 + int(error.sigval)) from None
    raise SystemExit(0)


def _print_dry_run(plans, folders: list[str], device: str) -> None:
    from reparamdsl.lowering.program import Program

    if len(plans) > 1:
        click.echo(f"# {len(plans)} sweep points, run one after another:")
        for plan, folder in zip(plans, folders):
            click.echo(f"#   {plan.sweep['label']}  ->  {folder}")
    for plan in plans:
        if len(plans) > 1:
            click.echo(f"# sweep point: {plan.sweep['label']}")
        click.echo(plan.to_json(), nl=False)
        program = Program.from_plan(plan, device=device)
        counts = program.parameter_counts()
        click.echo(f"# parameters: {counts['trainable']:,} trainable, {counts['frozen']:,} frozen, "
                   f"{counts['buffers']:,} in buffers; device {program.device}")


def _run_one(plan, overrides, device, folder, resume_dir, allow_plan_change, progress) -> None:
    from reparamdsl.lowering.build import DeviceError
    from reparamdsl.lowering.program import Program
    from reparamdsl.runtime.checkpoint import CheckpointError
    from reparamdsl.runtime.distributed import Distributed, DistributedError, init_from_environment
    from reparamdsl.runtime.loop import RunInterrupted
    from reparamdsl.runtime.session import RunFolderError, run_program
    from reparamdsl.runtime.trainer import NonFiniteError

    distributed = Distributed()
    try:
        if launched_by_torchrun():
            distributed, device = init_from_environment(device)
        program = Program.from_plan(plan, device=device)
    except DistributedError as error:
        raise LayoutError(str(error)) from None
    except DeviceError as error:
        raise click.UsageError(str(error)) from None

    out_dir = None if resume_dir is not None else folder
    try:
        metrics = run_program(program, out_dir=out_dir, resume_dir=resume_dir, progress=progress,
                              overrides=overrides, allow_plan_change=allow_plan_change, handle_signals=True,
                              distributed=distributed)
    except (RunFolderError, CheckpointError) as error:
        raise click.ClickException(str(error)) from None
    except DistributedError as error:
        raise LayoutError(str(error)) from None
    except RunInterrupted as stop:
        if distributed.is_main:
            click.echo(f"stopped by {stop.signal_name} at step {stop.step}; checkpoint written to {stop.checkpoint}.\n"
                       f"resume with: rpc run --resume {folder}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except NonFiniteError as error:
        if distributed.is_main:
            click.echo(f"error: {error}; the run stopped and the last good checkpoint in {folder}/checkpoints is "
                       "kept.\nlower the learning rate, enable clipping, or set train.on_nonfinite = skip", err=True)
        raise SystemExit(1) from None
    except Exception as error:
        if not is_compile_failure(error):
            raise
        raise click.ClickException(compile_failure_message(error)) from None
    finally:
        distributed.close()

    if distributed.is_main and resume_dir is not None and not program.history:
        click.echo(f"nothing to train: the run in {folder} already finished", err=True)
    elif distributed.is_main:
        click.echo(f"run folder: {folder}")
        shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith("eval/") or k == "train/loss"}
        click.echo("final metrics: " + json.dumps(shown, sort_keys=True))


def is_compile_failure(error: BaseException) -> bool:
    """Return whether `error` comes from torch.compile (Dynamo, AOTAutograd or Inductor), not the program."""
    module = type(error).__module__ or ""
    return module.startswith(("torch._dynamo", "torch._inductor", "torch._functorch"))


def compile_failure_message(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return (f"torch.compile failed: {first[:300]}\n"
            "rerun with train.compile=false or train.compile_backend=aot_eager (add -vv for the full error)")
