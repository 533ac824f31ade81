"""Component specs of reinforcement learning (torch-free): environments, actors, critics, velocity fields, SAC."""

from __future__ import annotations

from reparamdsl.semantics.registry import ComponentSpec, Param
from reparamdsl.semantics.types import Bool, Component, Enum, Float, Int, Optional, Path, Ref, Steps, Str

POLICIES = ("gaussian_policy", "flow_policy")


def _validate_gym(params: dict, check) -> None:
    env_id = params["id"]
    if ":" in env_id:
        return  # "module:Env-v0" registers itself on import; it can only be checked when built
    import gymnasium

    if env_id not in gymnasium.envs.registry:
        from reparamdsl.diagnostics import did_you_mean

        check.error(f"unknown gymnasium environment '{env_id}'", param="id",
                    hint=did_you_mean(env_id, gymnasium.envs.registry.keys())
                    or "use a registered id such as Pendulum-v1 or HalfCheetah-v5")


def _validate_sac(params: dict, check) -> None:
    env_name = params["env"]["ref"]
    for role, allowed in (("actor", POLICIES), ("critic", ("critic",))):
        decl = check.lookup(params[role]["ref"])
        if decl is None:
            continue
        if decl.component not in allowed:
            check.error(f"{role} '{decl.name}' is a {decl.component} model; expected {' or '.join(allowed)}",
                        param=role)
        elif decl.params["env"]["ref"] != env_name:
            check.error(f"{role} '{decl.name}' is sized for env '{decl.params['env']['ref']}' but sac runs in "
                        f"'{env_name}'", param=role, hint=f"set `env = {env_name}` in '{decl.name}'")

    if params["dataset"] is None:
        for name in ("offline_steps", "bc_weight"):
            if params[name]:
                check.error(f"{name} needs a dataset", param=name,
                            hint="set `dataset = \"file.npz\"` or remove the option")


def _env_params() -> tuple[Param, ...]:
    return (
        Param("id", Str(), doc="gymnasium environment id, such as Pendulum-v1 or HalfCheetah-v5"),
        Param("envs", Int(min=1), 1, "number of sub-environments stepped together"),
        Param("vectorization", Enum(("sync", "async")), "sync", "step sub-environments in this process or in workers"),
        Param("autoreset", Enum(("same_step", "next_step")), "same_step",
              "gymnasium autoreset mode; transitions are stored correctly under both"),
        Param("normalize_obs", Bool(), False, "normalize observations with running mean and variance"),
        Param("max_episode_steps", Optional(Int(min=1)), None, "time limit per episode; none keeps the id's default"),
    )


def _flow_params() -> tuple[Param, ...]:
    return (
        Param("env", Ref("env"), doc="environment whose observation and action sizes the policy takes"),
        Param("velocity", Component("velocity"), "gated", "velocity field: mlp, gated (Flow-G) or decoded (Flow-T)"),
        Param("steps", Int(min=1, max=64), 4, "Euler steps K on the uniform time grid"),
        Param("time_dim", Int(min=2), 16, "size of the sinusoidal time embedding (even)"),
        Param("noise_hidden", Int(min=1), 256, "width of the MLP that outputs the step noise sigma(s)"),
        Param("log_std_min", Float(), -5.0, "lower bound of log sigma"),
        Param("log_std_max", Float(), 0.0, "upper bound of log sigma"),
    )


