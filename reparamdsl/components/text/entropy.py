"""A baseline for the validation loss: the held-out split's unigram cross-entropy."""

from __future__ import annotations

import numpy as np


def unigram_entropy(train_tokens: np.ndarray, eval_tokens: np.ndarray, vocab_size: int) -> float:
    """Return the cross-entropy in nats/token of `eval_tokens` under the training unigram distribution.

    The distribution uses add-one smoothing, p(v) = (count(v) + 1) / (N + V),
    so ids unseen in training keep a finite cost. A language model that beats
    this number has learned more than token frequencies.
    """
    if len(eval_tokens) == 0:
        raise ValueError("the held-out split has no tokens, so its unigram entropy is undefined")

    train_counts = np.bincount(np.asarray(train_tokens, dtype=np.int64), minlength=vocab_size)
    eval_counts = np.bincount(np.asarray(eval_tokens, dtype=np.int64), minlength=vocab_size)
    log_probs = np.log(train_counts + 1.0) - np.log(train_counts.sum() + vocab_size)
    return float(-(eval_counts * log_probs).sum() / eval_counts.sum())
