"""Values that the evaluator produces from expressions, before type checking.

Plain Python `int`, `float`, `str`, `bool`, `None` and `list` stand for
themselves. The classes here cover what plain Python cannot: a number with a
unit, a call to a component and a reference to a whole declaration.
"""

from __future__ import annotations

import attrs

from reparamdsl.diagnostics import Span


@attrs.frozen
class Quantity:
    """A number written with a unit: `200 steps`, `2%`, `3 epochs`."""

    value: int | float
    unit: str

    def __str__(self) -> str:
        if self.unit == "%":
            return f"{self.value}%"
        return f"{self.value} {self.unit}"


@attrs.frozen
class Located:
    """An evaluated value with the span of the expression it came from."""

    value: object
    span: Span


@attrs.frozen
class ComponentCall:
    """`name(args) { entries }` or a bare `name` used where a component is expected."""

    name: str
    args: tuple[Located, ...]
    kwargs: tuple[tuple[str, Located, Span], ...]
    span: Span
    name_span: Span


@attrs.frozen
class DeclRef:
    """A reference to a whole declaration, such as `lm` in `model = lm`."""

    name: str
    kind: str


def describe_value(value: object) -> str:
    """Name the kind of an evaluated value for error messages."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value:g}"
    if isinstance(value, str):
        return f"string {value!r}"
    if value is None:
        return "none"
    if isinstance(value, list):
        return f"list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, Quantity):
        return f"quantity {value}"
    if isinstance(value, ComponentCall):
        return f"component '{value.name}'"
    if isinstance(value, DeclRef):
        return f"{value.kind} '{value.name}'"
    if isinstance(value, dict):
        return "block"
    return type(value).__name__
