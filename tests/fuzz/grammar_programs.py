"""Hypothesis strategies for .rp programs shaped by the grammar in grammars/rp.lark.

`programs()` draws syntactically valid programs: imports, `let` constants,
declarations with arguments, `on` targets and blocks, the train block, and
every expression form (numbers with suffixes and units, strings, booleans,
`none`, lists, references, calls with arguments and blocks, arithmetic,
signs, parentheses). Layout is random too: spacing, newlines, optional
commas and comments. Names come from the registry half of the time, so many
drawn programs get past the parser into the checker.

`mutated_programs()` breaks drawn programs: token deletions, swaps,
duplications, truncation, inserted random characters, deep nesting and huge
numbers.
"""

from __future__ import annotations

import re

from hypothesis import strategies as st

from reparamdsl.semantics.registry import default_registry

REGISTRY = default_registry()
DECL_KINDS = ("data", "model", "reparam", "objective", "env")
KEYWORDS = {"import", "let", "on", "true", "false", "none", "train", *DECL_KINDS}
UNITS = ("steps", "step", "epochs", "epoch", "tokens")

COMPONENT_NAMES = sorted({spec.name for spec in REGISTRY.specs()})
PARAM_NAMES = sorted({param.name for spec in REGISTRY.specs() for param in spec.params})
NAMES = st.one_of(
    st.sampled_from(COMPONENT_NAMES + PARAM_NAMES + ["lm", "corpus", "width", "x"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(lambda name: name not in KEYWORDS),
)

SPACE = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", " \n  "])
COMMENT = st.from_regex(r"#[ -~]{0,20}", fullmatch=True).map(lambda text: text + "\n")


@st.composite
def _gap(draw) -> str:
    """Whitespace between tokens, sometimes with a comment."""
    text = draw(SPACE)
    if draw(st.integers(0, 9)) == 0:
        text += draw(COMMENT)
    return text


def _number() -> st.SearchStrategy[str]:
    integer = st.integers(0, 10**6).map(str)
    underscored = st.integers(1, 999).map(lambda n: f"{n}_000")
    floating = st.tuples(st.integers(0, 999), st.integers(0, 999)).map(lambda p: f"{p[0]}.{p[1]}")
    leading_dot = st.integers(0, 999).map(lambda n: f".{n}")
    scientific = st.tuples(st.integers(1, 9), st.sampled_from("eE"), st.sampled_from(["", "+", "-"]),
                           st.integers(0, 30)).map(lambda p: f"{p[0]}{p[1]}{p[2]}{p[3]}")
    base = st.one_of(integer, underscored, floating, leading_dot, scientific)
    suffix = st.sampled_from(["", "", "", "k", "M", "G", "B", "%"])
    unit = st.sampled_from(["", "", ""] + [f" {u}" for u in UNITS])
    return st.tuples(base, suffix, unit).map("".join)


NUMBER = _number()
STRING = st.text(st.characters(blacklist_characters='"\\\n', blacklist_categories=("Cs",)), max_size=12).map(
    lambda text: f'"{text}"')


LEAVES = st.one_of(NUMBER, STRING, st.sampled_from(["true", "false", "none"]),
                   st.lists(NAMES, min_size=1, max_size=3).map(".".join))
FORMS = ("leaf", "list", "binop", "sign", "paren", "call", "call_block", "call_args_block", "sweep")


@st.composite
def expressions(draw, depth: int = 3) -> str:
    form = draw(st.sampled_from(FORMS)) if depth > 0 else "leaf"
    if form == "leaf":
        return draw(LEAVES)

    def inner() -> str:
        return draw(expressions(depth - 1))

    if form == "list":
        return "[" + ", ".join(inner() for _ in range(draw(st.integers(0, 3)))) + "]"
    if form == "binop":
        return f"{inner()} {draw(st.sampled_from('+-*/'))} {inner()}"
    if form == "sign":
        return f"-{inner()}"
    if form == "paren":
        return f"({inner()})"
    if form == "call":
        return f"{draw(NAMES)}({draw(arguments(depth - 1))})"
    if form == "call_block":
        return f"{draw(NAMES)} {{ {draw(entries(depth - 1))} }}"
    if form == "call_args_block":
        return f"{draw(NAMES)}({draw(arguments(depth - 1))}) {{ {draw(entries(depth - 1))} }}"
    return "sweep(" + ", ".join(inner() for _ in range(draw(st.integers(1, 3)))) + ")"


@st.composite
def arguments(draw, depth: int) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        value = draw(expressions(depth))
        parts.append(f"{draw(NAMES)} = {value}" if draw(st.booleans()) else value)
    return ", ".join(parts)


@st.composite
def entries(draw, depth: int) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        separator = draw(st.sampled_from(["\n", ", ", ",\n"]))
        parts.append(f"{draw(NAMES)} = {draw(expressions(depth))}{separator}")
    return "".join(parts)


@st.composite
def _declaration(draw) -> str:
    kind = draw(st.sampled_from(DECL_KINDS))
    names = REGISTRY.names(kind)
    component = draw(st.sampled_from(names) if names and draw(st.booleans()) else NAMES)
    text = f"{kind} {draw(NAMES)} = {component}"
    if draw(st.booleans()):
        text += f"({draw(arguments(2))})"
    if draw(st.integers(0, 3)) == 0:
        text += " on " + ".".join(draw(st.lists(NAMES, min_size=1, max_size=2)))
    if draw(st.booleans()):
        text += " {\n" + draw(_block_entries(kind, component)) + "}"
    return text


@st.composite
def _block_entries(draw, kind: str, component: str) -> str:
    spec = REGISTRY.get(kind, component)
    keys = st.sampled_from([p.name for p in spec.params]) if spec is not None and spec.params else NAMES
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        separator = draw(st.sampled_from(["\n", "\n", ", ", ",\n"]))
        lines.append(f"    {draw(keys)} = {draw(expressions(2))}{separator}")
    return "".join(lines)


ITEMS = st.one_of(
    STRING.map(lambda path: f"import {path}"),
    st.tuples(NAMES, expressions(3)).map(lambda p: f"let {p[0]} = {p[1]}"),
    _declaration(),
    _block_entries("train", "train").map(lambda entries: "train {\n" + entries + "}"),
)


@st.composite
def programs(draw) -> str:
    """A syntactically valid program with random layout."""
    items = draw(st.lists(ITEMS, max_size=6))
    text = "\n".join(items)
    return _relayout(draw, text)


_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*'
                    r'|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[A-Za-z0-9_%]*(?:[ \t]+(?:steps|step|epochs|epoch|tokens)\b)?'
                    r'|[A-Za-z0-9_.%]+(?:[ \t]+(?:steps|step|epochs|epoch|tokens)\b)?|\S')


def _relayout(draw, text: str) -> str:
    """Replace whitespace between tokens by random whitespace and comments, keeping the tokens."""
    tokens = _TOKEN.findall(text)
    out = []
    for index, token in enumerate(tokens):
        out.append(token)
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token.startswith("#"):
            out.append("\n")
        elif _needs_space(token, following) or draw(st.integers(0, 4)) == 0:
            gap = draw(_gap())
            # A unit word that was not on its number's line must stay off it, or it would become the unit.
            out.append("\n" if following in UNITS else gap)
    return "".join(out)


def _needs_space(token: str, following: str) -> bool:
    word = re.compile(r"[A-Za-z0-9_.%]")
    return bool(following) and bool(word.search(token[-1:])) and bool(word.match(following[:1]))


def tokens_of(text: str) -> list[str]:
    return _TOKEN.findall(text)


@st.composite
def mutated_programs(draw) -> str:
    """A program broken by one to three mutations of its tokens or characters."""
    text = draw(programs())
    for _ in range(draw(st.integers(1, 3))):
        text = draw(_mutation(text))
    return text


@st.composite
def _mutation(draw, text: str) -> str:
    tokens = tokens_of(text) or [""]
    index = draw(st.integers(0, len(tokens) - 1))
    kind = draw(st.sampled_from(["delete", "swap", "duplicate", "truncate", "insert_char", "replace_char",
                                 "nest", "huge_number", "keyword"]))
    if kind == "delete":
        return " ".join(tokens[:index] + tokens[index + 1:])
    if kind == "swap" and len(tokens) > 1:
        other = draw(st.integers(0, len(tokens) - 1))
        tokens[index], tokens[other] = tokens[other], tokens[index]
        return " ".join(tokens)
    if kind == "duplicate":
        return " ".join(tokens[:index + 1] + tokens[index:])
    if kind == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    if kind in ("insert_char", "replace_char"):
        position = draw(st.integers(0, len(text)))
        char = draw(st.characters(blacklist_categories=("Cs",)))
        end = position + (1 if kind == "replace_char" else 0)
        return text[:position] + char + text[end:]
    if kind == "nest":
        depth = draw(st.integers(50, 400))
        opener, closer = draw(st.sampled_from([("(", ")"), ("[", "]"), ("-", ""), ("f(", ")"), ("a {x = ", "}")]))
        return text + f"\nlet deep = {opener * depth}1{closer * depth}\n"
    if kind == "huge_number":
        digits = draw(st.integers(20, 400))
        number = draw(st.sampled_from(["9" * digits, f"1e{digits}", f"{'9' * digits}.5", "1G * " * (digits // 10) + "1"]))
        return text + f"\nlet huge = {number}\ntrain {{ steps = huge }}\n"
    return text + "\n" + draw(st.sampled_from(sorted(KEYWORDS) + ["=", "{", "}", "(", ")", ",", "."]))
