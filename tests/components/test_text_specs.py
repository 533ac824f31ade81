"""Tests of the text area's specs: static outputs, checks and how a program's values become plan values."""

import re

import pytest

import reparamdsl as rp
from reparamdsl.components.text.specs import BPE, TEXT, tokenizer_vocab_size
from reparamdsl.diagnostics import ProgramError


class RecordingCheck:
    def __init__(self):
        self.errors = []

    def error(self, message, param=None, hint=None):
        self.errors.append((message, param, hint))

    def lookup(self, name):
        return None


def test_tokenizer_vocab_size_from_params():
    bpe = {"kind": "tokenizer", "component": "bpe", "params": {"vocab": 1000, "min_frequency": 2}}

    assert tokenizer_vocab_size("bytes") == 257
    assert tokenizer_vocab_size(bpe) == 1000
    assert tokenizer_vocab_size({"kind": "tokenizer", "component": "other", "params": {}}) is None
    assert BPE.outputs({"vocab": 1000, "min_frequency": 2}) == {"vocab_size": 1000}


def test_text_outputs_vocab_and_context():
    outputs = TEXT.outputs({"tokenizer": "bytes", "context": 128})

    assert outputs == {"vocab_size": 257, "context": 128}


def test_unknown_encoding_rejected():
    check = RecordingCheck()

    TEXT.validate({"encoding": "utf-9"}, check)

    (message, param, hint), = check.errors
    assert "utf-9" in message
    assert param == "encoding"
    assert "utf-8" in hint


def test_program_glob_source_becomes_absolute(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("text")
    program = tmp_path / "lm.rp"
    program.write_text('data corpus = text { source = "docs/*.txt"  tokenizer = bpe(vocab = 300)  context = 8 }\n'
                       "model lm = llama { vocab = corpus.vocab_size  width = 16  depth = 1  heads = 2  context = 8 }\n"
                       "objective loss = next_token(lm, corpus)\n"
                       "train { steps = 1  batch = 1 }\n")

    plan, = rp.check(program.read_text(), str(program))
    corpus = plan.get("corpus")

    assert corpus.params["source"] == [str(tmp_path / "docs" / "*.txt")]
    assert corpus.outputs["vocab_size"] == 300
    assert plan.get("lm").params["vocab"] == 300


def test_program_missing_glob_reports_path(tmp_path):
    program = tmp_path / "lm.rp"
    program.write_text('data corpus = text { source = ["nothing/*.txt"]  context = 8 }\n')

    with pytest.raises(ProgramError, match=re.escape("nothing/*.txt")):
        rp.check(program.read_text(), str(program))
