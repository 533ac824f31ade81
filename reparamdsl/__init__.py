"""reparamdsl: a config-as-code training language and its compiler.

`compile_source` and `compile_file` check a program and lower it to PyTorch;
`check` only checks it (without importing torch).
"""

from reparamdsl.api import check, compile_file, compile_source
from reparamdsl.diagnostics import Diagnostic, ProgramError, Span

__all__ = ["Diagnostic", "ProgramError", "Span", "check", "compile_file", "compile_source"]
__version__ = "0.1.0"
