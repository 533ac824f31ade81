"""`rpc collect`: record an offline RL dataset (npz) from a trained SAC run or a random policy."""

from __future__ import annotations

import click


@click.command()
@click.argument("run_dir", required=False, type=click.Path(file_okay=False))
@click.option("--steps", type=click.IntRange(min=1), required=True, help="Transitions to record.")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), required=True, help="Output .npz path.")
@click.option("--env", "env_id", default=None, help="Gymnasium id to record random actions in (with --random).")
@click.option("--random", "random_actions", is_flag=True, help="Record uniform random actions instead of a run's actor.")
@click.option("--deterministic", is_flag=True, help="Record the actor's deterministic action, not samples.")
@click.option("--checkpoint", type=click.Path(file_okay=False, exists=True), default=None,
              help="Checkpoint folder to load (default RUN_DIR/checkpoints/final, else the latest).")
@click.option("--envs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Sub-environments stepped together.")
@click.option("--max-episode-steps", type=click.IntRange(min=1), default=None,
              help="Time limit per episode (default: the run's setting, else the id's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Environment and action seed.")
@click.option("--device", default="cpu", show_default=True, help="Device the actor runs on: cpu, cuda or cuda:N.")
def collect(run_dir, steps, out_path, env_id, random_actions, deterministic, checkpoint, envs, max_episode_steps,
            seed, device) -> None:
    """Record STEPS transitions into an npz dataset for offline-to-online SAC.

    With RUN_DIR, the program is rebuilt from RUN_DIR/plan.json and its actor
    loads the checkpoint's weights. With --env ID --random, actions are
    uniform in the action box. The file format is documented in docs/rl.md.

    \b
    Examples:
      rpc collect runs/sac_flow_g_pendulum-20261204-101500 --steps 10000 --out pendulum_expert.npz
      rpc collect --env Pendulum-v1 --random --steps 10000 --out pendulum_random.npz
    """
    from reparamdsl.components.rl.collect import collect as collect_transitions
    from reparamdsl.components.rl.envs import GymVectorEnv

    if run_dir is not None and (env_id is not None or random_actions):
        raise click.UsageError("give either RUN_DIR (record a trained actor) or --env ID --random, not both")
    if run_dir is None and not (env_id is not None and random_actions):
        raise click.UsageError("missing RUN_DIR; to record random actions instead, pass --env ID --random")
    if run_dir is None and (deterministic or checkpoint is not None):
        raise click.UsageError("--deterministic and --checkpoint need RUN_DIR")

    if run_dir is None:
        env = _make_env(lambda: GymVectorEnv(env_id, envs, max_episode_steps=max_episode_steps, seed=seed))
        description = f"uniform random actions in {env_id}"
        actor = obs_transform = None
    else:
        trained = _load_run(run_dir, device, checkpoint)
        limit = max_episode_steps or trained.env.max_episode_steps
        env = GymVectorEnv(trained.env.env_id, envs, max_episode_steps=limit, seed=seed)
        trained.env.close()
        description = f"the actor of {trained.checkpoint} (step {trained.step}) in {trained.env.env_id}"
        actor, obs_transform = trained.actor, trained.obs_transform

    try:
        data = collect_transitions(env, steps, out_path, actor=actor, deterministic=deterministic, seed=seed,
                                   obs_transform=obs_transform)
    finally:
        env.close()
    episodes = int((data["terminated"] | data["truncated"]).sum())
    click.echo(f"wrote {steps} transitions ({episodes} finished episodes) of {description} to {out_path}")


def _make_env(factory):
    import gymnasium

    try:
        return factory()
    except (gymnasium.error.Error, ValueError) as error:
        raise click.ClickException(str(error)) from None


def _load_run(run_dir: str, device: str, checkpoint: str | None):
    from reparamdsl.components.rl.trained import TrainedRunError, load_trained_actor
    from reparamdsl.runtime.checkpoint import CheckpointError

    try:
        return load_trained_actor(run_dir, device=device, checkpoint=checkpoint)
    except (TrainedRunError, CheckpointError) as error:
        raise click.ClickException(str(error)) from None
