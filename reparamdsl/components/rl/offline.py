"""Offline datasets for offline-to-online SAC: the npz format, loading and validation.

File format (`numpy.savez`, one row per transition, N rows):

| key | shape | dtype | meaning |
| --- | --- | --- | --- |
| observations | (N, obs_dim) | float32 | raw observation the action was taken in |
| actions | (N, action_dim) | float32 | action in the environment's units (what `env.step` received) |
| rewards | (N,) | float32 | reward |
| next_observations | (N, obs_dim) | float32 | true next observation (the final one when the episode ended) |
| terminated | (N,) | bool | the episode reached a terminal state |
| truncated | (N,) | bool | the episode was cut by a time limit |
| action_low, action_high | (action_dim,) | float64 | the environment's action box |
| env_id | () | str | the gymnasium id the data came from |
"""

from __future__ import annotations

import os

import numpy as np

from reparamdsl.diagnostics import Diagnostic, ProgramError

REQUIRED_KEYS = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated")


def _dataset_error(path: str, message: str, hint: str) -> ProgramError:
    return ProgramError([Diagnostic(f"dataset {path}: {message}", hint=hint)])


def save_dataset(path: str, data: dict[str, np.ndarray], env) -> None:
    """Write transitions in the format above; `data` contains the REQUIRED_KEYS arrays."""
    np.savez(path, **{key: data[key] for key in REQUIRED_KEYS}, action_low=env.action_low,
             action_high=env.action_high, env_id=np.array(env.env_id))


def load_dataset(path: str, env) -> dict[str, np.ndarray]:
    """Load and check a dataset against `env`; return it with `actions` mapped to the unit box.

    Raises ProgramError naming the file when it is missing, lacks a key, has
    inconsistent row counts, or was recorded for other observation or action spaces.
    """
    if not os.path.isfile(path):
        raise _dataset_error(path, "file not found",
                             "collect one with `rpc collect` or fix the path")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise _dataset_error(path, f"cannot be read as an npz archive ({error})",
                             "the file must come from numpy.savez with the documented keys") from error

    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise _dataset_error(path, f"missing key(s) {', '.join(missing)}",
                             f"a dataset needs the keys {', '.join(REQUIRED_KEYS)}")

    rows = {key: arrays[key].shape[0] if arrays[key].ndim else None for key in REQUIRED_KEYS}
    if len(set(rows.values())) != 1 or None in rows.values():
        counts = ", ".join(f"{key}={count}" for key, count in rows.items())
        raise _dataset_error(path, f"arrays have different numbers of rows ({counts})",
                             "every array must have one row per transition")
    if rows["rewards"] == 0:
        raise _dataset_error(path, "contains no transitions", "collect a dataset with at least one step")

    _check_shape(path, arrays, "observations", env.obs_dim, "observation")
    _check_shape(path, arrays, "next_observations", env.obs_dim, "observation")
    _check_shape(path, arrays, "actions", env.action_dim, "action")
    _check_action_box(path, arrays, env)

    unit_actions = (arrays["actions"].reshape(-1, env.action_dim) - env.action_bias) / env.action_scale
    return {
        "obs": arrays["observations"].reshape(-1, env.obs_dim).astype(np.float32),
        "actions": np.clip(unit_actions, -1.0, 1.0).astype(np.float32),
        "rewards": arrays["rewards"].reshape(-1).astype(np.float32),
        "next_obs": arrays["next_observations"].reshape(-1, env.obs_dim).astype(np.float32),
        "terminated": arrays["terminated"].reshape(-1).astype(np.float32),
    }


def _check_shape(path: str, arrays: dict, key: str, dim: int, what: str) -> None:
    size = int(np.prod(arrays[key].shape[1:]))
    if size != dim:
        raise _dataset_error(path, f"{key} have {size} values per row but the environment's {what} has {dim}",
                             "collect the dataset in the environment this program declares")


def _check_action_box(path: str, arrays: dict, env) -> None:
    if "action_low" in arrays and "action_high" in arrays:
        low, high = arrays["action_low"].reshape(-1), arrays["action_high"].reshape(-1)
        if low.shape != env.action_low.shape or not (np.allclose(low, env.action_low)
                                                     and np.allclose(high, env.action_high)):
            raise _dataset_error(path, f"action box [{low.tolist()}, {high.tolist()}] differs from the environment's "
                                       f"[{env.action_low.tolist()}, {env.action_high.tolist()}]",
                                 "collect the dataset in the environment this program declares")

    actions = arrays["actions"].reshape(-1, env.action_dim)
    tolerance = 1e-5 * np.maximum(1.0, np.abs(env.action_high - env.action_low))
    outside = (actions < env.action_low - tolerance) | (actions > env.action_high + tolerance)
    if outside.any():
        row = int(np.flatnonzero(outside.any(1))[0])
        raise _dataset_error(path, f"action row {row} {actions[row].tolist()} lies outside the environment's box "
                                   f"[{env.action_low.tolist()}, {env.action_high.tolist()}]",
                             "store actions in the environment's units, as env.step received them")
