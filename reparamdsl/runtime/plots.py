"""Learning curves: one PNG with a panel per metric, overlaying the runs given."""

from __future__ import annotations

import json
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT_METRICS = ("train/loss", "eval/loss", "train/lr", "train/grad_norm")
# Wall-clock charts differ between identical runs and would only add noise.
SKIPPED_BY_DEFAULT = ("charts/steps_per_sec", "charts/sps")


class PlotError(RuntimeError):
    """A run folder has no metrics to plot."""


def read_curves(run_dir: str) -> dict[str, tuple[list[int], list[float]]]:
    """Read metrics.jsonl into {metric: (steps, values)}, skipping non-finite values."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise PlotError(f"no metrics to plot: {path} not found")
    curves: dict[str, tuple[list[int], list[float]]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                step = int(record["step"])
            except (ValueError, KeyError, TypeError):
                raise PlotError(f"invalid record on line {number} of {path}") from None
            for key, value in record.items():
                if key == "step" or not isinstance(value, (int, float)) or not math.isfinite(value):
                    continue
                steps, values = curves.setdefault(key, ([], []))
                steps.append(step)
                values.append(float(value))
    return curves


def choose_metrics(runs: dict[str, dict], requested: list[str] | None) -> list[str]:
    """Return the requested metrics, else every metric of any run, the common ones first."""
    available = sorted({key for curves in runs.values() for key in curves})
    if requested:
        missing = [name for name in requested if name not in available]
        if missing:
            raise PlotError(f"metric '{missing[0]}' is not in any run; available: {', '.join(available)}")
        return list(requested)
    first = [name for name in DEFAULT_METRICS if name in available]
    rest = [name for name in available if name not in first and name not in SKIPPED_BY_DEFAULT]
    return first + rest


def plot_runs(run_dirs: list[str], out_path: str, metrics: list[str] | None = None,
              labels: list[str] | None = None) -> plt.Figure:
    """Draw each metric in its own panel with one line per run; write the PNG to `out_path`."""
    labels = labels or _labels(run_dirs)
    runs = {label: read_curves(run_dir) for label, run_dir in zip(labels, run_dirs)}
    names = choose_metrics(runs, metrics)
    if not names:
        raise PlotError("the runs logged no finite metrics")

    columns = min(2, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.6 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names):
        for label, curves in runs.items():
            if name in curves:
                steps, values = curves[name]
                axis.plot(steps, values, label=label, marker="o" if len(steps) < 3 else None)
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if name.endswith("loss") and _positive(runs, name):
            axis.set_yscale("log")
        axis.legend(fontsize="small")
    for axis in list(axes.flat)[len(names):]:
        axis.set_visible(False)

    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    figure.savefig(out_path, dpi=110)
    plt.close(figure)
    return figure


def default_output(run_dirs: list[str]) -> str:
    """One run: RUN/plots/curves.png. Several: curves-<first>-vs-<n-1 others>.png in the working folder."""
    if len(run_dirs) == 1:
        return os.path.join(run_dirs[0], "plots", "curves.png")
    first = os.path.basename(os.path.normpath(run_dirs[0]))
    return f"curves-{first}-and-{len(run_dirs) - 1}-more.png"


def _labels(run_dirs: list[str]) -> list[str]:
    labels = [os.path.basename(os.path.normpath(path)) for path in run_dirs]
    if len(set(labels)) < len(labels):
        labels = [os.path.normpath(path) for path in run_dirs]
    return labels


def _positive(runs: dict[str, dict], name: str) -> bool:
    return all(value > 0 for curves in runs.values() if name in curves for value in curves[name][1])
