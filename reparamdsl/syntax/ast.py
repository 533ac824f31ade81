"""AST of .rp programs: frozen attrs nodes, each with its source span."""

from __future__ import annotations

import attrs

from reparamdsl.diagnostics import Span


@attrs.frozen
class Node:
    span: Span


# Expressions


@attrs.frozen
class Number(Node):
    """A numeric literal; `value` has the magnitude suffix applied, `unit` is `%`, `steps`... or None."""

    value: int | float
    unit: str | None
    text: str


@attrs.frozen
class String(Node):
    value: str


@attrs.frozen
class Bool(Node):
    value: bool


@attrs.frozen
class NoneLit(Node):
    pass


@attrs.frozen
class ListExpr(Node):
    items: tuple[Node, ...]


@attrs.frozen
class Ref(Node):
    """A dotted name: a `let` constant, a declaration, or a declaration's parameter or output."""

    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@attrs.frozen
class Entry(Node):
    """`key = value` inside a block."""

    key: str
    key_span: Span
    value: Node


@attrs.frozen
class Arg(Node):
    """A call argument; `name` is None for a positional one."""

    name: str | None
    name_span: Span | None
    value: Node


@attrs.frozen
class Call(Node):
    """`name(args) { entries }`; both parts are optional but not both absent."""

    name: str
    name_span: Span
    args: tuple[Arg, ...]
    entries: tuple[Entry, ...]


@attrs.frozen
class BinOp(Node):
    op: str
    left: Node
    right: Node


@attrs.frozen
class Neg(Node):
    operand: Node


# Items


@attrs.frozen
class Import(Node):
    path: str
    path_span: Span


@attrs.frozen
class Let(Node):
    name: str
    name_span: Span
    value: Node


@attrs.frozen
class Decl(Node):
    """`kind name = component(args) on target { entries }`; `train { ... }` has kind and name `train`."""

    kind: str
    name: str
    name_span: Span
    component: str
    component_span: Span
    args: tuple[Arg, ...]
    target: Ref | None
    entries: tuple[Entry, ...]
    span_of_kind: Span


@attrs.frozen
class Program(Node):
    path: str
    items: tuple[Node, ...]
