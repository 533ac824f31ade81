"""SimPO training-step throughput of reparamdsl against TRL's CPOTrainer (`loss_type="simpo"`, `cpo_alpha=0`).

Both systems train the same tiny causal LM from the same weights on the same
batches in the same order, and the script prints their losses side by side
and their speed. It needs `transformers`, `trl` and `datasets`, which are test
dependencies of reparamdsl.

Setup. A byte-level BPE tokenizer (`--vocab` tokens, trained on the rendered
texts of the pairs) and a randomly initialized `transformers`
LlamaForCausalLM (hidden 128, 2 layers, 4 heads, intermediate 344, untied
embeddings) are saved into a temporary folder. reparamdsl loads the folder
through a program with `tokenizer = hf(path = ...)` and
`model = hf_causal_lm { path = ... }`; TRL loads it with
`AutoModelForCausalLM.from_pretrained`. Both run in fp32 with AdamW
(betas 0.9/0.999, eps 1e-8, no weight decay; TRL through transformers'
default `adamw_torch_fused`, reparamdsl through its functional AdamW) at a
constant learning rate,
gradient norms clipped at 1.0, and `torch.set_num_threads(--threads)`.
TRL's CPO defaults of bf16, gradient checkpointing and `cpo_alpha = 1` are
turned off.

Token ids. TRL tokenizes `prompt + response` as one string and splits it
where the prompt's own ids end. reparamdsl tokenizes the prompt and the
response separately. A byte-level BPE merges across that boundary (the
space after "Assistant:" joins the response's first word), so the two give
different ids for most pairs, and the script counts them. TRL also cuts no
prompt in 1.16 (CPOConfig has no `max_prompt_length`). To compare the same
computation, TRL's trainer is fed reparamdsl's ids: BOS,
the prompt cut to its last `--max-prompt-length` tokens, and each response
cut to fit `--max-length` and ending in EOS. The rest of TRL's step is its
own: collator, padding to the longest row, forward, loss, backward, clipping,
optimizer, scheduler and logging, all inside `Trainer.train()`.

Batches. A seeded permutation of the pairs per epoch gives the batch list.
TRL reads a dataset laid out in that order with a sequential sampler, and
reparamdsl collates the same index lists with `task.collate`. Padding
differs: TRL pads to the longest row of a batch, the eager reparamdsl step
by default too (`--eager-pad-multiple 1`), and the compiled step to a
multiple of `--pad-multiple`, so it compiles for few shapes. Throughput counts
non-pad tokens only.

Interleaving. One process runs all three systems. TRL's `Trainer.train()`
drives the schedule, and a callback runs the reparamdsl systems' steps on the
same batches at the end of TRL's steps: each of the first `--compare-steps`
steps, then every `--block` steps. That callback's time is excluded from
TRL's step times. So a round is one block of `--block` steps of each system,
run back to back within seconds, and the reported ratio is the median over
rounds of TRL's block time over reparamdsl's. Load from other jobs that
changes more slowly than a round slows both sides of a ratio alike. The
printed min-max range of the ratios shows how far faster changes of load
moved single rounds. The compiled step is compiled for every
padded length of the schedule before the run, and its parameters and
optimizer state are then restored, so it starts from the same weights.

    python benchmarks/simpo_vs_trl.py
    python benchmarks/simpo_vs_trl.py --data ../shared/data/preferences/dpo_en_demo.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DEFAULT_DATA = os.path.join(ROOT, "programs", "data", "preferences_small.jsonl")
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")

PROGRAM = """
data prefs = preference {{
    path = {data}
    tokenizer = hf(path = {folder})
    max_length = {max_length}
    max_prompt_length = {max_prompt_length}
    pad_multiple = {pad_multiple}
    holdout = 0%
}}
model lm = hf_causal_lm {{ path = {folder} }}
objective pref = simpo(lm, prefs) {{ beta = {beta}  gamma = {gamma} }}
train {{
    steps = {steps}
    batch = {batch}
    optimizer = adamw(lr = {lr}, betas = [0.9, 0.999], eps = 1e-8, weight_decay = 0.0)
    schedule = constant
    clip = 1.0
    precision = "fp32"
    eval_every = 0 steps
    compile = {compile}
}}
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="preference file in any layout reparamdsl reads")
    parser.add_argument("--vocab", type=int, default=1024, help="BPE vocabulary size, special tokens included")
    parser.add_argument("--max-length", type=int, default=256, help="max tokens of prompt + response")
    parser.add_argument("--max-prompt-length", type=int, default=128, help="prompts keep their last this many tokens")
    parser.add_argument("--batch", type=int, default=8, help="pairs per step")
    parser.add_argument("--beta", type=float, default=2.0, help="SimPO reward scale")
    parser.add_argument("--gamma", type=float, default=1.0, help="SimPO target margin")
    parser.add_argument("--lr", type=float, default=1e-4, help="constant AdamW learning rate")
    parser.add_argument("--compare-steps", type=int, default=10,
                        help="first steps whose losses are compared; also the eager systems' warm-up")
    parser.add_argument("--block", type=int, default=5, help="steps per system in one timed round")
    parser.add_argument("--rounds", type=int, default=12, help="timed rounds after the compared steps")
    parser.add_argument("--pad-multiple", type=int, default=64, help="padding multiple of the compiled step's batches")
    parser.add_argument("--eager-pad-multiple", type=int, default=1, help="padding multiple of the eager step's batches")
    parser.add_argument("--no-compile", action="store_true", help="skip reparamdsl's compiled step")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for every system")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model init and the batch order")
    return parser.parse_args()


