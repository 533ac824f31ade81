"""The build context: everything a component builder gets besides its own parameters."""

from __future__ import annotations

import hashlib

import torch

from reparamdsl.runtime.hooks import TrainingHook


class BuildContext:
    """Built declarations, the device, seeded generators and the hooks list of one program."""

    def __init__(self, plan, registry, device: torch.device, seed: int):
        self.plan = plan
        self.registry = registry
        self.device = device
        self.seed = seed
        self.built: dict[str, object] = {}
        self.hooks: list[TrainingHook] = []
        self.train: dict = plan.train_params()
        self.current: str | None = None
        """Name of the declaration being built, for per-declaration seeds and messages."""

    def get(self, ref) -> object:
        name = ref["ref"] if isinstance(ref, dict) else ref
        return self.built[name]

    def build(self, value: dict) -> object:
        """Build a sub-component from its plan value `{"component": ..., "params": ...}`."""
        kind = value["kind"]
        spec = self.registry.get(kind, value["component"])
        return spec.load_builder()(value["params"], self)

    def generator(self, tag: str, device: torch.device | str = "cpu") -> torch.Generator:
        """Return a generator seeded from the run seed and `tag`, independent of other tags."""
        digest = hashlib.sha256(f"{self.seed}:{tag}".encode()).digest()
        generator = torch.Generator(device=device)
        generator.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
        return generator
