"""`rpc components`: list the components a program can name, with their parameters."""

from __future__ import annotations

import click

from reparamdsl.semantics.registry import REQUIRED


@click.command()
@click.argument("kind", required=False)
@click.argument("name", required=False)
def components(kind: str | None, name: str | None) -> None:
    """List components by kind, or show one component's parameters.

    \b
    Examples:
      rpc components
      rpc components model
      rpc components model llama
    """
    from reparamdsl.semantics.registry import default_registry

    registry = default_registry()
    if kind is not None and kind not in registry.kinds():
        raise click.UsageError(f"unknown component kind '{kind}': expected one of {', '.join(registry.kinds())}")

    specs = [s for s in registry.specs() if (kind is None or s.kind == kind) and (name is None or s.name == name)]
    if name is not None and not specs:
        raise click.UsageError(f"unknown {kind} component '{name}': available {', '.join(registry.names(kind))}")

    for spec in specs:
        click.echo(f"{spec.kind} {spec.name}: {spec.doc}")
        if name is None and kind is None:
            continue
        for param in spec.params:
            default = "required" if param.default is REQUIRED else f"default {format_default(param.default)}"
            click.echo(f"    {param.name}: {param.type.describe()}, {default}. {param.doc}")


def format_default(value) -> str:
    if isinstance(value, dict) and "component" in value:
        return value["component"]
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
