"""Tests of the next_token objective: its loss, batches and static checks."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from reparamdsl.components.language.next_token import NextTokenTask, build_next_token, next_token_loss
from reparamdsl.components.language.specs import NEXT_TOKEN
from reparamdsl.components.llama.model import LlamaModel, init_weights
from reparamdsl.components.text.corpus import build_text
from reparamdsl.lowering.context import BuildContext
from reparamdsl.semantics.registry import CheckedDecl, default_registry


class StubPlan:
    def train_params(self) -> dict:
        return {}


class RecordingCheck:
    def __init__(self, decls):
        self.decls = {decl.name: decl for decl in decls}
        self.errors = []

    def error(self, message, param=None, hint=None):
        self.errors.append((message, param, hint))

    def lookup(self, name):
        return self.decls.get(name)


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("REPARAMDSL_CACHE", str(tmp_path / "cache"))


def test_loss_equals_manual_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    targets = torch.randint(0, 11, (2, 5))

    loss, metrics = next_token_loss(logits, targets)

    probabilities = logits.double().softmax(-1)
    manual = -probabilities.gather(-1, targets.unsqueeze(-1)).log().mean()
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
    assert metrics["loss"].item() == pytest.approx(F.cross_entropy(logits.view(-1, 11), targets.view(-1)).item())
    assert metrics["tokens"].item() == 10


def test_z_loss_adds_squared_log_normalizer():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 7) * 3
    targets = torch.randint(0, 7, (3, 4))

    loss, metrics = next_token_loss(logits, targets, z_loss=1e-2)

    log_z = torch.log(torch.exp(logits.double()).sum(-1))
    expected = metrics["loss"].double() + 1e-2 * (log_z ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["z_loss"].item() == pytest.approx((log_z ** 2).mean().item(), rel=1e-5)


def test_loss_is_fp32_under_bf16_autocast():
    logits = torch.randn(2, 3, 9).bfloat16()
    targets = torch.randint(0, 9, (2, 3))

    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = next_token_loss(logits, targets)

    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(F.cross_entropy(logits.float().view(-1, 9), targets.view(-1)).item())


def test_task_loss_shifts_targets():
    model = LlamaModel(vocab=20, width=16, depth=1, heads=2, context=8).eval()
    init_weights(model, 0.2, torch.Generator().manual_seed(0))
    task = NextTokenTask(model, data=None, z_loss=0.0, device="cpu")
    tokens = torch.randint(0, 20, (2, 9))

    loss, _ = task.loss(model, {"tokens": tokens})

    logits = model(tokens[:, :8])
    expected = F.cross_entropy(logits.reshape(-1, 20), tokens[:, 1:].reshape(-1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def build_task(tmp_path):
    for i in range(6):
        (tmp_path / f"f{i}.txt").write_text(f"some words in file {i}\n" * 30)
    ctx = BuildContext(StubPlan(), default_registry(entry_points=False), torch.device("cpu"), seed=0)
    ctx.built["corpus"] = build_text({"source": [str(tmp_path / "*.txt")], "tokenizer": "bytes", "context": 8,
                                      "holdout": 0.34, "max_files": None, "encoding": "utf-8",
                                      "encoding_errors": "replace"}, ctx)
    ctx.built["lm"] = LlamaModel(vocab=257, width=16, depth=1, heads=2, context=8)
    return build_next_token({"model": {"ref": "lm"}, "data": {"ref": "corpus"}, "z_loss": 0.0}, ctx)


def test_task_batches_and_summary(tmp_path):
    task = build_task(tmp_path)

    train = next(task.train_batches(4, seed=3, start=2))
    evaluation = list(task.eval_batches(2, max_batches=2))
    summary = task.eval_summary({"loss": 2.0})

    assert train["tokens"].shape == (4, 9)
    assert torch.equal(train["tokens"], task.data.train_batch(4, 3, 2))
    assert len(evaluation) == 2
    assert all(batch["tokens"].shape == (2, 9) for batch in evaluation)
    assert summary["perplexity"] == pytest.approx(math.exp(2.0))
    assert summary["unigram_entropy"] == task.data.unigram_entropy


def test_build_rejects_small_model_vocab(tmp_path):
    task = build_task(tmp_path)
    ctx = BuildContext(StubPlan(), default_registry(entry_points=False), torch.device("cpu"), seed=0)
    ctx.built.update(corpus=task.data, lm=LlamaModel(vocab=100, width=16, depth=1, heads=2, context=8))

    with pytest.raises(ValueError, match="embeds 100 token ids but the data uses 257"):
        build_next_token({"model": {"ref": "lm"}, "data": {"ref": "corpus"}, "z_loss": 0.0}, ctx)


def declarations(model_vocab: int, model_context: int, data_context: int) -> list[CheckedDecl]:
    return [
        CheckedDecl("model", "lm", "llama", {"vocab": model_vocab, "context": model_context}, {}),
        CheckedDecl("data", "corpus", "text", {"context": data_context},
                    {"vocab_size": 4096, "context": data_context}),
    ]


def validate(model_vocab: int, model_context: int, data_context: int) -> list:
    check = RecordingCheck(declarations(model_vocab, model_context, data_context))
    NEXT_TOKEN.validate({"model": {"ref": "lm"}, "data": {"ref": "corpus"}, "z_loss": 0.0}, check)
    return check.errors


def test_validate_accepts_matching_sizes():
    assert validate(4096, 256, 256) == []
    assert validate(5000, 512, 256) == []


def test_validate_rejects_small_vocab():
    (message, param, hint), = validate(1000, 256, 256)

    assert "vocab 1000" in message
    assert "4096" in message
    assert param == "model"
    assert "corpus.vocab_size" in hint


def test_validate_rejects_long_data_context():
    (message, param, hint), = validate(4096, 128, 256)

    assert "context 256" in message
    assert "context 128" in message
    assert param == "data"
    assert hint


def test_compiled_loss_matches_eager():
    model = LlamaModel(vocab=30, width=16, depth=1, heads=2, context=8)
    init_weights(model, 0.1, torch.Generator().manual_seed(0))
    task = NextTokenTask(model, data=None, z_loss=1e-3, device="cpu")
    tokens = torch.from_numpy(np.random.default_rng(0).integers(0, 30, (2, 9)))

    compiled = torch.compile(task.loss, backend="eager", fullgraph=True)

    torch.testing.assert_close(compiled(model, {"tokens": tokens})[0], task.loss(model, {"tokens": tokens})[0])
