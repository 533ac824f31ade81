"""Functional SGD with heavy-ball momentum and decoupled weight decay."""

from __future__ import annotations

import torch

from reparamdsl.components.optim.adamw import FunctionalOptimizer


class SGD(FunctionalOptimizer):
    def __init__(self, named_params, options, momentum=0.0):
        self.momentum = float(momentum)
        super().__init__(named_params, options)

    def init_state(self, param):
        return {"momentum_buffer": torch.zeros_like(param),
                "step": torch.zeros((), dtype=torch.float32, device=param.device)}

    def update(self, params, grads, lr, apply=None):
        for name, param in params.items():
            state = self.state[name]
            options = self.options[name]
            param_lr = lr * options["lr_scale"]
            buffer = state["momentum_buffer"] * self.momentum + grads[name].to(param.dtype)
            new_param = param * (1 - param_lr * options["weight_decay"]) - param_lr * buffer
            step = state["step"] + 1
            if apply is not None:
                buffer = torch.where(apply, buffer, state["momentum_buffer"])
                new_param = torch.where(apply, new_param, param)
                step = torch.where(apply, step, state["step"])
            state["momentum_buffer"].copy_(buffer)
            state["step"].copy_(step)
            param.copy_(new_param)


def build(params: dict, ctx) -> dict:
    return {"name": "sgd", **params}
