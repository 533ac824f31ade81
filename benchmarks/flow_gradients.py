"""Gradient of a flow policy's action with respect to its starting noise A_0, for K = 1..10 Euler steps.

A flow policy's rollout A_{i+1} = A_i + v(s, A_i, t_i)·Δt + σ·ε_i is a
residual recurrence, so the Jacobian dA_K/dA_0 is a product of K factors
(I + Δt·∂v/∂A). This script prints the mean norm of the gradient of
Σ atanh(action) with respect to A_0 at initialization, for the plain MLP
velocity (the naive flow), the gated velocity (Flow-G) and the decoded
velocity (Flow-T), averaged over seeds. Step noise is set to zero so only
the deterministic path is measured.

Usage: python benchmarks/flow_gradients.py [--seeds 5] [--hidden 256]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from reparamdsl.components.rl.policies.flow import FlowPolicy
from reparamdsl.components.rl.policies.velocity import DecodedVelocity, GatedVelocity, MLPVelocity

OBS_DIM, ACTION_DIM, TIME_DIM = 3, 1, 16


def make_velocity(kind: str, hidden: int) -> torch.nn.Module:
    if kind == "mlp":
        return MLPVelocity(OBS_DIM, ACTION_DIM, TIME_DIM, hidden, 2)
    if kind == "gated":
        return GatedVelocity(OBS_DIM, ACTION_DIM, TIME_DIM, hidden, 2, 5.0)
    return DecodedVelocity(OBS_DIM, ACTION_DIM, TIME_DIM, 64, 4, 2, 4)


def a0_gradient_norm(policy: FlowPolicy, obs: torch.Tensor) -> float:
    noise = torch.zeros(policy.steps + 1, obs.shape[0], ACTION_DIM)
    noise[0] = torch.randn(obs.shape[0], ACTION_DIM)
    noise.requires_grad_(True)
    action, _ = policy(obs, noise)
    (grad,) = torch.autograd.grad(torch.atanh(action.clamp(-0.999, 0.999)).sum(), noise)
    return grad[0].norm(dim=-1).mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args()

    print(f"mean ||d sum(atanh(a)) / d A_0|| at initialization, median over {args.seeds} seeds, batch 256")
    print("K    " + "  ".join(f"{kind:>8s}" for kind in ("mlp", "gated", "decoded")))
    for steps in range(1, 11):
        row = []
        for kind in ("mlp", "gated", "decoded"):
            norms = []
            for seed in range(args.seeds):
                torch.manual_seed(seed)
                obs = torch.randn(256, OBS_DIM)
                policy = FlowPolicy(OBS_DIM, ACTION_DIM, (1.0,), make_velocity(kind, args.hidden), steps, TIME_DIM,
                                    args.hidden, -5.0, 0.0)
                norms.append(a0_gradient_norm(policy, obs))
            row.append(statistics.median(norms))
        print(f"{steps:<4d} " + "  ".join(f"{value:8.3f}" for value in row))


if __name__ == "__main__":
    main()
