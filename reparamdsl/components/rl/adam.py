"""A functional Adam update that runs inside the compiled SAC step."""

from __future__ import annotations

import torch


def init_adam_state(params: dict[str, torch.Tensor]) -> dict:
    return {
        "step": torch.zeros((), device=next(iter(params.values())).device),
        "exp_avg": {name: torch.zeros_like(value) for name, value in params.items()},
        "exp_avg_sq": {name: torch.zeros_like(value) for name, value in params.items()},
    }


def adam_step(params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], state: dict, lr: torch.Tensor,
              beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
    """Apply one bias-corrected Adam step to `params` in place; `lr` and `state["step"]` are tensors."""
    state["step"].add_(1.0)
    step = state["step"]
    bias1 = 1.0 - beta1**step
    bias2 = 1.0 - beta2**step
    for name, param in params.items():
        grad = grads[name]
        exp_avg = state["exp_avg"][name]
        exp_avg_sq = state["exp_avg_sq"][name]
        exp_avg.lerp_(grad, 1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        denom = (exp_avg_sq / bias2).sqrt().add_(eps)
        param.sub_(lr * (exp_avg / bias1) / denom)
