"""Preference tasks: the loss of every objective on one concatenated forward pass, and their batches.

Builders `build_<objective>(params, ctx)` are named by the specs in `specs.py`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator

import torch

from reparamdsl.components.preference import objectives
from reparamdsl.components.preference.batching import collate_pairs, collate_unpaired, flatten_pairs
from reparamdsl.components.preference.dataset import EncodedCompletion, EncodedPair, PreferenceData
from reparamdsl.components.preference.logps import (
    accepts_attention_mask, forward_logits, masked_sum, response_lengths, split_pairs, token_logps,
)
from reparamdsl.components.preference.objectives import ObjectiveOutput, PairLogps
from reparamdsl.components.preference.reference import frozen_copy, precompute_split
from reparamdsl.components.preference.specs import DEFAULT_GAMMA_BETA_RATIO
from reparamdsl.runtime.task import SupervisedTask

logger = logging.getLogger(__name__)


def pair_metrics(output: ObjectiveOutput, logps: PairLogps) -> dict[str, torch.Tensor]:
    """Compute the logged statistics of a paired batch, each a 0-dimensional tensor."""
    chosen_rewards, rejected_rewards = output.chosen_rewards, output.rejected_rewards
    metrics = {
        "rewards/chosen": chosen_rewards.mean(),
        "rewards/rejected": rejected_rewards.mean(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean(),
        "logps/chosen": logps.chosen.detach().mean(),
        "logps/rejected": logps.rejected.detach().mean(),
        "logps/chosen_avg": logps.chosen_avg.detach().mean(),
        "logps/rejected_avg": logps.rejected_avg.detach().mean(),
        "lengths/chosen": logps.chosen_lengths.mean(),
        "lengths/rejected": logps.rejected_lengths.mean(),
    }
    metrics.update(output.metrics)
    return metrics


class PreferenceTask(SupervisedTask):
    """Train a policy on chosen/rejected pairs with one of the paired objectives.

    `objective` maps `PairLogps` to an `ObjectiveOutput`. `reference` is
    "copy" (a frozen deep copy of the starting policy runs in every step),
    "precomputed" (its log-probs are computed once, here) or "none".
    """

    def __init__(self, policy: torch.nn.Module, data: PreferenceData, objective: Callable[[PairLogps], ObjectiveOutput],
                 reference: str = "none", device: torch.device | str = "cpu"):
        self.model = policy
        self.data = data
        self.objective = objective
        self.reference_mode = reference
        self.device = torch.device(device)
        self.pass_mask = accepts_attention_mask(policy)
        self.train_examples, self.holdout_examples = self._examples(data)
        if not self.train_examples:
            raise ValueError("the preference data has no training examples; lower `holdout` or add rows")

        self.reference = frozen_copy(policy) if reference == "copy" else None
        self.reference_logps: dict[str, torch.Tensor] = {}
        if reference == "precomputed":
            self._precompute_reference(policy)

    # ---- examples and batches ------------------------------------------------------------------

    def _examples(self, data: PreferenceData) -> tuple[list, list]:
        if not data.paired:
            raise ValueError("this objective trains on chosen/rejected pairs, but the data has unpaired rows; "
                             "use objective kto, or paired data")
        return data.train, data.holdout

    def _split(self, name: str) -> list:
        return self.train_examples if name == "train" else self.holdout_examples

    def collate(self, split: str, indices: list[int], padding_side: str = "right") -> dict[str, torch.Tensor]:
        examples = self._split(split)
        batch = collate_pairs([examples[i] for i in indices], self.data.pad_id, self.data.pad_multiple,
                              self.data.max_length, padding_side)
        return self._with_reference(batch, split, indices)

    def _with_reference(self, batch: dict, split: str, indices: list[int]) -> dict:
        if split in self.reference_logps:
            batch["ref_logps"] = self.reference_logps[split][indices]          # (B, 2)
        return batch

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}

    def train_batches(self, batch_size: int, seed: int, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        count = len(self.train_examples)
        if batch_size > count:
            raise ValueError(f"batch {batch_size} is larger than the {count} training examples; "
                             f"lower train.batch to at most {count}")
        produced, epoch = 0, 0
        while True:
            generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            order = torch.randperm(count, generator=generator).tolist()
            for first in range(0, count - batch_size + 1, batch_size):
                if produced >= start:
                    yield self._to_device(self.collate("train", order[first:first + batch_size]))
                produced += 1
            epoch += 1

    def eval_batches(self, batch_size: int, max_batches: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        count = len(self.holdout_examples)
        for number, first in enumerate(range(0, count, batch_size)):
            if max_batches is not None and number >= max_batches:
                return
            yield self._to_device(self.collate("holdout", list(range(first, min(first + batch_size, count)))))

    # ---- reference -----------------------------------------------------------------------------

    def _precompute_reference(self, policy: torch.nn.Module) -> None:
        device = next(policy.parameters()).device
        for split in ("train", "holdout"):
            self.reference_logps[split] = precompute_split(
                policy, self._split(split), functools.partial(self.collate, split), self.pass_mask, device)
        logger.info("precomputed reference log-probs of %d train and %d holdout examples",
                    len(self.train_examples), len(self.holdout_examples))

    def reference_sums(self, batch: dict[str, torch.Tensor], sums: torch.Tensor) -> torch.Tensor:
        """Summed reference log-probs (2B,) of the batch's rows; zeros without a reference."""
        if "ref_logps" in batch:
            return flatten_pairs(batch["ref_logps"])
        if self.reference is None:
            return torch.zeros_like(sums)
        with torch.no_grad():
            tokens = flatten_pairs(batch["tokens"])
            logits = forward_logits(self.reference, tokens, flatten_pairs(batch["attention_mask"]), self.pass_mask)
            return masked_sum(token_logps(logits, tokens), flatten_pairs(batch["response_mask"])).detach()

    # ---- loss ----------------------------------------------------------------------------------

    def sequence_logps(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed response log-probs and response lengths (2B,) from one forward pass over all rows.

        Rows are the B first members (chosen) followed by the B second members (rejected).
        """
        tokens = flatten_pairs(batch["tokens"])                    # (2B, T)
        response_mask = flatten_pairs(batch["response_mask"])
        logits = forward_logits(model, tokens, flatten_pairs(batch["attention_mask"]), self.pass_mask)
        per_token = token_logps(logits, tokens)
        return masked_sum(per_token, response_mask), response_lengths(response_mask)

    def pair_logps(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> PairLogps:
        sums, lengths = self.sequence_logps(model, batch)
        ref = self.reference_sums(batch, sums)
        chosen, rejected = split_pairs(sums)
        chosen_lengths, rejected_lengths = split_pairs(lengths)
        ref_chosen, ref_rejected = split_pairs(ref)
        return PairLogps(chosen, rejected, chosen_lengths, rejected_lengths, ref_chosen, ref_rejected)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logps = self.pair_logps(model, batch)
        output = self.objective(logps)
        return output.loss, pair_metrics(output, logps)


class KTOTask(PreferenceTask):
    """KTO on unpaired completions; paired data is split into a desirable and an undesirable completion.

    The KL estimate scores each prompt with a fixed partner's completion (the
    next example of the same split), in the same forward pass as the batch.
    """

    def __init__(self, policy, data, beta: float, desirable_weight: float, undesirable_weight: float,
                 reference: str = "copy", device="cpu"):
        self.beta = beta
        self.desirable_weight = desirable_weight
        self.undesirable_weight = undesirable_weight
        super().__init__(policy, data, objective=None, reference=reference, device=device)

    def _examples(self, data: PreferenceData) -> tuple[list, list]:
        return self._unpair(data.train), self._unpair(data.holdout)

    @staticmethod
    def _unpair(examples: list) -> list[EncodedCompletion]:
        completions = []
        for example in examples:
            if isinstance(example, EncodedPair):
                completions.append(EncodedCompletion(example.prompt, example.chosen, True))
                completions.append(EncodedCompletion(example.prompt, example.rejected, False))
            else:
                completions.append(example)
        return completions

    def collate(self, split: str, indices: list[int], padding_side: str = "right") -> dict[str, torch.Tensor]:
        examples = self._split(split)
        partners = [examples[(i + 1) % len(examples)] for i in indices]
        batch = collate_unpaired([examples[i] for i in indices], partners, self.data.pad_id,
                                 self.data.pad_multiple, self.data.max_length, padding_side)
        return self._with_reference(batch, split, indices)

    def loss(self, model, batch):
        sums, lengths = self.sequence_logps(model, batch)
        ref = self.reference_sums(batch, sums)
        logps, kl_logps = split_pairs(sums)
        ref_logps, ref_kl_logps = split_pairs(ref)
        completion_lengths, _ = split_pairs(lengths)

        loss, metrics = objectives.kto(logps - ref_logps, kl_logps - ref_kl_logps, batch["desirable"],
                                       self.beta, self.desirable_weight, self.undesirable_weight)
        metrics["logps/completion"] = logps.detach().mean()
        metrics["logps/completion_avg"] = (logps.detach() / completion_lengths.clamp(min=1)).mean()
        metrics["lengths/completion"] = completion_lengths.mean()
        return loss, metrics


# ---- builders ------------------------------------------------------------------------------------


def simpo_gamma(params: dict) -> float:
    """Return the margin gamma of a simpo declaration: `gamma`, or beta * `gamma_beta_ratio` (0.5 when neither is set)."""
    if params.get("gamma") is not None and params.get("gamma_beta_ratio") is not None:
        raise ValueError("simpo: set either gamma or gamma_beta_ratio, not both")
    if params.get("gamma") is not None:
        return params["gamma"]
    ratio = params.get("gamma_beta_ratio")
    return params["beta"] * (DEFAULT_GAMMA_BETA_RATIO if ratio is None else ratio)


def _paired_task(params: dict, ctx, objective: Callable, reference: str | None = None) -> PreferenceTask:
    return PreferenceTask(ctx.get(params["policy"]), ctx.get(params["data"]), objective, reference or "none",
                          ctx.device)


def build_simpo(params, ctx):
    objective = functools.partial(objectives.simpo, beta=params["beta"], gamma=simpo_gamma(params),
                                  label_smoothing=params["label_smoothing"], loss_type=params["loss_type"],
                                  sft_weight=params["sft_weight"])
    return _paired_task(params, ctx, objective)


def build_dpo(params, ctx):
    objective = functools.partial(objectives.dpo, beta=params["beta"], label_smoothing=params["label_smoothing"])
    return _paired_task(params, ctx, objective, params["reference"])


def build_ipo(params, ctx):
    return _paired_task(params, ctx, functools.partial(objectives.ipo, beta=params["beta"]), params["reference"])


def build_hinge(params, ctx):
    return _paired_task(params, ctx, functools.partial(objectives.hinge, beta=params["beta"]), params["reference"])


def build_robust_dpo(params, ctx):
    objective = functools.partial(objectives.robust_dpo, beta=params["beta"], epsilon=params["epsilon"])
    return _paired_task(params, ctx, objective, params["reference"])


def build_cpo(params, ctx):
    objective = functools.partial(objectives.cpo, beta=params["beta"], alpha=params["alpha"],
                                  label_smoothing=params["label_smoothing"])
    return _paired_task(params, ctx, objective)


def build_orpo(params, ctx):
    return _paired_task(params, ctx, functools.partial(objectives.orpo, beta=params["beta"]))


def build_rdpo(params, ctx):
    objective = functools.partial(objectives.rdpo, beta=params["beta"], alpha=params["alpha"],
                                  label_smoothing=params["label_smoothing"])
    return _paired_task(params, ctx, objective, params["reference"])


def build_sigmoid_norm(params, ctx):
    objective = functools.partial(objectives.sigmoid_norm, beta=params["beta"],
                                  label_smoothing=params["label_smoothing"])
    return _paired_task(params, ctx, objective, params["reference"])


def build_kto(params, ctx):
    return KTOTask(ctx.get(params["policy"]), ctx.get(params["data"]), params["beta"], params["desirable_weight"],
                   params["undesirable_weight"], params["reference"] or "none", ctx.device)
