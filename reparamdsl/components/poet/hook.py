"""The POET training hook: merge-then-reinitialize, optimizer options, clip ramp and metrics."""

from __future__ import annotations

import hashlib
import logging

import torch
from torch import nn

from reparamdsl.components.poet.layer import POETLinear
from reparamdsl.runtime.hooks import TrainingHook

logger = logging.getLogger(__name__)


def merge_generator(base_seed: int, merge_index: int) -> torch.Generator:
    """Return the generator that resamples permutations at merge number `merge_index` (1-based).

    It depends only on the seed and the index, so a resumed run draws what an uninterrupted one would.
    """
    digest = hashlib.sha256(f"{base_seed}:{merge_index}".encode()).digest()
    generator = torch.Generator()
    generator.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return generator


class POETHook(TrainingHook):
    """Merges R and P into W0 every `merge_every` optimizer steps and reports POET metrics.

    A merge, run between compiled steps, does in place and in order: W0 ← R·W0·P
    (float32), new permutations or index subsets, Q ← 0, and zero optimizer
    moments for the POET parameters. No tensor is replaced, so the compiled
    step stays valid.

    `clip_scale(step)` multiplies the gradient-clipping threshold: the first
    step after a merge gets `clip_ramp_start`, rising linearly to 1 over
    `clip_ramp` steps (1 throughout when `clip_ramp` is 0).

    W0, the permutations and the reference spectrum are persistent buffers of
    the POET layers, so the model's state dict checkpoints them. The merge
    count and step go through `state_dict`.
    """

    name = "poet"

    def __init__(self, model: nn.Module, layers: dict[str, POETLinear], merge_every: int, base_seed: int,
                 lr_scale: float = 1.0, clip_ramp: int = 0, clip_ramp_start: float = 1.0, drift_every: int = 0):
        self.model = model
        self.layers = layers
        self.merge_every = merge_every
        self.base_seed = base_seed
        self.lr_scale = lr_scale
        self.clip_ramp = clip_ramp
        self.clip_ramp_start = clip_ramp_start
        self.drift_every = drift_every
        self._drift: tuple[int, float] | None = None  # (step measured, value)

        self.merges = 0
        self.last_merge_step = 0
        self.step = 0
        self._warned_missing_state = False

        poet_ids = {id(layer.r.params) for layer in layers.values()} | {id(layer.p.params) for layer in layers.values()}
        self.poet_param_ids = poet_ids
        self.poet_param_names = [name for name, param in model.named_parameters() if id(param) in poet_ids]
        self.counts = self._count_parameters()

    def _count_parameters(self) -> dict[str, int]:
        poet = sum(layer.trainable_parameters() for layer in self.layers.values())
        trainable = sum(param.numel() for param in self.model.parameters() if param.requires_grad)
        frozen = sum(param.numel() for param in self.model.parameters() if not param.requires_grad)
        effective_weights = sum(layer.weight0.numel() for layer in self.layers.values())
        plain_model = trainable - poet + frozen + effective_weights
        return {"poet": poet, "model_trainable": trainable, "total": plain_model}

    def param_options(self, name, param):
        if id(param) in self.poet_param_ids:
            return {"lr_scale": self.lr_scale, "weight_decay": 0.0}
        return None

    def after_step(self, step, optimizer_state):
        self.step = step
        due = self.merge_every > 0 and step % self.merge_every == 0 and step > self.last_merge_step
        if not due:
            return {}
        self.merge(step, optimizer_state)
        return {"poet/merges": float(self.merges)}

    @torch.no_grad()
    def merge(self, step: int, optimizer_state: dict[str, dict[str, torch.Tensor]]) -> None:
        """Fold every layer's factors into W0, resample permutations, zero Q and the POET moments."""
        generator = merge_generator(self.base_seed, self.merges + 1)
        for name in sorted(self.layers):
            layer = self.layers[name]
            layer.merge()
            layer.r.resample(generator)
            layer.p.resample(generator)
            layer.r.reset()
            layer.p.reset()

        self._reset_moments(optimizer_state)
        self.merges += 1
        self.last_merge_step = step
        logger.info("POET merge %d at step %d over %d layers", self.merges, step, len(self.layers))

    def _reset_moments(self, optimizer_state: dict[str, dict[str, torch.Tensor]]) -> None:
        missing = [name for name in self.poet_param_names if name not in optimizer_state]
        if missing and optimizer_state and not self._warned_missing_state:
            logger.warning("POET merge: no optimizer state for %d POET parameters (first: %s); "
                           "their moments are not reset", len(missing), missing[0])
            self._warned_missing_state = True

        # A step counter shared with other parameters must keep counting for them.
        poet_names = set(self.poet_param_names)
        shared_steps = {id(state["step"]) for name, state in optimizer_state.items()
                        if name not in poet_names and isinstance(state.get("step"), torch.Tensor)}

        for name in self.poet_param_names:
            state = optimizer_state.get(name)
            if state is None:
                continue
            for key, value in list(state.items()):
                if key == "step":
                    if isinstance(value, torch.Tensor):
                        if id(value) not in shared_steps:
                            value.zero_()
                    else:
                        state[key] = 0
                elif isinstance(value, torch.Tensor):
                    value.zero_()

    def clip_scale(self, step: int | None = None) -> float:
        """Return the factor for the gradient-clipping threshold of optimizer step `step` (the next one by default)."""
        if self.clip_ramp <= 0 or self.merges == 0:
            return 1.0
        step = self.step + 1 if step is None else step
        progress = min(1.0, max(0, step - 1 - self.last_merge_step) / self.clip_ramp)
        return self.clip_ramp_start + (1.0 - self.clip_ramp_start) * progress

    def metrics(self):
        orthogonality = max(layer.orthogonality_error() for layer in self.layers.values())
        drift = self._singular_value_drift()
        return {
            "poet/orthogonality_error": orthogonality,
            "poet/sv_drift": drift,
            "poet/trainable_params": float(self.counts["poet"]),
            "poet/total_params": float(self.counts["total"]),
            "poet/model_trainable_params": float(self.counts["model_trainable"]),
            "poet/merges": float(self.merges),
        }

    def _singular_value_drift(self) -> float:
        """Return the max drift over layers, measured again once `drift_every` steps have passed."""
        if self._drift is None or self.drift_every == 0 or self.step - self._drift[0] >= self.drift_every:
            self._drift = (self.step, max(layer.singular_value_drift() for layer in self.layers.values()))
        return self._drift[1]

    def state_dict(self):
        return {"merges": self.merges, "last_merge_step": self.last_merge_step, "step": self.step}

    def load_state_dict(self, state):
        self.merges = int(state["merges"])
        self.last_merge_step = int(state["last_merge_step"])
        self.step = int(state.get("step", self.last_merge_step))
