"""Running observation statistics (parallel Welford), kept in float64 on the host."""

from __future__ import annotations

import numpy as np
import torch

OBS_CLIP = 10.0
"""Normalized observations are clipped to [-OBS_CLIP, OBS_CLIP]."""


class RunningMeanStd:
    """Mean and variance of every observation seen so far, merged batch by batch."""

    def __init__(self, shape: tuple[int, ...], epsilon: float = 1e-8):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = epsilon

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, np.float64)
        batch_mean, batch_var, batch_count = batch.mean(0), batch.var(0), batch.shape[0]

        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        self.var = (self.var * self.count + batch_var * batch_count
                    + delta**2 * self.count * batch_count / total) / total
        self.count = total

    def state_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "var": self.var.tolist(), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean = np.asarray(state["mean"], np.float64)
        self.var = np.asarray(state["var"], np.float64)
        self.count = float(state["count"])


def normalize(obs: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Return (obs - mean) / std clipped to [-OBS_CLIP, OBS_CLIP]."""
    return ((obs - mean) / std).clamp(-OBS_CLIP, OBS_CLIP)
