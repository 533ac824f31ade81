"""Tests of preference tasks: padding and prompt invariances, references, accumulation, autocast, programs."""

import json

import pytest
import torch

from reparamdsl.components.preference import objectives
from reparamdsl.components.preference.batching import collate_pairs
from reparamdsl.components.preference.dataset import EncodedCompletion, EncodedPair, PreferenceData
from reparamdsl.components.preference.task import KTOTask, PreferenceTask, simpo_gamma
from reparamdsl.components.preference.tokens import TokenizerView

VOCAB = 40


class CausalBigram(torch.nn.Module):
    """A tiny causal LM: embedding, causal mean over the prefix, linear head; forward(tokens) -> logits."""

    def __init__(self, vocab: int = VOCAB, width: int = 16, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.embed = torch.nn.Parameter(torch.randn(vocab, width, generator=generator))
        self.head = torch.nn.Parameter(torch.randn(width, vocab, generator=generator) * 0.5)

    def forward(self, tokens):
        hidden = self.embed[tokens]                                          # (B, T, C)
        counts = torch.arange(1, tokens.shape[1] + 1, dtype=hidden.dtype).view(1, -1, 1)
        return torch.tanh(hidden.cumsum(1) / counts) @ self.head


class StubTokenizer:
    bos_id, eos_id, pad_id, vocab_size = 1, 2, 0, VOCAB


def make_data(pairs, pad_id=0, pad_multiple=1, max_length=64, holdout=()) -> PreferenceData:
    tokenizer = TokenizerView(StubTokenizer(), 1, 2, pad_id, VOCAB)
    return PreferenceData(tokenizer, list(pairs), list(holdout), max_length, pad_multiple)


def random_pairs(count: int, seed: int = 0) -> list[EncodedPair]:
    generator = torch.Generator().manual_seed(seed)

    def ids(low, high):
        size = int(torch.randint(low, high, (1,), generator=generator))
        return torch.randint(3, VOCAB, (size,), generator=generator).tolist()

    return [EncodedPair([1] + ids(1, 6), ids(1, 7) + [2], ids(1, 7) + [2]) for _ in range(count)]


def simpo_task(model, data, **options) -> PreferenceTask:
    options = {"beta": 2.0, "gamma": 0.5} | options
    return PreferenceTask(model, data, lambda p: objectives.simpo(p, **options))


def loss_and_grads(task, model, batch):
    model.zero_grad()
    loss, metrics = task.loss(model, batch)
    loss.backward()
    return loss.detach(), metrics, [param.grad.clone() for param in model.parameters()]


# ---- padding and masking -------------------------------------------------------------------------


def test_pad_id_leaves_loss_and_grads_exactly_unchanged():
    pairs = random_pairs(4)
    model = CausalBigram()
    task = simpo_task(model, make_data(pairs))

    base = loss_and_grads(task, model, collate_pairs(pairs, 0, 1, 64))
    other_pad = loss_and_grads(task, model, collate_pairs(pairs, 37, 1, 64))

    assert torch.equal(other_pad[0], base[0])
    assert torch.equal(other_pad[1]["logps/chosen"], base[1]["logps/chosen"])
    for grad, base_grad in zip(other_pad[2], base[2]):
        assert torch.equal(grad, base_grad)


def test_extra_padding_leaves_loss_unchanged():
    pairs = random_pairs(4)
    model = CausalBigram()
    task = simpo_task(model, make_data(pairs))

    base = loss_and_grads(task, model, collate_pairs(pairs, 0, 1, 64))
    wider = loss_and_grads(task, model, collate_pairs(pairs, 0, 32, 64))

    assert torch.equal(wider[0], base[0])
    assert torch.equal(wider[1]["logps/rejected"], base[1]["logps/rejected"])
    # NOTE: gradients agree to rounding only: matmuls over more (zero-gradient) rows block differently.
    for grad, base_grad in zip(wider[2], base[2]):
        assert torch.allclose(grad, base_grad, rtol=1e-5, atol=1e-7)


def test_left_padding_matches_right_padding_with_mask():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128)
    torch.manual_seed(0)
    from reparamdsl.components.preference.hf_model import HFCausalLM

    model = HFCausalLM(transformers.LlamaForCausalLM(config).eval())
    pairs = random_pairs(3)
    task = simpo_task(model, make_data(pairs))

    right = loss_and_grads(task, model, collate_pairs(pairs, 0, 1, 64))
    left = loss_and_grads(task, model, collate_pairs(pairs, 5, 16, 64, padding_side="left"))

    # NOTE: not bitwise: attention over a longer, masked key range sums in another order.
    assert torch.allclose(left[0], right[0], rtol=1e-6, atol=1e-6)
    for grad, right_grad in zip(left[2], right[2]):
        assert torch.allclose(grad, right_grad, rtol=1e-5, atol=1e-6)


