"""Functional optimizers: updates written as tensor code so they compile into the train step."""

from __future__ import annotations

import torch


class FunctionalOptimizer:
    """Per-parameter state and an `update` that runs inside the compiled step.

    `state[name]` contains the moment tensors of one parameter and a 0-dimensional
    `step` count; hooks reset them in place (a POET merge zeroes the moments).
    `options[name]` contains `lr_scale` and `weight_decay` for that parameter.
    """

    def __init__(self, named_params: dict[str, torch.nn.Parameter], options: dict[str, dict]):
        self.options = options
        self.state: dict[str, dict[str, torch.Tensor]] = {
            name: self.init_state(param) for name, param in named_params.items()}

    def init_state(self, param: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def update(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], lr: torch.Tensor,
               apply: torch.Tensor | None) -> None:
        raise NotImplementedError


class AdamW(FunctionalOptimizer):
    """AdamW (Loshchilov and Hutter, 2019) with bias correction and decoupled weight decay."""

    def __init__(self, named_params, options, betas=(0.9, 0.95), eps=1e-8):
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        super().__init__(named_params, options)

    def init_state(self, param):
        return {"exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
                "step": torch.zeros((), dtype=torch.float32, device=param.device)}

    def update(self, params, grads, lr, apply=None):
        # `apply` (a 0-dimensional bool) keeps every tensor unchanged when false,
        # which is how a step with a non-finite gradient is skipped.
        for name, param in params.items():
            grad = grads[name].to(param.dtype)
            state = self.state[name]
            options = self.options[name]
            step = state["step"] + 1
            exp_avg = state["exp_avg"] * self.beta1 + grad * (1 - self.beta1)
            exp_avg_sq = state["exp_avg_sq"] * self.beta2 + grad * grad * (1 - self.beta2)

            param_lr = lr * options["lr_scale"]
            bias1 = 1 - self.beta1 ** step
            bias2 = 1 - self.beta2 ** step
            denom = (exp_avg_sq / bias2).sqrt() + self.eps
            new_param = param * (1 - param_lr * options["weight_decay"]) - param_lr * (exp_avg / bias1) / denom

            if apply is not None:
                step = torch.where(apply, step, state["step"])
                exp_avg = torch.where(apply, exp_avg, state["exp_avg"])
                exp_avg_sq = torch.where(apply, exp_avg_sq, state["exp_avg_sq"])
                new_param = torch.where(apply, new_param, param)
            state["step"].copy_(step)
            state["exp_avg"].copy_(exp_avg)
            state["exp_avg_sq"].copy_(exp_avg_sq)
            param.copy_(new_param)


def build(params: dict, ctx) -> dict:
    """Return the optimizer settings; the trainer creates the optimizer once the parameters exist."""
    return {"name": "adamw", **params}


def create(settings: dict, named_params, options) -> FunctionalOptimizer:
    """Create the functional optimizer named by `settings` for `named_params`."""
    if settings["name"] == "adamw":
        return AdamW(named_params, options, betas=settings["betas"], eps=settings["eps"])
    if settings["name"] == "sgd":
        from reparamdsl.components.optim.sgd import SGD

        return SGD(named_params, options, momentum=settings["momentum"])
    raise ValueError(f"unknown optimizer {settings['name']!r}")
