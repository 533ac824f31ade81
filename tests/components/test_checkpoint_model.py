"""Tests of the `checkpoint` model and `run_tokenizer`: loading a trained run into a preference program."""

import json

import pytest
import torch
from safetensors.torch import load_file

import reparamdsl
from reparamdsl import ProgramError

PRETRAIN = """
data corpus = text {{ source = "{folder}/*.txt"  tokenizer = {tokenizer}  context = 16  holdout = 0% }}
model lm = llama {{ vocab = corpus.vocab_size  width = 16  depth = 1  heads = 2  context = 64 }}
objective loss = next_token(lm, corpus)
train {{ steps = 2  batch = 2  optimizer = adamw(lr = 1e-2)  compile = false  eval_every = 0 steps }}
"""

PREFERENCE = """
model policy = checkpoint {{ run = "{run}"  model = "lm" {extra} }}
data prefs = preference {{
    path = "{folder}/pairs.jsonl"  tokenizer = {tokenizer}  max_length = 48  pad_multiple = 8  holdout = 25%
}}
objective pref = simpo(policy, prefs) {{ beta = 2.0  gamma = 0.5 }}
train {{ steps = 1  batch = 2  optimizer = adamw(lr = 1e-2)  compile = false  eval_every = 0 steps }}
"""


def write_corpus(folder) -> None:
    text = "the quick brown fox jumps over the lazy dog while the cat sleeps. " * 30
    (folder / "a.txt").write_text(text)
    with open(folder / "pairs.jsonl", "w") as handle:
        for index in range(8):
            row = {"prompt": f"question {index}?", "chosen": "the quick fox", "rejected": "dog lazy the"}
            handle.write(json.dumps(row) + "\n")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrain")
    write_corpus(folder)
    run = folder / "run"
    program = reparamdsl.compile_source(PRETRAIN.format(folder=folder, tokenizer="bytes"), device="cpu")
    program.run(out_dir=str(run), progress=False)
    return folder, run


def preference_source(folder, run, tokenizer="policy.tokenizer", extra="") -> str:
    return PREFERENCE.format(folder=folder, run=run, tokenizer=tokenizer, extra=extra)


def saved_model_tensors(run) -> dict[str, torch.Tensor]:
    tensors = load_file(str(run / "checkpoints" / "final" / "tensors.safetensors"))
    return {key.removeprefix("model/"): value for key, value in tensors.items() if key.startswith("model/")}


def test_checkpoint_loads_saved_weights(trained_run):
    folder, run = trained_run
    program = reparamdsl.compile_source(preference_source(folder, run), device="cpu")
    saved = saved_model_tensors(run)
    loaded = program.built["policy"].state_dict()

    assert set(loaded) == set(saved)
    for key, value in saved.items():
        assert torch.equal(loaded[key], value), key


def test_checkpoint_weights_differ_from_fresh_init(trained_run):
    folder, run = trained_run
    fresh = reparamdsl.compile_source(PRETRAIN.format(folder=folder, tokenizer="bytes"), device="cpu")
    saved = saved_model_tensors(run)
    initial = fresh.built["lm"].state_dict()
    changed = [key for key in saved if not torch.equal(saved[key], initial[key])]
    assert changed, "two AdamW steps at lr 1e-2 should move the weights away from the initialization"


def test_checkpoint_simpo_step_runs(trained_run):
    folder, run = trained_run
    program = reparamdsl.compile_source(preference_source(folder, run), device="cpu")
    before = {k: v.clone() for k, v in program.built["policy"].state_dict().items()}
    batch = next(program.task.train_batches(2, seed=0))
    metrics = program.train_step(batch)

    assert torch.isfinite(torch.as_tensor(metrics["train/loss"]))
    assert "train/rewards/accuracies" in metrics
    after = program.built["policy"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_checkpoint_static_outputs(trained_run):
    folder, run = trained_run
    plans = reparamdsl.check(preference_source(folder, run))
    outputs = plans[0].get("policy").outputs
    saved_plan = json.loads((run / "plan.json").read_text())
    saved_lm = next(d for d in saved_plan["declarations"] if d["name"] == "lm")

    assert outputs["vocab_size"] == saved_lm["params"]["vocab"] == 257
    assert outputs["context"] == 64
    assert outputs["tokenizer"]["component"] == "bytes"


def test_checkpoint_vocab_reference_checks(trained_run):
    folder, run = trained_run
    source = f"""
model policy = checkpoint {{ run = "{run}"  model = "lm" }}
model twin = llama {{ vocab = policy.vocab_size  width = 16  depth = 1  heads = 2 }}
"""
    plan = reparamdsl.check(source)[0]
    assert plan.get("twin").params["vocab"] == 257


def test_checkpoint_trainable_false_freezes(trained_run):
    folder, run = trained_run
    source = preference_source(folder, run, extra="trainable = false")
    plan = reparamdsl.check(source)[0]
    from reparamdsl.lowering.build import build_plan
    from reparamdsl.semantics.registry import default_registry

    ctx = build_plan(plan, default_registry(), torch.device("cpu"), 0)
    assert all(not p.requires_grad for p in ctx.built["policy"].parameters())


def test_checkpoint_latest_matches_final(trained_run):
    folder, run = trained_run
    final = reparamdsl.compile_source(preference_source(folder, run), device="cpu")
    latest = reparamdsl.compile_source(preference_source(folder, run, extra='checkpoint = "latest"'), device="cpu")
    for key, value in final.built["policy"].state_dict().items():
        assert torch.equal(latest.built["policy"].state_dict()[key], value), key


def check_errors(source: str) -> str:
    with pytest.raises(ProgramError) as raised:
        reparamdsl.check(source)
    return str(raised.value)


def test_checkpoint_missing_run_folder(tmp_path):
    message = check_errors(f'model policy = checkpoint {{ run = "{tmp_path}/nope"  model = "lm" }}')
    assert "folder not found" in message
    assert f"{tmp_path}/nope" in message


def test_checkpoint_missing_plan_json(tmp_path):
    (tmp_path / "empty").mkdir()
    message = check_errors(f'model policy = checkpoint {{ run = "{tmp_path}/empty"  model = "lm" }}')
    assert "plan.json is missing" in message
    assert str(tmp_path / "empty" / "plan.json") in message


def test_checkpoint_unknown_model_name(trained_run):
    folder, run = trained_run
    message = check_errors(f'model policy = checkpoint {{ run = "{run}"  model = "policy" }}')
    assert "no model declaration 'policy'" in message
    assert "models of that run: lm" in message


def test_checkpoint_missing_final(trained_run, tmp_path):
    _, run = trained_run
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "plan.json").write_text((run / "plan.json").read_text())
    message = check_errors(f'model policy = checkpoint {{ run = "{copy}"  model = "lm" }}')
    assert "no complete final checkpoint" in message
    assert str(copy / "checkpoints") in message


