"""Tests of the `text` data component built from small temporary corpora."""

import logging

import numpy as np
import pytest
import torch

from reparamdsl.components.text.corpus import build_text
from reparamdsl.diagnostics import ProgramError
from reparamdsl.lowering.context import BuildContext
from reparamdsl.semantics.registry import default_registry


class StubPlan:
    def train_params(self) -> dict:
        return {}


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("REPARAMDSL_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def ctx():
    return BuildContext(StubPlan(), default_registry(entry_points=False), torch.device("cpu"), seed=0)


def write_corpus(folder, count: int, lines: int = 20) -> str:
    folder.mkdir(exist_ok=True)
    for i in range(count):
        body = "".join(f"line {j} of file {i}: value = {i * j}\n" for j in range(lines))
        (folder / f"doc{i:03d}.txt").write_text(body)
    return str(folder / "*.txt")


def text_params(source, **overrides) -> dict:
    params = {"source": source, "tokenizer": "bytes", "context": 16, "holdout": 0.25, "max_files": None,
              "encoding": "utf-8", "encoding_errors": "replace"}
    params.update(overrides)
    return params


def test_documents_joined_by_end_of_document(tmp_path, ctx):
    (tmp_path / "a.txt").write_text("first\n")
    (tmp_path / "b.txt").write_text("second é\n")

    corpus = build_text(text_params([str(tmp_path / "*.txt")], holdout=0.0, context=4), ctx)

    expected = list(b"first\n") + [256] + list("second é\n".encode()) + [256]
    assert list(corpus.train_tokens) == expected
    assert corpus.vocab_size == 257
    assert len(corpus.eval_tokens) == 0


def test_train_batches_resume_exactly(tmp_path, ctx):
    corpus = build_text(text_params([write_corpus(tmp_path / "c", 8)]), ctx)

    stream = corpus.train_batches(batch_size=3, seed=7)
    skipped = [next(stream) for _ in range(5)]
    resumed = corpus.train_batches(batch_size=3, seed=7, start=3)

    assert torch.equal(next(resumed), skipped[3])
    assert torch.equal(next(resumed), skipped[4])
    assert not torch.equal(skipped[0], skipped[1])


def test_train_batches_are_windows_of_training_split(tmp_path, ctx):
    corpus = build_text(text_params([write_corpus(tmp_path / "c", 8)]), ctx)
    train = np.asarray(corpus.train_tokens, dtype=np.int64)
    windows = {tuple(train[i:i + 17]) for i in range(len(train) - 16)}

    batch = next(corpus.train_batches(batch_size=4, seed=1))

    assert batch.shape == (4, 17)
    assert batch.dtype == torch.int64
    for row in batch.tolist():
        assert tuple(row) in windows


def test_train_batches_depend_on_seed(tmp_path, ctx):
    corpus = build_text(text_params([write_corpus(tmp_path / "c", 8)]), ctx)

    assert not torch.equal(corpus.train_batch(8, 0, 0), corpus.train_batch(8, 1, 0))


def test_eval_batches_cover_held_out_in_order(tmp_path, ctx):
    corpus = build_text(text_params([write_corpus(tmp_path / "c", 8)]), ctx)
    held_out = np.asarray(corpus.eval_tokens, dtype=np.int64)

    batches = list(corpus.eval_batches(batch_size=2))
    again = list(corpus.eval_batches(batch_size=2))
    rows = torch.cat(batches).numpy()

    assert len(batches) == corpus.eval_windows() // 2
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    for index, row in enumerate(rows):
        assert np.array_equal(row, held_out[index * 16:index * 16 + 17])
    assert len(list(corpus.eval_batches(batch_size=2, max_batches=1))) == 1


def test_split_independent_of_seed(tmp_path):
    pattern = write_corpus(tmp_path / "c", 12)
    registry = default_registry(entry_points=False)

    corpora = [build_text(text_params([pattern]), BuildContext(StubPlan(), registry, torch.device("cpu"), seed))
               for seed in (0, 1)]

    assert [f.path for f in corpora[0].eval_files] == [f.path for f in corpora[1].eval_files]
    assert len(corpora[0].eval_files) == 3


def test_empty_files_raise_program_error(tmp_path, ctx):
    (tmp_path / "empty1.txt").write_text("")
    (tmp_path / "empty2.txt").write_text("")
    pattern = str(tmp_path / "*.txt")

    with pytest.raises(ProgramError) as raised:
        build_text(text_params([pattern]), ctx)

    diagnostic = raised.value.diagnostics[0]
    assert pattern in diagnostic.message
    assert "no text" in diagnostic.message
    assert diagnostic.hint


def test_context_longer_than_corpus_raises(tmp_path, ctx):
    (tmp_path / "short.txt").write_text("tiny")

    with pytest.raises(ProgramError, match="fewer than context"):
        build_text(text_params([str(tmp_path / "*.txt")], context=64, holdout=0.0), ctx)


def test_invalid_utf8_replaced_and_logged(tmp_path, ctx, caplog):
    (tmp_path / "bad.txt").write_bytes(b"ok \xff\xfe bytes\n")
    (tmp_path / "good.txt").write_text("fine text here\n")

    with caplog.at_level(logging.WARNING):
        corpus = build_text(text_params([str(tmp_path / "*.txt")], holdout=0.0, context=4), ctx)

    assert "1 file(s)" in caplog.text
    assert "\ufffd" in corpus.tokenizer.decode(corpus.train_tokens)


def test_bpe_tokenizer_through_registry(tmp_path, ctx):
    tokenizer = {"kind": "tokenizer", "component": "bpe", "params": {"vocab": 300, "min_frequency": 2}}

    corpus = build_text(text_params([write_corpus(tmp_path / "c", 8)], tokenizer=tokenizer), ctx)

    assert corpus.vocab_size == 300
    assert int(np.max(corpus.train_tokens)) < 300
    assert corpus.train_tokens[-1] == corpus.tokenizer.eod_id
    assert corpus.unigram_entropy > 0


def test_token_cache_reused(tmp_path, ctx):
    pattern = write_corpus(tmp_path / "c", 6)

    first = build_text(text_params([pattern]), ctx)
    second = build_text(text_params([pattern]), ctx)
    (tmp_path / "c" / "doc000.txt").write_text("changed contents, different length\n")
    third = build_text(text_params([pattern]), ctx)

    assert isinstance(second.train_tokens, np.memmap)
    assert np.array_equal(first.train_tokens, second.train_tokens)
    assert len(third.train_tokens) + len(third.eval_tokens) != len(first.train_tokens) + len(first.eval_tokens)
