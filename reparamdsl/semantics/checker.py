"""The checker: evaluate expressions, bind arguments to typed signatures, build the plan.

Declarations are checked on demand, so a reference such as
`corpus.vocab_size` checks `corpus` first; a reference cycle is an error.
Every problem goes to the diagnostic sink and checking continues, so one run
reports them all.
"""

from __future__ import annotations

import math
import os

from reparamdsl.diagnostics import DiagnosticSink, Span, did_you_mean
from reparamdsl.semantics import types as T
from reparamdsl.semantics.plan import KIND_ORDER, Plan, PlanDecl
from reparamdsl.semantics.registry import DECLARATION_KINDS, CheckedDecl, Registry, StaticCheck
from reparamdsl.semantics.resolver import Resolved
from reparamdsl.semantics.values import ComponentCall, DeclRef, Located, Quantity, describe_value
from reparamdsl.syntax import ast

MAX_NUMBER = 1e18


class Reported(Exception):
    """A problem inside a value was already reported; stop converting the enclosing value."""


class _Failed:
    """Marks a declaration whose check failed, so references to it report nothing more."""


FAILED = _Failed()


class Checker:
    """Check one resolved program against a registry and build its plan."""

    def __init__(self, resolved: Resolved, registry: Registry, sink: DiagnosticSink):
        self.resolved = resolved
        self.registry = registry
        self.sink = sink
        self.let_values: dict[str, object] = {}
        self.checked: dict[str, CheckedDecl | _Failed] = {}
        self.value_spans: dict[str, dict[str, Span]] = {}
        self._in_progress: list[str] = []
        self.base_dir = os.path.dirname(resolved.path) if os.path.isabs(resolved.path) else os.getcwd()

    # Program

    def check(self) -> Plan | None:
        try:
            self._check_all()
        except RecursionError:
            # Only absurdly long reference chains get here (hundreds of lets that name each other).
            first = next(iter(self.resolved.lets.values()), None) or next(iter(self.resolved.decls.values()), None)
            self.sink.error("references are chained too deeply to check", first.span if first else None,
                            hint="shorten the chain of let constants or declarations that refer to each other")
            return None

        if self.sink.has_errors:
            return None
        return self._plan()

    def _check_all(self) -> None:
        for name, let in self.resolved.lets.items():
            try:
                self._let_value(name, let.span)
            except Reported:
                pass

        for name in self.resolved.decls:
            self._checked_decl(name, None)

        self._check_program_shape()
        self._add_default_train()

    def _add_default_train(self) -> None:
        """Give a program with an objective but no train block the default schedule, so its plan is complete."""
        has_objective = any(d.kind == "objective" for d in self.resolved.decls.values())
        if not has_objective or "train" in self.checked or self.sink.has_errors:
            return
        spec = self.registry.get("train", "train")
        params = {param.name: self._default(param) for param in spec.params}
        self.checked["train"] = CheckedDecl("train", "train", "train", params, {})

    def _plan(self) -> Plan:
        ordered = sorted(self.checked.values(), key=lambda d: KIND_ORDER.index(d.kind))
        declarations = tuple(PlanDecl(d.kind, d.name, d.component, d.params, d.outputs) for d in ordered)
        sweep = None
        if self.resolved.sweep_label is not None:
            sweep = {"label": self.resolved.sweep_label, "values": self.resolved.sweep_values}
        spans = {name: decl.name_span for name, decl in self.resolved.decls.items()}
        return Plan(os.path.splitext(os.path.basename(self.resolved.path))[0], declarations, sweep, spans)

    def _check_program_shape(self) -> None:
        decls = self.resolved.decls
        objectives = [d for d in decls.values() if d.kind == "objective"]
        if len(objectives) > 1:
            self.sink.error("a program trains one objective, found a second", objectives[1].name_span,
                            notes=(("first objective here", objectives[0].name_span),),
                            hint="split the runs into separate programs that import shared declarations")
        if "train" in decls and not objectives:
            self.sink.error("the program has a train block but no objective", decls["train"].name_span,
                            hint="declare one, for example `objective loss = next_token(lm, corpus)`")

    # Lets and references

    def _let_value(self, name: str, use_span: Span) -> object:
        if name in self.let_values:
            value = self.let_values[name]
            if value is FAILED:
                raise Reported
            return value
        if f"let:{name}" in self._in_progress:
            chain = " -> ".join(n.removeprefix("let:") for n in self._in_progress[self._in_progress.index(f"let:{name}"):])
            self.sink.error(f"reference cycle: {chain} -> {name}", use_span,
                            hint="a let constant cannot depend on itself")
            self.let_values[name] = FAILED
            raise Reported

        self._in_progress.append(f"let:{name}")
        try:
            value = self.evaluate(self.resolved.lets[name].value)
        except Reported:
            self.let_values[name] = FAILED
            raise
        finally:
            self._in_progress.pop()
        self.let_values[name] = value
        return value

    def _reference(self, node: ast.Ref) -> object:
        head = node.parts[0]
        if head in self.resolved.lets:
            if len(node.parts) > 1:
                self.sink.error(f"'{head}' is a let constant and has no attribute '{node.parts[1]}'", node.span)
                raise Reported
            return self._let_value(head, node.span)

        if head in self.resolved.decls:
            decl = self.resolved.decls[head]
            if len(node.parts) == 1:
                return DeclRef(head, decl.kind)
            checked = self._checked_decl(head, node.span)
            if checked is FAILED:
                raise Reported
            return self._attribute(checked, node)

        if len(node.parts) == 1:
            # A bare word: an enum choice or a component name; types decide.
            return ComponentCall(head, (), (), node.span, node.span)

        self.sink.error(f"unknown name '{head}'", Span(node.span.file, node.span.line, node.span.column,
                                                      node.span.line, node.span.column + len(head)),
                        hint=did_you_mean(head, list(self.resolved.lets) + list(self.resolved.decls)))
        raise Reported

    def _attribute(self, checked: CheckedDecl, node: ast.Ref) -> object:
        value: object = {"params": checked.params, "outputs": checked.outputs}
        attribute = node.parts[1]
        if attribute in checked.outputs:
            value = checked.outputs[attribute]
        elif attribute in checked.params:
            value = checked.params[attribute]
        else:
            available = sorted(set(checked.outputs) | set(checked.params))
            self.sink.error(f"{checked.kind} '{checked.name}' has no attribute '{attribute}'", node.span,
                            hint=did_you_mean(attribute, available) or f"available: {', '.join(available)}")
            raise Reported

        for part in node.parts[2:]:
            if isinstance(value, dict) and "params" in value and part in value["params"]:
                value = value["params"][part]
            else:
                self.sink.error(f"'{'.'.join(node.parts[:-1])}' has no attribute '{part}'", node.span)
                raise Reported
        return self._from_plan_value(value, node.span)

    def _from_plan_value(self, value: object, span: Span) -> object:
        """Turn a plan value read through a reference back into an evaluated value."""
        if isinstance(value, list):
            return [Located(self._from_plan_value(item, span), span) for item in value]
        if isinstance(value, dict) and "ref" in value:
            decl = self.resolved.decls.get(value["ref"])
            return DeclRef(value["ref"], decl.kind if decl else "?")
        return value

    # Declarations

    def _checked_decl(self, name: str, use_span: Span | None) -> CheckedDecl | _Failed:
        if name in self.checked:
            return self.checked[name]
        if name in self._in_progress:
            chain = " -> ".join(self._in_progress[self._in_progress.index(name):] + [name])
            decl = self.resolved.decls[name]
            self.sink.error(f"reference cycle: {chain}", use_span or decl.name_span,
                            hint="declarations may reference each other only without cycles")
            return FAILED

        self._in_progress.append(name)
        try:
            result = self._check_decl(self.resolved.decls[name])
        finally:
            self._in_progress.pop()
        self.checked[name] = result
        return result

    def _check_decl(self, decl: ast.Decl) -> CheckedDecl | _Failed:
        if decl.kind not in DECLARATION_KINDS:
            self.sink.error(f"unknown declaration kind '{decl.kind}'", decl.span)
            return FAILED

        spec = self.registry.get(decl.kind, decl.component)
        if spec is None:
            names = self.registry.names(decl.kind)
            self.sink.error(f"unknown {decl.kind} component '{decl.component}'", decl.component_span,
                            hint=did_you_mean(decl.component, names) or f"available: {', '.join(names) or 'none'}")
            return FAILED

        if decl.target is not None and not spec.accepts_target:
            self.sink.error(f"{decl.kind} component '{spec.name}' takes no `on` target", decl.target.span,
                            hint="remove `on ...`")
            return FAILED
        target_arg = ()
        if decl.target is not None:
            target_arg = (ast.Arg(decl.target.span, "target", decl.target.span, decl.target),)

        params, spans, ok = self._bind(spec, target_arg + decl.args, decl.entries, decl.name_span,
                                       f"{decl.kind} '{decl.name}'")
        self.value_spans[decl.name] = spans
        if not ok:
            return FAILED

        outputs = dict(spec.outputs(params)) if spec.outputs is not None else {}
        checked = CheckedDecl(decl.kind, decl.name, spec.name, params, outputs)
        if spec.validate is not None:
            check = _DeclCheck(self, decl, spans, decl.name_span)
            spec.validate(params, check)
            if check.errors:
                return FAILED
        return checked

    # Binding arguments to a signature

    def _bind(self, spec, args: tuple[ast.Arg, ...], entries: tuple[ast.Entry, ...], owner_span: Span,
              owner: str) -> tuple[dict, dict[str, Span], bool]:
        """Evaluate and convert arguments against `spec`; returns (params, value spans, ok)."""
        bound: dict[str, tuple[ast.Node, Span]] = {}
        ok = True
        positional_params = [p for p in spec.params]

        for arg in args:
            if arg.name is None:
                free = [p for p in positional_params if p.name not in bound]
                if not free:
                    self.sink.error(f"too many positional arguments for {owner}", arg.span,
                                    hint=f"it takes {len(spec.params)} parameter(s)")
                    ok = False
                    continue
                bound[free[0].name] = (arg.value, arg.span)
            else:
                ok &= self._bind_named(spec, arg.name, arg.name_span, arg.value, bound, owner)

        for entry in entries:
            ok &= self._bind_named(spec, entry.key, entry.key_span, entry.value, bound, owner)

        params: dict = {}
        spans: dict[str, Span] = {}
        for param in spec.params:
            if param.name in bound:
                node, span = bound[param.name]
                spans[param.name] = node.span
                try:
                    params[param.name] = self.convert(node, param.type, param.name)
                except Reported:
                    ok = False
            elif param.required:
                self.sink.error(f"missing required parameter '{param.name}' of {owner}", owner_span,
                                hint=f"add `{param.name} = ...` ({param.type.describe()}): {param.doc}")
                ok = False
            else:
                params[param.name] = self._default(param)
        return params, spans, ok

    def _default(self, param) -> object:
        # A component default may be written as its bare name; expand it to the plan form.
        if isinstance(param.type, T.Component) and isinstance(param.default, str):
            spec = self.registry.get(param.type.kind, param.default)
            if spec is not None:
                return spec.default_value()
        return _copy_default(param.default)

    def _bind_named(self, spec, name: str, name_span: Span, value: ast.Node, bound: dict, owner: str) -> bool:
        if spec.param(name) is None:
            names = [p.name for p in spec.params]
            self.sink.error(f"unknown parameter '{name}' for {owner}", name_span,
                            hint=did_you_mean(name, names) or f"parameters: {', '.join(names) or 'none'}")
            return False
        if name in bound:
            self.sink.error(f"parameter '{name}' is set twice", name_span,
                            notes=(("first set here", bound[name][1]),))
            return False
        bound[name] = (value, name_span)
        return True

    def convert(self, node: ast.Node, param_type: T.ParamType, param_name: str) -> object:
        value = self.evaluate(node)
        try:
            return param_type.convert(value, node.span, _TypeContext(self))
        except T.TypeMismatch as error:
            if isinstance(value, ComponentCall) and not value.args and not value.kwargs and isinstance(node, ast.Ref) \
                    and not isinstance(param_type, (T.Enum, T.Component)):
                self.sink.error(f"unknown name '{value.name}'", node.span,
                                hint=did_you_mean(value.name, list(self.resolved.lets) + list(self.resolved.decls))
                                or f"'{param_name}' expects {param_type.describe()}")
            else:
                self.sink.error(f"invalid value for '{param_name}': {error.message}", error.span or node.span,
                                hint=error.hint)
            raise Reported from None

    def check_component(self, kind: str, call: ComponentCall) -> dict:
        spec = self.registry.get(kind, call.name)
        if spec is None:
            names = self.registry.names(kind)
            self.sink.error(f"unknown {kind} component '{call.name}'", call.name_span,
                            hint=did_you_mean(call.name, names) or f"available: {', '.join(names) or 'none'}")
            raise Reported
        args = tuple(ast.Arg(located.span, None, None, _Literal(located.span, located.value)) for located in call.args)
        args += tuple(ast.Arg(span, name, span, _Literal(located.span, located.value))
                      for name, located, span in call.kwargs)
        params, spans, ok = self._bind(spec, args, (), call.name_span, f"{kind} '{call.name}'")
        if not ok:
            raise Reported
        if spec.validate is not None:
            check = _DeclCheck(self, None, spans, call.name_span)
            spec.validate(params, check)
            if check.errors:
                raise Reported
        return {"kind": kind, "component": spec.name, "params": params}

    # Expressions

    def evaluate(self, node: ast.Node) -> object:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, ast.Number):
            if isinstance(node.value, float) and not math.isfinite(node.value) or abs(node.value) > MAX_NUMBER:
                self.sink.error(f"number {node.text} is too large", node.span,
                                hint=f"numbers must have magnitude at most {MAX_NUMBER:g}")
                raise Reported
            if node.unit is not None:
                return Quantity(node.value, node.unit)
            return node.value
        if isinstance(node, ast.String):
            return node.value
        if isinstance(node, ast.Bool):
            return node.value
        if isinstance(node, ast.NoneLit):
            return None
        if isinstance(node, ast.ListExpr):
            return [Located(self.evaluate(item), item.span) for item in node.items]
        if isinstance(node, ast.Ref):
            return self._reference(node)
        if isinstance(node, ast.Call):
            return self._call_value(node)
        if isinstance(node, ast.Neg):
            return self._arithmetic("-", 0, self.evaluate(node.operand), node)
        if isinstance(node, ast.BinOp):
            return self._arithmetic(node.op, self.evaluate(node.left), self.evaluate(node.right), node)
        raise AssertionError(f"unhandled node {type(node).__name__}")

    def _call_value(self, node: ast.Call) -> ComponentCall:
        if node.name == "sweep":
            self.sink.error("sweep(...) is only allowed as a whole parameter or let value", node.span)
            raise Reported
        args = []
        kwargs = []
        for arg in node.args:
            located = Located(self.evaluate(arg.value), arg.value.span)
            if arg.name is None:
                args.append(located)
            else:
                kwargs.append((arg.name, located, arg.name_span))
        for entry in node.entries:
            kwargs.append((entry.key, Located(self.evaluate(entry.value), entry.value.span), entry.key_span))
        return ComponentCall(node.name, tuple(args), tuple(kwargs), node.span, node.name_span)

    def _arithmetic(self, op: str, left: object, right: object, node: ast.Node) -> object:
        if isinstance(left, str) and isinstance(right, str) and op == "+":
            return left + right
        unit = None
        if isinstance(left, Quantity) or isinstance(right, Quantity):
            units = {q.unit for q in (left, right) if isinstance(q, Quantity)}
            if len(units) > 1 or (op in "+-" and not (isinstance(left, Quantity) and isinstance(right, Quantity))
                                  and not (op == "-" and left == 0)):
                self.sink.error(f"cannot apply '{op}' to {describe_value(left)} and {describe_value(right)}",
                                node.span, hint="both sides of + and - need the same unit")
                raise Reported
            unit = units.pop()
            left = left.value if isinstance(left, Quantity) else left
            right = right.value if isinstance(right, Quantity) else right
        if not (_is_number(left) and _is_number(right)):
            self.sink.error(f"cannot apply '{op}' to {describe_value(left)} and {describe_value(right)}", node.span,
                            hint="arithmetic works on numbers (and + joins strings)")
            raise Reported

        if op == "+":
            result = left + right
        elif op == "-":
            result = left - right
        elif op == "*":
            result = left * right
        else:
            if right == 0:
                self.sink.error("division by zero", node.span)
                raise Reported
            exact = isinstance(left, int) and isinstance(right, int) and left % right == 0
            result = left // right if exact else left / right
        # Integers are bounded too: a product of huge integers cannot be divided into a float.
        if abs(result) > MAX_NUMBER or not math.isfinite(result):
            self.sink.error("arithmetic result is too large", node.span)
            raise Reported
        return Quantity(result, unit) if unit else result