def test_checkpoint_rejects_bpe_tokenizer_mismatch(trained_run):
    folder, run = trained_run
    message = check_errors(preference_source(folder, run, tokenizer="bpe(vocab = 300)"))
    assert "300 token ids" in message
    assert "policy.tokenizer" in message


def test_checkpoint_rejects_other_tokenizer_same_vocab(trained_run, tmp_path, monkeypatch):
    folder, _ = trained_run
    bpe_folder = tmp_path / "bpe"
    bpe_folder.mkdir()
    write_corpus(bpe_folder)
    run = bpe_folder / "run"
    monkeypatch.setenv("REPARAMDSL_CACHE", str(tmp_path / "cache"))
    program = reparamdsl.compile_source(PRETRAIN.format(folder=bpe_folder, tokenizer="bpe(vocab = 300)"),
                                        device="cpu")
    program.run(out_dir=str(run), progress=False)

    message = check_errors(preference_source(bpe_folder, run, tokenizer="bpe(vocab = 300)"))
    assert "not the tokenizer" in message

    plan = reparamdsl.check(preference_source(bpe_folder, run))[0]
    assert plan.get("policy").outputs["tokenizer"]["component"] == "run_tokenizer"
    assert plan.get("prefs").outputs["vocab_size"] == 300


def test_run_tokenizer_reproduces_bpe(trained_run, tmp_path, monkeypatch):
    monkeypatch.setenv("REPARAMDSL_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "data"
    folder.mkdir()
    write_corpus(folder)
    run = folder / "run"
    pretrain = reparamdsl.compile_source(PRETRAIN.format(folder=folder, tokenizer="bpe(vocab = 300)"), device="cpu")
    pretrain.run(out_dir=str(run), progress=False)

    program = reparamdsl.compile_source(preference_source(folder, run), device="cpu")
    pretrained = pretrain.built["corpus"].tokenizer
    used = program.built["prefs"].tokenizer.tokenizer
    text = "the quick brown fox jumps"
    assert used.encode(text).tolist() == pretrained.encode(text).tolist()
    assert used.fingerprint == pretrained.fingerprint


def test_checkpoint_folds_poet_into_plain_linear(trained_run, tmp_path):
    folder, _ = trained_run
    source = PRETRAIN.format(folder=folder, tokenizer="bytes").replace(
        "objective loss", "reparam orth = poet on lm { block = 4  merge_every = 0 }\nobjective loss")
    pretrain = reparamdsl.compile_source(source, device="cpu")
    pretrain.run(out_dir=str(tmp_path / "run"), progress=False)
    tokens = torch.randint(0, 257, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = pretrain.built["lm"](tokens)

    for merge, layer_type in (("true", torch.nn.Linear), ("false", None)):
        program = reparamdsl.compile_source(
            f'model m = checkpoint {{ run = "{tmp_path / "run"}"  model = "lm"  merge_reparams = {merge} }}',
            device="cpu")
        model = program.built["m"]
        q = model.layers[0].attn.q
        if layer_type is not None:
            assert type(q) is layer_type
        else:
            assert callable(getattr(q, "effective_weight", None))
        with torch.no_grad():
            torch.testing.assert_close(model(tokens), expected, rtol=1e-5, atol=1e-5)


def test_run_tokenizer_of_preference_run(tmp_path, monkeypatch):
    monkeypatch.setenv("REPARAMDSL_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "data"
    folder.mkdir()
    write_corpus(folder)
    first = f"""
data prefs = preference {{ path = "{folder}/pairs.jsonl"  tokenizer = bpe(vocab = 300)  max_length = 48
                          pad_multiple = 8  holdout = 25% }}
model lm = llama {{ vocab = prefs.vocab_size  width = 16  depth = 1  heads = 2  context = 64 }}
objective pref = simpo(lm, prefs)
train {{ steps = 1  batch = 2  optimizer = adamw(lr = 1e-2)  compile = false  eval_every = 0 steps }}
"""
    pretrain = reparamdsl.compile_source(first, device="cpu")
    pretrain.run(out_dir=str(tmp_path / "run"), progress=False)

    program = reparamdsl.compile_source(preference_source(folder, tmp_path / "run"), device="cpu")
    trained_with = pretrain.built["prefs"].tokenizer.tokenizer
    used = program.built["prefs"].tokenizer.tokenizer
    assert used.fingerprint == trained_with.fingerprint
    assert program.built["prefs"].train[0] == pretrain.built["prefs"].train[0]
