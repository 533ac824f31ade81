"""Time per training step and peak memory of POET (several block sizes) against plain AdamW.

Builds the same LLaMA-style model (default width 1024, depth 2) on the
standard-library corpus, once trained directly with AdamW and once with POET
on every linear layer but the head, for each block size `b`. Each
configuration runs in its own process: a few warm-up steps (which include
compilation), then timed steps. It prints the median step time, the ratio to
AdamW's, the trainable parameter count and two memory figures:

- state: the bytes of every tensor that lives across steps (parameters,
  buffers such as POET's W0, optimizer moments), counted exactly;
- step peak: CUDA, the max allocated during the timed steps; CPU (Linux),
  the process's peak resident set during the timed steps. Before them the
  allocator returns freed pages to the system (`malloc_trim`) and the peak is
  reset (`/proc/self/clear_refs`), so memory freed while the model was built
  does not count. It includes the interpreter and the corpus, so compare rows
  with each other only.

    python benchmarks/poet_step_cost.py                         # eager and compiled, b = 64, 128, 256
    python benchmarks/poet_step_cost.py --modes eager --steps 5
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import statistics
import time

import torch

from isolated import run_isolated

PROGRAM = """
data corpus = text {{ source = "python-stdlib" context = {context} max_files = 60 }}
model lm = llama {{ vocab = corpus.vocab_size width = {width} depth = {depth} heads = {heads} context = {context} }}
{reparam}
objective loss = next_token(lm, corpus)
train {{
    steps = 1000
    batch = {batch}
    optimizer = adamw(lr = 1e-3)
    compile = {compile}
    precision = fp32
}}
"""

POET = "reparam poet_lm = poet on lm {{ block = {block} merge_every = 0 steps }}"


def measure(config: dict, queue) -> None:
    import reparamdsl

    source = PROGRAM.format(reparam=POET.format(block=config["block"]) if config["block"] else "",
                            compile="true" if config["mode"] == "compiled" else "false", **config["sizes"])
    program = reparamdsl.compile_source(source, "poet_step_cost.rp", device=config["device"])
    trainer = program.trainer()
    batches = program.task.train_batches(config["sizes"]["batch"], seed=0)
    cuda = program.device.type == "cuda"

    for _ in range(config["warmup"]):
        trainer.step(next(batches))
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        reset_cpu_peak()

    times = []
    for _ in range(config["steps"]):
        batch = next(batches)
        start = time.perf_counter()
        metrics = trainer.step(batch)
        float(metrics["train/loss"])
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)

    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else cpu_peak_mib()
    queue.put({"seconds": statistics.median(times), "trainable": program.parameter_counts()["trainable"],
               "state_mib": state_bytes(program.model, trainer) / 2**20, "peak_mib": peak})


def state_bytes(model: torch.nn.Module, trainer) -> int:
    """Count the bytes of the parameters, buffers and optimizer state, each storage once."""
    tensors = list(model.parameters()) + list(model.buffers())
    tensors += [value for state in trainer.optimizer.state.values() for value in state.values()]
    storages = {tensor.untyped_storage().data_ptr(): tensor.untyped_storage().nbytes() for tensor in tensors}
    return sum(storages.values())


def reset_cpu_peak() -> None:
    """Return freed heap pages to the system, then restart the kernel's peak-RSS counter (Linux only)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open(f"/proc/{os.getpid()}/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        pass  # Without /proc the peak covers the whole process lifetime.


def cpu_peak_mib() -> float:
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--blocks", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    sizes = {"width": args.width, "depth": args.depth, "heads": max(1, args.width // 64), "context": args.context,
             "batch": args.batch}
    print(f"model: width {args.width}, depth {args.depth}, batch {args.batch} x {args.context} tokens, "
          f"device {args.device}, torch {torch.__version__}")
    print(f"{'mode':9s} {'method':12s} {'step s':>8s} {'x AdamW':>8s} {'trainable':>12s} {'state MiB':>10s} "
          f"{'step peak MiB':>14s}")
    for mode in args.modes:
        baseline = None
        for block in [None] + args.blocks:
            config = {"mode": mode, "block": block, "sizes": sizes, "warmup": args.warmup, "steps": args.steps,
                      "device": args.device}
            result = run_isolated(measure, config)
            baseline = baseline or result["seconds"]
            name = "adamw" if block is None else f"poet b={block}"
            print(f"{mode:9s} {name:12s} {result['seconds']:8.3f} {result['seconds'] / baseline:8.2f} "
                  f"{result['trainable']:12,d} {result['state_mib']:10.0f} {result['peak_mib']:14.0f}", flush=True)


if __name__ == "__main__":
    main()
