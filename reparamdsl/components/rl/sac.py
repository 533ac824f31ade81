"""The `sac` objective: soft actor-critic with its own collection and update loop.

One `fit` runs, in order:
1. optional offline phase: `offline_steps` updates on the dataset, actor by behaviour cloning;
2. online phase until `train.steps` environment steps, counted as transitions summed over
   sub-environments. Actions are uniform random before `learning_starts` unless a dataset seeded
   the buffer. Each transition earns `utd` updates, and the actor updates every `policy_delay`
   critic updates. Deterministic evaluation runs every `eval_every` steps and checkpoints every
   `train.checkpoint_every`.
"""

from __future__ import annotations

import functools
import logging
import time

import attrs
import numpy as np
import torch

from reparamdsl.components.rl.offline import load_dataset
from reparamdsl.components.rl.normalize import normalize
from reparamdsl.components.rl.replay import ReplayBuffer
from reparamdsl.components.rl.update import UpdateConfig, init_update_state, sac_update
from reparamdsl.runtime.task import Task

logger = logging.getLogger(__name__)

# Separates the evaluation seeds from the other streams derived from the run seed.
EVAL_STREAM = 0x6576616C


@attrs.frozen
class SACConfig:
    gamma: float = 0.99
    tau: float = 0.005
    target_every: int = 1
    alpha: float = 0.2
    autotune: bool = True
    target_entropy: float | None = None
    utd: float = 1.0
    policy_delay: int = 1
    learning_starts: int = 5000
    buffer_size: int = 1_000_000
    batch: int = 256
    actor_lr: float = 3e-4
    critic_lr: float = 1e-3
    alpha_lr: float = 3e-4
    eval_every: int = 5000
    eval_episodes: int = 10
    dataset: str | None = None
    offline_steps: int = 0
    bc_weight: float = 0.0
    cpu_threads: int | None = 1


