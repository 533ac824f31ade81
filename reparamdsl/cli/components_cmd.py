"""`rpc components`: list the components a program can name, with their parameters."""

from __future__ import annotations

import click

from reparamdsl.semantics.registry import REQUIRED, format_default


@click.command()
@click.argument("kind", required=False)
@click.argument("name", required=False)
@click.option("--markdown", is_flag=True, help="Print the reference (of the selected components) as Markdown.")
def components(kind: str | None, name: str | None, markdown: bool) -> None:
    """List components by kind, or show one component's parameters.

    \b
    Examples:
      rpc components
      rpc components model
      rpc components model llama
      rpc components --markdown > reference.md
    """
    from reparamdsl.semantics.registry import default_registry

    registry = default_registry()
    if kind is not None and kind not in registry.kinds():
        raise click.UsageError(f"unknown component kind '{kind}': expected one of {', '.join(registry.kinds())}")

    specs = [s for s in registry.specs() if (kind is None or s.kind == kind) and (name is None or s.name == name)]
    if name is not None and not specs:
        raise click.UsageError(f"unknown {kind} component '{name}': available {', '.join(registry.names(kind))}")
    if markdown:
        click.echo(markdown_reference(registry, kind, name), nl=False)
        return

    for spec in specs:
        click.echo(f"{spec.kind} {spec.name}: {spec.doc}")
        if name is None and kind is None:
            continue
        for param in spec.params:
            default = "required" if param.default is REQUIRED else f"default {format_default(param.default)}"
            click.echo(f"    {param.name}: {param.type.describe()}, {default}. {param.doc}")


def markdown_reference(registry, only_kind: str | None = None, only_name: str | None = None) -> str:
    """Render the registered components (all, one kind, or one component) and their parameters as Markdown."""
    lines = []
    for kind in registry.kinds():
        if only_kind is not None and kind != only_kind:
            continue
        lines.append(f"### {kind}")
        lines.append("")
        for spec in registry.specs():
            if spec.kind != kind or (only_name is not None and spec.name != only_name):
                continue
            lines.append(f"#### `{kind} {spec.name}`")
            lines.append("")
            lines.append(spec.doc)
            lines.append("")
            if not spec.params:
                lines.append("No parameters.")
                lines.append("")
                continue
            lines.append("| parameter | type | default | meaning |")
            lines.append("| --- | --- | --- | --- |")
            for param in spec.params:
                default = "required" if param.default is REQUIRED else f"`{format_default(param.default)}`"
                kind_text = param.type.describe().replace("|", "\\|")
                doc = param.doc.replace("|", "\\|")
                lines.append(f"| `{param.name}` | {kind_text} | {default} | {doc} |")
            lines.append("")
    return "\n".join(lines)