# ---- the shared model folder ---------------------------------------------------------------------


def rendered_pair_texts(path: str) -> list[str]:
    """Render every prompt and response of the file as reparamdsl does (plain template)."""
    from reparamdsl.components.preference.dataset import DataOptions, parse_examples, rendered_texts

    examples, _ = parse_examples([path], DataOptions())
    return list(rendered_texts(examples, "plain"))


def save_tiny_llama(folder: str, texts: list[str], vocab: int, max_length: int, seed: int) -> None:
    """Train a byte-level BPE on `texts` and save it with a randomly initialized LlamaForCausalLM into `folder`."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    pad, bos, eos = SPECIAL_TOKENS
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=bos, eos_token=eos,
                                                pad_token=pad)
    fast.save_pretrained(folder)

    config = transformers.LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=128, intermediate_size=344, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=max_length,
        tie_word_embeddings=False, pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id)
    torch.manual_seed(seed)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)


# ---- reparamdsl ----------------------------------------------------------------------------------


def compile_program(folder: str, args: argparse.Namespace, steps: int, compile_step: bool, pad_multiple: int):
    import reparamdsl

    source = PROGRAM.format(data=json.dumps(os.path.abspath(args.data)), folder=json.dumps(folder),
                            max_length=args.max_length, max_prompt_length=args.max_prompt_length,
                            pad_multiple=pad_multiple, beta=args.beta, gamma=args.gamma, steps=steps,
                            batch=args.batch, lr=args.lr, compile="true" if compile_step else "false")
    return reparamdsl.compile_source(source, os.path.join(folder, "simpo_vs_trl.rp"), device="cpu", seed=args.seed)


class ReparamdslSystem:
    """One reparamdsl program stepped on given index lists; records each step's seconds and loss."""

    def __init__(self, name: str, program):
        self.name = name
        self.task = program.task
        self.trainer = program.trainer()
        self.seconds: list[float] = []
        self.losses: list[float] = []

    def step(self, indices: list[int]) -> None:
        start = time.perf_counter()
        batch = self.task.collate("train", indices)
        metrics = self.trainer.step(batch)
        loss = float(metrics["train/loss"])
        self.seconds.append(time.perf_counter() - start)
        self.losses.append(loss)

    def compile_all_lengths(self, plan: list[list[int]]) -> int:
        """Run one step per padded length in `plan`, then restore the weights and optimizer state; return the count."""
        saved = {key: value.clone() for key, value in self.trainer.state_tensors().items()}
        lengths = set()
        for indices in plan:
            batch = self.task.collate("train", indices)
            length = batch["tokens"].shape[-1]
            if length not in lengths:
                lengths.add(length)
                self.trainer.step(batch)
        self.trainer.load_state_tensors(saved)
        self.trainer.step_count = 0
        return len(lengths)


def batch_plan(count: int, batch: int, steps: int, seed: int) -> list[list[int]]:
    """Index lists of `steps` batches: a seeded permutation per epoch, the last partial batch of each dropped."""
    plan, epoch = [], 0
    while len(plan) < steps:
        order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()
        plan += [order[first:first + batch] for first in range(0, count - batch + 1, batch)]
        epoch += 1
    return plan[:steps]


# ---- TRL -----------------------------------------------------------------------------------------