def test_prompt_logits_do_not_change_loss():
    pairs = random_pairs(3)
    model = CausalBigram()
    batch = collate_pairs(pairs, 0, 1, 64)
    flat_response = batch["response_mask"].transpose(0, 1).reshape(-1, batch["tokens"].shape[-1])
    # Position t predicts token t+1, so logits at t only matter when t+1 is a response token.
    used = torch.nn.functional.pad(flat_response[:, 1:], (0, 1))

    class Scrambled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, tokens):
            logits = self.inner(tokens)
            noise = torch.randn(logits.shape, generator=torch.Generator().manual_seed(1)) * 1e4
            return torch.where(used.unsqueeze(-1), logits, noise)

    task = simpo_task(model, make_data(pairs))
    plain_loss, _ = task.loss(model, batch)
    scrambled_loss, _ = task.loss(Scrambled(), batch)

    assert torch.equal(plain_loss, scrambled_loss)


def test_logps_match_manual_sum():
    pairs = random_pairs(2)
    model = CausalBigram()
    task = simpo_task(model, make_data(pairs))

    sums, lengths = task.sequence_logps(model, collate_pairs(pairs, 0, 1, 64))

    sequences = [(p.prompt, p.chosen) for p in pairs] + [(p.prompt, p.rejected) for p in pairs]
    for row, (prompt, response) in enumerate(sequences):
        tokens = torch.tensor([prompt + response])
        log_probs = model(tokens)[0].log_softmax(-1)
        expected = sum(log_probs[len(prompt) + i - 1, token] for i, token in enumerate(response))
        assert sums[row].item() == pytest.approx(expected.item(), rel=1e-5)
        assert lengths[row].item() == len(response)


# ---- objectives through the task -----------------------------------------------------------------


def test_gamma_and_ratio_give_identical_loss():
    pairs = random_pairs(4)
    model = CausalBigram()
    batch = collate_pairs(pairs, 0, 1, 64)

    by_gamma = simpo_task(model, make_data(pairs), beta=2.5, gamma=simpo_gamma({"beta": 2.5, "gamma": 1.25}))
    by_ratio = simpo_task(model, make_data(pairs), beta=2.5,
                          gamma=simpo_gamma({"beta": 2.5, "gamma_beta_ratio": 0.5}))

    assert torch.equal(by_gamma.loss(model, batch)[0], by_ratio.loss(model, batch)[0])
    with pytest.raises(ValueError, match="either gamma or gamma_beta_ratio"):
        simpo_gamma({"beta": 2.0, "gamma": 1.0, "gamma_beta_ratio": 0.5})


