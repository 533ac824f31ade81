"""The `text` data component: a tokenized corpus split by file into training and held-out tokens."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

import numpy as np
import torch

from reparamdsl.components.text.cache import files_fingerprint
from reparamdsl.components.text.entropy import unigram_entropy
from reparamdsl.components.text.specs import tokenizer_plan_value, tokenizer_vocab_size
from reparamdsl.components.text.sources import STDLIB_SOURCE, SourceFile, resolve_source, split_holdout
from reparamdsl.components.text.tokens import DecodeCounter, iter_texts, load_or_tokenize
from reparamdsl.diagnostics import Diagnostic, ProgramError

logger = logging.getLogger(__name__)


class TextCorpus:
    """Training and held-out token arrays of one corpus, and the batches cut from them.

    Training batches are windows of `context + 1` tokens at random offsets.
    Batch `k` depends only on `(seed, k)`, so resuming at batch `k` gives the
    same batches as running through the first `k`. Evaluation windows start
    every `context` tokens, so consecutive windows share one boundary token and
    no held-out token is a prediction target twice. The tokens after the last
    full window, or after the last full batch, are not evaluated.
    """

    def __init__(self, tokenizer, context: int, train_tokens: np.ndarray, eval_tokens: np.ndarray,
                 train_files: list[SourceFile], eval_files: list[SourceFile], source: str):
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.vocab_size
        self.context = context
        self.train_tokens = train_tokens
        self.eval_tokens = eval_tokens
        self.train_files = train_files
        self.eval_files = eval_files
        self.source = source
        self.unigram_entropy = (unigram_entropy(train_tokens, eval_tokens, self.vocab_size)
                                if len(eval_tokens) else None)

    def train_batch(self, batch_size: int, seed: int, index: int) -> torch.Tensor:
        """Return training batch `index` as int64 tokens of shape (batch_size, context + 1)."""
        generator = torch.Generator()
        generator.manual_seed(_batch_seed(seed, index))
        starts = len(self.train_tokens) - self.context
        offsets = torch.randint(starts, (batch_size,), generator=generator).numpy()
        return self._gather(self.train_tokens, offsets)

    def train_batches(self, batch_size: int, seed: int, start: int = 0,
                      device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
        index = start
        while True:
            yield self.train_batch(batch_size, seed, index).to(device, non_blocking=True)
            index += 1

    def eval_windows(self) -> int:
        return max(0, (len(self.eval_tokens) - 1) // self.context)

    def eval_batches(self, batch_size: int, max_batches: int | None = None,
                     device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
        """Yield held-out windows in order, in full batches only (one short batch when fewer windows exist)."""
        windows = self.eval_windows()
        batches = windows // batch_size
        if batches:
            sizes = [batch_size] * batches
        elif windows:
            sizes = [windows]
        else:
            sizes = []
        if max_batches is not None:
            sizes = sizes[:max_batches]

        for index, size in enumerate(sizes):
            first = index * batch_size
            offsets = (np.arange(first, first + size) * self.context).astype(np.int64)
            yield self._gather(self.eval_tokens, offsets).to(device, non_blocking=True)

    def _gather(self, tokens: np.ndarray, offsets: np.ndarray) -> torch.Tensor:
        positions = offsets[:, None] + np.arange(self.context + 1)[None, :]  # (B, context + 1)
        return torch.from_numpy(np.asarray(tokens[positions], dtype=np.int64))


def _batch_seed(seed: int, index: int) -> int:
    digest = hashlib.sha256(f"text-train:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def describe_source(source) -> str:
    if source == STDLIB_SOURCE:
        return f'"{STDLIB_SOURCE}"'
    return ", ".join(source)


def _empty_corpus(source: str, problem: str) -> ProgramError:
    return ProgramError([Diagnostic(
        f"the text source {source} {problem}",
        span=None,
        hint="point `source` at files that contain text, or raise `max_files`",
    )])


def build_text(params: dict, ctx) -> TextCorpus:
    """Build a `TextCorpus` from the plan parameters of a `text` declaration."""
    source = describe_source(params["source"])
    encoding, errors = params["encoding"], params["encoding_errors"]
    context = params["context"]

    files = resolve_source(params["source"], params["max_files"])
    if not files:
        raise _empty_corpus(source, "matches no files")
    train_files, eval_files = split_holdout(files, params["holdout"])

    counter = DecodeCounter()
    corpus_key = {"train": files_fingerprint(f.path for f in train_files),
                  "encoding": encoding, "errors": errors}
    tokenizer_value = tokenizer_plan_value(params["tokenizer"])
    recipe = ctx.build(tokenizer_value)
    tokenizer = recipe.prepare(corpus_key, lambda: (t for t in iter_texts(train_files, encoding, errors, counter) if t))
    _check_vocab_size(tokenizer, tokenizer_vocab_size(tokenizer_value))

    eval_key = {"eval": files_fingerprint(f.path for f in eval_files), "train": corpus_key}
    train_tokens = load_or_tokenize(train_files, tokenizer, encoding, errors, counter, "train", corpus_key)
    eval_tokens = load_or_tokenize(eval_files, tokenizer, encoding, errors, counter, "eval", eval_key)

    if counter.paths:
        logger.warning("%d file(s) of %s were not valid %s; decoded with errors=%r (first: %s)",
                       len(counter.paths), source, encoding, errors, sorted(counter.paths)[0])
    if len(train_tokens) == 0:
        raise _empty_corpus(source, f"has {len(train_files)} training file(s) but no text in them")
    if len(train_tokens) < context + 1:
        raise ProgramError([Diagnostic(
            f"the training split of {source} has {len(train_tokens)} tokens, fewer than context + 1 = {context + 1}",
            span=None,
            hint="lower `context` or add files to `source`",
        )])

    corpus = TextCorpus(tokenizer, context, train_tokens, eval_tokens, train_files, eval_files, source)
    _log_summary(corpus)
    return corpus


def _check_vocab_size(tokenizer, static_vocab_size: int | None) -> None:
    # The checker computed `vocab_size` from parameters alone; models are sized from it.
    if static_vocab_size is not None and tokenizer.vocab_size != static_vocab_size:
        raise RuntimeError(f"the tokenizer has {tokenizer.vocab_size} ids but its spec promised {static_vocab_size}")


def _log_summary(corpus: TextCorpus) -> None:
    logger.info("text %s: %d training files (%d tokens), %d held-out files (%d tokens), vocab %d",
                corpus.source, len(corpus.train_files), len(corpus.train_tokens),
                len(corpus.eval_files), len(corpus.eval_tokens), corpus.vocab_size)
    if corpus.unigram_entropy is None:
        logger.warning("text %s: no held-out tokens, so evaluation batches are empty", corpus.source)
    else:
        logger.info("text %s: held-out unigram entropy %.4f nats/token (add-one smoothed training counts)",
                    corpus.source, corpus.unigram_entropy)
