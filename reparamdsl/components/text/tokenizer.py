"""Tokenizer components: byte-level and byte-level BPE.

A tokenizer component builds an object with `prepare(corpus_key, texts)`,
which returns a ready tokenizer for the training split (the byte tokenizer is
ready as built; BPE trains on `texts()` or loads the cached result). A ready
tokenizer has `vocab_size`, `eod_id` (the end-of-document id placed between
files), `encode(text) -> numpy int array`, `decode(ids) -> str` and
`fingerprint`, a string that changes whenever its ids would.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import numpy as np

from reparamdsl.components.text.cache import cache_dir, cache_key, write_atomic

logger = logging.getLogger(__name__)

BYTE_VOCAB_SIZE = 257
"""Ids 0-255 are the UTF-8 bytes; id 256 ends a document."""

EOD_TOKEN = "<|end_of_document|>"


class ByteTokenizer:
    """UTF-8 bytes as ids 0-255 and 256 as the end-of-document id; needs no training."""

    vocab_size = BYTE_VOCAB_SIZE
    eod_id = 256
    fingerprint = "bytes-v1"

    def prepare(self, corpus_key: object, texts: Callable[[], Iterator[str]]) -> ByteTokenizer:
        return self

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [self.encode(text) for text in texts]

    def decode(self, ids) -> str:
        data = bytes(int(i) for i in ids if int(i) != self.eod_id)
        return data.decode("utf-8", errors="replace")


class BPETokenizer:
    """A trained byte-level BPE tokenizer from the `tokenizers` library."""

    def __init__(self, tokenizer, json_text: str):
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        self.eod_id = tokenizer.token_to_id(EOD_TOKEN)
        self.fingerprint = "bpe-" + cache_key(json_text)

    # NOTE: the `tokenizers` library matches added tokens inside text, so a file
    # that contains the literal end-of-document or padding token string is
    # encoded with that special id.
    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts)
        return [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids])


class BPEConfig:
    """An untrained byte-level BPE tokenizer: `vocab` ids in all, including special tokens.

    Training starts from the 256 byte symbols plus the end-of-document token and
    merges pairs seen at least `min_frequency` times. When the corpus runs out
    of such pairs before reaching `vocab`, padding tokens `<|pad_N|>` fill the
    remaining ids, so the tokenizer always has exactly `vocab` ids (the padding
    ids never occur in encoded text).
    """

    def __init__(self, vocab: int, min_frequency: int):
        self.vocab = vocab
        self.min_frequency = min_frequency

    def prepare(self, corpus_key: object, texts: Callable[[], Iterator[str]]) -> BPETokenizer:
        import tokenizers

        key = cache_key({"corpus": corpus_key, "vocab": self.vocab, "min_frequency": self.min_frequency,
                         "tokenizers": tokenizers.__version__, "format": 1})
        path = os.path.join(cache_dir("tokenizers"), f"bpe-{key}.json")

        if os.path.exists(path):
            logger.info("loading cached BPE tokenizer %s", path)
            with open(path, encoding="utf-8") as handle:
                json_text = handle.read()
            return BPETokenizer(tokenizers.Tokenizer.from_str(json_text), json_text)

        logger.info("training a byte-level BPE tokenizer with %d ids", self.vocab)
        tokenizer = self._train(texts)
        json_text = tokenizer.to_str()
        write_atomic(path, lambda temporary: _write_text(temporary, json_text))
        logger.info("cached the BPE tokenizer at %s", path)
        return BPETokenizer(tokenizer, json_text)

    def _train(self, texts: Callable[[], Iterator[str]]):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=self.vocab,
            min_frequency=self.min_frequency,
            special_tokens=[EOD_TOKEN],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts(), trainer=trainer)

        trained = tokenizer.get_vocab_size(with_added_tokens=True)
        if trained < self.vocab:
            logger.info("BPE training stopped at %d ids: adding %d padding ids", trained, self.vocab - trained)
            tokenizer.add_special_tokens([f"<|pad_{i}|>" for i in range(self.vocab - trained)])

        size = tokenizer.get_vocab_size(with_added_tokens=True)
        if size != self.vocab:
            raise RuntimeError(f"BPE training produced {size} ids, expected exactly {self.vocab}")
        return tokenizer


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def build_bytes(params: dict, ctx) -> ByteTokenizer:
    return ByteTokenizer()


def build_bpe(params: dict, ctx) -> BPEConfig:
    return BPEConfig(vocab=params["vocab"], min_frequency=params["min_frequency"])
