"""The `next_token` objective: a supervised task that trains a language model on a token source."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from reparamdsl.runtime.task import SupervisedTask


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor, z_loss: float = 0.0
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Return the loss and metrics of logits (B, T, V) against targets (B, T).

    The normalizer logsumexp(logits) is computed in fp32 with autocast off, so a
    bf16 forward pass still gets an fp32 cross-entropy. The `loss` metric is
    the cross-entropy alone (nats/token); the returned loss adds
    `z_loss * mean(logsumexp^2)` when `z_loss` is positive.
    """
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        log_normalizer = torch.logsumexp(logits, dim=-1)  # (B, T)
        target_logits = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
        cross_entropy = (log_normalizer - target_logits).mean()

        tokens = torch.full((), float(targets.numel()), device=logits.device)
        metrics = {"loss": cross_entropy, "tokens": tokens}
        if z_loss <= 0:
            return cross_entropy, metrics

        z_penalty = log_normalizer.pow(2).mean()
        metrics["z_loss"] = z_penalty
        return cross_entropy + z_loss * z_penalty, metrics


class NextTokenTask(SupervisedTask):
    """Predict token t + 1 from tokens 0 .. t over windows of `context + 1` tokens from `data`."""

    def __init__(self, model: torch.nn.Module, data, z_loss: float, device: torch.device | str):
        self.model = model
        self.data = data
        self.z_loss = z_loss
        self.device = torch.device(device)

    def loss(self, model, batch):
        tokens = batch["tokens"]  # (B, context + 1)
        logits = model(tokens[:, :-1])  # (B, context, V)
        return next_token_loss(logits, tokens[:, 1:], self.z_loss)

    def train_batches(self, batch_size: int, seed: int, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        for tokens in self.data.train_batches(batch_size, seed, start, device=self.device):
            yield {"tokens": tokens}

    def eval_batches(self, batch_size: int, max_batches: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        for tokens in self.data.eval_batches(batch_size, max_batches, device=self.device):
            yield {"tokens": tokens}

    def eval_summary(self, means: dict[str, float]) -> dict[str, float]:
        summary = dict(means)
        if "loss" in means:
            summary["perplexity"] = math.exp(min(means["loss"], 700.0))
        baseline = getattr(self.data, "unigram_entropy", None)
        if baseline is not None:
            summary["unigram_entropy"] = baseline
        return summary


def _check_data(data) -> None:
    missing = [name for name in ("train_batches", "eval_batches", "vocab_size", "context") if not hasattr(data, name)]
    if missing:
        raise TypeError(f"next_token needs a token data source such as `text`; the data object "
                        f"{type(data).__name__} has no {', '.join(missing)}")


def _check_vocab(model: torch.nn.Module, data) -> None:
    embed = getattr(model, "embed", None)
    if isinstance(embed, torch.nn.Embedding) and embed.num_embeddings < data.vocab_size:
        raise ValueError(f"the model embeds {embed.num_embeddings} token ids but the data uses "
                         f"{data.vocab_size}; set the model's vocab to the data's vocab_size")


def build_next_token(params: dict, ctx) -> NextTokenTask:
    model = ctx.get(params["model"])
    data = ctx.get(params["data"])
    _check_data(data)
    _check_vocab(model, data)
    return NextTokenTask(model, data, params["z_loss"], ctx.device)