def trl_features(pair) -> dict[str, list[int]]:
    """CPOTrainer's tokenized row (its `tokenize_row` output keys) built from reparamdsl's ids of one pair."""
    prompt = list(pair.prompt)
    row = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
    for side, response in (("chosen", pair.chosen), ("rejected", pair.rejected)):
        ids = prompt + list(response)
        row[f"{side}_input_ids"] = ids
        row[f"{side}_attention_mask"] = [1] * len(ids)
        row[f"{side}_labels"] = [-100] * len(prompt) + list(response)
    return row


def make_trl_trainer(folder: str, args: argparse.Namespace, pairs: list, texts: list[tuple[str, str, str]],
                     plan: list[list[int]], output_dir: str, callback):
    """Build a SimPO CPOTrainer that reads reparamdsl's ids in `plan` order and records each step's loss."""
    import datasets
    import transformers
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    class FixedIdsCPOTrainer(CPOTrainer):
        """CPOTrainer reading each row's ids from reparamdsl's encoding (column `pair`) instead of tokenizing."""

        def __init__(self, *trainer_args, **kwargs):
            self.losses: list[torch.Tensor] = []
            super().__init__(*trainer_args, **kwargs)

        def tokenize_row(self, feature, model=None):
            return trl_features(pairs[feature["pair"]])

        def own_ids(self, feature) -> dict:
            return CPOTrainer.tokenize_row(self, feature)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            self.losses.append(loss.detach().clone())
            return loss

    order = [index for indices in plan for index in indices]
    dataset = datasets.Dataset.from_dict({
        "prompt": [texts[i][0] for i in order], "chosen": [texts[i][1] for i in order],
        "rejected": [texts[i][2] for i in order], "pair": order})
    config = CPOConfig(
        output_dir=output_dir, loss_type="simpo", cpo_alpha=0.0, beta=args.beta, simpo_gamma=args.gamma,
        max_length=args.max_length, per_device_train_batch_size=args.batch, max_steps=len(plan),
        learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=1.0,
        bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True,
        train_sampling_strategy="sequential", dataloader_drop_last=True, remove_unused_columns=False,
        report_to="none", save_strategy="no", disable_tqdm=True, seed=args.seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    trainer = FixedIdsCPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                                 callbacks=[callback])
    # TRL still computes its logged metrics every `logging_steps`; only their printing goes.
    trainer.remove_callback(transformers.PrinterCallback)
    return trainer


def count_own_id_differences(trainer, pairs: list, texts: list[tuple[str, str, str]]) -> int:
    """Count the pairs whose ids from TRL's own tokenization differ from reparamdsl's."""
    differing = 0
    for pair, (prompt, chosen, rejected) in zip(pairs, texts, strict=True):
        own = trainer.own_ids({"prompt": prompt, "chosen": chosen, "rejected": rejected})
        ours = trl_features(pair)
        if any(own[key] != ours[key] for key in ("chosen_input_ids", "chosen_labels", "rejected_input_ids",
                                                 "rejected_labels")):
            differing += 1
    return differing


def decoded_texts(tokenizer, pairs: list) -> list[tuple[str, str, str]]:
    """Decode the prompt, chosen and rejected text of each pair without special tokens (TRL's dataset columns)."""
    special = {tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id}

    def text(ids):
        return tokenizer.tokenizer.decode([i for i in ids if i not in special])

    return [(text(p.prompt), text(p.chosen), text(p.rejected)) for p in pairs]


def interleaving_callback(systems: list[ReparamdslSystem], plan: list[list[int]], compare_steps: int, block: int):
    """Build a TrainerCallback that times TRL's steps and runs the reparamdsl systems' steps between them."""
    from transformers import TrainerCallback

    class Interleave(TrainerCallback):
        def __init__(self):
            self.seconds: list[float] = []
            self.done = 0
            self.last = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.last = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.last)
            step = state.global_step
            if step <= compare_steps or (step - compare_steps) % block == 0:
                for system in systems:
                    for indices in plan[self.done:step]:
                        system.step(indices)
                self.done = step
            self.last = time.perf_counter()

    return Interleave()


# ---- report --------------------------------------------------------------------------------------


def print_losses(names: list[str], losses: list[list[float]], steps: int) -> None:
    print(f"\nlosses of the first {steps} steps")
    print(f"{'step':>4} " + " ".join(f"{name:>16}" for name in names))
    for step in range(steps):
        print(f"{step + 1:>4} " + " ".join(f"{values[step]:>16.8f}" for values in losses))
    for name, values in zip(names[1:], losses[1:]):
        difference = max(abs(a - b) for a, b in zip(values[:steps], losses[0][:steps]))
        print(f"max |{name} - {names[0]}| = {difference:.2e}")


