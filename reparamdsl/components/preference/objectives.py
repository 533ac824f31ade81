"""The preference objectives as pure functions of sequence log-probabilities.

Notation (per pair, shape (B,)): `chosen`/`rejected` are summed response
log-probs log pi(y|x), `*_lengths` the response token counts |y| (EOS
included), `ref_*` the reference model's summed log-probs (0 without a
reference). Averages are sums divided by lengths. docs/preference.md gives
every formula; each function here is that formula and nothing else.
"""

from __future__ import annotations

import math

from typing import NamedTuple

import torch
import torch.nn.functional as F


class PairLogps(NamedTuple):
    """Sequence log-probabilities of a batch of pairs under the policy and the reference.

    A named tuple rather than an attrs class, because `torch.compile(fullgraph=True)` traces its construction.
    """

    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_lengths: torch.Tensor
    rejected_lengths: torch.Tensor
    ref_chosen: torch.Tensor
    ref_rejected: torch.Tensor

    @property
    def chosen_avg(self) -> torch.Tensor:
        return self.chosen / self.chosen_lengths.clamp(min=1)

    @property
    def rejected_avg(self) -> torch.Tensor:
        return self.rejected / self.rejected_lengths.clamp(min=1)

    @property
    def chosen_logratio(self) -> torch.Tensor:
        return self.chosen - self.ref_chosen

    @property
    def rejected_logratio(self) -> torch.Tensor:
        return self.rejected - self.ref_rejected

    def chosen_nll(self) -> torch.Tensor:
        """Token-mean negative log-likelihood of all chosen tokens in the batch."""
        return -self.chosen.sum() / self.chosen_lengths.sum().clamp(min=1)


class ObjectiveOutput(NamedTuple):
    """The scalar loss, per-pair rewards (B,) and extra 0-dimensional metrics."""

    loss: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    metrics: dict


