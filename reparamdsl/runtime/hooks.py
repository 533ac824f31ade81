"""Training hooks: work that reparameterizations do between compiled steps."""

from __future__ import annotations

from collections.abc import Iterable

import torch


class TrainingHook:
    """Between-step callbacks of a reparameterization or other component.

    The runtime calls these outside the compiled step, so they may change
    parameter values in place (a POET merge) but must keep every parameter's
    shape, dtype and identity, which keeps the compiled step valid.
    """

    name = "hook"

    def param_options(self, name: str, param: torch.nn.Parameter) -> dict | None:
        """Return optimizer options for one trainable parameter, or None to keep the defaults.

        Recognized keys: `lr_scale` (multiplies the scheduled learning rate)
        and `weight_decay` (replaces the optimizer's value).
        """
        return None

    def after_step(self, step: int, optimizer_state: dict[str, dict[str, torch.Tensor]]) -> dict[str, float]:
        """Run after optimizer step `step` (1-based); return metrics to log.

        `optimizer_state` maps a parameter name to its optimizer moments
        (`exp_avg`, `exp_avg_sq`, `step`) so a hook can reset them in place.
        """
        return {}

    def metrics(self) -> dict[str, float]:
        """Return metrics computed on demand (at logging time), such as orthogonality errors."""
        return {}

    def state_dict(self) -> dict:
        """Return JSON-serializable state to save in checkpoints (tensors go through `tensors`)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def tensors(self) -> dict[str, torch.Tensor]:
        """Return buffers that checkpoints must save beyond the model's parameters."""
        return {}


def collect_metrics(hooks: Iterable[TrainingHook]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for hook in hooks:
        metrics.update(hook.metrics())
    return metrics