def test_gradient_accumulation_matches_full_batch():
    pairs = random_pairs(8)
    model = CausalBigram()
    task = simpo_task(model, make_data(pairs))
    batch = task.collate("train", list(range(8)))

    full_loss, _, full_grads = loss_and_grads(task, model, batch)

    summed = [torch.zeros_like(grad) for grad in full_grads]
    losses = []
    for part in range(4):
        micro = {key: value[2 * part:2 * part + 2] for key, value in batch.items()}
        loss, _, grads = loss_and_grads(task, model, micro)
        losses.append(loss)
        summed = [total + grad / 4 for total, grad in zip(summed, grads)]

    assert torch.allclose(torch.stack(losses).mean(), full_loss, rtol=1e-6)
    for grad, full in zip(summed, full_grads):
        assert torch.allclose(grad, full, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_extreme_logits_finite_under_autocast(dtype):
    pairs = random_pairs(2)

    class Extreme(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(1.0))
            self.inner = CausalBigram()

        def forward(self, tokens):
            return (self.inner(tokens) * 1e4 * self.scale).to(dtype)

    model = Extreme()
    task = simpo_task(model, make_data(pairs))
    with torch.autocast("cpu", dtype=dtype):
        loss, metrics = task.loss(model, collate_pairs(pairs, 0, 1, 64))
    loss.backward()

    assert torch.isfinite(loss)
    assert all(torch.isfinite(value) for value in metrics.values())
    assert torch.isfinite(model.scale.grad)


def test_reference_copy_and_precomputed_agree():
    pairs = random_pairs(6)
    model = CausalBigram()
    dpo = lambda p: objectives.dpo(p, beta=0.1)  # noqa: E731

    copied = PreferenceTask(model, make_data(pairs), dpo, reference="copy")
    precomputed = PreferenceTask(model, make_data(pairs), dpo, reference="precomputed")
    copied_loss, copied_metrics = copied.loss(model, copied.collate("train", [0, 1, 2]))
    loss, metrics = precomputed.loss(model, precomputed.collate("train", [0, 1, 2]))

    # At the start the policy is its own reference: zero rewards, loss log 2.
    assert loss.item() == pytest.approx(0.6931471805599453, abs=1e-6)
    assert copied_loss.item() == pytest.approx(loss.item(), abs=1e-6)
    assert metrics["rewards/margins"].abs().item() < 1e-5

    with torch.no_grad():
        model.head.add_(0.3)
    assert copied.loss(model, copied.collate("train", [0, 1, 2]))[0].item() == pytest.approx(
        precomputed.loss(model, precomputed.collate("train", [0, 1, 2]))[0].item(), abs=1e-5)
    assert not any(param.requires_grad for param in copied.reference.parameters())


def test_kto_task_on_paired_data_matches_formula():
    pairs = random_pairs(3)
    model = CausalBigram()
    task = KTOTask(model, make_data(pairs), beta=0.5, desirable_weight=1.0, undesirable_weight=1.0,
                   reference="precomputed")
    assert [example.desirable for example in task.train_examples] == [True, False] * 3

    with torch.no_grad():
        model.head.mul_(1.5)
    batch = task.collate("train", [0, 1, 2, 3])
    loss, metrics = task.loss(model, batch)

    sums, _ = task.sequence_logps(model, batch)
    reference = batch["ref_logps"].transpose(0, 1).reshape(-1)
    ratios = (sums - reference)[:4]
    kl = max((sums - reference)[4:].mean().item(), 0.0)
    expected, _ = objectives.kto(ratios, torch.full((4,), kl), batch["desirable"], 0.5)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert metrics["kl"].item() == pytest.approx(kl, rel=1e-6)


def test_paired_objective_rejects_unpaired_data():
    data = make_data([EncodedCompletion([1, 3], [4, 2], True), EncodedCompletion([1, 3], [5, 2], False)])

    with pytest.raises(ValueError, match="use objective kto"):
        simpo_task(CausalBigram(), data)


def test_train_batches_are_deterministic_and_resume():
    pairs = random_pairs(10)
    task = simpo_task(CausalBigram(), make_data(pairs, pad_multiple=8))

    stream = task.train_batches(4, seed=3)
    batches = [next(stream) for _ in range(5)]
    resumed = next(task.train_batches(4, seed=3, start=3))

    assert torch.equal(resumed["tokens"], batches[3]["tokens"])
    assert all(batch["tokens"].shape[-1] % 8 == 0 for batch in batches)
    assert batches[0]["tokens"].shape[:2] == (4, 2)


# ---- whole programs ------------------------------------------------------------------------------


def write_program(tmp_path, objective: str, rows: list[dict], extra: str = "") -> str:
    with open(tmp_path / "pairs.jsonl", "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    program = tmp_path / "prog.rp"
    program.write_text(f'''
data prefs = preference {{ path = "pairs.jsonl"  max_length = 64  holdout = 10%  pad_multiple = 16 {extra} }}
model lm = llama {{ vocab = prefs.vocab_size  width = 32  depth = 1  heads = 2 }}
objective pref = {objective}
train {{ steps = 3  batch = 4  optimizer = adamw(lr = 1e-3)  compile = false }}
''')
    return str(program)


PAIR_ROWS = [{"prompt": f"What is {i} plus {i}?", "chosen": f"{2 * i}.", "rejected": f"{i}."} for i in range(24)]


@pytest.mark.parametrize("objective", [
    "simpo(lm, prefs) { beta = 2.0  gamma_beta_ratio = 0.5 }",
    "dpo(lm, prefs) { reference = precomputed }",
    "kto(lm, prefs)",
    "orpo(lm, prefs)",
])
def test_program_trains_and_evaluates(tmp_path, objective):
    from reparamdsl.lowering.program import Program
    from reparamdsl.semantics.frontend import check_file

    plans, _ = check_file(write_program(tmp_path, objective, PAIR_ROWS))
    program = Program.from_plan(plans[0], device="cpu")
    trainer = program.trainer()
    batch = next(program.task.train_batches(4, seed=0))

    first = trainer.step(batch)
    for _ in range(3):
        last = trainer.step(batch)
    evaluation = trainer.evaluate(2)

    assert torch.isfinite(torch.as_tensor(first["train/loss"]))
    assert float(last["train/loss"]) < float(first["train/loss"])
    assert "eval/rewards/chosen" in evaluation


@pytest.mark.parametrize("objective, message", [
    ("simpo(lm, prefs) { gamma = 1.0  gamma_beta_ratio = 0.5 }", "either gamma or gamma_beta_ratio"),
    ("robust_dpo(lm, prefs) { epsilon = 0.5 }", "out of range"),
    ("kto(lm, prefs) { reference = none }", "kto needs a reference"),
])
def test_static_errors(tmp_path, objective, message):
    from reparamdsl.diagnostics import ProgramError
    from reparamdsl.semantics.frontend import check_file

    with pytest.raises(ProgramError, match=message):
        check_file(write_program(tmp_path, objective, PAIR_ROWS))


def test_max_prompt_length_must_be_below_max_length(tmp_path):
    from reparamdsl.diagnostics import ProgramError
    from reparamdsl.semantics.frontend import check_file

    path = write_program(tmp_path, "simpo(lm, prefs)", PAIR_ROWS, extra="max_prompt_length = 64")
    with pytest.raises(ProgramError, match="max_prompt_length 64 leaves no room"):
        check_file(path)


def test_unpaired_layout_rejected_for_paired_objective(tmp_path):
    from reparamdsl.diagnostics import ProgramError
    from reparamdsl.semantics.frontend import check_file

    path = write_program(tmp_path, "dpo(lm, prefs)", PAIR_ROWS, extra="layout = unpaired")
    with pytest.raises(ProgramError, match="use objective `kto`"):
        check_file(path)


@pytest.mark.parametrize("objective", ["simpo(lm, prefs)", "kto(lm, prefs) { reference = precomputed }"])
def test_compiled_step_matches_eager(tmp_path, objective):
    from reparamdsl.lowering.program import Program
    from reparamdsl.semantics.frontend import check_file

    path = write_program(tmp_path, objective, PAIR_ROWS)
    losses = {}
    for compile_flag in ("false", "true"):
        overrides = {"train.compile": compile_flag, "train.compile_backend": "eager"}
        plans, _ = check_file(path, overrides)
        program = Program.from_plan(plans[0], device="cpu")
        trainer = program.trainer()
        batches = program.task.train_batches(4, seed=0)
        losses[compile_flag] = [float(trainer.step(next(batches))["train/loss"]) for _ in range(2)]

    assert losses["true"] == pytest.approx(losses["false"], rel=1e-5)
