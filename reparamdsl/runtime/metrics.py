"""Metric sinks (JSONL, TensorBoard) and the progress bar."""

from __future__ import annotations

import json
import logging
import math
import os
import time

import torch

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


def as_float(value) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().item())
    return float(value)


class MetricsSink:
    """Fan metrics out to a JSONL file, TensorBoard and memory; keys are namespaced (`train/loss`)."""

    def __init__(self, out_dir: str | None, tensorboard: bool = True, purge_step: int | None = None):
        self.history: list[dict] = []
        self._jsonl = None
        self._writer = None
        if out_dir is not None:
            self._jsonl = open(os.path.join(out_dir, METRICS_FILE), "a", encoding="utf-8")
            if tensorboard:
                self._writer = _tensorboard_writer(os.path.join(out_dir, "tensorboard"), purge_step)

    def position(self) -> int:
        """Return the length in bytes of metrics.jsonl so far (0 without a file)."""
        return self._jsonl.tell() if self._jsonl is not None else 0

    def log(self, step: int, metrics: dict) -> None:
        record = {"step": step}
        for key, value in metrics.items():
            number = as_float(value)
            record[key] = number if math.isfinite(number) else str(number)
        self.history.append(record)
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record, sort_keys=True) + "\n")
            self._jsonl.flush()
        if self._writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, float):
                    self._writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _tensorboard_writer(path: str, purge_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.info("tensorboard is not installed; metrics go to metrics.jsonl only")
        return None
    # `purge_step` hides events at and after that step which an interrupted run wrote.
    return SummaryWriter(path, purge_step=purge_step)


def rewind_metrics(out_dir: str, checkpoint_state: dict) -> int:
    """Drop the metrics.jsonl records written after a checkpoint; return how many were dropped.

    A run killed after its last checkpoint has logged steps that the resumed
    run logs again. Checkpoints store the file's length when they were
    written (`runtime.metrics_bytes`); older ones without it fall back to
    keeping the records whose step is at most the checkpoint's step.
    """
    path = os.path.join(out_dir, METRICS_FILE)
    if not os.path.isfile(path):
        return 0
    with open(path, "rb") as handle:
        data = handle.read()

    length = (checkpoint_state.get("runtime") or {}).get("metrics_bytes")
    if isinstance(length, int) and 0 <= length <= len(data) and (length == 0 or data[length - 1:length] == b"\n"):
        kept = data[:length]
    else:
        step = int(checkpoint_state.get("step", 0))
        lines = data.splitlines(keepends=True)
        kept = b"".join(line for line in lines if _record_step(line) is not None and _record_step(line) <= step)

    dropped = data[len(kept):].count(b"\n") if data.startswith(kept) else data.count(b"\n") - kept.count(b"\n")
    if kept != data:
        temporary = path + ".tmp"
        with open(temporary, "wb") as handle:
            handle.write(kept)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    return dropped


def _record_step(line: bytes) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


class Progress:
    """A tqdm progress bar showing the key metrics, or nothing when disabled."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, unit: str = "step"):
        self.bar = None
        self.start = time.perf_counter()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True, leave=True)

    def update(self, step: int, metrics: dict | None = None) -> None:
        if self.bar is None:
            return
        self.bar.n = step
        if metrics:
            shown = {k.split("/")[-1]: f"{as_float(v):.4g}" for k, v in metrics.items()}
            self.bar.set_postfix(shown, refresh=False)
        self.bar.refresh()

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)
        else:
            logger.info("%s", line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
