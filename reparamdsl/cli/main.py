"""`rpc`: check, compile and run .rp programs.

Exit codes: 0 success, 1 the program (or its data) has errors, 2 usage
errors (a bad option or argument), 3 an internal error of reparamdsl.
Commands that do not train (check, components, fmt) never import torch.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from reparamdsl.diagnostics import ProgramError

EXIT_PROGRAM_ERROR = 1
EXIT_INTERNAL_ERROR = 3


def split_overrides(arguments: tuple[str, ...]) -> dict[str, str]:
    """Parse `key=value` arguments; raises a usage error on anything else."""
    overrides: dict[str, str] = {}
    for argument in arguments:
        key, sep, value = argument.partition("=")
        if not sep or not key:
            raise click.UsageError(f"expected an override of the form key=value, got '{argument}'")
        if key in overrides:
            raise click.UsageError(f"override '{key}' is given twice")
        overrides[key.strip()] = value
    return overrides


class DeviceUsageError(click.ClickException):
    """A bad `--device`: one line on stderr and exit code 2, like other usage errors."""

    exit_code = 2


def validate_device(name: str) -> None:
    """Raise a usage error for a device string that is invalid or unavailable here."""
    from reparamdsl.lowering.build import DeviceError, resolve_device

    try:
        resolve_device(name)
    except DeviceError as error:
        raise DeviceUsageError(str(error)) from None


def report_program_error(error: ProgramError) -> None:
    color = sys.stderr.isatty() and os.environ.get("NO_COLOR") is None
    click.echo(error.render(color=color), err=True)


class ProgramErrorsGroup(click.Group):
    """A click group that turns program errors into diagnostics and exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ProgramError as error:
            report_program_error(error)
            ctx.exit(EXIT_PROGRAM_ERROR)


@click.group(cls=ProgramErrorsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reparamdsl", prog_name="rpc")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Check, compile and run reparamdsl training programs (.rp files).

    \b
    Examples:
      rpc check programs/lm_adamw.rp
      rpc run programs/lm_adamw.rp train.steps=200
      rpc compile programs/lm_adamw.rp -o build/
      rpc components tokenizer
    """
    levels = {0: logging.WARNING, 1: logging.INFO}
    level = levels.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)


from reparamdsl.cli import check_cmd, collect_cmd, components_cmd, compile_cmd, plot_cmd, run_cmd  # noqa: E402

main.add_command(check_cmd.check)
main.add_command(components_cmd.components)
main.add_command(compile_cmd.compile_command)
main.add_command(run_cmd.run)
main.add_command(plot_cmd.plot)
main.add_command(collect_cmd.collect)

from reparamdsl.cli import explain_cmd, fmt_cmd, lsp_cmd  # noqa: E402

main.add_command(fmt_cmd.fmt)
main.add_command(lsp_cmd.lsp)
main.add_command(explain_cmd.explain)


def entry() -> None:
    """Console-script entry point."""
    main(prog_name="rpc")
