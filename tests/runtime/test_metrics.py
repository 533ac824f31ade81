"""Metric sinks: JSONL records, TensorBoard tags, and dropping records written after a checkpoint."""

from __future__ import annotations

import json
import os

from reparamdsl.runtime.metrics import MetricsSink, rewind_metrics


def lines(out_dir) -> list[dict]:
    with open(os.path.join(out_dir, "metrics.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_rewind_uses_saved_length(tmp_path):
    sink = MetricsSink(str(tmp_path), tensorboard=False)
    sink.log(1, {"train/loss": 3.0})
    sink.log(2, {"train/loss": 2.0})
    length = sink.position()
    sink.log(3, {"train/loss": 1.0})
    sink.log(2, {"eval/loss": 9.0})
    sink.close()

    dropped = rewind_metrics(str(tmp_path), {"step": 2, "runtime": {"metrics_bytes": length}})

    assert dropped == 2
    assert lines(tmp_path) == [{"step": 1, "train/loss": 3.0}, {"step": 2, "train/loss": 2.0}]


def test_rewind_without_length_keeps_steps_up_to_checkpoint(tmp_path):
    sink = MetricsSink(str(tmp_path), tensorboard=False)
    for step in range(1, 6):
        sink.log(step, {"train/loss": float(step)})
    sink.close()

    dropped = rewind_metrics(str(tmp_path), {"step": 3})

    assert dropped == 2
    assert [r["step"] for r in lines(tmp_path)] == [1, 2, 3]


def test_sink_writes_nonfinite_as_strings(tmp_path):
    sink = MetricsSink(str(tmp_path), tensorboard=False)
    sink.log(1, {"train/loss": float("nan"), "train/grad_norm": float("inf")})
    sink.close()

    assert lines(tmp_path) == [{"step": 1, "train/loss": "nan", "train/grad_norm": "inf"}]


def test_tensorboard_gets_namespaced_tags(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sink = MetricsSink(str(tmp_path))
    sink.log(1, {"train/loss": 2.5, "charts/steps_per_sec": 4.0})
    sink.log(2, {"eval/loss": 2.0})
    sink.close()

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["charts/steps_per_sec", "eval/loss", "train/loss"]
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 2.5)]
