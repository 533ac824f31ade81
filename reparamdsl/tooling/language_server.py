"""`rpc lsp`: a Language Server Protocol server for .rp programs, over stdio.

Features:
- diagnostics from the same front end as `rpc check`, on open, change and save;
- hover on a parameter name (type, default, range and doc from the registry)
  and on a component name (its doc and parameters);
- completion of component names after `kind name = `, of parameter names
  inside a block or argument list, and of values where the parameter's type
  names them (sub-components, enum choices, booleans, declarations);
- go-to-definition for `let` and declaration names (also across imports) and
  for import paths.

NOTE: columns are counted in code points; LSP clients count UTF-16 units, so
positions after a character outside the Basic Multilingual Plane on the same
line are off by one per such character.
"""

from __future__ import annotations

import logging
import os

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path

from reparamdsl.diagnostics import Diagnostic, ProgramError
from reparamdsl.semantics import types as T
from reparamdsl.semantics.frontend import check_source
from reparamdsl.semantics.registry import Registry, default_registry
from reparamdsl.tooling import cursor

logger = logging.getLogger(__name__)

SERVER_NAME = "reparamdsl"


def create_server(registry: Registry | None = None) -> LanguageServer:
    """Build a server with every feature registered; `start_io()` runs it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        own_version = version("reparamdsl")
    except PackageNotFoundError:
        own_version = "0"
    server = LanguageServer(SERVER_NAME, own_version)
    registry = registry or default_registry()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        publish_diagnostics(ls, params.text_document.uri, registry)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        publish_diagnostics(ls, params.text_document.uri, registry)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
        publish_diagnostics(ls, params.text_document.uri, registry)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: LanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        document = ls.workspace.get_text_document(params.text_document.uri)
        return hover_at(document.source, params.position, registry)

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=["=", "(", "{", " ", "\n"]))
    def completion(ls: LanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        document = ls.workspace.get_text_document(params.text_document.uri)
        return completions_at(document.source, params.position, registry)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: LanguageServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        document = ls.workspace.get_text_document(params.text_document.uri)
        return definition_at(document.source, document.path, params.position)

    return server


# Diagnostics


def publish_diagnostics(ls: LanguageServer, uri: str, registry: Registry) -> None:
    document = ls.workspace.get_text_document(uri)
    diagnostics = diagnostics_for(document.source, document.path, registry)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))


def diagnostics_for(source: str, path: str, registry: Registry) -> list[lsp.Diagnostic]:
    """Check `source` as the file `path` and convert the errors to LSP diagnostics (0-based ranges)."""
    path = os.path.abspath(path)
    try:
        check_source(source, path, registry=registry)
    except ProgramError as error:
        return [_to_lsp(diagnostic, path) for diagnostic in error.diagnostics]
    except Exception:
        # The editor session must survive a front-end bug; the log names it.
        logger.exception("checking %s failed", path)
        return []
    return []


def _to_lsp(diagnostic: Diagnostic, path: str) -> lsp.Diagnostic:
    message = diagnostic.message + (f"\nhint: {diagnostic.hint}" if diagnostic.hint else "")
    span = diagnostic.span
    if span is not None and span.file == path:
        start = lsp.Position(line=span.line - 1, character=span.column - 1)
        end = lsp.Position(line=span.end_line - 1, character=max(span.end_column - 1, span.column))
    else:
        # Problems in an imported file or in the whole file sit at the top of this one.
        start = end = lsp.Position(line=0, character=0)
        if span is not None:
            message = f"{span}: {message}"
    related = [lsp.DiagnosticRelatedInformation(
        location=lsp.Location(uri=from_fs_path(note_span.file) or note_span.file, range=_range(note_span)),
        message=note) for note, note_span in diagnostic.notes if note_span is not None]
    severity = lsp.DiagnosticSeverity.Error if diagnostic.severity == "error" else lsp.DiagnosticSeverity.Warning
    return lsp.Diagnostic(range=lsp.Range(start=start, end=end), message=message, severity=severity,
                          source=SERVER_NAME, related_information=related or None)


def _range(span) -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=span.line - 1, character=span.column - 1),
                     end=lsp.Position(line=span.end_line - 1, character=span.end_column - 1))


# Hover


def hover_at(source: str, position: lsp.Position, registry: Registry) -> lsp.Hover | None:
    tokens = cursor.tokenize(source)
    word = cursor.token_at(tokens, position.line, position.character)
    if word is None or word.type != "NAME":
        return None

    context = cursor.context_at(source, word.line, word.column, registry)
    text = None
    if context.position == "key" and context.spec is not None:
        text = cursor.describe_param(context.spec, word.text)
    elif context.position == "component":
        spec = registry.get(context.kind, word.text)
        text = cursor.describe_component(spec) if spec is not None else None
    elif context.position == "value":
        param = context.spec.param(context.key) if context.spec is not None and context.key else None
        for kind in cursor.component_kinds(param.type if param else None):
            spec = registry.get(kind, word.text)
            if spec is not None:
                text = cursor.describe_component(spec)
    if text is None:
        return None
    word_range = lsp.Range(start=lsp.Position(line=word.line, character=word.column),
                           end=lsp.Position(line=word.line, character=word.end_column))
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text), range=word_range)


# Completion


def completions_at(source: str, position: lsp.Position, registry: Registry) -> lsp.CompletionList:
    context = cursor.context_at(source, position.line, position.character, registry)
    items: list[lsp.CompletionItem] = []

    if context.position == "component":
        items = [_component_item(registry, context.kind, name) for name in registry.names(context.kind)]
    elif context.position == "key" and context.spec is not None:
        for param in context.spec.params:
            detail = param.type.describe()
            items.append(lsp.CompletionItem(label=param.name, kind=lsp.CompletionItemKind.Property, detail=detail,
                                            documentation=param.doc or None, insert_text=f"{param.name} = "))
    elif context.position == "value" and context.spec is not None and context.key is not None:
        param = context.spec.param(context.key)
        if param is not None:
            items = _value_items(param.type, source, registry)

    if context.prefix:
        items = [item for item in items if item.label.startswith(context.prefix)]
    return lsp.CompletionList(is_incomplete=False, items=items)


def _component_item(registry: Registry, kind: str, name: str) -> lsp.CompletionItem:
    spec = registry.get(kind, name)
    return lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Class, detail=f"{kind} component",
                              documentation=spec.doc if spec is not None else None)


def _value_items(param_type: T.ParamType, source: str, registry: Registry) -> list[lsp.CompletionItem]:
    items = []
    for kind in cursor.component_kinds(param_type):
        items += [_component_item(registry, kind, name) for name in registry.names(kind)]
    for choice in _enum_choices(param_type):
        items.append(lsp.CompletionItem(label=choice, kind=lsp.CompletionItemKind.EnumMember))
    if _accepts(param_type, T.Bool):
        items += [lsp.CompletionItem(label=word, kind=lsp.CompletionItemKind.Keyword) for word in ("true", "false")]
    for kind in _ref_kinds(param_type):
        for definition in cursor.definitions(source).values():
            if definition.kind == kind:
                items.append(lsp.CompletionItem(label=definition.name, kind=lsp.CompletionItemKind.Variable,
                                                detail=f"{kind} {definition.component}"))
    return items


def _enum_choices(param_type: T.ParamType) -> list[str]:
    return [choice for inner in cursor.inner_types(param_type) if isinstance(inner, T.Enum) for choice in inner.choices]


def _accepts(param_type: T.ParamType, cls: type) -> bool:
    return any(isinstance(inner, cls) for inner in cursor.inner_types(param_type))


def _ref_kinds(param_type: T.ParamType) -> list[str]:
    return [inner.kind for inner in cursor.inner_types(param_type) if isinstance(inner, T.Ref)]


# Definitions


def definition_at(source: str, path: str, position: lsp.Position) -> lsp.Location | None:
    tokens = cursor.tokenize(source)
    word = cursor.token_at(tokens, position.line, position.character)
    if word is None:
        return None
    base = os.path.dirname(os.path.abspath(path))

    if word.type == "STRING":
        for token, target in cursor.imports(source):
            if token == word:
                target_path = os.path.normpath(os.path.join(base, target))
                if os.path.isfile(target_path):
                    return _location(target_path, 0, 0, 0)
        return None
    if word.type != "NAME":
        return None

    head = _reference_head(tokens, word)
    found = _find_definition(head.text, os.path.abspath(path), source, set())
    if found is None:
        return None
    target_path, definition = found
    return _location(target_path, definition.line, definition.column, len(definition.name))


def _reference_head(tokens: list[cursor.Tok], word: cursor.Tok) -> cursor.Tok:
    """Return the first name of the dotted reference that contains `word` (`corpus` in `corpus.vocab_size`)."""
    index = tokens.index(word)
    while index >= 2 and tokens[index - 1].type == "." and tokens[index - 2].type == "NAME":
        index -= 2
    return tokens[index]


def _find_definition(name: str, path: str, source: str, seen: set[str]) -> tuple[str, cursor.Definition] | None:
    """Look in this file, then depth first through its imports (each file once)."""
    seen.add(path)
    found = cursor.definitions(source).get(name)
    if found is not None:
        return path, found
    for _, target in cursor.imports(source):
        target_path = os.path.normpath(os.path.join(os.path.dirname(path), target))
        if target_path in seen or not os.path.isfile(target_path):
            continue
        try:
            with open(target_path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError):
            continue
        result = _find_definition(name, target_path, text, seen)
        if result is not None:
            return result
    return None


def _location(path: str, line: int, column: int, length: int) -> lsp.Location:
    return lsp.Location(uri=from_fs_path(path) or path,
                        range=lsp.Range(start=lsp.Position(line=line, character=column),
                                        end=lsp.Position(line=line, character=column + length)))


def main() -> None:
    """Serve over stdin and stdout until the client sends `exit`."""
    create_server().start_io()
