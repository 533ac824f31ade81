"""`rpc plot`: learning curves of one or more run folders in one PNG."""

from __future__ import annotations

import os

import click


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Image to write; its extension picks the format, such as .png, .pdf or .svg "
                   "(default RUN/plots/curves.png for one run, curves-<first run>-and-<n>-more.png here for several).")
@click.option("-m", "--metric", "metrics", multiple=True,
              help="Metric to draw, such as train/loss or eval/loss; repeat for several (default: all).")
def plot(run_dirs, out_path, metrics) -> None:
    """Draw the learning curves of RUN_DIRS, one panel per metric and one line per run.

    \b
    Examples:
      rpc plot runs/lm_adamw-20261204-101500
      rpc plot runs/lm_adamw-* runs/poet_lm-* -m train/loss -m eval/loss -o poet-vs-adamw.png
    """
    from reparamdsl.runtime.plots import PlotError, default_output, plot_runs

    if out_path is not None:
        _check_image_format(out_path)
    out_path = out_path or default_output(list(run_dirs))
    try:
        plot_runs(list(run_dirs), out_path, list(metrics) or None)
    except PlotError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {out_path}")


def _check_image_format(out_path: str) -> None:
    """Raise a usage error unless matplotlib can write the format that `out_path`'s extension names."""
    from matplotlib.backend_bases import FigureCanvasBase

    supported = sorted(FigureCanvasBase.get_supported_filetypes())
    extension = os.path.splitext(out_path)[1].lstrip(".").lower()
    if extension not in supported:
        found = f"'.{extension}'" if extension else "no extension"
        raise click.BadParameter(f"unsupported image format: {out_path} has {found}. Use one of .{', .'.join(supported)}",
                                 param_hint="'-o' / '--out'")
