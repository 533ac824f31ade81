"""The torch-free front end: source text to checked plans, or every diagnostic at once."""

from __future__ import annotations

import os
from collections.abc import Mapping

import attrs

from reparamdsl.diagnostics import DiagnosticSink, ProgramError
from reparamdsl.semantics.checker import Checker
from reparamdsl.semantics.plan import Plan
from reparamdsl.semantics.registry import Registry, default_registry
from reparamdsl.semantics.resolver import Loader, apply_overrides, collect_names, expand_sweeps


def check_file(path: str, overrides: Mapping[str, str] | None = None,
               registry: Registry | None = None) -> tuple[list[Plan], dict[str, str]]:
    """Check a program file; return its plans (one per sweep point) and the sources read."""
    return _check(path, None, overrides, registry)


def check_source(text: str, path: str = "<string>", overrides: Mapping[str, str] | None = None,
                 registry: Registry | None = None) -> tuple[list[Plan], dict[str, str]]:
    """Check program text; `path` names it in diagnostics and anchors relative imports and paths."""
    return _check(path, text, overrides, registry)


def _check(path: str, text: str | None, overrides, registry) -> tuple[list[Plan], dict[str, str]]:
    registry = registry or default_registry()
    sink = DiagnosticSink()
    sources: dict[str, str] = {}

    loader = Loader(sink, sources)
    if text is None:
        loader.load_file(path)
        path = os.path.abspath(path)
    else:
        if path != "<string>":
            path = os.path.abspath(path)
        loader.load_source(text, path)
    sink.raise_if_errors(sources)

    lets, decls = collect_names(loader, sink)
    apply_overrides(lets, decls, {k: str(v) for k, v in (overrides or {}).items()}, sink, sources, registry)
    variants = expand_sweeps(path, lets, decls, sink, sources)
    sink.raise_if_errors(sources)

    plans = []
    for variant in variants:
        plan = Checker(variant, registry, sink).check()
        if plan is not None:
            plans.append(attrs.evolve(plan, sources=sources))
    sink.raise_if_errors(sources)
    return plans, sources


__all__ = ["check_file", "check_source", "ProgramError"]
