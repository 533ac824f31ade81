"""The plan: a fully resolved program as canonical JSON with a stable hash."""

from __future__ import annotations

import hashlib
import json

import attrs

PLAN_FORMAT = "reparamdsl.plan/1"
KIND_ORDER = ("data", "env", "model", "reparam", "objective", "train")


@attrs.frozen
class PlanDecl:
    kind: str
    name: str
    component: str
    params: dict
    outputs: dict

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "component": self.component,
                "params": self.params, "outputs": self.outputs}


@attrs.frozen
class Plan:
    """The resolved program that runs: every declaration with every parameter, defaults filled in.

    The hash covers the declarations and the sweep point, not the program's
    file name, so formatting or moving a program leaves it unchanged (paths
    that the program names are stored absolute, so moving the data does not).
    """

    program: str
    declarations: tuple[PlanDecl, ...]
    sweep: dict | None = None
    # Where each declaration was written, and the program text, so that errors
    # found while building (an empty corpus, a bad data row) point at the source.
    # Neither is part of the plan's content or hash.
    spans: dict = attrs.field(factory=dict, eq=False, repr=False)
    sources: dict = attrs.field(factory=dict, eq=False, repr=False)

    def content(self) -> dict:
        return {"format": PLAN_FORMAT,
                "declarations": [decl.to_json() for decl in self.declarations],
                "sweep": self.sweep}

    def to_json(self, indent: int | None = 2) -> str:
        data = {"program": self.program, "hash": self.hash, **self.content()}
        return json.dumps(data, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                               allow_nan=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        if data.get("format") != PLAN_FORMAT:
            raise ValueError(f"unsupported plan format {data.get('format')!r}: expected {PLAN_FORMAT!r}")
        declarations = tuple(PlanDecl(d["kind"], d["name"], d["component"], d["params"], d["outputs"])
                             for d in data["declarations"])
        return cls(data.get("program", "program"), declarations, data.get("sweep"))

    def get(self, name: str) -> PlanDecl:
        for decl in self.declarations:
            if decl.name == name:
                return decl
        raise KeyError(name)

    def of_kind(self, kind: str) -> list[PlanDecl]:
        return [decl for decl in self.declarations if decl.kind == kind]

    def train_params(self) -> dict:
        trains = self.of_kind("train")
        return trains[0].params if trains else {}

    def objective(self) -> PlanDecl | None:
        objectives = self.of_kind("objective")
        return objectives[0] if objectives else None


def diff_plans(old: dict, new: dict, prefix: str = "") -> list[str]:
    """List the leaf differences between two plan JSON values as `path: old -> new` lines."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                lines.append(f"{path}: added {json.dumps(new[key])}")
            elif key not in new:
                lines.append(f"{path}: removed (was {json.dumps(old[key])})")
            else:
                lines.extend(diff_plans(old[key], new[key], path))
        return lines
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        lines = []
        for index, (a, b) in enumerate(zip(old, new)):
            label = a.get("name", index) if isinstance(a, dict) else index
            lines.extend(diff_plans(a, b, f"{prefix}[{label}]"))
        return lines
    if old != new:
        return [f"{prefix}: {json.dumps(old)} -> {json.dumps(new)}"]
    return []
