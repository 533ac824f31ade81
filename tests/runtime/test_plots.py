"""`rpc plot`: learning curves of several runs overlaid in one PNG."""

from __future__ import annotations

import json
import os

import matplotlib.image
import pytest

from reparamdsl.runtime.plots import PlotError, choose_metrics, plot_runs, read_curves
from tests.runtime.conftest import invoke


def write_run(folder, records: list[dict]) -> str:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "metrics.jsonl"), "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return str(folder)


@pytest.fixture
def two_runs(tmp_path) -> list[str]:
    adamw = write_run(tmp_path / "adamw", [
        {"step": s, "train/loss": 5.0 / s, "charts/steps_per_sec": 10.0} for s in range(1, 6)
    ] + [{"step": 5, "eval/loss": 1.5}])
    poet = write_run(tmp_path / "poet", [
        {"step": s, "train/loss": 4.0 / s, "poet/merges": float(s // 2)} for s in range(1, 6)
    ] + [{"step": 3, "train/loss": "nan"}])
    return [adamw, poet]


def test_read_curves_skips_nonfinite_values(two_runs):
    curves = read_curves(two_runs[1])

    assert curves["train/loss"] == ([1, 2, 3, 4, 5], [4.0 / s for s in range(1, 6)])
    assert curves["poet/merges"][1] == [0.0, 1.0, 1.0, 2.0, 2.0]


def test_plot_overlays_both_runs(two_runs, tmp_path):
    out = str(tmp_path / "curves.png")

    figure = plot_runs(two_runs, out, ["train/loss", "eval/loss"])

    loss_axis = figure.axes[0]
    assert loss_axis.get_title() == "train/loss"
    lines = {line.get_label(): list(line.get_ydata()) for line in loss_axis.get_lines()}
    assert lines == {"adamw": [5.0 / s for s in range(1, 6)], "poet": [4.0 / s for s in range(1, 6)]}
    assert [line.get_label() for line in figure.axes[1].get_lines()] == ["adamw"]
    image = matplotlib.image.imread(out)
    assert image.ndim == 3
    assert image.shape[0] > 100
    assert image.shape[1] > 100


def test_default_metrics_skip_timing(two_runs):
    runs = {path: read_curves(path) for path in two_runs}

    names = choose_metrics(runs, None)

    assert names[:2] == ["train/loss", "eval/loss"]
    assert "poet/merges" in names
    assert "charts/steps_per_sec" not in names


def test_unknown_metric_is_reported(two_runs, tmp_path):
    with pytest.raises(PlotError, match="metric 'eval/accuracy' is not in any run"):
        plot_runs(two_runs, str(tmp_path / "x.png"), ["eval/accuracy"])


def test_plot_command_writes_png(two_runs, tmp_path):
    out = str(tmp_path / "compare.png")

    result = invoke("plot", *two_runs, "-o", out, "-m", "train/loss")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {out}"
    assert os.path.getsize(out) > 0


def test_plot_command_defaults_into_run_folder(two_runs):
    result = invoke("plot", two_runs[0])

    assert result.exit_code == 0, result.output
    assert os.path.isfile(os.path.join(two_runs[0], "plots", "curves.png"))


def test_plot_command_reports_missing_metrics(tmp_path):
    result = invoke("plot", str(tmp_path))

    assert result.exit_code == 1
    assert "metrics.jsonl not found" in result.stderr
