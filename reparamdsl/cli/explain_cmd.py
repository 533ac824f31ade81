"""`rpc explain`: graph count, graph breaks, recompilations and compile time of a program's train step."""

from __future__ import annotations

import json

import attrs
import click

from reparamdsl.components.optim.specs import TRAIN


def _compile_backends() -> tuple[str, ...]:
    """Return the backends that `train.compile_backend` accepts, so the option and the language agree."""
    param = next(param for param in TRAIN.params if param.name == "compile_backend")
    return param.type.choices


@click.command("explain")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--steps", default=3, show_default=True, type=click.IntRange(1, 100),
              help="Optimizer steps to run while counting recompilations.")
@click.option("--backend", default=None, type=click.Choice(_compile_backends()), help="Compiler backend (default: the program's train.compile_backend).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def explain(file, overrides, device, steps, backend, as_json) -> None:
    """Explain how a program's train step compiles.

    Traces the step, lists every graph break with its reason and source line,
    then runs a few steps to count recompilations and the time spent compiling.

    \b
    Examples:
      rpc explain programs/lm_adamw.rp
      rpc explain programs/lm_adamw.rp lm.depth=1 --backend eager --steps 5
    """
    from reparamdsl.cli.main import split_overrides
    from reparamdsl.diagnostics import Diagnostic, ProgramError
    from reparamdsl.lowering.program import Program
    from reparamdsl.runtime.task import SupervisedTask
    from reparamdsl.semantics.frontend import check_file
    from reparamdsl.tooling.explain import explain_program

    plans, sources = check_file(file, split_overrides(overrides))
    if plans and plans[0].objective() is None:
        raise ProgramError([Diagnostic(
            f"{file} declares no objective: there is no train step to explain",
            hint="add an objective declaration and a train block, or explain a program that imports this file")],
            sources)
    for plan in plans:
        program = Program.from_plan(plan, device=device)
        if not isinstance(program.task, SupervisedTask):
            raise click.UsageError(f"objective '{plan.objective().component}' runs its own training loop; "
                                   "explain supports supervised objectives")
        report = explain_program(program, steps=steps, backend=backend)
        if as_json:
            click.echo(json.dumps({"plan": plan.hash, **attrs.asdict(report)}, indent=1))
        else:
            click.echo(f"program {plan.program}  plan {plan.hash}")
            click.echo(report.format())
