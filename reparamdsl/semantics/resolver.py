"""Resolution: load a program and its imports, collect names, apply overrides, expand sweeps.

The result is a `Resolved` program per sweep point: every `let` and every
declaration by name, with overrides already substituted into the AST, ready
for the checker.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping

import attrs

from reparamdsl.diagnostics import DiagnosticSink, ProgramError, Span, did_you_mean
from reparamdsl.syntax import ast
from reparamdsl.syntax.parser import parse_program, parse_value

OVERRIDE_FILE = "<command line>"

# Sweeps expand to the cartesian product of their values; a few sweeps of many
# values would otherwise produce millions of plans and never finish checking.
MAX_SWEEP_POINTS = 10_000


@attrs.frozen
class Resolved:
    """One fully resolved program variant: names bound, overrides applied, sweeps chosen."""

    path: str
    lets: dict[str, ast.Let]
    decls: dict[str, ast.Decl]
    sweep_label: str | None = None
    sweep_values: dict[str, str] = attrs.field(factory=dict)


class Loader:
    """Parse a root program and its imports once each; report import errors as diagnostics."""

    def __init__(self, sink: DiagnosticSink, sources: dict[str, str]):
        self.sink = sink
        self.sources = sources
        self.programs: dict[str, ast.Program] = {}
        self.order: list[str] = []

    def load_file(self, path: str) -> None:
        path = os.path.abspath(path)
        text = read_source(path)
        self.load_source(text, path)

    def load_source(self, text: str, path: str) -> None:
        self._load(text, path, stack=())

    @staticmethod
    def normalize(text: str) -> str:
        """Drop a leading byte-order mark and turn CR and CRLF line ends into LF, as positions count LF."""
        return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")

    def _load(self, text: str, path: str, stack: tuple[str, ...]) -> None:
        text = self.normalize(text)
        self.sources[path] = text
        try:
            program = parse_program(text, path)
        except ProgramError as error:
            self.sink.extend(error.diagnostics)
            return
        self.programs[path] = program

        for item in program.items:
            if isinstance(item, ast.Import):
                self._load_import(item, path, stack + (path,))
        self.order.append(path)

    def _load_import(self, item: ast.Import, importer: str, stack: tuple[str, ...]) -> None:
        base = os.path.dirname(importer) if os.path.isabs(importer) else os.getcwd()
        if "\x00" in item.path:
            self.sink.error("import path contains a NUL character", item.path_span)
            return
        target = os.path.normpath(os.path.join(base, item.path))
        # Symbolic links are resolved so that one file reached by two paths is loaded once.
        real_stack = [os.path.realpath(p) for p in stack]
        real_target = os.path.realpath(target)
        if real_target in real_stack:
            index = real_stack.index(real_target)
            chain = " -> ".join(os.path.basename(p) for p in stack[index:] + (target,))
            self.sink.error(f"import cycle: {chain}", item.path_span,
                            hint="move the shared declarations into a file that both can import")
            return
        if any(os.path.realpath(p) == real_target for p in list(self.programs) + list(self.sources)):
            return
        if os.path.isdir(target):
            self.sink.error(f"cannot import a folder: {item.path} (resolved to {target})", item.path_span,
                            hint="import a .rp file")
            return
        if os.path.exists(target) and not os.path.isfile(target):
            self.sink.error(f"cannot import {item.path}: not a regular file", item.path_span)
            return
        if not os.path.isfile(target):
            self.sink.error(f"imported file not found: {item.path} (looked for {target})", item.path_span,
                            hint="import paths are relative to the file that contains the import")
            return
        try:
            text = read_source(target)
        except ProgramError as error:
            for diagnostic in error.diagnostics:
                self.sink.error(diagnostic.message, item.path_span, hint=diagnostic.hint)
            return
        self._load(text, target, stack)


def read_source(path: str) -> str:
    """Read a program file as UTF-8; raise `ProgramError` naming the file on failure."""
    from reparamdsl.diagnostics import Diagnostic

    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ProgramError([Diagnostic(f"program file not found: {path}")]) from None
    except OSError as error:
        raise ProgramError([Diagnostic(f"cannot read {path}: {error.strerror}")]) from None
    if stat.S_ISDIR(mode):
        raise ProgramError([Diagnostic(f"expected a program file, found a folder: {path}")])
    if not stat.S_ISREG(mode) and not path.startswith("/dev/fd/"):
        raise ProgramError([Diagnostic(f"cannot read {path}: not a regular file",
                                       hint="pass a .rp file (pipes and devices are not read)")])
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ProgramError([Diagnostic(f"program file not found: {path}")]) from None
    except IsADirectoryError:
        raise ProgramError([Diagnostic(f"expected a program file, found a folder: {path}")]) from None
    except OSError as error:
        raise ProgramError([Diagnostic(f"cannot read {path}: {error.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise ProgramError([Diagnostic(
            f"invalid UTF-8 byte 0x{data[error.start]:02x} in program file",
            Span.point(path, line, column), hint="save the file as UTF-8")]) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ProgramError([Diagnostic("program file contains a NUL byte", Span.point(path, line, 1),
                                       hint="this does not look like a text file")]) from None
    return text


def collect_names(loader: Loader, sink: DiagnosticSink) -> tuple[dict[str, ast.Let], dict[str, ast.Decl]]:
    """Bind every `let` and declaration name across the loaded files; duplicates are errors."""
    lets: dict[str, ast.Let] = {}
    decls: dict[str, ast.Decl] = {}
    first_span: dict[str, Span] = {}

    for path in loader.order:
        for item in loader.programs[path].items:
            if isinstance(item, ast.Let):
                name, span, table = item.name, item.name_span, lets
            elif isinstance(item, ast.Decl):
                name, span, table = item.name, item.name_span, decls
            else:
                continue
            if name in first_span:
                message = "duplicate train block" if name == "train" else f"duplicate name '{name}'"
                sink.error(message, span,
                           hint="give each let constant and declaration its own name",
                           notes=(("first defined here", first_span[name]),))
                continue
            first_span[name] = span
            table[name] = item
    return lets, decls


def apply_overrides(lets: dict[str, ast.Let], decls: dict[str, ast.Decl], overrides: Mapping[str, str],
                    sink: DiagnosticSink, sources: dict[str, str], registry) -> None:
    """Substitute `key=value` overrides into the AST; the values use the language's own syntax."""
    lines = [f"{key}={value}" for key, value in overrides.items()]
    if lines:
        sources[OVERRIDE_FILE] = "\n".join(lines)

    for index, (key, text) in enumerate(overrides.items()):
        padded = "\n" * index + " " * (len(key) + 1) + str(text)
        key_span = Span(OVERRIDE_FILE, index + 1, 1, index + 1, len(key) + 1)
        try:
            value = parse_value(padded, OVERRIDE_FILE)
        except ProgramError as error:
            sink.extend(error.diagnostics)
            continue
        _apply_one(key, key_span, value, lets, decls, sink, registry)


