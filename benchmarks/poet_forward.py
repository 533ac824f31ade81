"""Time POET's weight-centric and input-centric forward + backward against a plain nn.Linear.

For each (out, in, tokens, block) it prints milliseconds per forward + backward
of three layers: a trainable nn.Linear, POETLinear building R·W0·P
(weight-centric) and POETLinear rotating the activations (input-centric). It
also prints the ratios to nn.Linear and the path that `forward = auto` picks by
its flop estimate. It measures only and asserts nothing.

    python benchmarks/poet_forward.py                 # CPU, or CUDA when available
    python benchmarks/poet_forward.py --device cpu --repeats 5
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from reparamdsl.components.poet.factor import OrthogonalFactor
from reparamdsl.components.poet.layer import POETLinear
from reparamdsl.components.poet.orthogonal import Cayley, CayleyNeumann

SHAPES = [
    # (out, in, tokens, block)
    (512, 512, 64, 64),
    (512, 512, 4096, 64),
    (1280, 512, 512, 128),
    (1024, 1024, 256, 256),
    (1024, 1024, 4096, 256),
    (96, 96, 1024, 64),
]


def make_poet(out_features, in_features, block, orthogonal, forward, device):
    generator = torch.Generator().manual_seed(0)
    weight0 = torch.randn(out_features, in_features, generator=generator)
    r = OrthogonalFactor(out_features, orthogonal, generator, block=block)
    p = OrthogonalFactor(in_features, orthogonal, generator, block=block)
    with torch.no_grad():
        r.params.normal_(0, 0.01, generator=generator)
        p.params.normal_(0, 0.01, generator=generator)
    return POETLinear(weight0, None, r, p, forward).to(device)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_forward_backward(module, x, repeats, device) -> float:
    """Return the median milliseconds of one forward + backward."""
    def run():
        module.zero_grad(set_to_none=True)
        module(x).square().mean().backward()

    for _ in range(2):
        run()
    samples = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    return samples[len(samples) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (median reported)")
    parser.add_argument("--orthogonal", choices=["cayley", "cnp"], default="cnp",
                        help="cnp is cayley_neumann(terms = 4, form = taylor)")
    args = parser.parse_args()

    device = torch.device(args.device)
    orthogonal = Cayley() if args.orthogonal == "cayley" else CayleyNeumann(4, "taylor")
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"orthogonal={orthogonal!r} (median of {args.repeats}, forward + backward, ms)")
    header = f"{'out':>5} {'in':>5} {'tokens':>6} {'b':>4} | {'linear':>8} {'weight':>8} {'input':>8} | " \
             f"{'weight/lin':>10} {'input/lin':>9} {'input/weight':>12} | auto"
    print(header)
    print("-" * len(header))

    for out_features, in_features, tokens, block in SHAPES:
        x = torch.randn(tokens, in_features, device=device)
        linear = nn.Linear(in_features, out_features, bias=False).to(device)
        weight_centric = make_poet(out_features, in_features, block, orthogonal, "weight", device)
        input_centric = make_poet(out_features, in_features, block, orthogonal, "input", device)
        auto = "input" if make_poet(out_features, in_features, block, orthogonal, "auto", "cpu") \
            .uses_input_centric(tokens) else "weight"

        linear_ms = time_forward_backward(linear, x, args.repeats, device)
        weight_ms = time_forward_backward(weight_centric, x, args.repeats, device)
        input_ms = time_forward_backward(input_centric, x, args.repeats, device)
        print(f"{out_features:>5} {in_features:>5} {tokens:>6} {block:>4} | {linear_ms:>8.3f} {weight_ms:>8.3f} "
              f"{input_ms:>8.3f} | {weight_ms / linear_ms:>10.2f} {input_ms / linear_ms:>9.2f} "
              f"{input_ms / weight_ms:>12.2f} | {auto}")


if __name__ == "__main__":
    main()