class SACTask(Task):
    """Soft actor-critic on a `GymVectorEnv` with any actor from `policies` and a `QEnsemble` critic."""

    def __init__(self, actor, critic, env, config: SACConfig):
        self.actor = actor
        self.critic = critic
        self.env = env
        self.config = config
        self.target_entropy = (config.target_entropy if config.target_entropy is not None
                               else actor.default_target_entropy())
        self.dataset = load_dataset(config.dataset, env) if config.dataset is not None else None

    # ------------------------------------------------------------------ setup

    def setup(self, device: torch.device, seed: int, total_steps: int, compile_step: bool,
              backend: str = "inductor") -> None:
        """Move the networks to `device`, allocate the replay buffer and build the (compiled) update."""
        config = self.config
        torch.manual_seed(seed)
        self.device = device
        self.actor.to(device)
        self.critic.to(device)
        self.state = init_update_state(self.actor, self.critic, config.alpha,
                                       {"actor": config.actor_lr, "critic": config.critic_lr, "alpha": config.alpha_lr},
                                       self.env.obs_dim, device)

        dataset_rows = 0 if self.dataset is None else len(self.dataset["rewards"])
        capacity = max(1, min(config.buffer_size, total_steps + dataset_rows))
        self.buffer = ReplayBuffer(capacity, self.env.obs_dim, self.env.action_dim, device)
        if self.dataset is not None:
            self.buffer.add(**self.dataset)
        self.sample_generator = torch.Generator(device=device)
        self.sample_generator.manual_seed(seed)
        self.rng = np.random.default_rng(seed)

        update_config = UpdateConfig(config.gamma, config.tau, self.target_entropy, config.autotune,
                                     config.bc_weight, self.env.normalize_obs)
        update = functools.partial(sac_update, self.actor, self.critic, update_config)
        self.update = torch.compile(update, fullgraph=True, backend=backend) if compile_step else update
        self.counters = {"env_steps": 0, "updates": 0, "offline_updates": 0, "update_credit": 0.0}
        # Every vector step's actions since the first reset: gymnasium cannot save a running
        # environment, so a resumed run replays them from the same seed to rebuild its state.
        self.env_action_log: list[np.ndarray] = []
        self._saved_obs_stats = None

    def update_once(self, offline: bool = False) -> dict[str, torch.Tensor]:
        batch = self.buffer.sample(self.config.batch, self.sample_generator)
        count = self.counters["offline_updates" if offline else "updates"]
        update_actor = offline or count % self.config.policy_delay == 0
        update_target = (count + 1) % self.config.target_every == 0
        metrics = self.update(self.state, batch, update_actor, offline, update_target)
        self.counters["offline_updates" if offline else "updates"] += 1
        return metrics

    def explain(self, device: torch.device | str = "cpu"):
        """Trace one update (critic, actor, temperature, targets) with `torch._dynamo.explain`.

        Fills the replay buffer with random transitions first; returns a
        `reparamdsl.runtime.inspection.StepReport` (FLOPs are not counted here).
        """
        import time

        import torch._dynamo

        from reparamdsl.runtime.inspection import StepReport

        device = torch.device(device)
        self.setup(device, 0, max(self.config.batch, 2), compile_step=False)
        count = max(self.config.batch, 2)
        generator = np.random.default_rng(0)
        obs = generator.standard_normal((count, self.env.obs_dim)).astype(np.float32)
        actions = generator.uniform(-1, 1, (count, self.env.action_dim)).astype(np.float32)
        self.buffer.add(obs, actions, generator.standard_normal(count).astype(np.float32), obs,
                        np.zeros(count, np.float32))
        batch = self.buffer.sample(self.config.batch, self.sample_generator)

        start = time.perf_counter()
        explanation = torch._dynamo.explain(self.update)(self.state, batch, True, False, True)
        elapsed = time.perf_counter() - start
        reasons = tuple(str(reason.reason) for reason in explanation.break_reasons)
        return StepReport(explanation.graph_count, explanation.graph_break_count, reasons, elapsed, 0)

    def sync_obs_stats(self) -> None:
        stats = self.env.obs_stats
        if stats is None:
            return
        self.state["obs_mean"].copy_(torch.as_tensor(stats.mean, dtype=torch.float32))
        self.state["obs_std"].copy_(torch.as_tensor(np.sqrt(stats.var + 1e-8), dtype=torch.float32))

    def policy_input(self, obs: np.ndarray) -> torch.Tensor:
        tensor = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if self.env.normalize_obs:
            tensor = normalize(tensor, self.state["obs_mean"], self.state["obs_std"])
        return tensor

    # ------------------------------------------------------------------ loop

    def fit(self, run) -> dict[str, float]:
        # OpenMP threads that share busy cores wait on each other: on a loaded 2-core machine one SAC
        # update (256-wide MLPs, batch 256) took 417 ms on 2 threads and 35 ms on 1 thread.
        previous_threads = torch.get_num_threads()
        if run.device.type == "cpu" and self.config.cpu_threads is not None:
            torch.set_num_threads(self.config.cpu_threads)
        try:
            return self._fit(run)
        finally:
            torch.set_num_threads(previous_threads)

    def _fit(self, run) -> dict[str, float]:
        config = self.config
        total_steps = int(run.train["steps"])
        log_every = int(run.train.get("log_every") or 1000)
        checkpoint_every = int(run.train.get("checkpoint_every") or 0)
        self.setup(run.device, run.seed, total_steps, bool(run.train.get("compile", True)),
                   run.train.get("compile_backend", "inductor"))
        if run.resume is not None:
            self.load_checkpoint(run.resume)

        final: dict[str, float] = {}
        offline_metrics = self.run_offline(run, log_every, checkpoint_every)
        final.update(offline_metrics)
        if run.stop_requested:
            self.save(run, final=True)
            return final

        final.update(self.run_online(run, total_steps, log_every, checkpoint_every))
        self.save(run, final=True)
        self.env.close()
        return final

    def run_offline(self, run, log_every: int, checkpoint_every: int) -> dict[str, float]:
        """Phase 1: critic TD updates and behaviour cloning of the actor on the dataset."""
        metrics: dict[str, float] = {}
        while self.counters["offline_updates"] < self.config.offline_steps and not run.stop_requested:
            tensors = self.update_once(offline=True)
            step = self.counters["offline_updates"]
            if step % log_every == 0 or step == self.config.offline_steps:
                metrics = {f"offline/{key.split('/')[-1]}": float(value) for key, value in tensors.items()}
                run.log(step, metrics)
            if checkpoint_every and step % checkpoint_every == 0:
                self.save(run)
        return metrics

    def run_online(self, run, total_steps: int, log_every: int, checkpoint_every: int) -> dict[str, float]:
        """Phase 2: collect with the actor, update, evaluate and checkpoint until `total_steps` transitions."""
        config, env, counters = self.config, self.env, self.counters
        random_until = config.learning_starts if self.dataset is None else 0
        obs = self.restore_environment(run.seed)
        self.sync_obs_stats()
        latest: dict[str, float] = {}
        tensors: dict[str, torch.Tensor] = {}
        # charts/sps covers the steps since the last log; the clock restarts after the first update,
        # whose compilation would otherwise count as collection time.
        window_time, window_steps = time.perf_counter(), counters["env_steps"]
        first_update = True

        while counters["env_steps"] < total_steps and not run.stop_requested:
            previous = counters["env_steps"]
            if counters["env_steps"] < random_until:
                actions = self.rng.uniform(-1.0, 1.0, (env.num_envs, env.action_dim)).astype(np.float32)
            else:
                with torch.no_grad():
                    actions = self.actor(self.policy_input(obs))[0].cpu().numpy()

            step = env.step(actions)
            self.env_action_log.append(np.asarray(actions, np.float32).copy())
            valid = step.valid
            self.buffer.add(step.obs[valid], step.actions[valid], step.rewards[valid], step.next_obs[valid],
                            step.terminated[valid])
            obs = env.obs
            self.sync_obs_stats()
            counters["env_steps"] += env.num_envs
            now = counters["env_steps"]

            returns, lengths = env.pop_episodes()
            if returns:
                latest["charts/episodic_return"] = float(np.mean(returns))
                latest["charts/episodic_length"] = float(np.mean(lengths))
                run.log(now, {"charts/episodic_return": latest["charts/episodic_return"],
                              "charts/episodic_length": latest["charts/episodic_length"]})

            if now >= config.learning_starts and self.buffer.size >= config.batch:
                counters["update_credit"] += config.utd * env.num_envs
                while counters["update_credit"] >= 1.0:
                    tensors = self.update_once()
                    counters["update_credit"] -= 1.0
                if first_update:
                    first_update = False
                    window_time, window_steps = time.perf_counter(), now

            if _crossed(previous, now, log_every) and tensors:
                elapsed = time.perf_counter() - window_time
                metrics = {key: float(value) for key, value in tensors.items()}
                if now > window_steps and elapsed > 0:
                    metrics["charts/sps"] = (now - window_steps) / elapsed
                window_time, window_steps = time.perf_counter(), now
                latest.update(metrics)
                run.log(now, metrics)
                if getattr(run, "progress", None) is not None:
                    run.progress.update(now, latest)
            if config.eval_every and _crossed(previous, now, config.eval_every):
                latest["eval/episodic_return"] = self.evaluate(run.seed, now)
                run.log(now, {"eval/episodic_return": latest["eval/episodic_return"]})
            if checkpoint_every and _crossed(previous, now, checkpoint_every):
                self.save(run)

        if not run.stop_requested and config.eval_episodes and "eval/episodic_return" not in latest:
            latest["eval/episodic_return"] = self.evaluate(run.seed, counters["env_steps"])
            run.log(counters["env_steps"], {"eval/episodic_return": latest["eval/episodic_return"]})
        return latest

    def restore_environment(self, seed: int) -> np.ndarray:
        """Reset the training environments with `seed` and replay the logged actions, if any.

        The environments are deterministic given their seed and actions, so after
        the replay they are in the state they had at the checkpoint. Episodes
        completed during the replay were logged before and are dropped.
        """
        obs = self.env.reset(seed=seed)
        if not self.env_action_log:
            return obs
        for actions in self.env_action_log:
            self.env.step(actions)
        self.env.pop_episodes()
        if self._saved_obs_stats is not None:
            self.env.obs_stats.load_state_dict(self._saved_obs_stats)
        return self.env.obs

    def evaluate(self, run_seed: int, step: int) -> float:
        """Return the mean return of `eval_episodes` deterministic episodes, one per sub-environment.

        The episodes' seeds are hashed from (run seed, step), so runs with different seeds start
        their evaluations from unrelated states.
        """
        seed = int(np.random.SeedSequence([run_seed, step, EVAL_STREAM]).generate_state(1)[0])
        env = self.env.spawn(self.config.eval_episodes, seed)
        try:
            obs = env.reset()
            finished = np.zeros(env.num_envs, bool)
            returns = np.zeros(env.num_envs)
            while not finished.all():
                with torch.no_grad():
                    actions = self.actor.act(self.policy_input(obs)).cpu().numpy()
                step = env.step(actions)
                returns += np.where(finished, 0.0, step.rewards)
                finished |= step.terminated | step.truncated
                obs = env.obs
        finally:
            env.close()
        return float(returns.mean())

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        tensors: dict[str, torch.Tensor] = {}
        for group in ("actor", "critic", "target", "log_alpha"):
            tensors.update({f"{group}.{name}": value for name, value in self.state[group].items()})
        for group, adam in self.state["adam"].items():
            tensors[f"adam.{group}.step"] = adam["step"]
            for moment in ("exp_avg", "exp_avg_sq"):
                tensors.update({f"adam.{group}.{moment}.{name}": value for name, value in adam[moment].items()})
        tensors.update(self.buffer.tensors())
        if self.env_action_log:
            tensors["env.actions"] = torch.from_numpy(np.stack(self.env_action_log))
        else:
            tensors["env.actions"] = torch.zeros(0, self.env.num_envs, self.env.action_dim)
        tensors["rng.sample"] = self.sample_generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        return {name: value.detach().contiguous() for name, value in tensors.items()}

    def checkpoint_state(self) -> dict:
        return {
            "counters": dict(self.counters),
            "replay": self.buffer.state_dict(),
            "rng_numpy": self.rng.bit_generator.state,
            "obs_stats": None if self.env.obs_stats is None else self.env.obs_stats.state_dict(),
            "target_entropy": self.target_entropy,
        }

    def save(self, run, final: bool = False) -> None:
        run.save_checkpoint(self.counters["env_steps"], self.checkpoint_tensors(), self.checkpoint_state(), final=final)

    def load_checkpoint(self, resume) -> None:
        """Restore networks, optimizer moments, replay contents, counters, random streams and the action log.

        The environments themselves are rebuilt from the action log when the
        online phase starts (`restore_environment`). A checkpoint without the
        log (written before it existed) resumes with freshly reset environments.
        """
        tensors, state = _unpack_resume(resume)
        with torch.no_grad():
            for name, value in self.checkpoint_tensors().items():
                if name.startswith(("replay.", "rng.", "env.")):
                    continue
                value.copy_(tensors[name].to(value.device))
        self.buffer.load(tensors, state["replay"])
        self.sample_generator.set_state(tensors["rng.sample"].cpu())
        torch.set_rng_state(tensors["rng.torch"].cpu())
        self.rng.bit_generator.state = state["rng_numpy"]
        self.counters.update(state["counters"])
        if "env.actions" in tensors:
            self.env_action_log = list(tensors["env.actions"].cpu().numpy())
        if state.get("obs_stats") is not None:
            self._saved_obs_stats = state["obs_stats"]
            self.env.obs_stats.load_state_dict(state["obs_stats"])
            self.sync_obs_stats()


