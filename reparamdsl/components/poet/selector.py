"""Selection of the linear layers that POET reparameterizes."""

from __future__ import annotations

import fnmatch
import re

from torch import nn

from reparamdsl.diagnostics import Diagnostic, ProgramError

# Module-name segments that mark attention and feed-forward sublayers.
ATTENTION_SEGMENTS = frozenset({"attn", "attention", "self_attn"})
MLP_SEGMENTS = frozenset({"mlp", "ffn", "feed_forward"})
PRESETS = ("linear", "attention", "mlp")
MAX_LISTED = 40


def _in_section(name: str, segments: frozenset) -> bool:
    return any(part in segments for part in name.split("."))


def _summarize(names: list[str]) -> str:
    """List module names, collapsing layer indices into `*` when the list is long."""
    if len(names) <= MAX_LISTED:
        return ", ".join(names)
    counts: dict[str, int] = {}
    for name in names:
        pattern = re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.)", "*", name)
        counts[pattern] = counts.get(pattern, 0) + 1
    return ", ".join(f"{pattern} (x{count})" if count > 1 else pattern for pattern, count in counts.items())


def _no_match_error(message: str, linear_names: list[str], model_name: str) -> ProgramError:
    available = _summarize(linear_names) if linear_names else "none"
    return ProgramError([Diagnostic(
        f"{message} in model '{model_name}'",
        hint=f"linear modules of '{model_name}': {available}",
    )])


def select_linear_modules(model: nn.Module, select, exclude: list[str], model_name: str = "model"
                          ) -> list[tuple[str, nn.Linear]]:
    """Return (qualified name, module) of every nn.Linear that `select` picks and `exclude` does not.

    `select` is "linear" (all), "attention", "mlp", or a list of glob patterns
    over qualified module names (`*` also matches dots). Raises ProgramError,
    listing the linear modules, when a pattern or the whole selection matches none.
    """
    linear = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    linear_names = [name for name, _ in linear]

    if isinstance(select, str) and select in PRESETS:
        if select == "linear":
            chosen = linear
        elif select == "attention":
            chosen = [(n, m) for n, m in linear if _in_section(n, ATTENTION_SEGMENTS)]
        else:
            chosen = [(n, m) for n, m in linear if _in_section(n, MLP_SEGMENTS)]
        description = f"select = \"{select}\""
    else:
        patterns = [select] if isinstance(select, str) else list(select)
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(name, pattern) for name in linear_names):
                raise _no_match_error(f"POET select pattern '{pattern}' matches no linear module",
                                      linear_names, model_name)
        chosen = [(n, m) for n, m in linear if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        description = f"select = {patterns}"

    kept = [(n, m) for n, m in chosen if not any(fnmatch.fnmatchcase(n, p) for p in exclude)]
    if not kept:
        excluded = f" after exclude = {list(exclude)}" if chosen else ""
        raise _no_match_error(f"POET {description}{excluded} leaves no linear module", linear_names, model_name)
    return kept
