"""reparamdsl: a config-as-code training language and its compiler.

`compile_source` and `compile_file` check a program and lower it to PyTorch;
`check` only checks it (without importing torch).

Errors: `ProgramError` for anything wrong in a program, its overrides or its
data (with diagnostics); `DeviceError` for a device that is invalid or not
available; `RunFolderError` and `CheckpointError` for run folders and
checkpoints that cannot be used; `TypeError` for arguments of the wrong type.
"""

from reparamdsl.api import check, compile_file, compile_source
from reparamdsl.diagnostics import Diagnostic, ProgramError, Span

__all__ = ["CheckpointError", "DeviceError", "Diagnostic", "ProgramError", "RunFolderError", "Span", "check",
           "compile_file", "compile_source"]

# Errors of lowering and running live in modules that import torch; load them on first use so
# that `import reparamdsl` and `check` stay torch-free.
_LAZY_ERRORS = {
    "DeviceError": "reparamdsl.lowering.build",
    "CheckpointError": "reparamdsl.runtime.checkpoint",
    "RunFolderError": "reparamdsl.runtime.session",
}


def __getattr__(name: str):
    if name in _LAZY_ERRORS:
        import importlib

        return getattr(importlib.import_module(_LAZY_ERRORS[name]), name)
    raise AttributeError(f"module 'reparamdsl' has no attribute {name!r}")
__version__ = "0.1.0"
