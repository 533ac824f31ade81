"""The supervised trainer: one compiled step (forward, backward, clipping, optimizer update).

The step is a pure function of the trainable parameters, the batch and the
learning rate. `torch.func.grad_and_value` differentiates
`functional_call(model, params, ...)`, and the functional optimizer writes
the parameters and moments in place, so `torch.compile(fullgraph=True)`
captures the whole step as one graph. The learning rate and clip threshold are
0-dimensional tensors, so schedules never trigger a recompile.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch.func import functional_call, grad_and_value

from reparamdsl.components.optim import adamw as optimizers
from reparamdsl.runtime.hooks import TrainingHook
from reparamdsl.runtime.task import SupervisedTask

logger = logging.getLogger(__name__)


class NonFiniteError(RuntimeError):
    """The loss or the gradients became NaN or inf at a step."""

    def __init__(self, step: int, quantity: str, value: float):
        super().__init__(f"non-finite {quantity} ({value}) at step {step}")
        self.step = step
        self.quantity = quantity
        self.value = value


class _FunctionalModel:
    """A module called with substituted parameters: the model that `SupervisedTask.loss` receives."""

    def __init__(self, module: torch.nn.Module, params: dict[str, torch.Tensor]):
        self.module = module
        self.params = params

    def __call__(self, *args, **kwargs):
        return functional_call(self.module, self.params, args, kwargs, strict=False)

    def __getattr__(self, name):
        return getattr(self.module, name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Pick the autocast dtype: bf16 where requested and supported, None for plain fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def param_options(named: dict[str, torch.nn.Parameter], weight_decay: float,
                  hooks: list[TrainingHook]) -> dict[str, dict]:
    """Per-parameter `lr_scale` and `weight_decay`: matrices decay, vectors (norms, biases) do not."""
    options = {}
    for name, param in named.items():
        option = {"lr_scale": 1.0, "weight_decay": weight_decay if param.ndim >= 2 else 0.0}
        for hook in hooks:
            override = hook.param_options(name, param)
            if override:
                option.update(override)
        options[name] = option
    return options


class SupervisedTrainer:
    """Optimizer state, schedule and the compiled step of one supervised task."""

    def __init__(self, task: SupervisedTask, train: dict, device: torch.device, hooks: list[TrainingHook],
                 seed: int, schedule: Callable[[int, int], float] | None = None, distributed=None):
        self.task = task
        # A `reparamdsl.runtime.distributed.Distributed`; with several processes the step averages
        # gradients, loss and metrics over them (see that module).
        self.distributed = distributed
        self.world_size = distributed.world_size if distributed is not None else 1
        self.train = train
        self.device = device
        self.hooks = hooks
        self.seed = seed
        self.model = task.model
        self.step_count = 0

        self.named_params = self.trainable_tensors()
        if not self.named_params:
            raise ValueError("the model has no trainable parameters")
        settings = dict(train["optimizer"]["params"], name=train["optimizer"]["component"])
        self.peak_lr = float(settings["lr"])
        self.optimizer = optimizers.create(settings, self.named_params,
                                           param_options(self.named_params, settings.get("weight_decay", 0.0), hooks))
        self.schedule = schedule or _schedule_from_plan(train["schedule"])

        self.lr = torch.zeros((), device=device)
        self.max_norm = torch.tensor(float(train["clip"]) if train["clip"] is not None else math.inf, device=device)
        self.autocast = autocast_dtype(train["precision"], device)
        self.skip_nonfinite = train["on_nonfinite"] == "skip"
        self.grad_accum = train["grad_accum"]

        self._step_fn = self._maybe_compile(self._step)
        self._eval_fn = self._maybe_compile(self._eval)

    def trainable_tensors(self) -> dict[str, torch.Tensor]:
        """Return the tensors the optimizer updates in place, by parameter name."""
        # Detached aliases share storage with the parameters: the compiled step
        # updates them in place without AOTAutograd tracing a backward of the
        # step itself (which it would for inputs that require grad).
        return {name: param.detach() for name, param in self.model.named_parameters() if param.requires_grad}

    def _maybe_compile(self, fn):
        if not self.train["compile"]:
            return fn
        return torch.compile(fn, fullgraph=True, dynamic=False, backend=self.train["compile_backend"])

    # The step

    def _loss(self, params, batch):
        model = _FunctionalModel(self.model, params)
        with torch.autocast(self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None):
            loss, metrics = self.task.loss(model, batch)
        return loss.float(), {k: v.detach().float() for k, v in metrics.items()}

    def _step(self, params, batch, lr, max_norm):
        micro_batches = _split(batch, self.grad_accum)
        grads = None
        loss_sum = torch.zeros((), device=lr.device)
        metric_sums: dict[str, torch.Tensor] = {}
        for micro in micro_batches:
            micro_grads, (loss, metrics) = grad_and_value(self._loss, has_aux=True)(params, micro)
            if grads is None:
                grads = micro_grads
            else:
                grads = {name: grads[name] + micro_grads[name] for name in grads}
            loss_sum = loss_sum + loss.detach()
            for key, value in metrics.items():
                metric_sums[key] = metric_sums.get(key, 0) + value
        count = len(micro_batches)
        if count > 1:
            grads = {name: grad / count for name, grad in grads.items()}
        loss = loss_sum / count
        metrics = {key: value / count for key, value in metric_sums.items()}
        if self.world_size > 1:
            grads, loss, metrics = _average_over_processes(grads, loss, metrics, self.world_size)

        grad_norm = torch.sqrt(sum(grad.float().pow(2).sum() for grad in grads.values()))
        finite = self._clip_and_update(params, grads, loss, grad_norm, lr, max_norm)
        return loss, grad_norm, finite, metrics

    def _clip_and_update(self, params, grads, loss, grad_norm, lr, max_norm) -> torch.Tensor:
        """Clip `grads` to `max_norm`, apply the optimizer, and return whether loss and gradients were finite."""
        clip_coef = torch.clamp(max_norm / (grad_norm + 1e-6), max=1.0)
        grads = {name: grad * clip_coef for name, grad in grads.items()}
        finite = torch.isfinite(loss) & torch.isfinite(grad_norm)
        with torch.no_grad():
            self.optimizer.update(params, grads, lr, finite if self.skip_nonfinite else None)
        return finite

    def _eval(self, params, batch):
        with torch.no_grad():
            loss, metrics = self._loss(params, batch)
        return loss, metrics

    # Driving the step

    def set_learning_rate(self, step: int) -> float:
        value = self.peak_lr * self.schedule(step, self.train["steps"])
        self.lr.fill_(value)
        return value

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Run the next optimizer step; raises `NonFiniteError` unless the program skips bad steps."""
        self.step_count += 1
        step = self.step_count
        lr = self.set_learning_rate(step)
        clip_scale = 1.0
        for hook in self.hooks:
            clip_scale *= getattr(hook, "clip_scale", lambda s: 1.0)(step)
        if self.train["clip"] is not None:
            self.max_norm.fill_(float(self.train["clip"]) * clip_scale)

        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        loss, grad_norm, finite, metrics = self._step_fn(self.named_params, batch, self.lr, self.max_norm)

        result = {"train/lr": lr}
        if not bool(finite):
            quantity, value = ("loss", loss.item()) if not torch.isfinite(loss) else ("gradient norm", grad_norm.item())
            if not self.skip_nonfinite:
                raise NonFiniteError(step, quantity, value)
            logger.warning("skipped step %d: non-finite %s (%s)", step, quantity, value)
            result["train/skipped"] = 1.0

        for hook in self.hooks:
            result.update(hook.after_step(step, self.optimizer.state))
        result["train/loss"] = loss
        result["train/grad_norm"] = grad_norm
        for key, value in metrics.items():
            result[f"train/{key}"] = value
        return result

    def evaluate(self, max_batches: int) -> dict[str, float]:
        """Average the loss and metrics over the held-out batches (the same batches every time)."""
        sums: dict[str, float] = {}
        count = 0
        for batch in self.task.eval_batches(self.train["batch"], max_batches):
            batch = {k: v.to(self.device) for k, v in batch.items()}
            loss, metrics = self._eval_fn(self.named_params, batch)
            sums["loss"] = sums.get("loss", 0.0) + loss.item()
            for key, value in metrics.items():
                if key != "loss":
                    sums[key] = sums.get(key, 0.0) + value.item()
            count += 1
        if count == 0:
            return {}
        means = {key: value / count for key, value in sums.items()}
        return {f"eval/{k}": v for k, v in self.task.eval_summary(means).items()}

    # State for checkpoints

    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        for name, state in self.optimizer.state.items():
            for key, value in state.items():
                tensors[f"optimizer/{name}/{key}"] = value
        for index, hook in enumerate(self.hooks):
            for key, value in hook.tensors().items():
                tensors[f"hook{index}/{key}"] = value
        return tensors

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        model_state = {k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")}
        self.model.load_state_dict(model_state, strict=True)
        with torch.no_grad():
            for name, state in self.optimizer.state.items():
                for key, value in state.items():
                    value.copy_(tensors[f"optimizer/{name}/{key}"])
            for index, hook in enumerate(self.hooks):
                for key, value in hook.tensors().items():
                    value.copy_(tensors[f"hook{index}/{key}"])


def _average_over_processes(grads: dict[str, torch.Tensor], loss: torch.Tensor, metrics: dict[str, torch.Tensor],
                            world_size: int):
    from reparamdsl.runtime.distributed import all_reduce_mean

    grad_names, metric_names = list(grads), list(metrics)
    averaged = all_reduce_mean([grads[n] for n in grad_names] + [loss] + [metrics[n] for n in metric_names],
                               world_size)
    grads = dict(zip(grad_names, averaged[:len(grad_names)]))
    loss = averaged[len(grad_names)]
    metrics = dict(zip(metric_names, averaged[len(grad_names) + 1:]))
    return grads, loss, metrics


def _split(batch: dict[str, torch.Tensor], parts: int) -> list[dict[str, torch.Tensor]]:
    if parts == 1:
        return [batch]
    chunks = {k: torch.chunk(v, parts, dim=0) for k, v in batch.items()}
    return [{k: chunks[k][i] for k in batch} for i in range(parts)]


def _schedule_from_plan(value: dict) -> Callable[[int, int], float]:
    from reparamdsl.components.optim import schedules

    params = value["params"]
    name = value["component"]
    if name == "cosine":
        return lambda step, total: schedules.cosine(step, total, params["warmup"], params["min_ratio"])
    if name == "linear":
        return lambda step, total: schedules.linear(step, total, params["warmup"], params["min_ratio"])
    if name == "constant":
        return lambda step, total: schedules.constant(step, total, params["warmup"])
    raise ValueError(f"unknown schedule {name!r}")


def fit_supervised(trainer: SupervisedTrainer, run) -> dict[str, float]:
    """Train `trainer`'s task for `run.train["steps"]` steps with evaluation, logging and checkpoints."""
    from reparamdsl.runtime.loop import supervised_loop

    return supervised_loop(trainer, run)

