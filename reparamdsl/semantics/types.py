"""Parameter types: how a value written in a program becomes a plan value.

Each type converts an evaluated value (see `values.py`) into the JSON value the
plan stores, or raises `TypeMismatch` with a message and a hint. Types also
describe themselves, which feeds `rpc components` and the language reference.
"""

from __future__ import annotations

import glob
import math
import os
from typing import Protocol

import attrs

from reparamdsl.diagnostics import Span
from reparamdsl.semantics.values import ComponentCall, DeclRef, Located, Quantity, describe_value


class TypeMismatch(Exception):
    """A value does not fit its parameter's type or range."""

    def __init__(self, message: str, hint: str | None = None, span: Span | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.span = span


class TypeContext(Protocol):
    """The checker services a type uses to convert nested values."""

    base_dir: str

    def check_component(self, kind: str, call: ComponentCall) -> dict: ...

    def decl_kind(self, name: str) -> str | None: ...


class ParamType:
    """Base of all parameter types."""

    def convert(self, value: object, span: Span, ctx: TypeContext) -> object:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _range_text(low, high, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        return f"in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def _check_range(number, low, high, low_open, high_open, what: str) -> None:
    too_low = low is not None and (number < low or (low_open and number == low))
    too_high = high is not None and (number > high or (high_open and number == high))
    if too_low or too_high:
        raise TypeMismatch(
            f"{what} {number:g} is out of range: expected a value {_range_text(low, high, low_open, high_open)}",
            hint="change the value to one inside the range",
        )


@attrs.frozen
class Int(ParamType):
    """A whole number; suffixes such as `2k` are allowed, units are not."""

    min: int | None = None
    max: int | None = None

    def convert(self, value, span, ctx):
        if isinstance(value, Quantity):
            raise TypeMismatch(f"expected an integer, found {describe_value(value)}",
                               hint="write the number without a unit")
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeMismatch(f"expected an integer, found {describe_value(value)}")
        _check_range(value, self.min, self.max, False, False, "integer")
        return value

    def describe(self):
        bounds = _range_text(self.min, self.max)
        return f"int {bounds}".strip()


@attrs.frozen
class Float(ParamType):
    """A real number; `2%` means 0.02."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def convert(self, value, span, ctx):
        if isinstance(value, Quantity) and value.unit == "%":
            value = value.value / 100
        if isinstance(value, Quantity):
            raise TypeMismatch(f"expected a number, found {describe_value(value)}",
                               hint="write the number without a unit")
        if not _is_number(value):
            raise TypeMismatch(f"expected a number, found {describe_value(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise TypeMismatch(f"expected a finite number, found {value}")
        _check_range(value, self.min, self.max, self.min_open, self.max_open, "value")
        return value

    def describe(self):
        return f"float {_range_text(self.min, self.max, self.min_open, self.max_open)}".strip()


@attrs.frozen
class Fraction(ParamType):
    """A fraction in [0, 1] (or the given bounds), written `0.02` or `2%`."""

    min: float = 0.0
    max: float = 1.0
    min_open: bool = False
    max_open: bool = False

    def convert(self, value, span, ctx):
        return Float(self.min, self.max, self.min_open, self.max_open).convert(value, span, ctx)

    def describe(self):
        return f"fraction {_range_text(self.min, self.max, self.min_open, self.max_open)}"


@attrs.frozen
class Steps(ParamType):
    """A count of optimizer steps, written `200` or `200 steps`."""

    min: int | None = 0
    max: int | None = None

    def convert(self, value, span, ctx):
        if isinstance(value, Quantity):
            if value.unit not in ("steps", "step"):
                raise TypeMismatch(f"expected a number of steps, found {describe_value(value)}",
                                   hint="write it as `N steps`")
            value = value.value
        return Int(self.min, self.max).convert(value, span, ctx)

    def describe(self):
        return f"steps {_range_text(self.min, self.max)}".strip()


@attrs.frozen
class Bool(ParamType):
    def convert(self, value, span, ctx):
        if not isinstance(value, bool):
            raise TypeMismatch(f"expected true or false, found {describe_value(value)}")
        return value

    def describe(self):
        return "bool"


@attrs.frozen
class Str(ParamType):
    def convert(self, value, span, ctx):
        if not isinstance(value, str):
            raise TypeMismatch(f"expected a string, found {describe_value(value)}",
                               hint='put the text in double quotes: "..."')
        return value

    def describe(self):
        return "string"


@attrs.frozen
class Enum(ParamType):
    """One of fixed choices, written as a bare word (`bf16`) or a string (`"bf16"`)."""

    choices: tuple[str, ...]

    def convert(self, value, span, ctx):
        if isinstance(value, ComponentCall) and not value.args and not value.kwargs:
            value = value.name
        if not isinstance(value, str):
            raise TypeMismatch(f"expected one of {', '.join(self.choices)}, found {describe_value(value)}")
        if value not in self.choices:
            from reparamdsl.diagnostics import did_you_mean

            raise TypeMismatch(f"invalid choice '{value}': expected one of {', '.join(self.choices)}",
                               hint=did_you_mean(value, self.choices))
        return value

    def describe(self):
        return " | ".join(self.choices)


@attrs.frozen
class Optional(ParamType):
    """The inner type, or `none`."""

    inner: ParamType

    def convert(self, value, span, ctx):
        if value is None:
            return None
        return self.inner.convert(value, span, ctx)

    def describe(self):
        return f"{self.inner.describe()} | none"


@attrs.frozen
class Either(ParamType):
    """The first of several types that accepts the value."""

    options: tuple[ParamType, ...]

    def convert(self, value, span, ctx):
        errors = []
        for option in self.options:
            try:
                return option.convert(value, span, ctx)
            except TypeMismatch as error:
                errors.append(error)
        # An option that accepted the kind of value but rejected the value itself
        # (a range, a missing file, an unknown choice) explains the problem best.
        for error in errors:
            if not error.message.startswith("expected"):
                raise error
        raise TypeMismatch(f"expected {self.describe()}, found {describe_value(value)}",
                           hint=errors[0].hint if errors else None)

    def describe(self):
        return " | ".join(option.describe() for option in self.options)


@attrs.frozen
class List(ParamType):
    """A list of items of one type; a single item is accepted as a list of one when `single` is set."""

    item: ParamType
    min_len: int = 0
    single: bool = False

    def convert(self, value, span, ctx):
        if not isinstance(value, list):
            if self.single:
                value = [Located(value, span)]
            else:
                raise TypeMismatch(f"expected a list, found {describe_value(value)}",
                                   hint="write a list in brackets: [a, b]")
        converted = []
        for element in value:
            assert isinstance(element, Located)
            try:
                converted.append(self.item.convert(element.value, element.span, ctx))
            except TypeMismatch as error:
                error.span = error.span or element.span
                raise
        if len(converted) < self.min_len:
            raise TypeMismatch(f"expected at least {self.min_len} item(s), found {len(converted)}")
        return converted

    def describe(self):
        return f"list[{self.item.describe()}]"


@attrs.frozen
class Ref(ParamType):
    """A reference to a declaration of the given kind, such as a model or a data source."""

    kind: str

    def convert(self, value, span, ctx):
        if isinstance(value, DeclRef):
            if value.kind != self.kind:
                raise TypeMismatch(f"'{value.name}' is a {value.kind} declaration, expected a {self.kind}")
            return {"ref": value.name}
        raise TypeMismatch(f"expected the name of a {self.kind} declaration, found {describe_value(value)}")

    def describe(self):
        return f"ref {self.kind}"


@attrs.frozen
class Component(ParamType):
    """A sub-component of the given kind: `bpe(vocab = 4096)`, `adamw { lr = 1e-3 }` or a bare `bytes`."""

    kind: str

    def convert(self, value, span, ctx):
        if isinstance(value, dict) and value.get("kind") == self.kind and "component" in value:
            return value
        if isinstance(value, str):
            value = ComponentCall(value, (), (), span, span)
        if not isinstance(value, ComponentCall):
            raise TypeMismatch(f"expected a {self.kind} component, found {describe_value(value)}",
                               hint=f"run `rpc components {self.kind}` to list the {self.kind} components")
        return ctx.check_component(self.kind, value)

    def describe(self):
        return f"{self.kind}(...)"


@attrs.frozen
class Path(ParamType):
    """A file path relative to the program's folder; `must_exist` checks it at compile time."""

    must_exist: bool = True
    directory: bool = False

    def convert(self, value, span, ctx):
        text = Str().convert(value, span, ctx)
        path = os.path.normpath(os.path.join(ctx.base_dir, os.path.expanduser(text)))
        if self.must_exist:
            exists = os.path.isdir(path) if self.directory else os.path.exists(path)
            if not exists:
                kind = "folder" if self.directory else "file"
                raise TypeMismatch(f"{kind} not found: {text} (looked for {path})",
                                   hint="paths are relative to the folder of the program that names them")
        return path

    def describe(self):
        return "folder path" if self.directory else "path"


@attrs.frozen
class Glob(ParamType):
    """A file path or glob pattern relative to the program's folder; it must match at least one file."""

    def convert(self, value, span, ctx):
        text = Str().convert(value, span, ctx)
        pattern = os.path.normpath(os.path.join(ctx.base_dir, os.path.expanduser(text)))
        matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not matches:
            raise TypeMismatch(f"no file matches '{text}' (looked for {pattern})",
                               hint="paths are relative to the folder of the program that names them")
        return pattern

    def describe(self):
        return "path or glob"
