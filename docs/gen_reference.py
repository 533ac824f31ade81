"""Regenerate the component section of docs/language.md from the registry.

Usage: python docs/gen_reference.py [--check]
"""

from __future__ import annotations

import os
import sys

BEGIN = "<!-- BEGIN GENERATED COMPONENTS -->"
END = "<!-- END GENERATED COMPONENTS -->"
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "language.md")


def render() -> str:
    from reparamdsl.cli.components_cmd import markdown_reference
    from reparamdsl.semantics.registry import default_registry

    with open(PATH, encoding="utf-8") as handle:
        text = handle.read()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n\n{markdown_reference(default_registry(entry_points=False))}{END}{tail}"


def main() -> None:
    updated = render()
    with open(PATH, encoding="utf-8") as handle:
        current = handle.read()
    if "--check" in sys.argv:
        if updated != current:
            raise SystemExit("docs/language.md is out of date: run python docs/gen_reference.py")
        return
    with open(PATH, "w", encoding="utf-8") as handle:
        handle.write(updated)


if __name__ == "__main__":
    main()
