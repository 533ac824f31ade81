"""Cursor context analysis for completion, hover and go-to-definition.

Editors ask about programs that are half typed and do not parse, so this
module reads a tolerant token stream (regular expressions for the grammar's
terminals) and tracks open brackets, instead of using the parser. It finds:
the component whose block or argument list encloses the cursor, the key being
set there, and the `let` and declaration names defined at the top level.
Positions are 0-based lines and columns, as in the Language Server Protocol.
"""

from __future__ import annotations

import re

import attrs

from reparamdsl.semantics import types as T
from reparamdsl.semantics.registry import ComponentSpec, Registry, format_default

DECLARATION_KINDS = ("data", "model", "reparam", "objective", "env")

_TOKEN = re.compile(
    r'(?P<STRING>"(?:[^"\\\n]|\\.)*"?)'
    r"|(?P<COMMENT>#[^\n]*)"
    r"|(?P<NUMBER>(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:[kMGB%](?![A-Za-z0-9_]))?"
    r"(?:[ \t]+(?:steps|step|epochs|epoch|tokens)(?![A-Za-z0-9_]))?)"
    r"|(?P<NAME>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<PUNCT>[=(){}\[\],.+\-*/])"
    r"|(?P<WS>\s+)"
    r"|(?P<OTHER>.)"
)


@attrs.frozen
class Tok:
    type: str
    text: str
    line: int
    column: int

    @property
    def end_column(self) -> int:
        return self.column + len(self.text)


@attrs.frozen
class Definition:
    """A `let` constant or a declaration defined at the top level of a file."""

    name: str
    what: str
    line: int
    column: int
    kind: str | None = None
    component: str | None = None


@attrs.frozen
class Frame:
    """An open bracket: its spec (None when unknown) and the parameter being set inside it."""

    bracket: str
    spec: ComponentSpec | None
    key: str | None = None
    positional: int = 0
    param_type: T.ParamType | None = None


@attrs.frozen
class Context:
    """The cursor's surroundings.

    `position` is one of: "component" (a component name is expected; `kind`
    names its kind), "key" (a parameter name inside `spec`'s block or call),
    "value" (the value of `key` in `spec`), or "other".
    """

    position: str
    spec: ComponentSpec | None = None
    key: str | None = None
    kind: str | None = None
    prefix: str = ""
    word: Tok | None = None


def tokenize(text: str) -> list[Tok]:
    tokens = []
    line, line_start = 0, 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        value = match.group()
        if kind != "WS":
            tokens.append(Tok(kind if kind != "PUNCT" else value, value, line, match.start() - line_start))
        newlines = value.count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + value.rindex("\n") + 1
    return tokens


def definitions(text: str) -> dict[str, Definition]:
    """`let` constants and declarations at the top level, by name (the first of duplicates)."""
    found: dict[str, Definition] = {}
    code = [t for t in tokenize(text) if t.type != "COMMENT"]
    depth = 0
    for index, token in enumerate(code):
        if token.type in "([{":
            depth += 1
        elif token.type in ")]}":
            depth = max(0, depth - 1)
        if depth or token.type != "NAME":
            continue
        following = code[index + 1:index + 4]
        if token.text == "let" and following and following[0].type == "NAME":
            name = following[0]
            found.setdefault(name.text, Definition(name.text, "let", name.line, name.column))
        elif token.text in DECLARATION_KINDS and len(following) >= 3 and following[0].type == "NAME" \
                and following[1].type == "=" and following[2].type == "NAME":
            name = following[0]
            found.setdefault(name.text, Definition(name.text, "declaration", name.line, name.column,
                                                   token.text, following[2].text))
        elif token.text == "train" and following and following[0].type == "{":
            found.setdefault("train", Definition("train", "declaration", token.line, token.column, "train", "train"))
    return found