def _sac_params() -> tuple[Param, ...]:
    return (
        Param("actor", Ref("model"), doc="a gaussian_policy or flow_policy model"),
        Param("critic", Ref("model"), doc="a critic model"),
        Param("env", Ref("env"), doc="environment to collect experience in"),
        Param("gamma", Float(0.0, 1.0), 0.99, "discount factor"),
        Param("tau", Float(0.0, 1.0, min_open=True), 0.005, "target critic Polyak rate; 1 copies the critic"),
        Param("target_every", Int(min=1), 1, "update the target critic every this many critic updates"),
        Param("alpha", Float(0.0, None, min_open=True), 0.2, "initial (or fixed) entropy temperature"),
        Param("autotune", Bool(), True, "learn log alpha toward the target entropy"),
        Param("target_entropy", Optional(Float()), None,
              "target of -log pi; none means -D for Gaussian and -D + D/2 log(2 pi e) for flow policies"),
        Param("utd", Float(0.0, None, min_open=True), 1.0, "gradient updates per environment transition"),
        Param("policy_delay", Int(min=1), 1, "update the actor and temperature every this many critic updates"),
        Param("learning_starts", Steps(), 5000, "environment steps of uniform random actions before updates start"),
        Param("buffer_size", Int(min=1), 1_000_000, "replay capacity in transitions, preallocated on the device"),
        Param("batch", Optional(Int(min=1)), None, "minibatch size; none uses train.batch"),
        Param("actor_lr", Float(0.0, None, min_open=True), 3e-4, "actor Adam learning rate"),
        Param("critic_lr", Float(0.0, None, min_open=True), 1e-3, "critic Adam learning rate"),
        Param("alpha_lr", Float(0.0, None, min_open=True), 3e-4, "log alpha Adam learning rate"),
        Param("eval_every", Steps(), 5000, "environment steps between deterministic evaluations; 0 turns them off"),
        Param("eval_episodes", Int(min=1), 10, "episodes per evaluation"),
        Param("dataset", Optional(Path(must_exist=True)), None, "npz dataset for offline-to-online training"),
        Param("offline_steps", Steps(), 0, "offline updates (critic TD, actor behaviour cloning) before going online"),
        Param("bc_weight", Float(0.0), 0.0, "weight of the behaviour-cloning loss in online actor updates"),
        Param("cpu_threads", Optional(Int(min=1)), 1,
              "torch intra-op threads while training on a CPU device; none keeps torch's setting"),
    )


def register(registry) -> None:
    module = "reparamdsl.components.rl"
    registry.register_all([
        ComponentSpec("env", "gym", "A vectorized gymnasium environment with a continuous action box.",
                      _env_params(), f"{module}.envs:build", validate=_validate_gym),
        ComponentSpec("model", "gaussian_policy", "Tanh-squashed diagonal Gaussian actor (standard SAC).", (
            Param("env", Ref("env"), doc="environment whose observation and action sizes the policy takes"),
            Param("hidden", Int(min=1), 256, "hidden layer width"),
            Param("depth", Int(min=1), 2, "hidden layers"),
            Param("log_std_min", Float(), -5.0, "lower bound of log std"),
            Param("log_std_max", Float(), 2.0, "upper bound of log std"),
        ), f"{module}.policies.gaussian:build"),
        ComponentSpec("model", "flow_policy",
                      "Flow actor: K noisy Euler steps of a velocity field, then tanh (SAC Flow).",
                      _flow_params(), f"{module}.policies.flow:build"),
        ComponentSpec("model", "critic", "Ensemble of Q(s, a) MLPs evaluated in one vmapped call.", (
            Param("env", Ref("env"), doc="environment whose observation and action sizes the critic takes"),
            Param("hidden", Int(min=1), 256, "hidden layer width"),
            Param("depth", Int(min=1), 2, "hidden layers"),
            Param("ensemble", Int(min=2), 2, "number of Q functions; the target uses their minimum"),
            Param("layer_norm", Bool(), False, "LayerNorm after every hidden linear layer"),
        ), f"{module}.critics:build"),
        ComponentSpec("velocity", "mlp", "Naive velocity: one MLP over [s, A_i, t].", (
            Param("hidden", Int(min=1), 256, "hidden layer width"),
            Param("depth", Int(min=1), 2, "hidden layers"),
        ), f"{module}.policies.velocity:build_mlp"),
        ComponentSpec("velocity", "gated", "Flow-G: v = g * (v_hat - A_i), g = sigmoid(MLP), gate bias starts open.", (
            Param("hidden", Int(min=1), 256, "hidden layer width of the candidate and gate MLPs"),
            Param("depth", Int(min=1), 2, "hidden layers of each MLP"),
            Param("gate_bias", Float(), 5.0, "initial gate bias; 5 gives g = 0.993"),
        ), f"{module}.policies.velocity:build_gated"),
        ComponentSpec("velocity", "decoded",
                      "Flow-T: a pre-norm decoder of one action-time token cross-attending to state tokens.", (
                          Param("width", Int(min=1), 64, "token width"),
                          Param("heads", Int(min=1), 4, "attention heads (must divide width)"),
                          Param("depth", Int(min=1), 2, "decoder blocks"),
                          Param("context_tokens", Int(min=1), 4, "tokens the state embedding is split into"),
                      ), f"{module}.policies.velocity:build_decoded"),
        ComponentSpec("objective", "sac", "Soft actor-critic, with optional offline-to-online phases.",
                      _sac_params(), f"{module}.sac:build", validate=_validate_sac),
    ])
