"""Tokenize a list of files into one token array, with a disk cache.

Each file becomes one document followed by the end-of-document id. Arrays are
stored as uint16 when every id fits (vocabularies up to 65536) and int32
otherwise, and cached as `.npy` files that later runs memory-map.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np

from reparamdsl.components.text.cache import cache_dir, cache_key, write_atomic
from reparamdsl.components.text.sources import SourceFile, read_text

logger = logging.getLogger(__name__)

ENCODE_CHUNK_FILES = 256


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


class DecodeCounter:
    """Counts files that were not valid text in the source encoding, reporting each file once."""

    def __init__(self) -> None:
        self.paths: set[str] = set()

    def read(self, file: SourceFile, encoding: str, errors: str) -> str:
        text, replaced = read_text(file.path, encoding, errors)
        if replaced:
            self.paths.add(file.path)
        return text


def iter_texts(files: list[SourceFile], encoding: str, errors: str, counter: DecodeCounter) -> Iterator[str]:
    for file in files:
        yield counter.read(file, encoding, errors)


def tokenize_files(files: list[SourceFile], tokenizer, encoding: str, errors: str,
                   counter: DecodeCounter) -> np.ndarray:
    """Concatenate the tokens of every non-empty file, each followed by the end-of-document id."""
    dtype = token_dtype(tokenizer.vocab_size)
    eod = np.asarray([tokenizer.eod_id], dtype=dtype)
    pieces: list[np.ndarray] = []

    for begin in range(0, len(files), ENCODE_CHUNK_FILES):
        chunk = files[begin:begin + ENCODE_CHUNK_FILES]
        texts = [counter.read(file, encoding, errors) for file in chunk]
        texts = [text for text in texts if text]
        for ids in tokenizer.encode_batch(texts):
            pieces.append(ids.astype(dtype))
            pieces.append(eod)

    if not pieces:
        return np.zeros(0, dtype=dtype)
    return np.concatenate(pieces)


def load_or_tokenize(files: list[SourceFile], tokenizer, encoding: str, errors: str,
                     counter: DecodeCounter, split: str, corpus_key: object) -> np.ndarray:
    """Return the token array of `files`, from the cache when the files and tokenizer are unchanged."""
    key = cache_key({"corpus": corpus_key, "split": split, "tokenizer": tokenizer.fingerprint,
                     "encoding": encoding, "errors": errors, "format": 1})
    path = os.path.join(cache_dir("tokens"), f"{split}-{key}.npy")

    if os.path.exists(path):
        logger.info("loading cached %s tokens %s", split, path)
        return np.load(path, mmap_mode="r")

    tokens = tokenize_files(files, tokenizer, encoding, errors, counter)
    write_atomic(path, lambda temporary: _save_npy(temporary, tokens))
    logger.info("tokenized %d %s files into %d tokens (cached at %s)", len(files), split, len(tokens), path)
    return tokens


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
