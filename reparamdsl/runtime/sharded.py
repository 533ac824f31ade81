"""Fully sharded data parallelism (FSDP2) for supervised tasks: `train.parallel = "fsdp"`.

Every process keeps only its shard (along dim 0) of each parameter, of its
gradient and of the optimizer moments. `torch.distributed.fsdp.fully_shard`
wraps every block of the model (each element of an `nn.ModuleList`, such as
transformer layers) and then the whole model. A block's parameters are
all-gathered just before its forward and backward and freed after. Its
gradients are reduce-scattered (averaged over processes) into the shards.

The step is therefore not the single functional graph of `SupervisedTrainer`:
FSDP2 works through module hooks and autograd, which `torch.func` bypasses.
It runs forward and backward on the wrapped module, then applies the same
functional optimizer to the local shards. AdamW is elementwise, so updating
shards is the same update as on the full tensors. With `train.compile` each
block is compiled on its own (FSDP2's supported form).

Checkpoints hold full tensors, gathered from all processes, in the same
layout as a single-process run, so a sharded run can be resumed with any
process count and in either mode.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist
from torch import nn

from reparamdsl.runtime.distributed import DistributedError
from reparamdsl.runtime.trainer import SupervisedTrainer, _split

logger = logging.getLogger(__name__)


def shard_units(model: nn.Module) -> list[nn.Module]:
    """Return the modules FSDP2 wraps one by one: the elements of every `nn.ModuleList` that contain parameters."""
    units = []
    for module in model.modules():
        if isinstance(module, nn.ModuleList):
            units.extend(child for child in module if any(True for _ in child.parameters()))
    return units


def shard_model(model: nn.Module, device: torch.device, world_size: int, compile_backend: str | None) -> int:
    """Apply `fully_shard` to each block, then to the root, and return the number of blocks wrapped."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (world_size,))
    units = shard_units(model)
    for unit in units:
        fully_shard(unit, mesh=mesh)
        if compile_backend is not None:
            unit.compile(backend=compile_backend)
    fully_shard(model, mesh=mesh)
    return len(units)


class ShardedTrainer(SupervisedTrainer):
    """A `SupervisedTrainer` whose parameters, gradients and optimizer state are sharded over processes."""

    def __init__(self, task, train: dict, device: torch.device, hooks, seed: int, schedule=None, distributed=None):
        if distributed is None or not distributed.enabled:
            raise DistributedError("train.parallel = \"fsdp\" shards over several processes; start the run with "
                                   "--nproc 2 or more, or use the default train.parallel = \"ddp\"")
        if hooks:
            names = ", ".join(type(hook).__name__ for hook in hooks)
            raise DistributedError(f"train.parallel = \"fsdp\" does not support reparameterization hooks ({names}): "
                                   "they rewrite whole weights between steps; use train.parallel = \"ddp\"")
        backend = train["compile_backend"] if train["compile"] else None
        blocks = shard_model(task.model, device, distributed.world_size, backend)
        logger.info("FSDP2: %d blocks sharded over %d processes", blocks, distributed.world_size)
        self.sharded = {name: param for name, param in task.model.named_parameters() if param.requires_grad}
        super().__init__(task, train, device, hooks, seed, schedule=schedule, distributed=distributed)

    def trainable_tensors(self) -> dict[str, torch.Tensor]:
        # The local shards alias the sharded parameters' storage, so updating them in place updates the model.
        return {name: param.to_local().detach() for name, param in self.sharded.items()}

    def _maybe_compile(self, fn):
        return fn

    def _step(self, params, batch, lr, max_norm):
        for param in self.sharded.values():
            param.grad = None
        micro_batches = _split(batch, self.grad_accum)
        count = len(micro_batches)
        loss_sum = torch.zeros((), device=lr.device)
        metric_sums: dict[str, torch.Tensor] = {}
        for micro in micro_batches:
            loss, metrics = self._module_loss(micro)
            (loss / count).backward()
            loss_sum = loss_sum + loss.detach()
            for key, value in metrics.items():
                metric_sums[key] = metric_sums.get(key, 0) + value

        grads = {name: self._local_grad(name, params[name]) for name in params}
        names = list(metric_sums)
        local_sq = sum(grad.float().pow(2).sum() for grad in grads.values())
        totals = self._sum_over_processes([local_sq, loss_sum / count] + [metric_sums[n] / count for n in names])
        grad_norm = totals[0].sqrt()
        loss = totals[1] / self.world_size
        metrics = {name: value / self.world_size for name, value in zip(names, totals[2:])}
        finite = self._clip_and_update(params, grads, loss, grad_norm, lr, max_norm)
        return loss, grad_norm, finite, metrics

    def _eval(self, params, batch):
        with torch.no_grad():
            return self._module_loss(batch)

    def _module_loss(self, batch):
        with torch.autocast(self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None):
            loss, metrics = self.task.loss(self.model, batch)
        return loss.float(), {key: value.detach().float() for key, value in metrics.items()}

    def _local_grad(self, name: str, local: torch.Tensor) -> torch.Tensor:
        grad = self.sharded[name].grad
        if grad is None:  # The loss did not use this parameter.
            return torch.zeros_like(local)
        return grad.to_local()

    def _sum_over_processes(self, values: list[torch.Tensor]) -> list[torch.Tensor]:
        flat = torch.stack([value.float().reshape(()) for value in values])
        dist.all_reduce(flat)
        return list(flat.unbind())

    # Checkpoints contain full tensors. Gathering them is a collective, so every process calls these.

    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"model/{name}": _full(value) for name, value in self.model.state_dict().items()}
        for name, state in self.optimizer.state.items():
            for key, value in state.items():
                tensors[f"optimizer/{name}/{key}"] = _gather_like(value, self.sharded[name])
        return tensors

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, value in self.model.state_dict().items():
                _copy_full_into(value, tensors[f"model/{name}"])
            for name, state in self.optimizer.state.items():
                for key, value in state.items():
                    full = tensors[f"optimizer/{name}/{key}"]
                    if value.ndim == 0:
                        value.copy_(full)
                    else:
                        value.copy_(_local_shard(full, self.sharded[name]))


def _is_dtensor(value) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(value, DTensor)


def _full(value: torch.Tensor) -> torch.Tensor:
    return value.full_tensor().detach() if _is_dtensor(value) else value


def _gather_like(local: torch.Tensor, param) -> torch.Tensor:
    """Gather a local shard laid out like the sharded `param` into the full tensor."""
    from torch.distributed.tensor import DTensor

    if local.ndim == 0:
        return local
    sharded = DTensor.from_local(local, param.device_mesh, param.placements, shape=param.shape, stride=param.stride())
    return sharded.full_tensor()


def _local_shard(full: torch.Tensor, sharded) -> torch.Tensor:
    """Return this process's shard of `full` in the layout of the DTensor `sharded`, without communication."""
    from torch.distributed.tensor import distribute_tensor

    if tuple(full.shape) != tuple(sharded.shape):
        raise RuntimeError(f"checkpoint shape {tuple(full.shape)} does not match the parameter's "
                           f"{tuple(sharded.shape)}")
    full = full.to(device=sharded.device, dtype=sharded.dtype)
    return distribute_tensor(full, sharded.device_mesh, sharded.placements, src_data_rank=None).to_local()


def _copy_full_into(target: torch.Tensor, full: torch.Tensor) -> None:
    if _is_dtensor(target):
        target.to_local().copy_(_local_shard(full, target))
    else:
        target.copy_(full)