def imports(text: str) -> list[tuple[Tok, str]]:
    """Import statements as (string token, path)."""
    code = [t for t in tokenize(text) if t.type != "COMMENT"]
    return [(code[i + 1], code[i + 1].text.strip('"')) for i, t in enumerate(code[:-1])
            if t.type == "NAME" and t.text == "import" and code[i + 1].type == "STRING"]


def inner_types(param_type: T.ParamType | None) -> list[T.ParamType]:
    """Return the types a parameter's value can take, looking through Optional, Either and List."""
    if param_type is None:
        return []
    if isinstance(param_type, T.Optional):
        return inner_types(param_type.inner)
    if isinstance(param_type, T.List):
        return inner_types(param_type.item)
    if isinstance(param_type, T.Either):
        return [inner for option in param_type.options for inner in inner_types(option)]
    return [param_type]


def component_kinds(param_type: T.ParamType | None) -> list[str]:
    """Return the sub-component kinds a parameter accepts."""
    return [inner.kind for inner in inner_types(param_type) if isinstance(inner, T.Component)]


def token_at(tokens: list[Tok], line: int, column: int) -> Tok | None:
    """Return the token that contains the cursor, else the one that ends right at it (a word being typed)."""
    ending = None
    for token in tokens:
        if token.line != line or token.type == "COMMENT":
            continue
        if token.column <= column < token.end_column:
            return token
        if token.end_column == column:
            ending = token
    return ending


def context_at(text: str, line: int, column: int, registry: Registry) -> Context:
    """Classify the cursor position; a name being typed at the cursor is the `prefix`."""
    tokens = tokenize(text)
    word = token_at(tokens, line, column)
    if word is not None and word.type != "NAME":
        word = None
    before = [t for t in tokens if (t.line, t.column) < (line, column) and t.type != "COMMENT"
              and t is not word and not (t.line == line and t.end_column > column)]
    prefix = word.text[: column - word.column] if word is not None else ""
    return _classify(before, (line, column), prefix, word, registry)


def _classify(before: list[Tok], cursor: tuple[int, int], prefix: str, word: Tok | None,
              registry: Registry) -> Context:
    stack, header = _scan(before, registry)
    last = before[-1] if before else None

    if not stack:
        if len(before) >= 3 and before[-1].type == "=" and before[-3].text in DECLARATION_KINDS \
                and before[-2].type == "NAME" and (len(before) == 3 or before[-4].type != "."):
            return Context("component", kind=before[-3].text, prefix=prefix, word=word)
        return Context("other", prefix=prefix, word=word)

    frame = stack[-1]
    if frame.bracket in "[(" and frame.spec is None or frame.bracket == "[":
        # Inside a list or parentheses: a value of the enclosing key.
        owner = next((f for f in reversed(stack) if f.bracket != "[" and f.spec is not None), None)
        if owner is None:
            return Context("other", prefix=prefix, word=word)
        return Context("value", spec=owner.spec, key=owner.key, prefix=prefix, word=word)

    if last is not None and last.type == "=":
        return Context("value", spec=frame.spec, key=frame.key, prefix=prefix, word=word)
    if last is not None and last.type in "+-*/.":
        return Context("other", spec=frame.spec, prefix=prefix, word=word)
    at_key = last is None or last.type in "{(," or (frame.bracket == "{" and last.line < cursor[0])
    if at_key:
        return Context("key", spec=frame.spec, prefix=prefix, word=word)
    return Context("other", spec=frame.spec, prefix=prefix, word=word)