def _apply_one(key, key_span, value, lets, decls, sink, registry) -> None:
    parts = key.split(".")
    if not all(part.isidentifier() for part in parts):
        sink.error(f"invalid override key '{key}'", key_span,
                   hint="write overrides as name=value or declaration.parameter=value")
        return

    head = parts[0]
    if head in lets and len(parts) == 1:
        let = lets[head]
        lets[head] = attrs.evolve(let, value=value)
        return
    if head == "train" and "train" not in decls and len(parts) >= 2:
        decls["train"] = ast.Decl(key_span, "train", "train", key_span, "train", key_span, (), None, (), key_span)
    if head in decls and len(parts) >= 2:
        decl = _name_positional_args(decls[head], registry)
        decl = _with_default_component(decl, parts[1], key_span, registry) if len(parts) >= 3 else decl
        decls[head] = _override_entry(decl, parts[1:], key_span, value)
        return

    candidates = list(lets) + [f"{name}.{p.name}" for name, decl in decls.items()
                               for p in _spec_params(registry, decl)]
    sink.error(f"unknown override key '{key}'", key_span,
               hint=did_you_mean(key, candidates) or "an override names a let constant or declaration.parameter")


def _name_positional_args(decl: ast.Decl, registry) -> ast.Decl:
    """Give positional arguments their parameter names, so an override can replace them."""
    spec = registry.get(decl.kind, decl.component) if registry is not None else None
    if spec is None or all(arg.name is not None for arg in decl.args):
        return decl
    taken = {"target"} if decl.target is not None else set()
    taken |= {arg.name for arg in decl.args if arg.name is not None}
    taken |= {entry.key for entry in decl.entries}
    free = [param.name for param in spec.params if param.name not in taken]
    args = []
    for arg in decl.args:
        if arg.name is None and free:
            arg = attrs.evolve(arg, name=free.pop(0))
        args.append(arg)
    return attrs.evolve(decl, args=tuple(args))


def _with_default_component(decl: ast.Decl, key: str, span: Span, registry) -> ast.Decl:
    """Make a defaulted component parameter explicit, so `train.schedule.warmup=...` can set inside it."""
    if any(entry.key == key for entry in decl.entries) or any(arg.name == key for arg in decl.args):
        return decl
    spec = registry.get(decl.kind, decl.component) if registry is not None else None
    param = spec.param(key) if spec is not None else None
    default = param.default if param is not None else None
    if isinstance(default, dict):
        name = default.get("component")
    elif isinstance(default, str):
        name = default
    else:
        return decl
    if name is None:
        return decl
    call = ast.Call(span, name, span, (), ())
    return attrs.evolve(decl, entries=decl.entries + (ast.Entry(span, key, span, call),))


def _spec_params(registry, decl: ast.Decl):
    spec = registry.get(decl.kind, decl.component) if registry is not None else None
    return spec.params if spec is not None else ()


