"""`rpc fmt`: rewrite programs in the canonical layout, or check that they already are."""

from __future__ import annotations

import difflib
import sys

import click

from reparamdsl.diagnostics import ProgramError


@click.command("fmt")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--check", is_flag=True, help="Change no file; exit 1 when any file is not formatted.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff of the changes; change no file.")
def fmt(files: tuple[str, ...], check: bool, show_diff: bool) -> None:
    """Format programs: one layout, comments kept, the plan hash unchanged.

    Rewrites each FILE in place. A file with a syntax error is reported and
    left as it is. Exit code 1 when a file has errors or, with --check, when a
    file would change. Pass `-` to format standard input to standard output.

    \b
    Examples:
      rpc fmt programs/*.rp
      rpc fmt --check programs/*.rp
    """
    from reparamdsl.cli.main import EXIT_PROGRAM_ERROR, report_program_error
    from reparamdsl.semantics.resolver import read_source
    from reparamdsl.tooling.formatter import format_source

    failed = False
    for path in files:
        try:
            source = sys.stdin.read() if path == "-" else read_source(path)
            formatted = format_source(source, path)
        except ProgramError as error:
            report_program_error(error)
            failed = True
            continue

        if path == "-":
            click.echo(formatted, nl=False)
            continue
        if formatted == source:
            continue
        if show_diff:
            click.echo("".join(difflib.unified_diff(source.splitlines(True), formatted.splitlines(True),
                                                    f"{path} (original)", f"{path} (formatted)")), nl=False)
        if check or show_diff:
            click.echo(f"would reformat {path}", err=True)
            failed = True
            continue
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(formatted)
        click.echo(f"reformatted {path}", err=True)

    if failed:
        raise SystemExit(EXIT_PROGRAM_ERROR)