def _scan(tokens: list[Tok], registry: Registry) -> tuple[list[Frame], tuple[str, str] | None]:
    """Replay the tokens before the cursor; return the open frames and the current declaration header."""
    stack: list[Frame] = []
    header: tuple[str, str] | None = None
    for index, token in enumerate(tokens):
        previous = tokens[index - 1] if index else None
        following = tokens[index + 1] if index + 1 < len(tokens) else None

        if not stack and token.type == "NAME" and following is not None:
            header = _header(tokens, index) or header

        if token.type == "NAME" and following is not None and following.type == "=" and stack:
            frame = stack[-1]
            if frame.bracket in "{(" and frame.spec is not None:
                param = frame.spec.param(token.text)
                stack[-1] = attrs.evolve(frame, key=token.text, param_type=param.type if param else None)
        elif token.type in "({[":
            stack.append(_open(token, previous, tokens, index, stack, header, registry))
        elif token.type in ")}]":
            if stack:
                stack.pop()
        elif token.type == "," and stack and stack[-1].bracket == "(":
            frame = stack[-1]
            stack[-1] = attrs.evolve(frame, positional=frame.positional + 1, key=None, param_type=None)

        if stack and stack[-1].bracket == "(" and stack[-1].spec is not None and token.type not in ",(" \
                and stack[-1].key is None and not (following is not None and following.type == "="):
            frame = stack[-1]
            params = frame.spec.params
            offset = 1 if frame.spec.accepts_target else 0
            if frame.positional + offset < len(params) and (previous is None or previous.type in "(,"):
                param = params[frame.positional]
                stack[-1] = attrs.evolve(frame, key=param.name, param_type=param.type)
    return stack, header


def _header(tokens: list[Tok], index: int) -> tuple[str, str] | None:
    token = tokens[index]
    rest = tokens[index + 1:index + 4]
    if token.text in DECLARATION_KINDS and len(rest) == 3 and rest[0].type == "NAME" and rest[1].type == "=" \
            and rest[2].type == "NAME":
        return token.text, rest[2].text
    if token.text == "train" and rest and rest[0].type == "{":
        return "train", "train"
    return None


def _open(token: Tok, previous: Tok | None, tokens: list[Tok], index: int, stack: list[Frame],
          header: tuple[str, str] | None, registry: Registry) -> Frame:
    if token.type == "[":
        parent = stack[-1] if stack else None
        return Frame("[", None, parent.key if parent else None, param_type=parent.param_type if parent else None)

    component = _component_before(tokens, index)
    if not stack:
        spec = registry.get(*header) if header is not None else None
        return Frame(token.type, spec)
    if token.type == "(" and component is None:
        return Frame("(", None)

    parent = next((f for f in reversed(stack) if f.param_type is not None), None)
    spec = None
    if component is not None and parent is not None:
        for kind in component_kinds(parent.param_type):
            spec = registry.get(kind, component) or spec
    return Frame(token.type, spec)


def _component_before(tokens: list[Tok], index: int) -> str | None:
    """Return the component name of the call whose `(` or `{` is at `index`."""
    previous = tokens[index - 1] if index else None
    if previous is None:
        return None
    if previous.type == "NAME":
        return previous.text
    if previous.type == ")" and tokens[index].type == "{":
        depth = 0
        for position in range(index - 1, -1, -1):
            kind = tokens[position].type
            depth += kind == ")"
            depth -= kind == "("
            if depth == 0:
                return tokens[position - 1].text if position and tokens[position - 1].type == "NAME" else None
    return None


def describe_param(spec: ComponentSpec, name: str) -> str | None:
    """Markdown for a parameter: type, default, range and doc."""
    from reparamdsl.semantics.registry import REQUIRED

    param = spec.param(name)
    if param is None:
        return None
    default = "required" if param.default is REQUIRED else f"default `{format_default(param.default)}`"
    lines = [f"**{param.name}**: `{param.type.describe()}`, {default}", "",
             f"Parameter of {spec.kind} `{spec.name}`."]
    if param.doc:
        lines += ["", param.doc]
    return "\n".join(lines)


def describe_component(spec: ComponentSpec) -> str:
    from reparamdsl.semantics.registry import REQUIRED

    lines = [f"**{spec.kind} {spec.name}**", "", spec.doc, ""]
    for param in spec.params:
        default = "required" if param.default is REQUIRED else f"= {format_default(param.default)}"
        lines.append(f"- `{param.name}`: {param.type.describe()} {default}")
    return "\n".join(lines)
