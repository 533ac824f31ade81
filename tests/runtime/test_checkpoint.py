"""Checkpoint files: atomic writes, pruning, the `latest` pointer, and loading without pickle."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from reparamdsl.runtime import checkpoint as checkpoints
from reparamdsl.runtime.checkpoint import (CheckpointError, CheckpointManager, latest_checkpoint, read_checkpoint,
                                           rng_state, set_rng_state)


def sample_tensors(value: float) -> dict[str, torch.Tensor]:
    return {"model/weight": torch.full((4, 3), value), "optimizer/weight/step": torch.tensor(value)}


def test_manager_writes_tensors_state_and_pointer(tmp_path):
    manager = CheckpointManager(str(tmp_path), keep=2)

    path = manager.save(5, sample_tensors(1.5), {"hooks": [{"merges": 2}]})

    loaded = read_checkpoint(path)
    assert loaded.step == 5
    assert loaded.state["hooks"] == [{"merges": 2}]
    assert torch.equal(loaded.tensors["model/weight"], torch.full((4, 3), 1.5))
    assert latest_checkpoint(str(tmp_path)) == path


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    manager = CheckpointManager(str(tmp_path), keep=3)
    good = manager.save(3, sample_tensors(3.0), {"note": "good"})

    def write_half_then_fail(tensors, path, *args, **kwargs):
        save_file(tensors, path)
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints, "save_file", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        manager.save(6, sample_tensors(6.0), {"note": "bad"})

    assert latest_checkpoint(str(tmp_path)) == good
    loaded = read_checkpoint(good)
    assert loaded.state["note"] == "good"
    assert torch.equal(loaded.tensors["model/weight"], torch.full((4, 3), 3.0))
    assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000003"]


def test_failed_rewrite_of_same_step_keeps_old_files(tmp_path, monkeypatch):
    manager = CheckpointManager(str(tmp_path), keep=3)
    manager.save(3, sample_tensors(3.0), {})

    def fail(*args, **kwargs):
        raise OSError("interrupted")

    monkeypatch.setattr(checkpoints, "save_file", fail)
    with pytest.raises(OSError):
        manager.save(3, sample_tensors(9.0), {})

    assert torch.equal(read_checkpoint(str(tmp_path / "step-00000003")).tensors["model/weight"],
                       torch.full((4, 3), 3.0))


def test_staging_leftover_is_ignored_and_removed(tmp_path):
    manager = CheckpointManager(str(tmp_path), keep=3)
    good = manager.save(3, sample_tensors(3.0), {})
    leftover = tmp_path / ".step-00000006-abc123"
    leftover.mkdir()
    (leftover / "tensors.safetensors").write_bytes(b"partial")

    assert latest_checkpoint(str(tmp_path)) == good
    CheckpointManager(str(tmp_path), keep=3)
    assert not leftover.exists()


def test_manager_keeps_last_k_step_checkpoints(tmp_path):
    manager = CheckpointManager(str(tmp_path), keep=2)
    for step in (2, 4, 6, 8):
        manager.save(step, sample_tensors(float(step)), {})
    manager.save(9, sample_tensors(9.0), {}, final=True)

    assert sorted(os.listdir(tmp_path)) == ["final", "latest", "step-00000006", "step-00000008"]
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "final")


def test_latest_without_pointer_prefers_final_then_highest_step(tmp_path):
    manager = CheckpointManager(str(tmp_path), keep=5)
    manager.save(2, sample_tensors(2.0), {})
    manager.save(4, sample_tensors(4.0), {})
    os.remove(tmp_path / "latest")
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "step-00000004")

    manager.save(5, sample_tensors(5.0), {}, final=True)
    os.remove(tmp_path / "latest")
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "final")


def test_latest_skips_pointer_to_incomplete_folder(tmp_path):
    manager = CheckpointManager(str(tmp_path), keep=5)
    good = manager.save(2, sample_tensors(2.0), {})
    (tmp_path / "step-00000004").mkdir()
    (tmp_path / "latest").write_text("step-00000004\n")

    assert latest_checkpoint(str(tmp_path)) == good


class _Exploit:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_never_unpickles(tmp_path):
    manager = CheckpointManager(str(tmp_path), keep=5)
    path = manager.save(2, sample_tensors(2.0), {})
    marker = tmp_path / "unpickled"
    with open(os.path.join(path, "tensors.safetensors"), "wb") as handle:
        pickle.dump({"model/weight": _Exploit(str(marker))}, handle)

    with pytest.raises(CheckpointError, match="corrupt checkpoint tensors"):
        read_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("damage, message", [
    ("missing-tensors", "checkpoint file missing"),
    ("missing-state", "checkpoint file missing"),
    ("garbage-tensors", "corrupt checkpoint tensors"),
    ("garbage-state", "corrupt checkpoint state"),
    ("state-without-step", "no integer 'step'"),
])
def test_damaged_checkpoint_raises_checkpoint_error(tmp_path, damage, message):
    path = CheckpointManager(str(tmp_path), keep=5).save(2, sample_tensors(2.0), {})
    tensors, state = os.path.join(path, "tensors.safetensors"), os.path.join(path, "state.json")
    if damage == "missing-tensors":
        os.remove(tensors)
    elif damage == "missing-state":
        os.remove(state)
    elif damage == "garbage-tensors":
        with open(tensors, "r+b") as handle:
            handle.truncate(40)
    elif damage == "garbage-state":
        with open(state, "w") as handle:
            handle.write('{"step": 2, "rng": ')
    else:
        with open(state, "w") as handle:
            handle.write('{"rng": {}}')

    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def test_rng_state_round_trip_through_json():
    import json

    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    saved = json.loads(json.dumps(rng_state()))
    expected = (random.random(), np.random.rand(), torch.rand(2))

    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    set_rng_state(saved)

    assert random.random() == expected[0]
    assert np.random.rand() == expected[1]
    assert torch.equal(torch.rand(2), expected[2])
