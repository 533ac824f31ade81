"""A circular replay buffer preallocated on the training device."""

from __future__ import annotations

import numpy as np
import torch

FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")


class ReplayBuffer:
    """Transitions (s, u, r, s', terminated) in fixed tensors of `capacity` rows.

    Observations are stored raw (before normalization) so that a change of the
    running statistics applies to old transitions too. Truncation is not
    stored: a truncated transition bootstraps like an unfinished one.
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, device: torch.device):
        self.capacity = capacity
        self.device = torch.device(device)
        self.storage = {
            "obs": torch.zeros(capacity, obs_dim, device=device),
            "actions": torch.zeros(capacity, action_dim, device=device),
            "rewards": torch.zeros(capacity, device=device),
            "next_obs": torch.zeros(capacity, obs_dim, device=device),
            "terminated": torch.zeros(capacity, device=device),
        }
        self.position = 0
        self.size = 0

    def add(self, obs, actions, rewards, next_obs, terminated) -> None:
        """Append a batch of transitions (numpy or tensors with a leading batch axis), overwriting the oldest."""
        batch = {"obs": obs, "actions": actions, "rewards": rewards, "next_obs": next_obs,
                 "terminated": np.asarray(terminated, np.float32) if isinstance(terminated, np.ndarray) else terminated}
        count = len(rewards)
        if count == 0:
            return
        if count > self.capacity:
            batch = {name: value[-self.capacity:] for name, value in batch.items()}
            count = self.capacity

        rows = (self.position + torch.arange(count)) % self.capacity
        rows = rows.to(self.device)
        for name, value in batch.items():
            tensor = torch.as_tensor(value, dtype=torch.float32).to(self.device, non_blocking=True)
            self.storage[name][rows] = tensor.reshape(self.storage[name][rows].shape)
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Return `batch_size` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        rows = torch.randint(0, self.size, (batch_size,), generator=generator, device=generator.device)
        rows = rows.to(self.device)
        return {name: tensor[rows] for name, tensor in self.storage.items()}

    def tensors(self) -> dict[str, torch.Tensor]:
        """Return the filled rows (for checkpoints), oldest storage row first."""
        return {f"replay.{name}": tensor[: self.size].contiguous() for name, tensor in self.storage.items()}

    def state_dict(self) -> dict:
        return {"position": self.position, "size": self.size, "capacity": self.capacity}

    def load(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"checkpoint replay capacity {state['capacity']} differs from buffer_size {self.capacity}")
        self.size = state["size"]
        self.position = state["position"]
        for name in FIELDS:
            self.storage[name][: self.size] = tensors[f"replay.{name}"].to(self.device)
