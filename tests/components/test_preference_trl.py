"""Cross-checks of the reference-based preference objectives against TRL 1.16's trainers, end to end.

TRL 1.16 computes DPO's losses (sigmoid, ipo, hinge, robust, sigmoid_norm)
inside `DPOTrainer._compute_loss` and KTO's inside `KTOTrainer._compute_loss`,
with no standalone loss function. So each test runs one trainer's
`compute_loss` on a tiny Llama and compares it with reparamdsl's task loss on
the same model: its collation, log-probs, reference and objective.

Token convention: both sides read reparamdsl's ids, where the prompt starts
with one BOS and each response ends with one EOS. TRL would tokenize
prompt + response as one string, which merges tokens across the boundary
under a byte-level BPE. Feeding both the same ids compares the log-prob and
objective pipeline, not the tokenizers.

The policy starts as the reference, and its weights are then replaced by
perturbed ones, as if it had trained. So the log-ratios are non-zero and
each loss depends on them.
"""

import math

import pytest
import torch

from reparamdsl.components.preference import objectives
from reparamdsl.components.preference.dataset import DataOptions, encode_examples
from reparamdsl.components.preference.hf_tokenizer import HFTokenizer
from reparamdsl.components.preference.layouts import PairExample
from reparamdsl.components.preference.task import KTOTask, PreferenceTask
from reparamdsl.components.preference.tokens import TokenizerView

transformers = pytest.importorskip("transformers")
trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

PAIRS = [
    ("User: name a prime.\n\nAssistant: ", "seven is a prime.", "eight."),
    ("User: what colour is the sky?\n\nAssistant: ", "blue, on a clear day.", "it is green and made of cheese."),
    ("User: add two and two.\n\nAssistant: ", "four.", "twenty two, because the digits join."),
    ("User: spell cat backwards.\n\nAssistant: ", "tac.", "cat spelled backwards is act."),
]
TOLERANCE = 1e-5


# ---- shared tiny model ---------------------------------------------------------------------------


