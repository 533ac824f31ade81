"""Checkpoints: safetensors for tensors, JSON for the rest, written atomically.

Layout inside a run folder:

    checkpoints/step-00000200/tensors.safetensors
    checkpoints/step-00000200/state.json
    checkpoints/final/...
    checkpoints/latest          (the name of the newest complete checkpoint)

A checkpoint is first written to a temporary folder and then renamed, so a
crash during a write leaves the previous checkpoint intact. Loading reads
safetensors and JSON only and never unpickles anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import random
import shutil
import tempfile

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

logger = logging.getLogger(__name__)

TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
LATEST_FILE = "latest"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or corrupt."""


class CheckpointState:
    """A loaded checkpoint: what `run.resume` holds for a task's `fit`.

    Attributes:
        path: the checkpoint folder.
        step: the step the checkpoint was written after.
        tensors: the saved tensors, on the device given to `read_checkpoint`.
        state: the saved JSON state (the task's keys plus `step` and `runtime`).
    """

    def __init__(self, path: str, tensors: dict[str, torch.Tensor], state: dict):
        self.path = path
        self.tensors = tensors
        self.state = state
        self.step = int(state.get("step", 0))

    def __repr__(self) -> str:
        return f"CheckpointState({self.path!r}, step={self.step})"


class CheckpointManager:
    """Save step and final checkpoints under `root`, keeping the newest `keep` step checkpoints."""

    def __init__(self, root: str, keep: int = 3):
        self.root = root
        self.keep = keep
        self._remove_staging_leftovers()

    def _remove_staging_leftovers(self) -> None:
        # A process killed during a write leaves its hidden staging folder behind.
        if not os.path.isdir(self.root):
            return
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if name.startswith(".") and os.path.isdir(path):
                logger.info("removing the incomplete checkpoint write %s", path)
                shutil.rmtree(path, ignore_errors=True)

    def save(self, step: int, tensors: dict[str, torch.Tensor], state: dict, final: bool = False) -> str:
        os.makedirs(self.root, exist_ok=True)
        name = "final" if final else f"step-{step:08d}"
        target = os.path.join(self.root, name)
        staging = tempfile.mkdtemp(prefix=f".{name}-", dir=self.root)
        try:
            save_file(_detached(tensors), os.path.join(staging, TENSORS_FILE))
            _write_json(os.path.join(staging, STATE_FILE), {**state, "step": step})
            _fsync_dir(staging)
            if os.path.exists(target):
                trash = tempfile.mkdtemp(prefix=f".old-{name}-", dir=self.root)
                os.rename(target, os.path.join(trash, name))
                os.rename(staging, target)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _atomic_write_text(os.path.join(self.root, LATEST_FILE), name + "\n")
        self._prune()
        logger.info("wrote checkpoint %s", target)
        return target

    def _prune(self) -> None:
        steps = sorted(d for d in os.listdir(self.root) if d.startswith("step-"))
        for old in steps[: max(0, len(steps) - self.keep)]:
            shutil.rmtree(os.path.join(self.root, old), ignore_errors=True)


def latest_checkpoint(root: str) -> str | None:
    """Return the newest complete checkpoint folder under `root`, or None."""
    pointer = os.path.join(root, LATEST_FILE)
    if os.path.isfile(pointer):
        with open(pointer, encoding="utf-8") as handle:
            name = handle.read().strip()
        path = os.path.join(root, name)
        if os.path.isfile(os.path.join(path, STATE_FILE)):
            return path
    if not os.path.isdir(root):
        return None
    # Without a usable pointer, `final` is the newest, then the step folders by number.
    candidates = sorted(d for d in os.listdir(root) if d.startswith("step-")) + ["final"]
    complete = [os.path.join(root, d) for d in candidates if os.path.isfile(os.path.join(root, d, STATE_FILE))]
    return complete[-1] if complete else None


def read_checkpoint(path: str, device: torch.device | str = "cpu") -> CheckpointState:
    """Load a checkpoint folder as a `CheckpointState`; raises `CheckpointError` naming the bad file."""
    tensors, state = load_checkpoint(path, device)
    state_path = os.path.join(path, STATE_FILE)
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or isinstance(state["step"], bool):
        raise CheckpointError(f"corrupt checkpoint state {state_path}: no integer 'step'")
    if state["step"] < 0:
        raise CheckpointError(f"corrupt checkpoint state {state_path}: negative step {state['step']}")
    if "rng" in state:
        problem = rng_state_problem(state["rng"])
        if problem:
            raise CheckpointError(f"corrupt checkpoint state {state_path}: invalid 'rng': {problem}")
    return CheckpointState(path, tensors, state)


def load_checkpoint(path: str, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint folder; raises `CheckpointError` naming the file on any problem."""
    tensors_path = os.path.join(path, TENSORS_FILE)
    state_path = os.path.join(path, STATE_FILE)
    for required in (tensors_path, state_path):
        if not os.path.isfile(required):
            raise CheckpointError(f"checkpoint file missing: {required}")
    try:
        with open(state_path, encoding="utf-8") as handle:
            state = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise CheckpointError(f"corrupt checkpoint state {state_path}: {error}") from None
    try:
        tensors = load_file(tensors_path, device=str(device))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"corrupt checkpoint tensors {tensors_path}: {error}") from None
    return tensors, state


def rng_state() -> dict:
    """Capture the Python, NumPy and torch (CPU and CUDA) random states as JSON."""
    numpy_state = np.random.get_state()
    state = {
        "python": _encode_python_state(random.getstate()),
        "numpy": {"keys": numpy_state[1].tolist(), "pos": int(numpy_state[2]),
                  "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
    }
    if torch.cuda.is_available():
        state["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode("ascii") for s in torch.cuda.get_rng_state_all()]
    return state


def rng_state_problem(state) -> str | None:
    """Return why `state` cannot be restored by `set_rng_state`, or None; it sets no global generator."""
    try:
        random.Random().setstate(_decode_python_state(state["python"]))
        numpy_state = state["numpy"]
        np.random.RandomState().set_state(("MT19937", np.array(numpy_state["keys"], dtype=np.uint32),
                                           numpy_state["pos"], numpy_state["has_gauss"],
                                           numpy_state["cached_gaussian"]))
        torch.Generator().set_state(_decode_torch_state(state["torch"]))
        for encoded in state.get("cuda", []):
            _decode_torch_state(encoded)
    except KeyError as error:
        return f"missing key {error}"
    except (TypeError, ValueError, RuntimeError, OverflowError, binascii.Error) as error:
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    return None


def _decode_torch_state(encoded: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(encoded, validate=True)), dtype=torch.uint8)


def set_rng_state(state: dict) -> None:
    random.setstate(_decode_python_state(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", np.array(numpy_state["keys"], dtype=np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(_decode_torch_state(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_decode_torch_state(encoded) for encoded in state["cuda"]])


def _encode_python_state(state) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _decode_python_state(state: list):
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _detached(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Clones break storage sharing (tied embeddings), which safetensors rejects.
    return {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in tensors.items()}


def _write_json(path: str, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())


def _atomic_write_text(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _fsync_dir(path: str) -> None:
    for name in os.listdir(path):
        with open(os.path.join(path, name), "rb") as handle:
            os.fsync(handle.fileno())
