"""Train programs/lm_adamw.rp and programs/poet_lm.rp side by side and compare them.

Both runs use the same seed, data, model sizes, schedule and number of steps
(the overrides below apply to both). For each it prints the final validation
loss and perplexity, optimizer steps per second, trainable parameters, peak
memory and, for POET, the
orthogonality error, singular-value drift and merges at the end of the run.
It measures only and asserts nothing.

Each program trains in its own process. Peak memory is
torch.cuda.max_memory_allocated on CUDA; on CPU it is the process's peak
resident set size, which includes the interpreter, torch and the corpus
(tracemalloc does not see torch's CPU allocations), so compare the two runs
with each other only.

    python benchmarks/poet_vs_adamw.py                          # 200 steps, CPU-sized
    python benchmarks/poet_vs_adamw.py --steps 300 --full       # the programs as shipped
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import resource
import time

import torch

import reparamdsl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = {"adamw": "programs/lm_adamw.rp", "poet": "programs/poet_lm.rp"}

# Both programs define `let width`, so one override sizes both models the same.
CPU_SIZES = {"width": 64, "lm.depth": 2, "corpus.context": 64, "corpus.max_files": 400, "train.batch": 8}


def overrides_for(args) -> dict:
    overrides = {} if args.full else dict(CPU_SIZES)
    overrides.update({"train.steps": args.steps, "train.eval_every": args.steps, "train.seed": args.seed,
                      "train.log_every": max(1, args.steps // 10), "train.compile": args.compile,
                      "train.checkpoint_every": 0, "train.schedule.warmup": args.steps // 10})
    return overrides


def train(name: str, args) -> dict:
    program = reparamdsl.compile_file(os.path.join(ROOT, PROGRAMS[name]), overrides=overrides_for(args),
                                      device=args.device)
    trainable = program.parameter_counts()["trainable"]
    cuda = program.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(program.device)

    start = time.perf_counter()
    metrics = program.run(progress=False)
    seconds = time.perf_counter() - start

    if cuda:
        peak = torch.cuda.max_memory_allocated(program.device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # kilobytes on Linux
    result = {"program": PROGRAMS[name], "trainable": trainable, "seconds": seconds,
              "steps_per_sec": args.steps / seconds, "peak_mib": peak / 2**20}
    result.update(metrics)
    return result


def report(name: str, result: dict) -> None:
    loss = result.get("eval/loss", float("nan"))
    print(f"{name}: {result['program']}")
    print(f"  val loss {loss:.4f} nats/token, perplexity {math.exp(loss):.2f}")
    print(f"  {result['steps_per_sec']:.3f} steps/s over the whole run ({result['seconds']:.0f} s, "
          f"including compilation and evaluation)")
    print(f"  trainable parameters {result['trainable']:,}")
    print(f"  peak memory {result['peak_mib']:.1f} MiB")
    if "poet/merges" in result:
        print(f"  POET: {result['poet/trainable_params']:,.0f} factor parameters, "
              f"orthogonality error {result['poet/orthogonality_error']:.2e}, "
              f"sv drift {result['poet/sv_drift']:.2e}, merges {result['poet/merges']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="compile the train step (inductor); off by default so CPU timings exclude compilation")
    parser.add_argument("--full", action="store_true", help="train the programs at their shipped sizes")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, load average {os.getloadavg()}, {args.steps} steps, seed {args.seed}, "
          f"sizes {'as shipped' if args.full else CPU_SIZES}")
    context = multiprocessing.get_context("spawn")
    for name in ("adamw", "poet"):
        with context.Pool(1) as pool:
            report(name, pool.apply(train, (name, args)))


if __name__ == "__main__":
    main()
