"""Time `rpc check` on a generated 1,000-line program in fresh processes.

Prints the wall time of each run and the median. Beside them it prints the
time of a bare `python -c pass` and of `python -c "import torch"`, measured
the same way, so the ratio shows what the check path costs and that it does
not import torch.

Usage: python benchmarks/check_speed.py [--lines 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def generate_program(lines: int) -> str:
    """Return a valid program of about `lines` lines: many lets and models, a data source and a train block."""
    out = ["# generated for benchmarks/check_speed.py"]
    out.append('data corpus = text {\n    source = "python-stdlib"\n    context = 64\n    max_files = 10\n}')
    index = 0
    while len("\n".join(out).splitlines()) < lines - 20:
        out.append(f"let width_{index} = 32 * {index % 4 + 1}")
        out.append(f"let lr_{index} = 3e-4 * {index % 3 + 1}")
        out.append(f"model lm_{index} = llama {{\n    vocab = corpus.vocab_size\n    width = width_{index}\n"
                   f"    depth = {index % 3 + 1}\n    heads = 4\n    context = corpus.context\n}}")
        index += 1
    out.append("objective loss = next_token(lm_0, corpus)")
    out.append("train {\n    steps = 2k\n    batch = 32\n    optimizer = adamw(lr = lr_0)\n"
               "    schedule = cosine(warmup = 100 steps)\n    eval_every = 250 steps\n}")
    return "\n".join(out) + "\n"


def time_command(command: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"command failed: {' '.join(command)}\n{result.stdout}{result.stderr}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "generated.rp")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(generate_program(args.lines))
        line_count = sum(1 for _ in open(path, encoding="utf-8"))

        python = sys.executable
        baseline = time_command([python, "-c", "pass"], args.repeats)
        torch_import = time_command([python, "-c", "import torch"], args.repeats)
        check = time_command([python, "-m", "reparamdsl", "check", "-q", path], args.repeats)

    print(f"program: {line_count} lines; {args.repeats} fresh processes each")
    for label, times in (("python -c pass", baseline), ("python -c 'import torch'", torch_import),
                         ("rpc check", check)):
        runs = ", ".join(f"{t:.3f}" for t in times)
        print(f"{label:28s} median {statistics.median(times):.3f} s  (runs: {runs})")
    print(f"rpc check / import torch: {statistics.median(check) / statistics.median(torch_import):.2f}")
    print("target: rpc check under 0.5 s wall")


if __name__ == "__main__":
    main()
