"""The `checkpoint` model: rebuild a model declaration of a finished run and load its trained weights."""

from __future__ import annotations

import json
import logging

import torch
from torch import nn

from reparamdsl.components.checkpoint.specs import RunFolderProblem, checkpoint_folder, model_declaration
from reparamdsl.lowering.context import BuildContext
from reparamdsl.runtime.checkpoint import CheckpointError, load_checkpoint
from reparamdsl.semantics.plan import Plan

logger = logging.getLogger(__name__)

MODEL_PREFIX = "model/"


class CheckpointLoadError(RuntimeError):
    """A run's checkpoint does not fit the model rebuilt from its plan."""


def saved_reparams(plan: Plan, model: str) -> list:
    """Return the run's reparameterization declarations whose target is `model`, in plan order."""
    return [decl for decl in plan.of_kind("reparam") if decl.params.get("target") == {"ref": model}]


def rebuild_model(plan: Plan, model: str, ctx) -> nn.Module:
    """Build `model` of the saved plan, then the reparameterizations the run applied to it.

    The rebuilt module has the same state dict keys as the one the run saved.
    It is built in its own context with the run's seed, so the random
    initialization (overwritten by the checkpoint) never draws from this
    program's generators. The hooks of the saved reparameterizations are dropped.
    """
    saved_seed = plan.train_params().get("seed", 0)
    saved_ctx = BuildContext(plan, ctx.registry, ctx.device, saved_seed)
    decl = plan.get(model)
    spec = ctx.registry.get("model", decl.component)
    if spec is None:
        raise CheckpointLoadError(f"the run's model '{model}' uses component '{decl.component}', "
                                  "which is not registered here; install the package that provides it")
    saved_ctx.current = model
    saved_ctx.built[model] = spec.load_builder()(decl.params, saved_ctx)

    for reparam in saved_reparams(plan, model):
        reparam_spec = ctx.registry.get("reparam", reparam.component)
        if reparam_spec is None:
            raise CheckpointLoadError(f"the run applied reparam '{reparam.component}' to '{model}', "
                                      "which is not registered here")
        saved_ctx.current = reparam.name
        saved_ctx.built[reparam.name] = reparam_spec.load_builder()(reparam.params, saved_ctx)
    return saved_ctx.built[model]


def model_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Select the `model/<key>` entries of a checkpoint, keyed by state dict key."""
    return {key[len(MODEL_PREFIX):]: value for key, value in tensors.items() if key.startswith(MODEL_PREFIX)}


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load `state` strictly; a mismatch names the missing and unexpected keys and the checkpoint."""
    expected = set(module.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointLoadError(
            f"the checkpoint {source} does not fit the rebuilt model: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}; was the run's code or plan changed after it was written?")
    module.load_state_dict(state, strict=True)


def merged_linear(module: nn.Module) -> nn.Linear:
    """Build a plain `nn.Linear` with the effective weight (and bias) of a reparameterized linear layer."""
    with torch.no_grad():
        weight = module.effective_weight().detach()
        bias = getattr(module, "bias", None)
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                           device=weight.device, dtype=weight.dtype)
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias.detach())
    return linear


def merge_reparameterized(model: nn.Module) -> int:
    """Replace every submodule that exposes `effective_weight()` by a plain linear layer; returns the count."""
    targets = [name for name, module in model.named_modules()
               if name and callable(getattr(module, "effective_weight", None))]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, merged_linear(parent.get_submodule(child)))
    return len(targets)


def build_checkpoint(params: dict, ctx) -> nn.Module:
    try:
        plan_json, _ = model_declaration(params["run"], params["model"])
    except RunFolderProblem as problem:
        raise CheckpointLoadError(problem.message) from None
    folder = checkpoint_folder(params["run"], params["checkpoint"])
    if folder is None:
        raise CheckpointLoadError(f"no complete {params['checkpoint']} checkpoint in {params['run']}/checkpoints")

    plan = Plan.from_json(json.dumps(plan_json))
    model = rebuild_model(plan, params["model"], ctx)
    try:
        tensors, state = load_checkpoint(folder, ctx.device)
    except CheckpointError as error:
        raise CheckpointLoadError(str(error)) from None
    load_weights(model, model_tensors(tensors), folder)
    logger.info("loaded model '%s' from %s (step %s)", params["model"], folder, state.get("step"))

    if params["merge_reparams"] and saved_reparams(plan, params["model"]):
        count = merge_reparameterized(model)
        logger.info("folded %d reparameterized layers of '%s' into plain weights", count, params["model"])
    if not params["trainable"]:
        model.requires_grad_(False)
    return model.to(ctx.device)
