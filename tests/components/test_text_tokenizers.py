"""Tests of the byte and BPE tokenizers."""

import os

import numpy as np
import pytest

from reparamdsl.components.text.tokenizer import BPEConfig, ByteTokenizer

SAMPLE = "def área(r):\n    return 3.14159 * r ** 2  # π r²\n"


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("REPARAMDSL_CACHE", str(tmp_path / "cache"))


def python_texts(count: int) -> list[str]:
    return [f"def function_{i}(value):\n    return value * {i} + len('text {i}')\n" for i in range(count)]


def test_bytes_round_trip():
    tokenizer = ByteTokenizer()

    ids = tokenizer.encode(SAMPLE)

    assert tokenizer.decode(ids) == SAMPLE
    assert list(ids) == list(SAMPLE.encode("utf-8"))


def test_bytes_vocab_and_end_of_document():
    tokenizer = ByteTokenizer()

    ids = tokenizer.encode("\xff\x00 any text")

    assert tokenizer.vocab_size == 257
    assert tokenizer.eod_id == 256
    assert ids.max() < 256
    assert tokenizer.decode(list(ids) + [256]) == "\xff\x00 any text"


def test_bpe_has_exactly_vocab_ids():
    texts = python_texts(200)

    tokenizer = BPEConfig(vocab=320, min_frequency=2).prepare({"corpus": "a"}, lambda: iter(texts))

    assert tokenizer.vocab_size == 320
    assert tokenizer.tokenizer.get_vocab_size(with_added_tokens=True) == 320
    assert tokenizer.decode(tokenizer.encode(SAMPLE)) == SAMPLE
    assert len(tokenizer.encode(texts[0])) < len(texts[0].encode("utf-8"))


def test_bpe_pads_small_corpus_to_vocab():
    texts = ["ab ab ab"]

    tokenizer = BPEConfig(vocab=400, min_frequency=2).prepare({"corpus": "tiny"}, lambda: iter(texts))
    vocab = tokenizer.tokenizer.get_vocab(with_added_tokens=True)

    assert tokenizer.vocab_size == 400
    assert len(vocab) == 400
    assert sorted(vocab.values()) == list(range(400))
    assert any(token.startswith("<|pad_") for token in vocab)
    assert np.all(tokenizer.encode("ab ab") < 400)


def test_bpe_cache_reused_and_keyed(tmp_path):
    texts = python_texts(50)
    config = BPEConfig(vocab=300, min_frequency=2)

    first = config.prepare({"corpus": "a"}, lambda: iter(texts))
    cached = os.listdir(tmp_path / "cache" / "tokenizers")
    second = config.prepare({"corpus": "a"}, lambda: iter(["never read"] * 0))
    other = config.prepare({"corpus": "b"}, lambda: iter(texts))

    assert len(cached) == 1
    assert second.fingerprint == first.fingerprint
    assert len(os.listdir(tmp_path / "cache" / "tokenizers")) == 2
    assert other.vocab_size == 300
