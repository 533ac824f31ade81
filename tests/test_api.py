"""The embedding API: compile from text with overrides, inspect, step, run; no shared state."""

import pytest
import torch

import reparamdsl as rp

PROGRAM = """
let width = 32
data corpus = text { source = "python-stdlib" context = 32 max_files = 12 }
model lm = llama { vocab = corpus.vocab_size width = width depth = 1 heads = 2 context = 32 }
objective loss = next_token(lm, corpus)
train {
    steps = 4
    batch = 4
    optimizer = adamw(lr = 1e-2)
    compile = false
    eval_every = 2 steps
    eval_batches = 2
    log_every = 1
}
"""


def compile_program(**overrides):
    return rp.compile_source(PROGRAM, "/tmp/api_program.rp", overrides=overrides, device="cpu")


def batches(program, count):
    iterator = program.task.train_batches(4, program.seed, start=0)
    return [next(iterator) for _ in range(count)]


def test_compile_source_exposes_plan_and_model():
    program = compile_program(width=48)

    assert program.plan.get("lm").params["width"] == 48
    assert isinstance(program.model, torch.nn.Module)
    assert program.model.embed.weight.shape[1] == 48
    counts = program.parameter_counts()
    assert counts["trainable"] == sum(p.numel() for p in program.model.parameters())
    assert counts["frozen"] == 0


def test_train_step_changes_parameters_and_reports_loss():
    program = compile_program()
    before = program.model.embed.weight.detach().clone()

    metrics = program.train_step(batches(program, 1)[0])

    assert float(metrics["train/loss"]) > 0
    assert not torch.equal(before, program.model.embed.weight)


def test_two_programs_do_not_share_state():
    alone = compile_program()
    reference = [float(alone.train_step(b)["train/loss"]) for b in batches(alone, 3)]

    first = compile_program()
    second = compile_program(width=64)
    first_losses = []
    for batch in batches(first, 3):
        first_losses.append(float(first.train_step(batch)["train/loss"]))
        second.train_step(batch)

    assert first_losses == reference
    assert first.model is not second.model
    assert first.model.embed.weight.shape != second.model.embed.weight.shape


def test_run_returns_metrics_and_history(tmp_path):
    program = compile_program()

    metrics = program.run(out_dir=str(tmp_path / "run"), progress=False)

    assert "eval/loss" in metrics
    steps = [record["step"] for record in program.history if "train/loss" in record]
    assert steps == [1, 2, 3, 4]
    assert (tmp_path / "run" / "plan.json").exists()
    assert (tmp_path / "run" / "checkpoints" / "final" / "tensors.safetensors").exists()


def test_check_returns_plans_without_building():
    plans = rp.check(PROGRAM, "/tmp/api_program.rp", overrides={"train.steps": 7})

    assert plans[0].get("train").params["steps"] == 7


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: rp.compile_source(b"train { }"), TypeError, "decode the bytes first"),
    (lambda: rp.compile_source(PROGRAM, overrides=["train.steps=3"]), TypeError, "overrides must be a mapping"),
    (lambda: rp.compile_file(None), TypeError, "expects a path"),
    (lambda: rp.compile_source(PROGRAM, seed=-1, device="cpu"), rp.ProgramError, "train.seed"),
    (lambda: rp.compile_source(PROGRAM, device="tpu"), rp.DeviceError, "invalid device 'tpu'"),
])
def test_bad_arguments_raise_documented_errors(call, error, fragment):
    with pytest.raises(error) as raised:
        call()
    assert fragment in str(raised.value)


def test_run_without_objective_rejected(tmp_path):
    program = rp.compile_source("model lm = llama { vocab = 64 width = 32 depth = 1 heads = 2 context = 16 }\n",
                                device="cpu")

    with pytest.raises(rp.ProgramError, match="declares no objective"):
        program.run(out_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_run_into_file_rejected(tmp_path):
    target = tmp_path / "not-a-folder"
    target.write_text("x", encoding="utf-8")

    with pytest.raises(rp.RunFolderError, match="is a file, not a folder"):
        compile_program().run(out_dir=str(target), progress=False)