def _override_entry(node, path: list[str], span: Span, value: ast.Node):
    """Set `path` inside a declaration or call to `value`, adding the entry when absent."""
    key, rest = path[0], path[1:]
    entries = list(node.entries)
    for index, entry in enumerate(entries):
        if entry.key == key:
            if rest:
                inner = _as_call(entry.value)
                entries[index] = attrs.evolve(entry, value=_override_entry(inner, rest, span, value))
            else:
                entries[index] = attrs.evolve(entry, value=value)
            return attrs.evolve(node, entries=tuple(entries))

    args = list(node.args)
    for index, arg in enumerate(args):
        if arg.name == key:
            new_value = _override_entry(_as_call(arg.value), rest, span, value) if rest else value
            args[index] = attrs.evolve(arg, value=new_value)
            return attrs.evolve(node, args=tuple(args))

    if rest:
        raise_value = ast.Call(span, key, span, (), ())
        new_value = _override_entry(raise_value, rest, span, value)
    else:
        new_value = value
    entries.append(ast.Entry(span, key, span, new_value))
    return attrs.evolve(node, entries=tuple(entries))


def _as_call(node: ast.Node) -> ast.Node:
    if isinstance(node, ast.Call):
        return node
    if isinstance(node, ast.Ref) and len(node.parts) == 1:
        return ast.Call(node.span, node.parts[0], node.span, (), ())
    if isinstance(node, ast.String):
        return ast.Call(node.span, node.value, node.span, (), ())
    return ast.Call(node.span, "<value>", node.span, (), ())


# Sweeps


def find_sweeps(lets: dict[str, ast.Let], decls: dict[str, ast.Decl]) -> list[tuple[str, ast.Call]]:
    """Return every `sweep(...)` call with the key path it sets, in a stable order."""
    sites: list[tuple[str, ast.Call]] = []
    for name, let in lets.items():
        _walk_sweeps(let.value, name, sites)
    for name, decl in decls.items():
        for arg in decl.args:
            _walk_sweeps(arg.value, f"{name}.{arg.name or '?'}", sites)
        for entry in decl.entries:
            _walk_sweeps(entry.value, f"{name}.{entry.key}", sites)
    return sites


def _walk_sweeps(node: ast.Node, path: str, sites: list) -> None:
    if isinstance(node, ast.Call):
        if node.name == "sweep":
            sites.append((path, node))
            return
        for arg in node.args:
            _walk_sweeps(arg.value, f"{path}.{arg.name or '?'}", sites)
        for entry in node.entries:
            _walk_sweeps(entry.value, f"{path}.{entry.key}", sites)
    # A sweep inside a list or arithmetic is not a whole value: the checker reports it.


def expand_sweeps(path: str, lets, decls, sink: DiagnosticSink, sources: dict[str, str]) -> list[Resolved]:
    """Expand the cartesian product of all sweeps into separate resolved programs."""
    sites = find_sweeps(lets, decls)
    if not sites:
        return [Resolved(path, lets, decls)]

    choices = []
    for key, call in sites:
        if call.entries or any(arg.name is not None for arg in call.args) or not call.args:
            sink.error("sweep(...) takes one or more values, without names", call.span,
                       hint="write sweep(1e-3, 3e-4)")
            return []
        choices.append([(key, call, arg.value) for arg in call.args])

    points = 1
    for options in choices:
        points *= len(options)
    if points > MAX_SWEEP_POINTS:
        sink.error(f"the sweeps expand to {points} points, more than {MAX_SWEEP_POINTS}", sites[0][1].span,
                   hint="sweep fewer values at once, or run the sweeps in several programs")
        return []

    variants = []
    for combination in itertools.product(*choices):
        mapping = {id(call): value for _, call, value in combination}
        values = {key: _source_text(value, sources) for key, _, value in combination}
        label = ",".join(f"{key}={text}" for key, text in values.items())
        variant_lets = {name: substitute(let, mapping) for name, let in lets.items()}
        variant_decls = {name: substitute(decl, mapping) for name, decl in decls.items()}
        variants.append(Resolved(path, variant_lets, variant_decls, label, values))
    return variants


def _source_text(node: ast.Node, sources: dict[str, str]) -> str:
    span = node.span
    text = sources.get(span.file)
    if text is None or span.line != span.end_line:
        return str(getattr(node, "value", "?"))
    line = text.splitlines()[span.line - 1]
    return line[span.column - 1: span.end_column - 1]


def substitute(node, mapping: dict[int, ast.Node]):
    """Return `node` with the nodes whose id is in `mapping` replaced; shares untouched subtrees."""
    if id(node) in mapping:
        return mapping[id(node)]
    if isinstance(node, tuple):
        replaced = tuple(substitute(child, mapping) for child in node)
        return node if all(a is b for a, b in zip(replaced, node)) else replaced
    if not isinstance(node, ast.Node):
        return node
    changes = {}
    for field in attrs.fields(type(node)):
        value = getattr(node, field.name)
        if isinstance(value, (ast.Node, tuple)):
            new_value = substitute(value, mapping)
            if new_value is not value:
                changes[field.name] = new_value
    return attrs.evolve(node, **changes) if changes else node
