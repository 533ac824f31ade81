"""The SAC update: critic, actor, temperature and target networks in one function.

Parameters and optimizer moments live in plain dicts of tensors that the
function updates in place, so `torch.compile(fullgraph=True)` can trace the
whole step. Gradients come from `torch.func.grad_and_value` over
`functional_call`, the optimizer is the functional Adam in `adam.py`, and the
learning rates are 0-dimensional tensors.
"""

from __future__ import annotations

import attrs
import torch
from torch import nn
from torch.func import functional_call, grad_and_value

from reparamdsl.components.rl.adam import adam_step, init_adam_state
from reparamdsl.components.rl.normalize import normalize


@attrs.frozen
class UpdateConfig:
    gamma: float
    tau: float
    target_entropy: float
    autotune: bool
    bc_weight: float
    normalize_obs: bool


def init_update_state(actor: nn.Module, critic: nn.Module, alpha: float, lrs: dict[str, float], obs_dim: int,
                      device: torch.device) -> dict:
    """Return the tensors the update reads and writes: parameters, targets, log alpha, Adam moments, learning rates.

    Actor and critic entries are detached views of the modules' parameters, so
    in-place updates show up in the modules that act in the environment.
    """
    actor_params = {name: param.detach() for name, param in actor.named_parameters()}
    critic_params = {name: param.detach() for name, param in critic.named_parameters()}
    log_alpha = torch.full((), float(torch.log(torch.tensor(alpha))), device=device)
    return {
        "actor": actor_params,
        "critic": critic_params,
        "target": {name: value.clone() for name, value in critic_params.items()},
        "log_alpha": {"log_alpha": log_alpha},
        "adam": {"actor": init_adam_state(actor_params), "critic": init_adam_state(critic_params),
                 "alpha": init_adam_state({"log_alpha": log_alpha})},
        "lr": {name: torch.tensor(value, device=device) for name, value in lrs.items()},
        "obs_mean": torch.zeros(obs_dim, device=device),
        "obs_std": torch.ones(obs_dim, device=device),
    }


def soft_td_target(rewards, terminated, next_q, next_log_prob, alpha, gamma: float) -> torch.Tensor:
    """Return r + gamma (1 - terminated) (min Q'(s', a') - alpha log pi(a'|s')).

    Only termination stops the bootstrap; a transition cut by a time limit is
    stored with terminated = 0 and bootstraps from its true final observation.
    """
    return rewards + gamma * (1.0 - terminated) * (next_q - alpha * next_log_prob)


def sac_update(actor: nn.Module, critic: nn.Module, config: UpdateConfig, state: dict, batch: dict,
               update_actor: bool, offline: bool, update_target: bool = True) -> dict[str, torch.Tensor]:
    """Run one SAC update on `batch` in place and return 0-dimensional metric tensors.

    `offline` trains the actor by behaviour cloning alone (phase 1 of
    offline-to-online). Otherwise the actor minimizes alpha log pi - min Q,
    plus `bc_weight` times the behaviour-cloning loss when that is positive.
    `update_target` moves the target critic toward the critic by tau (tau = 1 copies it).
    """
    obs, next_obs = batch["obs"], batch["next_obs"]
    if config.normalize_obs:
        obs = normalize(obs, state["obs_mean"], state["obs_std"])
        next_obs = normalize(next_obs, state["obs_mean"], state["obs_std"])
    actions, rewards, terminated = batch["actions"], batch["rewards"], batch["terminated"]
    log_alpha = state["log_alpha"]["log_alpha"]
    alpha = log_alpha.exp()

    # Critic: bootstrap unless the episode terminated; a truncated transition bootstraps as usual.
    with torch.no_grad():
        next_actions, next_log_prob = functional_call(actor, state["actor"], (next_obs,))
        next_q = functional_call(critic, state["target"], (next_obs, next_actions)).min(0).values
        target_q = soft_td_target(rewards, terminated, next_q, next_log_prob, alpha, config.gamma)

    def critic_loss(params):
        q = functional_call(critic, params, (obs, actions))  # (E, B)
        return (q - target_q).pow(2).mean(1).sum(), q.mean()

    critic_grads, (qf_loss, q_mean) = grad_and_value(critic_loss, has_aux=True)(state["critic"])
    adam_step(state["critic"], critic_grads, state["adam"]["critic"], state["lr"]["critic"])
    metrics = {"losses/qf_loss": qf_loss.detach(), "losses/qf_values": q_mean.detach(), "losses/alpha": alpha}

    if update_actor:
        metrics.update(_update_actor(actor, critic, config, state, obs, actions, alpha, offline))

    if update_target:
        for name, target in state["target"].items():
            target.lerp_(state["critic"][name], config.tau)
    return metrics


def _update_actor(actor, critic, config, state, obs, actions, alpha, offline) -> dict[str, torch.Tensor]:
    use_bc = offline or config.bc_weight > 0.0

    def actor_loss(params):
        if use_bc:
            cloning_params = {f"policy.{name}": value for name, value in params.items()}
            bc_loss = functional_call(actor.cloning, cloning_params, (obs, actions))
        else:
            bc_loss = torch.zeros((), device=obs.device)
        if offline:
            return bc_loss, (torch.zeros((), device=obs.device), bc_loss)
        policy_actions, log_prob = functional_call(actor, params, (obs,))
        q = functional_call(critic, state["critic"], (obs, policy_actions)).min(0).values
        loss = (alpha * log_prob - q).mean() + config.bc_weight * bc_loss
        return loss, (log_prob.mean(), bc_loss)

    actor_grads, (loss, (log_prob_mean, bc_loss)) = grad_and_value(actor_loss, has_aux=True)(state["actor"])
    adam_step(state["actor"], actor_grads, state["adam"]["actor"], state["lr"]["actor"])
    metrics = {"losses/actor_loss": loss.detach(), "losses/bc_loss": bc_loss.detach()}

    if not offline:
        metrics["losses/entropy"] = -log_prob_mean.detach()
        if config.autotune:
            # d/d(log alpha) of the temperature loss -log_alpha * (log pi + target_entropy), batch-averaged
            alpha_grad = -(log_prob_mean.detach() + config.target_entropy)
            adam_step(state["log_alpha"], {"log_alpha": alpha_grad}, state["adam"]["alpha"], state["lr"]["alpha"])
            metrics["losses/alpha_loss"] = state["log_alpha"]["log_alpha"] * alpha_grad
    return metrics