def _crossed(previous: int, now: int, every: int) -> bool:
    """Return True when a multiple of `every` lies in (previous, now]."""
    return every > 0 and now // every > previous // every


def _unpack_resume(resume) -> tuple[dict, dict]:
    if isinstance(resume, dict):
        return resume["tensors"], resume["state"]
    return resume.tensors, resume.state


def build(params: dict, ctx) -> SACTask:
    actor = ctx.get(params["actor"])
    critic = ctx.get(params["critic"])
    env = ctx.get(params["env"])
    batch = params["batch"] if params["batch"] is not None else int(ctx.train.get("batch") or 256)
    config = SACConfig(
        gamma=params["gamma"], tau=params["tau"], target_every=params["target_every"], alpha=params["alpha"],
        autotune=params["autotune"], target_entropy=params["target_entropy"], utd=params["utd"],
        policy_delay=params["policy_delay"], learning_starts=params["learning_starts"],
        buffer_size=params["buffer_size"], batch=batch, actor_lr=params["actor_lr"], critic_lr=params["critic_lr"],
        alpha_lr=params["alpha_lr"], eval_every=params["eval_every"], eval_episodes=params["eval_episodes"],
        dataset=params["dataset"], offline_steps=params["offline_steps"], bc_weight=params["bc_weight"],
        cpu_threads=params["cpu_threads"],
    )
    return SACTask(actor, critic, env, config)
