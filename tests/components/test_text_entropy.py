"""Tests of the held-out unigram entropy baseline."""

import math

import numpy as np
import pytest

from reparamdsl.components.text.entropy import unigram_entropy


def test_unigram_entropy_matches_manual_count():
    train = np.array([0, 0, 0, 1, 2, 2], dtype=np.uint16)
    held_out = np.array([0, 2, 3], dtype=np.uint16)
    vocab = 5

    # p(v) = (count + 1) / (6 + 5): counts 3, 1, 2, 0, 0.
    expected = -(math.log(4 / 11) + math.log(3 / 11) + math.log(1 / 11)) / 3

    assert unigram_entropy(train, held_out, vocab) == pytest.approx(expected, rel=1e-12)


def test_unigram_entropy_uniform_corpus_is_log_vocab():
    train = np.arange(8).repeat(10)
    held_out = np.arange(8)

    assert unigram_entropy(train, held_out, 8) == pytest.approx(math.log(8))


def test_unigram_entropy_rejects_empty_held_out():
    with pytest.raises(ValueError, match="no tokens"):
        unigram_entropy(np.arange(4), np.zeros(0, dtype=np.int64), 4)
