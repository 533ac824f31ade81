"""Environment steps per second of reparamdsl's Gaussian SAC against Stable-Baselines3's SAC.

Both train the same setting: one environment, 256 × 256 MLPs for the actor
and the twin critics, batch 256, one gradient update per environment step
(UTD 1), learning starting after `--learning-starts` random steps. Each run
is in its own process, and the script prints two throughputs for each:

- whole run: steps over the wall time of the whole run, random phase and
  (for reparamdsl) the compilation of the update included;
- steady state: steps per second from `--steady-from` environment steps to
  the end, after the one-time costs (random phase, compilation).

It measures throughput only; learning curves are in docs/benchmarks.md.

Needs `stable-baselines3` (not a dependency of reparamdsl):

    pip install stable-baselines3
    python benchmarks/sac_vs_sb3.py --steps 6000 --steady-from 3000 --envs Pendulum-v1 HalfCheetah-v5
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
    log_every = {log_every}
    compile = {compile}
    seed = 0
}}
"""


LOG_EVERY = 250


def run_reparamdsl(env_id: str, steps: int, learning_starts: int, steady_from: int, compile_step: bool,
                   queue) -> None:
    import reparamdsl

    source = PROGRAM.format(env_id=env_id, steps=steps, learning_starts=learning_starts, log_every=LOG_EVERY,
                            compile="true" if compile_step else "false")
    program = reparamdsl.compile_source(source, "sac_vs_sb3.rp", device="cpu")
    start = time.perf_counter()
    program.run(progress=False)
    whole = steps / (time.perf_counter() - start)

    # charts/sps covers the LOG_EVERY steps before each record.
    windows = [record["charts/sps"] for record in program.history
               if "charts/sps" in record and record["step"] > steady_from]
    steady = len(windows) * LOG_EVERY / sum(LOG_EVERY / sps for sps in windows)
    queue.put((whole, steady))


def run_sb3(env_id: str, steps: int, learning_starts: int, steady_from: int, queue) -> None:
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    class SteadyClock(BaseCallback):
        def __init__(self):
            super().__init__()
            self.start = None

        def _on_step(self) -> bool:
            if self.num_timesteps == steady_from:
                self.start = time.perf_counter()
            return True

    env = gym.make(env_id)
    model = SAC("MlpPolicy", env, batch_size=256, learning_starts=learning_starts, train_freq=1, gradient_steps=1,
                policy_kwargs={"net_arch": [256, 256]}, seed=0, device="cpu", verbose=0)
    clock = SteadyClock()
    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=clock)
    end = time.perf_counter()
    queue.put((steps / (end - start), (steps - steady_from) / (end - clock.start)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "HalfCheetah-v5"])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--steady-from", type=int, default=3000,
                        help="environment step from which the steady-state throughput is timed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every run")
    args = parser.parse_args()
    if not args.learning_starts < args.steady_from < args.steps:
        parser.error("need --learning-starts < --steady-from < --steps")

    print(f"{args.steps} environment steps, updates from step {args.learning_starts}, UTD 1, batch 256, 256x256, "
          f"CPU, {args.threads} torch thread(s); steps/s whole run | steady state from step {args.steady_from}")
    print(f"{'environment':16s} {'SB3':>15s} {'rp eager':>15s} {'rp compiled':>15s} {'ratio compiled/SB3':>19s}")
    for env_id in args.envs:
        common = (env_id, args.steps, args.learning_starts, args.steady_from)
        sb3 = run_isolated(WithThreads(run_sb3, args.threads), *common)
        eager = run_isolated(WithThreads(run_reparamdsl, args.threads), *common, False)
        compiled = run_isolated(WithThreads(run_reparamdsl, args.threads), *common, True)
        cells = [f"{whole:6.1f} | {steady:6.1f}" for whole, steady in (sb3, eager, compiled)]
        ratio = f"{compiled[0] / sb3[0]:.2f} | {compiled[1] / sb3[1]:.2f}"
        print(f"{env_id:16s} {cells[0]:>15s} {cells[1]:>15s} {cells[2]:>15s} {ratio:>19s}", flush=True)


class WithThreads:
    """A picklable wrapper that sets torch's thread count in the child process before running `target`."""

    def __init__(self, target, count: int):
        self.target = target
        self.count = count

    def __call__(self, *args):
        import torch

        torch.set_num_threads(self.count)
        self.target(*args)


if __name__ == "__main__":
    main()
