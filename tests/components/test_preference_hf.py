"""Tests of the `hf_causal_lm` model and the `hf` tokenizer on a tiny model saved in the test."""

import pytest
import torch

from reparamdsl.components.preference.hf_tokenizer import HFTokenizer
from reparamdsl.components.preference.specs import hf_vocab_size
from reparamdsl.components.preference.tokens import TokenizerView

transformers = pytest.importorskip("transformers")


def save_tiny_model(folder) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(["User: name a prime. Assistant: seven."] * 20, trainer=trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                                pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(folder)

    config = transformers.LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                      max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-llama")
    save_tiny_model(folder)
    return str(folder)


def test_hf_tokenizer_special_ids(tiny_folder):
    tokenizer = HFTokenizer(tiny_folder)
    view = TokenizerView.of(tokenizer)

    assert (view.bos_id, view.eos_id, view.pad_id) == (1, 2, 0)
    prompt = view.encode_prompt("User: name a prime.")
    assert prompt[0] == 1
    assert prompt.count(1) == 1
    assert tokenizer.decode(prompt[1:]) == "User: name a prime."
    assert hf_vocab_size(tiny_folder) == tokenizer.vocab_size


def test_hf_model_loads_and_matches_transformers(tiny_folder):
    from reparamdsl.components.preference.hf_model import load_hf_causal_lm

    model = load_hf_causal_lm(tiny_folder)
    reference = transformers.AutoModelForCausalLM.from_pretrained(tiny_folder)
    tokens = torch.tensor([[1, 5, 9, 12, 2]])

    logits = model(tokens)

    assert logits.shape == (1, 5, model.config.vocab_size)
    assert torch.allclose(logits, reference(input_ids=tokens).logits, atol=1e-6)
    assert torch.allclose(model(tokens, attention_mask=torch.ones_like(tokens)), logits, atol=1e-6)


def test_program_with_hf_model(tmp_path, tiny_folder):
    from reparamdsl.lowering.program import Program
    from reparamdsl.semantics.frontend import check_source

    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join('{"prompt": "name a prime %d.", "chosen": "seven.", "rejected": "eight."}' % i
                              for i in range(12)))
    source = f'''
data prefs = preference {{ path = "{data}"  tokenizer = hf(path = "{tiny_folder}")  max_length = 48  holdout = 0% }}
model lm = hf_causal_lm {{ path = "{tiny_folder}" }}
objective pref = simpo(lm, prefs) {{ beta = 2.0  gamma_beta_ratio = 0.5 }}
train {{ steps = 2  batch = 4  optimizer = adamw(lr = 1e-3)  compile = false }}
'''
    plans, _ = check_source(source, str(tmp_path / "prog.rp"))
    program = Program.from_plan(plans[0], device="cpu")
    batch = next(program.task.train_batches(4, seed=0))

    metrics = program.trainer().step(batch)

    assert torch.isfinite(torch.as_tensor(metrics["train/loss"]))
    assert plans[0] is not None
