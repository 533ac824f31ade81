"""Data-parallel training over several processes (DDP semantics, launched by torchrun).

Every process holds a full replica of the model and optimizer state, built from
the same seed, and trains on its own disjoint slice of each global batch. The
gradients are averaged inside the train step: the step flattens the gradients,
the loss and the metrics into one buffer and sums it with
`torch.distributed._functional_collectives.all_reduce`, which `torch.compile`
traces into the step's graph (one collective per step, no DDP module wrapper,
which would not see the gradients of `torch.func.grad_and_value`). Clipping,
the non-finite check and the optimizer update then run on identical values in
every process, so the replicas stay equal without broadcasting parameters.

Only rank 0 writes the run folder: metrics, TensorBoard, checkpoints and the
progress bar. Reparameterization hooks (POET merges) run in every process on
identical state with identically seeded generators.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

ENV_KEYS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


class DistributedError(RuntimeError):
    """The process layout does not fit the devices or the batch."""


class Distributed:
    """Rank and size of this process's group; a single process is rank 0 of 1."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0, backend: str | None = None):
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self.backend = backend

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """Return True in every process when `flag` is True in at least one."""
        if not self.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.collective_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def sum_floats(self, values: list[float]) -> list[float]:
        """Sum a list of Python floats over all processes (evaluation totals)."""
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.collective_device())
        dist.all_reduce(tensor)
        return tensor.tolist()

    def collective_device(self) -> torch.device:
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()

    def __repr__(self) -> str:
        return f"Distributed(rank={self.rank}, world_size={self.world_size}, backend={self.backend})"


def launched_by_torchrun() -> bool:
    return all(key in os.environ for key in ENV_KEYS) and int(os.environ["WORLD_SIZE"]) > 1


def device_for_process(request: str, local_rank: int) -> str:
    """Map the `--device` request to this process's device: cuda:LOCAL_RANK for CUDA, else cpu."""
    wants_cuda = request.startswith("cuda") or (request == "auto" and torch.cuda.is_available())
    if not wants_cuda:
        return "cpu"
    if not torch.cuda.is_available():
        raise DistributedError(f"--device {request} needs CUDA, which is not available; use --device cpu")
    if request.startswith("cuda:"):
        raise DistributedError(f"--device {request} names one GPU; a multi-process run uses cuda:LOCAL_RANK in "
                               "each process, so pass --device cuda")
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    count = torch.cuda.device_count()
    if local_size > count:
        raise DistributedError(f"{local_size} processes on this node but only {count} CUDA device(s); "
                               f"start at most {count} per node (--nproc {count})")
    return f"cuda:{local_rank}"


def init_from_environment(request: str) -> tuple[Distributed, str]:
    """Join the process group that torchrun describes in the environment; return it and the device."""
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    device = device_for_process(request, local_rank)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    logger.info("process %d of %d on %s (%s)", rank, world_size, device, backend)
    return Distributed(rank, world_size, local_rank, backend), device


def check_nproc(nproc: int, request: str) -> None:
    """Reject a process count that the machine's devices cannot hold; raises `DistributedError`."""
    if nproc < 1:
        raise DistributedError(f"--nproc must be at least 1, got {nproc}")
    wants_cuda = request.startswith("cuda") or (request == "auto" and torch.cuda.is_available())
    if wants_cuda:
        if not torch.cuda.is_available():
            raise DistributedError(f"--device {request} needs CUDA, which is not available; use --device cpu")
        count = torch.cuda.device_count()
        if nproc > count:
            raise DistributedError(f"--nproc {nproc} needs {nproc} CUDA devices but this machine has {count}; "
                                   f"use --nproc {count} or fewer")
        return
    cores = os.cpu_count() or 1
    if nproc > cores:
        raise DistributedError(f"--nproc {nproc} exceeds the {cores} CPU cores of this machine; "
                               f"use --nproc {cores} or fewer")


def check_batch(batch: int, grad_accum: int, world_size: int) -> int:
    """Return the per-process batch; raises when the global batch does not split evenly."""
    if batch % world_size != 0:
        raise DistributedError(f"train.batch = {batch} does not split over {world_size} processes; "
                               f"choose a multiple of {world_size}")
    local = batch // world_size
    if local % grad_accum != 0:
        raise DistributedError(f"the per-process batch {local} (train.batch {batch} / {world_size} processes) is not "
                               f"divisible by train.grad_accum = {grad_accum}")
    return local


def shard_batches(batches: Iterator[dict[str, torch.Tensor]], distributed: Distributed
                  ) -> Iterator[dict[str, torch.Tensor]]:
    """Yield this process's contiguous slice (along dim 0) of every global batch."""
    if not distributed.enabled:
        yield from batches
        return
    for batch in batches:
        yield {key: _slice(value, distributed) for key, value in batch.items()}


def _slice(value, distributed: Distributed):
    if not isinstance(value, torch.Tensor) or value.ndim == 0:
        return value
    size = value.shape[0] // distributed.world_size
    return value[distributed.rank * size:(distributed.rank + 1) * size]


def all_reduce_mean(tensors: list[torch.Tensor], world_size: int) -> list[torch.Tensor]:
    """Average tensors over all processes with one traceable all-reduce of a flat fp32 buffer."""
    import torch.distributed._functional_collectives as funcol

    flat = torch.cat([tensor.float().reshape(-1) for tensor in tensors])
    flat = funcol.all_reduce(flat, "sum", dist.group.WORLD) / world_size
    results = []
    offset = 0
    for tensor in tensors:
        count = tensor.numel()
        results.append(flat[offset:offset + count].view(tensor.shape).to(tensor.dtype))
        offset += count
    return results