def save_tokenizer(folder) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator([text for pair in PAIRS for text in pair] * 4, trainer=trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                                pad_token="<pad>")
    fast.save_pretrained(folder)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A reference folder (tokenizer and Llama weights) and a policy folder with the perturbed weights."""
    reference = tmp_path_factory.mktemp("reference")
    policy = tmp_path_factory.mktemp("policy")
    save_tokenizer(reference)
    save_tokenizer(policy)

    config = transformers.LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                                      tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(reference)

    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.5 * torch.randn(param.shape, generator=generator))
    model.save_pretrained(policy)
    return str(reference), str(policy)


def load_model(folder):
    return transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)


def load_tokenizer(folder):
    return transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)


def encoded_pairs(folder):
    view = TokenizerView.of(HFTokenizer(folder))
    examples = [PairExample(prompt, chosen, rejected) for prompt, chosen, rejected in PAIRS]
    return encode_examples(examples, view, DataOptions(template="raw", max_length=64, holdout=0.0, pad_multiple=1))


def reparamdsl_loss(task_class, folders, **task_args) -> tuple[torch.Tensor, object]:
    """Build the task on the reference weights, move the policy to the perturbed ones, return the loss on all rows."""
    from reparamdsl.components.preference.hf_model import load_hf_causal_lm

    reference_folder, policy_folder = folders
    policy = load_hf_causal_lm(reference_folder)
    data = encoded_pairs(reference_folder)
    task = task_class(policy, data, **task_args)

    policy.hf.load_state_dict(load_model(policy_folder).state_dict())
    batch = task.collate("train", list(range(len(task.train_examples))))
    with torch.no_grad():
        loss, _ = task.loss(policy, batch)
    return loss, data


# ---- DPO family ----------------------------------------------------------------------------------


def trl_dpo_loss(folders, data, loss_type: str, beta: float, label_smoothing: float = 0.0) -> torch.Tensor:
    from trl import DPOConfig, DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    reference_folder, policy_folder = folders
    config = DPOConfig(output_dir=policy_folder + "/trl", loss_type=[loss_type], beta=beta,
                       label_smoothing=label_smoothing, precompute_ref_log_probs=False, max_length=None,
                       bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True, report_to="none",
                       per_device_train_batch_size=len(PAIRS))
    dataset = datasets.Dataset.from_dict({"prompt": [p for p, _, _ in PAIRS], "chosen": [c for _, c, _ in PAIRS],
                                          "rejected": [r for _, _, r in PAIRS]})
    trainer = DPOTrainer(model=load_model(policy_folder), ref_model=load_model(reference_folder), args=config,
                         train_dataset=dataset, processing_class=load_tokenizer(reference_folder))

    collate = DataCollatorForPreference(pad_token_id=data.pad_id)
    batch = collate([{"prompt_ids": pair.prompt, "chosen_ids": pair.chosen, "rejected_ids": pair.rejected}
                     for pair in data.train])
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, batch)


DPO_CASES = {
    # name: (TRL loss_type, TRL label_smoothing, reparamdsl objective, reparamdsl reference)
    "sigmoid copy": ("sigmoid", 0.0, lambda p: objectives.dpo(p, beta=0.1), "copy"),
    "sigmoid precomputed": ("sigmoid", 0.0, lambda p: objectives.dpo(p, beta=0.1), "precomputed"),
    "ipo": ("ipo", 0.0, lambda p: objectives.ipo(p, beta=0.1), "copy"),
    "hinge": ("hinge", 0.0, lambda p: objectives.hinge(p, beta=0.1), "precomputed"),
    "robust": ("robust", 0.2, lambda p: objectives.robust_dpo(p, beta=0.1, epsilon=0.2), "copy"),
    "sigmoid_norm": ("sigmoid_norm", 0.0, lambda p: objectives.sigmoid_norm(p, beta=0.1), "copy"),
}


@pytest.mark.parametrize("case", list(DPO_CASES))
def test_dpo_family_matches_trl_trainer(folders, case):
    loss_type, label_smoothing, objective, reference = DPO_CASES[case]

    ours, data = reparamdsl_loss(PreferenceTask, folders, objective=objective, reference=reference)
    theirs = trl_dpo_loss(folders, data, loss_type, beta=0.1, label_smoothing=label_smoothing)

    assert math.isfinite(ours.item())
    assert ours.item() == pytest.approx(theirs.item(), abs=TOLERANCE)


def test_dpo_loss_moves_with_policy(folders):
    # Guards the cross-checks above: with the policy equal to its reference, DPO's loss is log 2.
    from reparamdsl.components.preference.hf_model import load_hf_causal_lm

    reference_folder, _ = folders
    policy = load_hf_causal_lm(reference_folder)
    task = PreferenceTask(policy, encoded_pairs(reference_folder), lambda p: objectives.dpo(p, beta=0.1), "copy")
    batch = task.collate("train", list(range(len(task.train_examples))))

    with torch.no_grad():
        unmoved, _ = task.loss(policy, batch)
    moved, _ = reparamdsl_loss(PreferenceTask, folders, objective=lambda p: objectives.dpo(p, beta=0.1),
                               reference="copy")

    assert unmoved.item() == pytest.approx(math.log(2), abs=1e-6)
    assert abs(moved.item() - math.log(2)) > 0.05


# ---- KTO -----------------------------------------------------------------------------------------


def trl_kto_loss(folders, data, beta: float, desirable_weight: float, undesirable_weight: float) -> torch.Tensor:
    from trl import KTOConfig, KTOTrainer
    from trl.trainer.kto_trainer import DataCollatorForUnpairedPreference

    reference_folder, policy_folder = folders
    config = KTOConfig(output_dir=policy_folder + "/trl-kto", beta=beta, desirable_weight=desirable_weight,
                       undesirable_weight=undesirable_weight, precompute_ref_log_probs=False, max_length=None,
                       bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True, report_to="none",
                       train_sampling_strategy="sequential", per_device_train_batch_size=2 * len(PAIRS))
    dataset = datasets.Dataset.from_dict({
        "prompt": [p for p, _, _ in PAIRS for _ in range(2)],
        "completion": [text for _, c, r in PAIRS for text in (c, r)],
        "label": [label for _ in PAIRS for label in (True, False)]})
    trainer = KTOTrainer(model=load_model(policy_folder), ref_model=load_model(reference_folder), args=config,
                         train_dataset=dataset, processing_class=load_tokenizer(reference_folder))

    # reparamdsl's order: each pair gives its chosen (desirable) then its rejected completion, and the
    # KL estimate pairs each prompt with the next completion of the split, wrapping at the end.
    completions = [(pair.prompt, response, label) for pair in data.train
                   for response, label in ((pair.chosen, True), (pair.rejected, False))]
    rows = [{"prompt_ids": prompt, "completion_ids": completion, "label": label,
             "KL_completion_ids": completions[(index + 1) % len(completions)][1]}
            for index, (prompt, completion, label) in enumerate(completions)]
    batch = DataCollatorForUnpairedPreference(pad_token_id=data.pad_id)(rows)
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, batch)


def test_kto_matches_trl_trainer(folders):
    beta, desirable_weight, undesirable_weight = 0.5, 1.0, 1.5

    ours, data = reparamdsl_loss(KTOTask, folders, beta=beta, desirable_weight=desirable_weight,
                                 undesirable_weight=undesirable_weight, reference="copy")
    theirs = trl_kto_loss(folders, data, beta, desirable_weight, undesirable_weight)

    assert math.isfinite(ours.item())
    assert ours.item() == pytest.approx(theirs.item(), abs=TOLERANCE)


# ---- R-DPO (not in TRL 1.16) ---------------------------------------------------------------------


def response_logp(model, prompt: list[int], response: list[int]) -> float:
    """Sum the log-probs of `response` after `prompt` from one unpadded row through the transformers model."""
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    log_probs = torch.log_softmax(logits[:-1], dim=-1)
    targets = ids[0, 1:]
    per_token = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return per_token[len(prompt) - 1:].sum().item()


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def test_rdpo_matches_hand_computation(folders):
    # TRL 1.16 has no R-DPO: its `ld_alpha` is LD-DPO, which down-weights the tokens past the shorter
    # response's length. So the check is R-DPO's formula from log-probs computed here, row by row:
    # -log sigmoid(beta (delta_w - delta_l) + alpha (|y_w| - |y_l|)).
    beta, alpha = 0.1, 0.05
    reference_folder, policy_folder = folders
    ours, data = reparamdsl_loss(PreferenceTask, folders, objective=lambda p: objectives.rdpo(p, beta=beta, alpha=alpha),
                                 reference="copy")

    policy, reference = load_model(policy_folder), load_model(reference_folder)
    plus, minus = [], []
    for pair in data.train:
        delta_w = response_logp(policy, pair.prompt, pair.chosen) - response_logp(reference, pair.prompt, pair.chosen)
        delta_l = (response_logp(policy, pair.prompt, pair.rejected)
                   - response_logp(reference, pair.prompt, pair.rejected))
        length_term = alpha * (len(pair.chosen) - len(pair.rejected))
        plus.append(-log_sigmoid(beta * (delta_w - delta_l) + length_term))
        minus.append(-log_sigmoid(beta * (delta_w - delta_l) - length_term))
    expected = sum(plus) / len(plus)

    assert ours.item() == pytest.approx(expected, abs=TOLERANCE)
    # The data's lengths differ enough that the opposite sign of the length term would fail the check.
    assert abs(expected - sum(minus) / len(minus)) > 100 * TOLERANCE