def print_throughput(names: list[str], seconds: list[list[float]], tokens: list[int], start: int, block: int,
                     rounds: int) -> None:
    """Print s/step and tokens/s (medians over rounds) and the per-round ratios of the first system to the others."""
    def rounds_of(values):
        return [sum(values[start + r * block:start + (r + 1) * block]) for r in range(rounds)]

    round_tokens = rounds_of(tokens)
    per_round = [rounds_of(values) for values in seconds]
    print(f"\nthroughput: {rounds} rounds of {block} steps per system (medians over rounds; min-max in brackets)")
    print(f"{'system':<22} {'s/step':>8} {'tokens/s':>10} {'speed-up over ' + names[0]:>30}")
    for name, times in zip(names, per_round):
        step_seconds = [t / block for t in times]
        rates = [n / t for n, t in zip(round_tokens, times)]
        ratios = [a / b for a, b in zip(per_round[0], times)]
        print(f"{name:<22} {statistics.median(step_seconds):>8.4f} {statistics.median(rates):>10.0f} "
              f"{statistics.median(ratios):>14.2f} [{min(ratios):.2f}-{max(ratios):.2f}]")


def quiet_libraries() -> None:
    """Turn off the progress bars and the experimental-API warning of the Hugging Face libraries."""
    import datasets
    import transformers

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    quiet_libraries()
    total_steps = args.compare_steps + args.rounds * args.block

    with tempfile.TemporaryDirectory(prefix="simpo_vs_trl-") as folder:
        save_tiny_llama(folder, rendered_pair_texts(args.data), args.vocab, args.max_length, args.seed)

        eager = compile_program(folder, args, total_steps, False, args.eager_pad_multiple)
        pairs = eager.task.train_examples
        plan = batch_plan(len(pairs), args.batch, total_steps, args.seed)
        systems = [ReparamdslSystem("reparamdsl eager", eager)]
        compiled_lengths = 0
        if not args.no_compile:
            compiled = ReparamdslSystem("reparamdsl compiled",
                                        compile_program(folder, args, total_steps, True, args.pad_multiple))
            start = time.perf_counter()
            compiled_lengths = compiled.compile_all_lengths(plan)
            compile_seconds = time.perf_counter() - start
            systems.append(compiled)

        texts = decoded_texts(eager.task.data.tokenizer, pairs)
        callback = interleaving_callback(systems, plan, args.compare_steps, args.block)
        trl = make_trl_trainer(folder, args, pairs, texts, plan, os.path.join(folder, "trl"), callback)
        torch.set_num_threads(args.threads)
        own_differences = count_own_id_differences(trl, pairs, texts)

        print(f"data {args.data}: {len(pairs)} pairs, vocab {args.vocab}, max length {args.max_length}, "
              f"prompts cut to {args.max_prompt_length}, batch {args.batch}, {total_steps} steps, fp32, "
              f"AdamW lr {args.lr} constant, beta {args.beta}, gamma {args.gamma}")
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch threads, "
              f"torch {torch.__version__}, trl {__import__('trl').__version__}, "
              f"transformers {__import__('transformers').__version__}, load average {os.getloadavg()[0]:.1f}")
        print(f"TRL's own tokenization differs from reparamdsl's for {own_differences} of {len(pairs)} pairs "
              "(both runs below use reparamdsl's ids)")
        if compiled_lengths:
            print(f"compiled step: {compiled_lengths} padded lengths compiled in {compile_seconds:.0f} s before the run")

        trl.train()
        print(f"load average after the run {os.getloadavg()[0]:.1f}")

    names = ["TRL CPOTrainer"] + [system.name for system in systems]
    losses = [[float(loss) for loss in trl.losses]] + [system.losses for system in systems]
    print_losses(names, losses, args.compare_steps)

    tokens = [sum(len(p.prompt) * 2 + len(p.chosen) + len(p.rejected) for p in (pairs[i] for i in indices))
              for indices in plan]
    print(f"\nnon-pad tokens per step: mean {statistics.mean(tokens):.0f} (chosen and rejected rows, prompts included)")
    seconds = [callback.seconds] + [system.seconds for system in systems]
    print_throughput(names, seconds, tokens, args.compare_steps, args.block, args.rounds)



if __name__ == "__main__":
    main()
