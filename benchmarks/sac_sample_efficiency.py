"""Sample efficiency of the shipped SAC programs against Stable-Baselines3's SAC.

Each (method, seed) pair trains in its own process: the reparamdsl methods
through `python -m reparamdsl run PROGRAM --seed N` with a step budget and
evaluation overrides, SB3 through this script's `sb3-worker` mode. Every run
evaluates the deterministic policy every `--eval-every` steps and at the end,
over `--eval-episodes` episodes. The script prints, for each method, the
final mean return of every seed, their mean ± std (population std over
seeds) and the wall time of each run. It writes `curves.json` (return against
environment steps for every run) and `curves.png` to `--out`. Each run folder
contains a `metrics.jsonl` (SB3's too), so `rpc plot OUT/runs/*` draws them.

A run whose folder already contains a finished `result.json` for the same budget
is reused, so an interrupted sweep continues where it stopped (`--rerun`
trains it again). `--seeds-for flow_t=0` trains a slow method on fewer seeds, and
`--report-only` rebuilds the table and curves from the finished runs.
`--final-episodes N` also evaluates every final policy on N episodes whose
initial states are the same in every run and method, and prints a second table.

SB3 follows the RL Zoo setting for Pendulum-v1 (learning rate 1e-3,
otherwise SB3's defaults: 256 x 256 networks, batch 256, 100 random steps,
automatic entropy). The reparamdsl programs keep their own settings, such as
1000 random steps on Pendulum-v1.

Needs `stable-baselines3` (not a dependency of reparamdsl) for the sb3 method:

    python benchmarks/sac_sample_efficiency.py --steps 20000 --seeds 0 1 2 --jobs 2 --out /tmp/sac_bench/pendulum
    python benchmarks/sac_sample_efficiency.py --env HalfCheetah-v5 --methods gaussian flow_g --seeds 0 \\
        --steps 30000 --eval-every 5000 --eval-episodes 5 --out /tmp/sac_bench/halfcheetah
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"

# The Pendulum programs' env is named `pendulum`, so other environments replace its id there. The
# overrides give them the settings of the shipped HalfCheetah program: normalized observations, a
# LayerNorm critic and 5000 random steps.
MUJOCO_OVERRIDES = ("pendulum.normalize_obs=true", "critic.layer_norm=true", "sac_loss.learning_starts=5000")

# method -> (program, overrides) for each environment with shipped programs. Other environments
# reuse the Pendulum programs with the id replaced.
PROGRAM_TABLE = {
    "Pendulum-v1": {
        "gaussian": ("sac_pendulum.rp", ()),
        "flow_g": ("sac_flow_g_pendulum.rp", ()),
        "flow_t": ("sac_flow_t_pendulum.rp", ()),
    },
    "HalfCheetah-v5": {
        "gaussian": ("sac_pendulum.rp", ('pendulum.id="HalfCheetah-v5"', *MUJOCO_OVERRIDES)),
        "flow_g": ("sac_flow_g_halfcheetah.rp", ()),
        "flow_t": ("sac_flow_t_pendulum.rp", ('pendulum.id="HalfCheetah-v5"', *MUJOCO_OVERRIDES)),
    },
}
# Methods from the slowest update to the fastest: Flow-T runs a decoder K times per action.
COST_RANK = ["flow_t", "flow_g", "sb3", "gaussian"]
METHOD_LABELS = {"gaussian": "Gaussian SAC", "flow_g": "Flow-G", "flow_t": "Flow-T", "sb3": "SB3 SAC"}

# One thread per run, so that `--jobs` runs share the cores without OpenMP threads waiting on each
# other. Inductor's compile workers are capped the same way.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TORCHINDUCTOR_COMPILE_THREADS": "1"}


def program_for(env_id: str, method: str) -> tuple[Path, tuple[str, ...]]:
    """Return the program and overrides that train `method` on `env_id`."""
    if env_id in PROGRAM_TABLE:
        program, overrides = PROGRAM_TABLE[env_id][method]
    else:
        program, overrides = PROGRAM_TABLE["Pendulum-v1"][method]
        overrides = (f'pendulum.id="{env_id}"',)
    return PROGRAMS / program, overrides


def run_command(args, method: str, seed: int, folder: Path) -> list[str]:
    """Return the command line that trains one (method, seed) run into `folder`."""
    if method == "sb3":
        return [sys.executable, str(Path(__file__).resolve()), "sb3-worker", "--env", args.env,
                "--seed", str(seed), "--steps", str(args.steps), "--eval-every", str(args.eval_every),
                "--eval-episodes", str(args.eval_episodes), "--lr", str(args.sb3_lr), "--out", str(folder)]

    program, overrides = program_for(args.env, method)
    return [sys.executable, "-m", "reparamdsl", "run", str(program), "--seed", str(seed), "--out", str(folder),
            "--device", "cpu", "--no-progress", *overrides, f"train.steps={args.steps}",
            f"sac_loss.eval_every={args.eval_every}", f"sac_loss.eval_episodes={args.eval_episodes}",
            "sac_loss.cpu_threads=1"]


def episode_steps(env_id: str) -> int:
    """Return the time limit of one episode of `env_id`."""
    import gymnasium as gym

    return gym.spec(env_id).max_episode_steps


def read_eval_curve(metrics_path: Path) -> tuple[list[int], list[float]]:
    """Return the (steps, returns) of every `eval/episodic_return` record in a metrics.jsonl."""
    steps, returns = [], []
    for line in metrics_path.read_text().splitlines():
        record = json.loads(line)
        if "eval/episodic_return" in record:
            steps.append(int(record["step"]))
            returns.append(float(record["eval/episodic_return"]))
    return steps, returns


def finished_result(args, method: str, seed: int) -> dict | None:
    """Return the stored result of a run with this budget and environment, or None if there is none."""
    result_path = Path(args.out) / "runs" / f"{method}-seed{seed}" / "result.json"
    if not result_path.exists():
        return None
    result = json.loads(result_path.read_text())
    if result["steps"] != args.steps or result["env"] != args.env:
        return None
    return result


def train_one(args, method: str, seed: int) -> dict:
    """Train one run in a child process, or reuse its finished result, and return its result."""
    folder = Path(args.out) / "runs" / f"{method}-seed{seed}"
    result_path = folder / "result.json"
    result = None if args.rerun else finished_result(args, method, seed)
    if result is not None:
        print(f"reusing {folder}", flush=True)
        return result

    folder.mkdir(parents=True, exist_ok=True)
    command = run_command(args, method, seed, folder)
    print(f"start {method} seed {seed}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    with open(folder / "log.txt", "w") as log:
        completed = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **SINGLE_THREAD_ENV})
    wall_s = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{method} seed {seed} failed with exit code {completed.returncode}; see {folder / 'log.txt'}")

    steps, returns = read_eval_curve(folder / "metrics.jsonl")
    if not steps or steps[-1] != args.steps:
        raise RuntimeError(f"{method} seed {seed} has no evaluation at step {args.steps} in {folder / 'metrics.jsonl'}")
    result = {"env": args.env, "method": method, "seed": seed, "steps": args.steps, "wall_s": wall_s,
              "final_return": returns[-1], "curve": {"steps": steps, "returns": returns}, "command": command}
    result_path.write_text(json.dumps(result, indent=1))
    print(f"done {method} seed {seed}: final return {returns[-1]:.1f}, {wall_s / 60:.1f} min", flush=True)
    return result


def evaluate_common_states(args, result: dict) -> dict:
    """Evaluate a finished run's final policy on `--final-episodes` episodes whose initial states every run shares.

    Episode i resets with seed `--final-seed + i` in every run and method, so the
    returns are paired across methods. The periodic evaluations are not: their
    initial states come from each run's own seeding.
    """
    folder = Path(args.out) / "runs" / f"{result['method']}-seed{result['seed']}"
    if result["method"] == "sb3":
        command = [sys.executable, str(Path(__file__).resolve()), "sb3-evaluate", "--env", args.env,
                   "--model", str(folder / "model.zip"), "--episodes", str(args.final_episodes),
                   "--seed", str(args.final_seed), "--out", str(folder / "common_eval.json")]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "rp-evaluate", "--run", str(folder),
                   "--episodes", str(args.final_episodes), "--episode-steps", str(episode_steps(args.env)),
                   "--seed", str(args.final_seed),
                   "--out", str(folder / "common_eval.json")]
    subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, **SINGLE_THREAD_ENV})
    return json.loads((folder / "common_eval.json").read_text())


def rp_evaluate(argv: list[str]) -> None:
    """Run a reparamdsl run's final deterministic actor for one episode per sub-environment i, seeded seed + i."""
    parser = argparse.ArgumentParser(prog="sac_sample_efficiency.py rp-evaluate")
    parser.add_argument("--run", required=True)
    parser.add_argument("--episodes", type=int, required=True)
    parser.add_argument("--episode-steps", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    dataset = Path(args.out).with_suffix(".npz")
    subprocess.run([sys.executable, "-m", "reparamdsl", "collect", args.run, "--deterministic",
                    "--envs", str(args.episodes), "--steps", str(args.episode_steps * args.episodes),
                    "--seed", str(args.seed), "--out", str(dataset)], check=True)

    # NOTE: this reads one whole episode per sub-environment, which is true only for environments
    # that never terminate early (Pendulum, HalfCheetah). Rows are stored step by step, `episodes` per step.
    with np.load(dataset) as data:
        rewards = data["rewards"].reshape(args.episode_steps, args.episodes)
    returns = rewards.sum(axis=0)
    write_common_eval(args.out, returns, args.seed)


def sb3_evaluate(argv: list[str]) -> None:
    """Run a saved SB3 model's deterministic policy for episode i from reset(seed=seed + i)."""
    parser = argparse.ArgumentParser(prog="sac_sample_efficiency.py sb3-evaluate")
    parser.add_argument("--env", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--episodes", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC

    torch.set_num_threads(1)
    model = SAC.load(args.model, device="cpu")
    env = gym.make(args.env)
    returns = []
    for episode in range(args.episodes):
        obs, _ = env.reset(seed=args.seed + episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    write_common_eval(args.out, np.asarray(returns), args.seed)


def write_common_eval(path: str, returns: np.ndarray, seed: int) -> None:
    Path(path).write_text(json.dumps({"seed": seed, "episodes": len(returns), "mean": float(returns.mean()),
                                      "std": float(returns.std()), "returns": returns.tolist()}))


def print_table(results: list[dict], methods: list[str], seeds: list[int], key: str = "final_return") -> list[str]:
    """Print and return the table of final returns per seed, mean ± std and wall times."""
    seed_columns = " | ".join(f"seed {seed}" for seed in seeds)
    lines = [f"| method | {seed_columns} | mean ± std | wall time per run (min) |",
             "| --- |" + " --- |" * (len(seeds) + 2)]
    for method in methods:
        by_seed = {result["seed"]: result for result in results if result["method"] == method}
        finals = [by_seed[seed][key] for seed in seeds if seed in by_seed]
        cells = [f"{by_seed[seed][key]:.1f}" if seed in by_seed else "n/a" for seed in seeds]
        walls = ", ".join(f"{by_seed[seed]['wall_s'] / 60:.1f}" for seed in seeds if seed in by_seed)
        summary = f"{np.mean(finals):.1f} ± {np.std(finals):.1f}" if finals else "n/a"
        lines.append(f"| {METHOD_LABELS[method]} | {' | '.join(cells)} | {summary} | {walls} |")
    print("\n".join(lines))
    return lines


def plot_curves(results: list[dict], methods: list[str], env_id: str, path: Path) -> None:
    """Draw each method's mean evaluation return against steps, with a min-max band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=90)
    for method in methods:
        runs = [result for result in results if result["method"] == method]
        if not runs:
            continue
        # Runs of one method share the evaluation steps, so they stack into (seeds, points).
        length = min(len(run["curve"]["steps"]) for run in runs)
        steps = np.asarray(runs[0]["curve"]["steps"][:length])
        returns = np.asarray([run["curve"]["returns"][:length] for run in runs])
        line, = axes.plot(steps, returns.mean(axis=0), marker="o", markersize=3,
                          label=f"{METHOD_LABELS[method]} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        axes.fill_between(steps, returns.min(axis=0), returns.max(axis=0), color=line.get_color(), alpha=0.2)

    axes.set_xlabel("environment steps")
    axes.set_ylabel("deterministic evaluation return")
    axes.set_title(f"SAC on {env_id}: mean over seeds, band = min to max")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def sb3_worker(argv: list[str]) -> None:
    """Train SB3's SAC for one seed and write its evaluation curve as a metrics.jsonl."""
    parser = argparse.ArgumentParser(prog="sac_sample_efficiency.py sb3-worker")
    parser.add_argument("--env", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--eval-every", type=int, required=True)
    parser.add_argument("--eval-episodes", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    metrics = open(Path(args.out) / "metrics.jsonl", "w")
    eval_env = DummyVecEnv([lambda: Monitor(gym.make(args.env))])
    eval_env.seed(args.seed + 1_000_003)

    def log_evaluation(step: int) -> None:
        mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
        metrics.write(json.dumps({"eval/episodic_return": float(mean), "eval/episodic_return_std": float(std),
                                  "step": step}) + "\n")
        metrics.flush()

    class PeriodicEvaluation(BaseCallback):
        def _on_step(self) -> bool:
            if args.eval_every and self.num_timesteps % args.eval_every == 0 and self.num_timesteps < args.steps:
                log_evaluation(self.num_timesteps)
            return True

    model = SAC("MlpPolicy", gym.make(args.env), learning_rate=args.lr, policy_kwargs={"net_arch": [256, 256]},
                seed=args.seed, device="cpu", verbose=0)
    model.learn(total_timesteps=args.steps, callback=PeriodicEvaluation())
    log_evaluation(args.steps)
    metrics.close()
    model.save(Path(args.out) / "model.zip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Pendulum-v1", help="gymnasium id (default Pendulum-v1)")
    parser.add_argument("--methods", nargs="+", default=["gaussian", "flow_g", "flow_t", "sb3"],
                        choices=["gaussian", "flow_g", "flow_t", "sb3"], help="methods to train")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="seeds of every method, unless --seeds-for sets a method's own")
    parser.add_argument("--steps", type=int, default=20000, help="environment steps per run")
    parser.add_argument("--eval-every", type=int, default=2000,
                        help="environment steps between evaluations; the last one is at --steps")
    parser.add_argument("--eval-episodes", type=int, default=10, help="deterministic episodes per evaluation")
    parser.add_argument("--sb3-lr", type=float, default=1e-3, help="SB3 learning rate (RL Zoo's Pendulum-v1 value)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at the same time, one thread each")
    parser.add_argument("--out", default="runs/sac_sample_efficiency", help="folder for runs, curves.json, curves.png")
    parser.add_argument("--seeds-for", nargs="+", default=[], metavar="METHOD=SEEDS",
                        help="train METHOD on these comma-separated seeds only, such as flow_t=0 to cut a slow method")
    parser.add_argument("--final-episodes", type=int, default=0,
                        help="also evaluate every final policy on this many episodes with shared initial states")
    parser.add_argument("--final-seed", type=int, default=10_000, help="seed of the first shared episode")
    parser.add_argument("--rerun", action="store_true", help="train runs again even if a finished result exists")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: build the table and curves from the finished runs in --out")
    args = parser.parse_args()
    if args.steps % args.eval_every:
        parser.error(f"--steps {args.steps} must be a multiple of --eval-every {args.eval_every}")
    seeds_by_method = {method: args.seeds for method in args.methods}
    for item in args.seeds_for:
        method, _, seeds = item.partition("=")
        if method not in seeds_by_method or not seeds:
            parser.error(f"invalid --seeds-for {item!r}: expected METHOD=SEEDS with METHOD one of {args.methods}")
        seeds_by_method[method] = [int(seed) for seed in seeds.split(",")]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Slowest method first, so that with several jobs the short runs fill the gaps at the end.
    pairs = [(method, seed) for method in sorted(args.methods, key=COST_RANK.index) for seed in seeds_by_method[method]]
    start = time.perf_counter()
    if args.report_only:
        results = [result for result in map(lambda pair: finished_result(args, *pair), pairs) if result is not None]
    else:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(lambda pair: train_one(args, *pair), pairs))
    print(f"\n{args.env}, {args.steps} steps, {args.eval_episodes} deterministic evaluation episodes, "
          f"jobs: {args.jobs}, {(time.perf_counter() - start) / 60:.1f} min in all\n")

    table = print_table(results, args.methods, args.seeds)
    if args.final_episodes:
        for result in results:
            result["common_eval"] = evaluate_common_states(args, result)
            result["common_return"] = result["common_eval"]["mean"]
        print(f"\nfinal policies on {args.final_episodes} shared initial states (reset seeds "
              f"{args.final_seed} to {args.final_seed + args.final_episodes - 1})\n")
        table += ["", *print_table(results, args.methods, args.seeds, key="common_return")]
    (out / "curves.json").write_text(json.dumps({
        "env": args.env, "steps": args.steps, "eval_every": args.eval_every, "eval_episodes": args.eval_episodes,
        "table": table, "runs": results}, indent=1))
    plot_curves(results, args.methods, args.env, out / "curves.png")
    print(f"\nwrote {out / 'curves.json'} and {out / 'curves.png'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "sb3-worker":
        sb3_worker(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "sb3-evaluate":
        sb3_evaluate(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "rp-evaluate":
        rp_evaluate(sys.argv[2:])
    else:
        main()
