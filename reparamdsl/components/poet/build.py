"""Builder of `reparam NAME = poet on MODEL { ... }`: swaps selected nn.Linear layers for POETLinear."""

from __future__ import annotations

import logging

import torch
from torch import nn

from reparamdsl.components.poet.factor import OrthogonalFactor
from reparamdsl.components.poet.hook import POETHook
from reparamdsl.components.poet.init import initial_weight
from reparamdsl.components.poet.layer import POETLinear
from reparamdsl.components.poet.selector import select_linear_modules

logger = logging.getLogger(__name__)

DEFAULT_BLOCK = 256


def factor_size(dim: int, block: int | None, subset: int | float | None) -> dict:
    """Return the OrthogonalFactor keyword (`block` or `subset`) for one side of width `dim`.

    A fractional subset is a share of the width, rounded, at least 2. Neither set means `block = 256`.
    """
    if subset is None:
        return {"block": block if block is not None else DEFAULT_BLOCK}
    if isinstance(subset, float):
        return {"subset": min(dim, max(2, round(subset * dim)))}
    return {"subset": min(dim, subset)}


def _replace_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def build(params: dict, ctx) -> POETHook:
    target = params["target"]
    model_name = target["ref"] if isinstance(target, dict) else str(target)
    model = ctx.get(target)
    orthogonal = ctx.build(params["orthogonal"])

    if params.get("block") is not None and params.get("subset") is not None:
        raise ValueError("poet: set either block or subset, not both")
    chosen = select_linear_modules(model, params["select"], params["exclude"], model_name)
    generator = ctx.generator(f"poet:{model_name}")

    layers: dict[str, POETLinear] = {}
    for name, linear in chosen:
        out_features, in_features = linear.weight.shape
        weight0 = initial_weight(linear.weight, params["init"], generator, what=name)
        r = OrthogonalFactor(out_features, orthogonal, generator,
                             **factor_size(out_features, params.get("block"), params.get("subset")))
        p = OrthogonalFactor(in_features, orthogonal, generator,
                             **factor_size(in_features, params.get("block"), params.get("subset")))
        layer = POETLinear(weight0, linear.bias, r, p, params["forward"]).to(linear.weight.device)
        _replace_module(model, name, layer)
        layers[name] = layer

    merge_seed = int(torch.randint(0, 2**62, (1,), generator=ctx.generator(f"poet:{model_name}:merges")))
    hook = POETHook(model, layers, merge_every=params["merge_every"], base_seed=merge_seed,
                    lr_scale=params["lr_scale"], clip_ramp=params["clip_ramp"],
                    clip_ramp_start=params["clip_ramp_start"], drift_every=params["drift_every"])
    ctx.hooks.append(hook)
    logger.info("POET on '%s': %d layers, %d trainable parameters, orthogonal = %r",
                model_name, len(layers), hook.counts["poet"], orthogonal)
    return hook
