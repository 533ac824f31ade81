"""The embedding API: compile a program from text or a file and use it from Python.

Example:
    import reparamdsl as rp
    program = rp.compile_file("programs/lm_adamw.rp", overrides={"train.steps": 20})
    print(program.plan.hash, program.parameter_counts())
    metrics = program.run()

Nothing here is global: every call builds its own registry, modules and
generators, so several programs can be compiled and trained in one process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from reparamdsl.diagnostics import Diagnostic, ProgramError
from reparamdsl.semantics.frontend import check_file, check_source
from reparamdsl.semantics.plan import Plan
from reparamdsl.semantics.registry import Registry


def check(text: str, path: str = "<string>", overrides: Mapping[str, object] | None = None,
          registry: Registry | None = None) -> list[Plan]:
    """Check program text and return its plans without importing torch."""
    plans, _ = check_source(text, path, _stringify(overrides), registry)
    return plans


def compile_source(text: str, path: str = "<string>", overrides: Mapping[str, object] | None = None,
                   device: str = "auto", seed: int | None = None, registry: Registry | None = None):
    """Check and lower program text; returns a `Program` (or raises `ProgramError`)."""
    if not isinstance(text, str):
        raise TypeError(f"compile_source expects the program text as str, got {type(text).__name__}"
                        + ("; decode the bytes first" if isinstance(text, (bytes, bytearray)) else ""))
    plans, sources = check_source(text, path, _stringify(overrides, seed), registry)
    return _single_program(plans, sources, device, registry)


def compile_file(path: str, overrides: Mapping[str, object] | None = None, device: str = "auto",
                 seed: int | None = None, registry: Registry | None = None):
    """Check and lower a program file; returns a `Program` (or raises `ProgramError`)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"compile_file expects a path, got {type(path).__name__}")
    plans, sources = check_file(os.fspath(path), _stringify(overrides, seed), registry)
    return _single_program(plans, sources, device, registry)


def _single_program(plans, sources, device, registry):
    from reparamdsl.lowering.program import Program

    if len(plans) != 1:
        raise ProgramError([Diagnostic(
            f"the program expands to {len(plans)} sweep points; compile_* builds one program",
            hint="use reparamdsl.check(...) to list the plans, or override each swept value")], sources)
    return Program.from_plan(plans[0], device=device, registry=registry)


def _stringify(overrides: Mapping[str, object] | None, seed: int | None = None) -> dict[str, str]:
    """Turn Python override values into the language's syntax (`True` -> `true`, lists, strings).

    `seed` becomes the override `train.seed`, so the checker validates it like any other value.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a mapping such as {{'train.steps': 100}}, got {type(overrides).__name__}")
    overrides = dict(overrides or {})
    if seed is not None:
        overrides["train.seed"] = seed
    converted = {}
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise _override_error(f"override keys must be strings, got {key!r}")
        converted[key] = _to_source(key, value)
    return converted


def _to_source(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_to_source(key, v) for v in value) + "]"
    if isinstance(value, int):
        # Python refuses to print integers of thousands of digits; the checker's range message is clearer.
        return repr(value) if abs(value) < 10**30 else "1e999"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _override_error(f"override '{key}' must be a finite number, got {value}")
        return repr(value)
    if isinstance(value, str):
        return value
    raise _override_error(f"override '{key}' has unsupported type {type(value).__name__}",
                          "pass a number, bool, None, a list, or source text as a str")


def _override_error(message: str, hint: str | None = None) -> ProgramError:
    return ProgramError([Diagnostic(message, hint=hint)])
