"""Lowering: build every declaration of a plan into PyTorch objects, in dependency order."""

from __future__ import annotations

import logging

import attrs
import torch

from reparamdsl.diagnostics import Diagnostic, ProgramError
from reparamdsl.lowering.context import BuildContext
from reparamdsl.semantics.plan import KIND_ORDER, Plan
from reparamdsl.semantics.registry import Registry

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """Map `auto`, `cpu`, `cuda` or `cuda:N` to a device; `auto` prefers CUDA when available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"invalid device '{name}': expected auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"unsupported device '{name}': expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device '{name}' was requested but torch.cuda.is_available() is false; "
                          "use --device cpu or install a CUDA build of torch")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


class DeviceError(ValueError):
    """The requested device string is invalid or not available here."""


def build_plan(plan: Plan, registry: Registry, device: torch.device, seed: int) -> BuildContext:
    """Build the plan's declarations; returns the context holding the built objects and hooks."""
    ctx = BuildContext(plan, registry, device, seed)
    torch.manual_seed(seed)
    for kind in KIND_ORDER:
        for decl in plan.of_kind(kind):
            if kind == "train":
                continue
            spec = registry.get(decl.kind, decl.component)
            if spec is None:
                raise ValueError(f"the plan names {decl.kind} component '{decl.component}', which is not registered")
            logger.info("building %s %s = %s", decl.kind, decl.name, decl.component)
            ctx.current = decl.name
            try:
                ctx.built[decl.name] = spec.load_builder()(decl.params, ctx)
            except ProgramError as error:
                raise _placed(error, plan, decl) from None
            except (ValueError, OSError, EOFError) as error:
                # Data problems (a malformed row, a truncated archive, an undecodable file)
                # surface from libraries as these; report them at the declaration.
                logger.debug("building %s %s failed", decl.kind, decl.name, exc_info=True)
                raise _placed(ProgramError([Diagnostic(f"{type(error).__name__}: {error}")]), plan, decl) from None
            except (RuntimeError, MemoryError) as error:
                if not _is_allocation_failure(error):
                    raise
                message = str(error).splitlines()[0]
                raise _placed(ProgramError([Diagnostic(
                    f"not enough memory to build it: {message}",
                    hint="check the sizes in this declaration (width, vocab, depth...)")]), plan, decl) from None
    return ctx


def _is_allocation_failure(error: BaseException) -> bool:
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error)
    return "DefaultCPUAllocator" in text or "not enough memory" in text or "out of memory" in text

def _placed(error: ProgramError, plan: Plan, decl) -> ProgramError:
    """Attach the declaration's position to build-time diagnostics that have none."""
    span = plan.spans.get(decl.name)
    diagnostics = []
    for diagnostic in error.diagnostics:
        if diagnostic.span is None and span is not None:
            diagnostic = attrs.evolve(diagnostic, span=span,
                                      message=f"{diagnostic.message} (in {decl.kind} '{decl.name}')")
        diagnostics.append(diagnostic)
    return ProgramError(diagnostics, {**plan.sources, **error.sources})
