"""Specs of the training schedule: the `train` block, optimizers and learning-rate schedules."""

from __future__ import annotations

from reparamdsl.semantics import types as T
from reparamdsl.semantics.registry import ComponentSpec, Param

ADAMW = ComponentSpec(
    kind="optimizer", name="adamw",
    doc="AdamW with decoupled weight decay, applied functionally inside the compiled step.",
    params=(
        Param("lr", T.Float(min=0, min_open=True, max=10), 1e-3, "peak learning rate"),
        Param("betas", T.List(T.Float(min=0, max=1, max_open=True)), [0.9, 0.95], "exponential decay rates of the moments"),
        Param("eps", T.Float(min=0, min_open=True), 1e-8, "denominator term for numerical stability"),
        Param("weight_decay", T.Float(min=0), 0.1, "decoupled weight decay; norms, biases and embeddings get none"),
    ),
    builder="reparamdsl.components.optim.adamw:build",
    validate=lambda params, check: _check_betas(params, check),
)

SGD = ComponentSpec(
    kind="optimizer", name="sgd",
    doc="Stochastic gradient descent with optional momentum.",
    params=(
        Param("lr", T.Float(min=0, min_open=True, max=10), 1e-2, "peak learning rate"),
        Param("momentum", T.Float(min=0, max=1, max_open=True), 0.0, "heavy-ball momentum"),
        Param("weight_decay", T.Float(min=0), 0.0, "decoupled weight decay"),
    ),
    builder="reparamdsl.components.optim.sgd:build",
)

COSINE = ComponentSpec(
    kind="schedule", name="cosine",
    doc="Linear warmup from 0 to the peak learning rate, then cosine decay to min_ratio × peak.",
    params=(
        Param("warmup", T.Steps(), 0, "warmup steps"),
        Param("min_ratio", T.Fraction(), 0.1, "final learning rate as a fraction of the peak"),
    ),
    builder="reparamdsl.components.optim.schedules:build_cosine",
)

LINEAR = ComponentSpec(
    kind="schedule", name="linear",
    doc="Linear warmup, then linear decay to min_ratio × peak at the last step.",
    params=(
        Param("warmup", T.Steps(), 0, "warmup steps"),
        Param("min_ratio", T.Fraction(), 0.0, "final learning rate as a fraction of the peak"),
    ),
    builder="reparamdsl.components.optim.schedules:build_linear",
)

CONSTANT = ComponentSpec(
    kind="schedule", name="constant",
    doc="Linear warmup, then the peak learning rate for the rest of the run.",
    params=(Param("warmup", T.Steps(), 0, "warmup steps"),),
    builder="reparamdsl.components.optim.schedules:build_constant",
)

TRAIN = ComponentSpec(
    kind="train", name="train",
    doc="The training schedule: steps, batch size, optimizer, precision, evaluation and checkpoints.",
    params=(
        Param("steps", T.Steps(min=1), 1000, "optimizer steps (environment steps for reinforcement learning)"),
        Param("batch", T.Int(min=1), 32, "sequences (or pairs, or transitions) per optimizer step"),
        Param("grad_accum", T.Int(min=1, max=1024), 1, "micro-batches accumulated per optimizer step; batch is split across them"),
        Param("optimizer", T.Component("optimizer"), ADAMW.default_value(), "the optimizer"),
        Param("schedule", T.Component("schedule"), COSINE.default_value(), "the learning-rate schedule"),
        Param("clip", T.Optional(T.Float(min=0, min_open=True)), 1.0, "maximum global gradient norm; none disables clipping"),
        Param("precision", T.Enum(("auto", "fp32", "bf16")), "auto",
              "autocast dtype: auto picks bf16 on devices that support it, else fp32"),
        Param("eval_every", T.Steps(min=0), 250, "steps between evaluations; 0 evaluates only at the end"),
        Param("eval_batches", T.Int(min=1), 20, "held-out batches per evaluation"),
        Param("log_every", T.Steps(min=1), 10, "steps between metric records"),
        Param("checkpoint_every", T.Steps(min=0), 0, "steps between checkpoints; 0 writes only the final one"),
        Param("keep_checkpoints", T.Int(min=1), 3, "how many recent step checkpoints to keep"),
        Param("compile", T.Bool(), True, "compile the train step with torch.compile (fullgraph)"),
        Param("compile_backend", T.Enum(("inductor", "aot_eager", "eager")), "inductor",
              "torch.compile backend; eager and aot_eager compile quickly and help debugging"),
        Param("on_nonfinite", T.Enum(("stop", "skip")), "stop",
              "what to do when the loss or gradients become NaN or inf"),
        Param("seed", T.Int(min=0), 0, "random seed of the run; `rpc run --seed` overrides it"),
        Param("parallel", T.Enum(("ddp", "fsdp")), "ddp",
              "how several processes (--nproc) share the model: ddp replicates it, fsdp shards parameters, "
              "gradients and optimizer state with FSDP2"),
    ),
    builder="reparamdsl.components.optim.train:build",
    validate=lambda params, check: _check_train(params, check),
)


def _check_betas(params: dict, check) -> None:
    if len(params["betas"]) != 2:
        check.error(f"betas must have 2 values, found {len(params['betas'])}", "betas",
                    hint="write betas = [0.9, 0.95]")


def _check_train(params: dict, check) -> None:
    if params["batch"] % params["grad_accum"] != 0:
        check.error(f"batch {params['batch']} is not divisible by grad_accum {params['grad_accum']}", "grad_accum",
                    hint="choose grad_accum that divides the batch size")
    warmup = params["schedule"]["params"].get("warmup", 0)
    if warmup > params["steps"]:
        check.error(f"warmup of {warmup} steps is longer than the run of {params['steps']} steps", "schedule",
                    hint="shorten the warmup or train for more steps")


def register(registry) -> None:
    registry.register_all([ADAMW, SGD, COSINE, LINEAR, CONSTANT, TRAIN])
