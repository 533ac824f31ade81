"""Rebuild the actor and environment of a SAC run from its folder, for collection or inspection."""

from __future__ import annotations

import json
import logging
import os

import attrs
import numpy as np
import torch

from reparamdsl.components.rl.envs import GymVectorEnv
from reparamdsl.components.rl.normalize import normalize

logger = logging.getLogger(__name__)


class TrainedRunError(RuntimeError):
    """A run folder cannot provide a trained SAC actor."""


@attrs.frozen
class TrainedActor:
    """A run's actor with the trained weights, its environment and the observation transform it was trained with.

    `obs_transform` is None unless the run normalized observations; then it
    applies the statistics saved in the checkpoint, frozen.
    """

    actor: torch.nn.Module
    env: GymVectorEnv
    obs_transform: object
    checkpoint: str
    step: int


def load_trained_actor(run_dir: str, device: str = "cpu", checkpoint: str | None = None) -> TrainedActor:
    """Rebuild the program in `run_dir` from its plan.json and load the actor of a checkpoint.

    `checkpoint` defaults to `checkpoints/final`, else the latest one. Raises
    TrainedRunError naming the folder or file when the run has no plan, no
    checkpoint, or an objective other than sac.
    """
    from reparamdsl.components.rl.sac import SACTask
    from reparamdsl.lowering.program import Program
    from reparamdsl.runtime.checkpoint import latest_checkpoint, read_checkpoint
    from reparamdsl.semantics.plan import Plan

    plan_path = os.path.join(run_dir, "plan.json")
    if not os.path.isfile(plan_path):
        raise TrainedRunError(f"{run_dir} is not a run folder: plan.json is missing")
    with open(plan_path, encoding="utf-8") as handle:
        plan = Plan.from_json(handle.read())
    objective = plan.objective()
    if objective is None or objective.component != "sac":
        found = "no objective" if objective is None else f"objective '{objective.component}'"
        raise TrainedRunError(f"the run in {run_dir} has {found}; collecting needs a run of the sac objective")

    checkpoint = checkpoint or _default_checkpoint(run_dir, latest_checkpoint)
    program = Program.from_plan(plan, device=device)
    task = program.task
    assert isinstance(task, SACTask)
    saved = read_checkpoint(checkpoint, program.device)

    actor = task.actor.to(program.device).eval()
    _load_actor_weights(actor, saved.tensors, checkpoint)
    obs_transform = _obs_transform(task.env, saved.state, program.device)
    return TrainedActor(actor, task.env, obs_transform, checkpoint, saved.step)


def _default_checkpoint(run_dir: str, latest_checkpoint) -> str:
    root = os.path.join(run_dir, "checkpoints")
    final = os.path.join(root, "final")
    if os.path.isfile(os.path.join(final, "state.json")):
        return final
    latest = latest_checkpoint(root)
    if latest is None:
        raise TrainedRunError(f"no checkpoint in {root}; train the run first or pass a checkpoint folder")
    logger.warning("the run in %s has no final checkpoint; using %s", run_dir, latest)
    return latest


def _load_actor_weights(actor: torch.nn.Module, tensors: dict[str, torch.Tensor], checkpoint: str) -> None:
    missing = [name for name, _ in actor.named_parameters() if f"actor.{name}" not in tensors]
    if missing:
        raise TrainedRunError(f"checkpoint {checkpoint} has no actor weights for {', '.join(missing[:5])}; "
                              "it was not written by the sac objective of this plan")
    with torch.no_grad():
        for name, param in actor.named_parameters():
            saved = tensors[f"actor.{name}"]
            if saved.shape != param.shape:
                raise TrainedRunError(f"checkpoint {checkpoint}: actor.{name} has shape {tuple(saved.shape)}, "
                                      f"the rebuilt actor expects {tuple(param.shape)}")
            param.copy_(saved)


def _obs_transform(env: GymVectorEnv, state: dict, device: torch.device):
    if not env.normalize_obs:
        return None
    stats = state.get("obs_stats")
    if stats is None:
        raise TrainedRunError("the run normalized observations but its checkpoint has no obs_stats; "
                              f"checkpoint state keys: {json.dumps(sorted(state))}")
    mean = torch.as_tensor(np.asarray(stats["mean"]), dtype=torch.float32, device=device)
    std = torch.as_tensor(np.sqrt(np.asarray(stats["var"]) + 1e-8), dtype=torch.float32, device=device)
    return lambda obs: normalize(obs, mean, std)
