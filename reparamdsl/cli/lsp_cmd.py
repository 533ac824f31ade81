"""`rpc lsp`: run the language server over stdio for an editor."""

from __future__ import annotations

import click


@click.command("lsp")
def lsp() -> None:
    """Run the .rp language server on standard input and output.

    Editors start this command and speak the Language Server Protocol to it:
    diagnostics as you type (the same checks as `rpc check`), hover docs for
    parameters and components, completion and go-to-definition.

    \b
    Example (any LSP client): command ["rpc", "lsp"], file pattern *.rp
    """
    from reparamdsl.tooling.language_server import main

    main()