class _Literal(ast.Node):
    """An already evaluated value placed back into an argument list."""

    def __init__(self, span: Span, value: object):
        object.__setattr__(self, "span", span)
        object.__setattr__(self, "value", value)


class _TypeContext:
    def __init__(self, checker: Checker):
        self.checker = checker
        self.base_dir = checker.base_dir

    def check_component(self, kind: str, call: ComponentCall) -> dict:
        return self.checker.check_component(kind, call)

    def decl_kind(self, name: str) -> str | None:
        decl = self.checker.resolved.decls.get(name)
        return decl.kind if decl else None


class _DeclCheck(StaticCheck):
    def __init__(self, checker: Checker, decl: ast.Decl | None, spans: dict[str, Span], owner_span: Span):
        self.checker = checker
        self.decl = decl
        self.spans = spans
        self.owner_span = owner_span
        self.errors = 0

    def error(self, message: str, param: str | None = None, hint: str | None = None) -> None:
        self.errors += 1
        span = self.spans.get(param, self.owner_span) if param else self.owner_span
        self.checker.sink.error(message, span, hint=hint)

    def lookup(self, name: str) -> CheckedDecl | None:
        if name not in self.checker.resolved.decls:
            return None
        result = self.checker._checked_decl(name, self.owner_span)
        return None if result is FAILED else result


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _copy_default(value):
    if isinstance(value, (list, dict)):
        import copy

        return copy.deepcopy(value)
    return value
