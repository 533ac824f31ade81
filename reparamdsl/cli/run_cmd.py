"""`rpc run`: train a program in a run folder, or resume one."""

from __future__ import annotations

import json
import logging
import os

import click

logger = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130


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
def run(file, overrides, device, seed, out_dir, resume_dir, allow_plan_change, dry_run, no_progress) -> None:
    """Train a program. Overrides use the language's syntax: key=value.

    Sweeps (`sweep(a, b)` in the program or an override) expand into one run
    per point, each in its own folder, run one after another.

    \b
    Examples:
      rpc run programs/lm_adamw.rp
      rpc run programs/lm_adamw.rp train.steps=200 lm.width=128
      rpc run programs/lm_adamw.rp "train.optimizer.lr=sweep(1e-3, 3e-4)" --dry-run
      rpc run --resume runs/lm_adamw-20261204-101500
    """
    from reparamdsl.cli.main import split_overrides
    from reparamdsl.semantics.frontend import check_file
    from reparamdsl.semantics.plan import Plan

    parsed = split_overrides(overrides)
    if seed is not None:
        parsed["train.seed"] = str(seed)

    if file is None:
        if resume_dir is None:
            raise click.UsageError("give a program FILE, or --resume RUN_DIR to continue a run")
        if parsed:
            raise click.UsageError("overrides need the program FILE; resuming from the run folder uses its saved plan")
        plan_path = os.path.join(resume_dir, "plan.json")
        if not os.path.isfile(plan_path):
            raise click.UsageError(f"{resume_dir} is not a run folder: plan.json is missing")
        with open(plan_path, encoding="utf-8") as handle:
            plans = [Plan.from_json(handle.read())]
    else:
        plans, _ = check_file(file, parsed)

    if resume_dir is not None and len(plans) > 1:
        raise click.UsageError("--resume continues one run; the program expands to several sweep points")
    if out_dir is not None and len(plans) > 1:
        raise click.UsageError("--out names one run folder; sweeps get one folder each under runs/")

    if dry_run:
        _print_dry_run(plans, device)
        return

    for plan in plans:
        _run_one(plan, parsed, device, out_dir, resume_dir, allow_plan_change, not no_progress)


def _print_dry_run(plans, device: str) -> None:
    from reparamdsl.lowering.program import Program

    for plan in plans:
        if len(plans) > 1:
            click.echo(f"# sweep point: {plan.sweep['label']}")
        click.echo(plan.to_json(), nl=False)
        program = Program.from_plan(plan, device=device)
        counts = program.parameter_counts()
        click.echo(f"# parameters: {counts['trainable']:,} trainable, {counts['frozen']:,} frozen, "
                   f"{counts['buffers']:,} in buffers; device {program.device}")


def _run_one(plan, overrides, device, out_dir, resume_dir, allow_plan_change, progress) -> None:
    from reparamdsl.lowering.program import Program
    from reparamdsl.runtime.checkpoint import CheckpointError
    from reparamdsl.runtime.loop import RunInterrupted
    from reparamdsl.runtime.session import RunFolderError, default_run_dir, run_program
    from reparamdsl.runtime.trainer import NonFiniteError

    if resume_dir is None and out_dir is None:
        out_dir = default_run_dir(plan)
    try:
        program = Program.from_plan(plan, device=device)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    folder = resume_dir or out_dir
    try:
        metrics = run_program(program, out_dir=out_dir, resume_dir=resume_dir, progress=progress,
                              overrides=overrides, allow_plan_change=allow_plan_change, handle_signals=True)
    except (RunFolderError, CheckpointError) as error:
        raise click.ClickException(str(error)) from None
    except RunInterrupted as stop:
        click.echo(f"stopped by {stop.signal_name} at step {stop.step}; checkpoint written to {stop.checkpoint}.\n"
                   f"resume with: rpc run --resume {folder}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except NonFiniteError as error:
        click.echo(f"error: {error}; the run stopped and the last good checkpoint in {folder}/checkpoints is kept.\n"
                   "lower the learning rate, enable clipping, or set train.on_nonfinite = skip", err=True)
        raise SystemExit(1) from None

    click.echo(f"run folder: {folder}")
    shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith("eval/") or k == "train/loss"}
    click.echo("final metrics: " + json.dumps(shown, sort_keys=True))
