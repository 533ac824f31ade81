"""Environment steps per second of reparamdsl's Gaussian SAC against Stable-Baselines3's SAC.

Both train the same setting: one environment, 256 × 256 MLPs for the actor
and the twin critics, batch 256, one gradient update per environment step
(UTD 1), learning starting after `--learning-starts` random steps. Each run
is timed over its whole length, random phase included, in its own process;
the script prints steps/s for each and their ratio. It measures throughput
only; learning curves are in docs/benchmarks.md.

Needs `stable-baselines3` (not a dependency of reparamdsl):

    pip install stable-baselines3
    python benchmarks/sac_vs_sb3.py --steps 3000 --envs Pendulum-v1 HalfCheetah-v5
"""

from __future__ import annotations

import argparse
import time

from isolated import run_isolated

PROGRAM = """
env task = gym("{env_id}") {{ envs = 1 }}
model actor = gaussian_policy {{ env = task  hidden = 256 }}
model critic = critic {{ env = task  hidden = 256 }}
objective loss = sac {{
    actor = actor
    critic = critic
    env = task
    learning_starts = {learning_starts} steps
    eval_every = 0 steps
    eval_episodes = 1
    utd = 1
}}
train {{
    steps = {steps}
    batch = 256
    log_every = {steps}
    compile = {compile}
    seed = 0
}}
"""


def run_reparamdsl(env_id: str, steps: int, learning_starts: int, compile_step: bool, queue) -> None:
    import reparamdsl

    source = PROGRAM.format(env_id=env_id, steps=steps, learning_starts=learning_starts,
                            compile="true" if compile_step else "false")
    program = reparamdsl.compile_source(source, "sac_vs_sb3.rp", device="cpu")
    start = time.perf_counter()
    program.run(progress=False)
    queue.put(steps / (time.perf_counter() - start))


def run_sb3(env_id: str, steps: int, learning_starts: int, queue) -> None:
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC

    torch.set_num_threads(1)
    env = gym.make(env_id)
    model = SAC("MlpPolicy", env, batch_size=256, learning_starts=learning_starts, train_freq=1, gradient_steps=1,
                policy_kwargs={"net_arch": [256, 256]}, seed=0, device="cpu", verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    queue.put(steps / (time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "HalfCheetah-v5"])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--learning-starts", type=int, default=1000)
    args = parser.parse_args()

    print(f"{args.steps} environment steps, updates from step {args.learning_starts}, UTD 1, batch 256, 256x256, CPU")
    print(f"{'environment':16s} {'SB3':>8s} {'rp eager':>9s} {'rp compiled':>12s} {'ratio (compiled)':>17s}")
    for env_id in args.envs:
        sb3 = run_isolated(run_sb3, env_id, args.steps, args.learning_starts)
        eager = run_isolated(run_reparamdsl, env_id, args.steps, args.learning_starts, False)
        compiled = run_isolated(run_reparamdsl, env_id, args.steps, args.learning_starts, True)
        print(f"{env_id:16s} {sb3:8.1f} {eager:9.1f} {compiled:12.1f} {compiled / sb3:17.2f}", flush=True)


if __name__ == "__main__":
    main()
