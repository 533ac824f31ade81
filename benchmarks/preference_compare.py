"""Compare SimPO and DPO side by side: same policy init, same pairs, same batches, same number of steps.

Both objectives are compiled from `programs/simpo.rp` and `programs/dpo.rp`
with the same overrides and seed, so the llama policy starts from the same
weights and sees the same batches. Reported per objective:

- held-out preference accuracy by average log-prob: the fraction of held-out
  pairs whose chosen response has the higher mean per-token log-prob under the
  policy. It uses no reward scale, so it compares the two objectives directly;
- the objective's own held-out `rewards/accuracies` and `rewards/margins`
  (SimPO rewards are β × mean log-prob, DPO rewards β × log-ratio to the
  reference, so margins are on different scales);
- training steps per second (data loading and evaluation excluded).

    python benchmarks/preference_compare.py --steps 100
    python benchmarks/preference_compare.py --data ../shared/data/preferences/dpo_en_demo.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

import reparamdsl

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PROGRAMS = {"simpo": "programs/simpo.rp", "dpo": "programs/dpo.rp"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="preference file (any layout); default: the shipped pairs")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps per objective")
    parser.add_argument("--batch", type=int, default=8, help="pairs per step")
    parser.add_argument("--width", type=int, default=64, help="policy width")
    parser.add_argument("--depth", type=int, default=2, help="policy depth")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate")
    parser.add_argument("--max-length", type=int, default=192, help="max tokens of prompt + response")
    parser.add_argument("--holdout", type=float, default=0.1, help="fraction of pairs held out")
    parser.add_argument("--compile", action="store_true", help="torch.compile the train step")
    parser.add_argument("--seed", type=int, default=0, help="seed of the policy init and the batch order")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    return parser.parse_args()


def overrides(args: argparse.Namespace) -> dict[str, object]:
    values = {
        "train.steps": args.steps, "train.batch": args.batch, "train.compile": args.compile,
        "train.optimizer.lr": args.lr, "train.schedule.warmup": max(1, args.steps // 10),
        "policy.width": args.width, "policy.depth": args.depth, "policy.context": args.max_length,
        "prefs.max_length": args.max_length, "prefs.max_prompt_length": args.max_length // 2,
        "prefs.holdout": args.holdout,
    }
    if args.data is not None:
        values["prefs.path"] = '"' + os.path.abspath(args.data) + '"'
    return values


@torch.no_grad()
def average_logp_accuracy(program) -> float:
    """Fraction of held-out pairs whose chosen response has the higher mean per-token log-prob."""
    task, model = program.task, program.model
    was_training = model.training
    model.eval()
    wins, count = 0, 0
    for batch in task.eval_batches(program.train["batch"]):
        logps = task.pair_logps(model, batch)
        chosen_avg = logps.chosen / logps.chosen_lengths.clamp(min=1)
        rejected_avg = logps.rejected / logps.rejected_lengths.clamp(min=1)
        wins += int((chosen_avg > rejected_avg).sum())
        count += chosen_avg.numel()
    model.train(was_training)
    return wins / max(count, 1)


def train(name: str, args: argparse.Namespace) -> dict[str, float]:
    program = reparamdsl.compile_file(os.path.join(ROOT, PROGRAMS[name]), overrides=overrides(args),
                                      device=args.device, seed=args.seed)
    trainer = program.trainer()
    result = {"pairs_train": len(program.task.train_examples), "pairs_holdout": len(program.task.holdout_examples),
              "accuracy_before": average_logp_accuracy(program)}
    batches = program.task.train_batches(args.batch, args.seed)
    elapsed = 0.0
    for _ in range(args.steps):
        batch = next(batches)
        start = time.perf_counter()
        metrics = trainer.step(batch)
        float(metrics["train/loss"])  # waits for the step to finish on asynchronous devices
        elapsed += time.perf_counter() - start

    evaluation = trainer.evaluate(max_batches=None)
    result.update({
        "accuracy_after": average_logp_accuracy(program),
        "reward_accuracy": evaluation["eval/rewards/accuracies"],
        "reward_margin": evaluation["eval/rewards/margins"],
        "eval_loss": evaluation["eval/loss"],
        "steps_per_sec": args.steps / elapsed,
    })
    return result


def main() -> None:
    args = parse_args()
    data = args.data or "programs/data/preferences_small.jsonl"
    print(f"data {data}, {args.steps} steps of {args.batch} pairs, llama width {args.width} depth {args.depth}, "
          f"max_length {args.max_length}, compile {args.compile}, seed {args.seed}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    header = (f"{'objective':<10} {'acc(avg logp) before':>21} {'after':>7} {'reward acc':>11} "
              f"{'reward margin':>14} {'eval loss':>10} {'steps/s':>8}")
    print(header)
    for name in PROGRAMS:
        row = train(name, args)
        print(f"{name:<10} {row['accuracy_before']:>21.3f} {row['accuracy_after']:>7.3f} "
              f"{row['reward_accuracy']:>11.3f} {row['reward_margin']:>14.3f} {row['eval_loss']:>10.4f} "
              f"{row['steps_per_sec']:>8.2f}", flush=True)
    print(f"pairs: {row['pairs_train']} train, {row['pairs_holdout']} held out")


if __name__ == "__main__":
    main()