def logistic(margin: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """-(1 - s) log sigmoid(m) - s log sigmoid(-m): the logistic loss with labels flipped at rate s."""
    loss = -F.logsigmoid(margin)
    if label_smoothing > 0:
        loss = (1 - label_smoothing) * loss - label_smoothing * F.logsigmoid(-margin)
    return loss


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, switching formulas at -log 2 to avoid cancellation."""
    return torch.where(x < -math.log(2), torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def _reward_output(loss, chosen_rewards, rejected_rewards, metrics=None) -> ObjectiveOutput:
    return ObjectiveOutput(loss, chosen_rewards.detach(), rejected_rewards.detach(), metrics or {})


def simpo(p: PairLogps, beta: float, gamma: float, label_smoothing: float = 0.0,
          loss_type: str = "sigmoid", sft_weight: float = 0.0) -> ObjectiveOutput:
    chosen_rewards = beta * p.chosen_avg
    rejected_rewards = beta * p.rejected_avg
    margin = chosen_rewards - rejected_rewards - gamma

    if loss_type == "hinge":
        losses = torch.relu(1 - margin)
    else:
        losses = logistic(margin, label_smoothing)
    loss = losses.mean()

    metrics = {}
    if sft_weight > 0:
        sft = -p.chosen_avg.mean()
        loss = loss + sft_weight * sft
        metrics["sft_loss"] = sft.detach()
    return _reward_output(loss, chosen_rewards, rejected_rewards, metrics)


def dpo(p: PairLogps, beta: float, label_smoothing: float = 0.0) -> ObjectiveOutput:
    chosen_rewards = beta * p.chosen_logratio
    rejected_rewards = beta * p.rejected_logratio
    loss = logistic(chosen_rewards - rejected_rewards, label_smoothing).mean()
    return _reward_output(loss, chosen_rewards, rejected_rewards)


def ipo(p: PairLogps, beta: float) -> ObjectiveOutput:
    margin = p.chosen_logratio / p.chosen_lengths.clamp(min=1) - p.rejected_logratio / p.rejected_lengths.clamp(min=1)
    loss = ((margin - 1 / (2 * beta)) ** 2).mean()
    return _reward_output(loss, beta * p.chosen_logratio, beta * p.rejected_logratio)


def hinge(p: PairLogps, beta: float) -> ObjectiveOutput:
    chosen_rewards = beta * p.chosen_logratio
    rejected_rewards = beta * p.rejected_logratio
    loss = torch.relu(1 - (chosen_rewards - rejected_rewards)).mean()
    return _reward_output(loss, chosen_rewards, rejected_rewards)


def robust_dpo(p: PairLogps, beta: float, epsilon: float) -> ObjectiveOutput:
    chosen_rewards = beta * p.chosen_logratio
    rejected_rewards = beta * p.rejected_logratio
    margin = chosen_rewards - rejected_rewards
    losses = (-(1 - epsilon) * F.logsigmoid(margin) + epsilon * F.logsigmoid(-margin)) / (1 - 2 * epsilon)
    return _reward_output(losses.mean(), chosen_rewards, rejected_rewards)


def cpo(p: PairLogps, beta: float, alpha: float, label_smoothing: float = 0.0) -> ObjectiveOutput:
    chosen_rewards = beta * p.chosen
    rejected_rewards = beta * p.rejected
    loss = logistic(chosen_rewards - rejected_rewards, label_smoothing).mean()

    metrics = {}
    if alpha > 0:
        nll = p.chosen_nll()
        loss = loss + alpha * nll
        metrics["nll_loss"] = nll.detach()
    return _reward_output(loss, chosen_rewards, rejected_rewards, metrics)


def orpo(p: PairLogps, beta: float) -> ObjectiveOutput:
    chosen_avg = p.chosen_avg
    rejected_avg = p.rejected_avg
    log_odds = (chosen_avg - rejected_avg) - (log1mexp(chosen_avg) - log1mexp(rejected_avg))
    log_odds_ratio = F.logsigmoid(log_odds)

    nll = p.chosen_nll()
    loss = nll - beta * log_odds_ratio.mean()
    metrics = {"nll_loss": nll.detach(), "log_odds_ratio": log_odds_ratio.mean().detach(),
               "log_odds_chosen": log_odds.mean().detach()}
    return _reward_output(loss, beta * chosen_avg, beta * rejected_avg, metrics)


def rdpo(p: PairLogps, beta: float, alpha: float, label_smoothing: float = 0.0) -> ObjectiveOutput:
    chosen_rewards = beta * p.chosen_logratio
    rejected_rewards = beta * p.rejected_logratio
    length_term = alpha * (p.chosen_lengths - p.rejected_lengths)
    loss = logistic(chosen_rewards - rejected_rewards + length_term, label_smoothing).mean()
    return _reward_output(loss, chosen_rewards, rejected_rewards)


def sigmoid_norm(p: PairLogps, beta: float, label_smoothing: float = 0.0) -> ObjectiveOutput:
    chosen_rewards = beta * p.chosen_logratio / p.chosen_lengths.clamp(min=1)
    rejected_rewards = beta * p.rejected_logratio / p.rejected_lengths.clamp(min=1)
    loss = logistic(chosen_rewards - rejected_rewards, label_smoothing).mean()
    return _reward_output(loss, chosen_rewards, rejected_rewards)


def kto(logratios: torch.Tensor, kl_logratios: torch.Tensor, desirable: torch.Tensor, beta: float,
        desirable_weight: float = 1.0, undesirable_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """KTO on unpaired completions: `logratios` (B,) of each completion, `kl_logratios` (B,) of
    mismatched prompt/completion pairs, `desirable` (B,) bool labels.

    Returns the loss and metrics, KL estimate included. The KL estimate is a
    constant for the gradient and clamped at 0, as in the KTO paper.
    """
    kl = kl_logratios.mean().detach().clamp(min=0)
    rewards = beta * logratios

    desirable_losses = desirable_weight * (1 - torch.sigmoid(beta * (logratios - kl)))
    undesirable_losses = undesirable_weight * (1 - torch.sigmoid(beta * (kl - logratios)))
    loss = torch.where(desirable, desirable_losses, undesirable_losses).mean()

    weights = desirable.float()
    desirable_count = weights.sum().clamp(min=1)
    undesirable_count = (1 - weights).sum().clamp(min=1)
    chosen_reward = (rewards.detach() * weights).sum() / desirable_count
    rejected_reward = (rewards.detach() * (1 - weights)).sum() / undesirable_count
    metrics = {"rewards/chosen": chosen_reward, "rewards/rejected": rejected_reward,
               "rewards/margins": chosen_reward - rejected_reward, "kl": kl}
    return loss, metrics
