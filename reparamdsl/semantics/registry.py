"""The component registry: typed signatures of everything a program can name.

A component is a named, typed building block of one kind. The declaration
kinds are data sources (`data text`), models (`model llama`),
reparameterizations, objectives, environments and the training schedule.
Sub-components are used inside another component: tokenizers, optimizers,
orthogonal parameterizations and others.

A `ComponentSpec` holds the signature only: parameter types, ranges, defaults
and one-line docs, plus optional static checks and static outputs. Its builder
is named by an import string and imported only when a program is lowered, so
checking a program never imports torch.

Registries are plain objects. `default_registry()` returns a fresh one filled
with the built-in components and those of installed packages that declare the
`reparamdsl.components` entry point group (each entry point names a function
that takes the registry and registers into it).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from importlib import metadata

import attrs

from reparamdsl.semantics.types import ParamType

logger = logging.getLogger(__name__)

REQUIRED = attrs.make_class("Required", [], repr_ns=None)()
"""Default of a parameter that has none: the program must set it."""

DECLARATION_KINDS = ("data", "model", "reparam", "objective", "env", "train")

BUILTIN_SPEC_MODULES = (
    "reparamdsl.components.optim.specs",
    "reparamdsl.components.text.specs",
    "reparamdsl.components.llama.specs",
    "reparamdsl.components.language.specs",
    "reparamdsl.components.poet.specs",
    "reparamdsl.components.preference.specs",
    "reparamdsl.components.checkpoint.specs",
    "reparamdsl.components.rl.specs",
)

ENTRY_POINT_GROUP = "reparamdsl.components"


@attrs.frozen
class Param:
    """One parameter of a component: name, type, default and a one-line doc."""

    name: str
    type: ParamType
    default: object = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@attrs.frozen
class CheckedDecl:
    """A declaration after its parameters were checked; what static checks see."""

    kind: str
    name: str
    component: str
    params: dict
    outputs: dict


class StaticCheck:
    """The interface a component's `validate` function gets: report errors on its parameters.

    `error(message, param=None, hint=None)` places the diagnostic on the named
    parameter's value (or on the declaration when `param` is None).
    `lookup(name)` returns the `CheckedDecl` of another declaration or None.
    """

    def error(self, message: str, param: str | None = None, hint: str | None = None) -> None:
        raise NotImplementedError

    def lookup(self, name: str) -> CheckedDecl | None:
        raise NotImplementedError


@attrs.frozen
class ComponentSpec:
    """The typed signature of one component.

    - `params` are positional in the order given, so `next_token(lm, corpus)`
      binds `model` and `data`.
    - `outputs(params)` returns static attributes that other declarations can
      reference, such as `corpus.vocab_size`. Parameters are referable too.
    - `validate(params, check)` runs cross-parameter and cross-declaration checks.
    - `builder` is `"module:function"`; the function takes `(params, ctx)`.
    """

    kind: str
    name: str
    doc: str
    params: tuple[Param, ...]
    builder: str
    outputs: Callable[[dict], dict] | None = None
    validate: Callable[[dict, StaticCheck], None] | None = None
    accepts_target: bool = False

    def param(self, name: str) -> Param | None:
        for param in self.params:
            if param.name == name:
                return param
        return None

    def default_value(self) -> dict:
        """Return the plan value of this component with every parameter at its default."""
        missing = [param.name for param in self.params if param.required]
        if missing:
            raise ValueError(f"{self.kind} '{self.name}' has required parameters {missing} and no default value")
        return {"kind": self.kind, "component": self.name,
                "params": {param.name: param.default for param in self.params}}

    def load_builder(self) -> Callable:
        module_name, _, function_name = self.builder.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, function_name)


class Registry:
    """Component specs by (kind, name)."""

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str], ComponentSpec] = {}

    def register(self, spec: ComponentSpec) -> ComponentSpec:
        key = (spec.kind, spec.name)
        if key in self._specs:
            raise ValueError(f"component {spec.kind} '{spec.name}' is already registered")
        names = [param.name for param in spec.params]
        if len(names) != len(set(names)):
            raise ValueError(f"component {spec.kind} '{spec.name}' declares a parameter twice: {names}")
        self._specs[key] = spec
        return spec

    def register_all(self, specs: Iterable[ComponentSpec]) -> None:
        for spec in specs:
            self.register(spec)

    def get(self, kind: str, name: str) -> ComponentSpec | None:
        return self._specs.get((kind, name))

    def names(self, kind: str) -> list[str]:
        return sorted(name for (spec_kind, name) in self._specs if spec_kind == kind)

    def kinds(self) -> list[str]:
        return sorted({kind for kind, _ in self._specs})

    def specs(self) -> list[ComponentSpec]:
        return [self._specs[key] for key in sorted(self._specs)]


def format_default(value: object) -> str:
    """Write a parameter default in the language's syntax, for help texts and references."""
    if isinstance(value, dict) and "component" in value:
        return value["component"]
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def default_registry(entry_points: bool = True) -> Registry:
    """Build a fresh registry with the built-in components and installed plug-ins."""
    registry = Registry()
    for module_name in BUILTIN_SPEC_MODULES:
        module = importlib.import_module(module_name)
        module.register(registry)

    if entry_points:
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                entry_point.load()(registry)
            except Exception:
                logger.exception("failed to load component plug-in %s", entry_point.value)
    return registry
