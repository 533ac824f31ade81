"""`rpc check`: report every error in one or more programs without running anything."""

from __future__ import annotations

import click

from reparamdsl.diagnostics import ProgramError


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a value, as `rpc run` does (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when a program is valid.")
def check(files: tuple[str, ...], overrides: tuple[str, ...], quiet: bool) -> None:
    """Check programs: syntax, names, types, ranges, references and data paths.

    Every error of every file is printed at once with its position; nothing is
    trained and torch is not imported. Exit code 1 when any file has errors.

    \b
    Examples:
      rpc check programs/lm_adamw.rp
      rpc check programs/*.rp
      rpc check programs/lm_adamw.rp -s lm.width=96
    """
    from reparamdsl.cli.main import EXIT_PROGRAM_ERROR, report_program_error, split_overrides
    from reparamdsl.semantics.frontend import check_file
    from reparamdsl.semantics.registry import default_registry

    parsed = split_overrides(overrides)
    registry = default_registry()
    failed = 0
    for path in files:
        try:
            plans, _ = check_file(path, parsed, registry)
        except ProgramError as error:
            report_program_error(error)
            failed += 1
            continue
        if not quiet:
            sweep = f" ({len(plans)} sweep points)" if len(plans) > 1 else ""
            click.echo(f"{path}: ok, plan {plans[0].hash}{sweep}")
    if failed:
        raise SystemExit(EXIT_PROGRAM_ERROR)
