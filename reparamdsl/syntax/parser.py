"""Parse .rp source into the AST, turning Lark's errors into diagnostics."""

from __future__ import annotations

import functools
import re
from importlib import resources

import lark
from lark import Token, Transformer, v_args

from reparamdsl.diagnostics import Diagnostic, ProgramError, Span
from reparamdsl.syntax import ast

SUFFIXES = {"k": 10**3, "M": 10**6, "G": 10**9, "B": 10**9}

# Plain words for the grammar's terminals, used in "expected ..." messages.
TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "IMPORT": "'import'",
    "LET": "'let'",
    "ON": "'on'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "NONE": "'none'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "EQUAL": "'='",
    "COMMA": "','",
    "DOT": "'.'",
    "$END": "the end of the file",
}

VALUE_TERMINALS = {"NUMBER", "STRING", "NAME", "TRUE", "FALSE", "NONE", "LSQB", "LPAR", "MINUS"}


@functools.cache
def _parser() -> lark.Lark:
    grammar = resources.files("reparamdsl.syntax").joinpath("rp.lark").read_text(encoding="utf-8")
    options = dict(parser="lalr", lexer="contextual", propagate_positions=True, start=["start", "value"],
                   maybe_placeholders=False)
    cache = _cache_path(grammar)
    if cache is not None:
        try:
            return lark.Lark(grammar, cache=cache, **options)
        except (OSError, EOFError, ValueError):
            # An unreadable or stale cache file only costs the table construction.
            pass
    return lark.Lark(grammar, **options)


def _cache_path(grammar: str) -> str | None:
    """Return a per-user file for Lark's parse tables, keyed by the grammar and Lark versions.

    Building the LALR tables takes about 0.2 s, most of a `rpc check`. The
    cache lives in the user's own cache folder, not a shared temporary folder,
    because Lark stores it in a pickle-based format.
    """
    import hashlib
    import os

    root = os.environ.get("REPARAMDSL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "reparamdsl")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError:
        return None
    if not os.access(root, os.W_OK):
        return None
    key = hashlib.sha256(f"{lark.__version__}\n{grammar}".encode()).hexdigest()[:16]
    return os.path.join(root, f"rp-grammar-{key}.lark-cache")


def parse_program(source: str, path: str) -> ast.Program:
    """Parse a whole program; raises `ProgramError` with one diagnostic on a syntax error."""
    _check_numbers(source, path)
    try:
        tree = _parser().parse(source, start="start")
    except lark.exceptions.UnexpectedInput as error:
        raise ProgramError([_syntax_diagnostic(error, source, path)], {path: source}) from None
    _check_nesting(tree, source, path)
    builder = _Builder(path)
    program = builder.transform(tree)
    diagnostics = builder.problems + _check_item_kinds(program)
    if diagnostics:
        raise ProgramError(diagnostics, {path: source})
    return program


def _check_item_kinds(program: ast.Program) -> list[Diagnostic]:
    """Validate declaration kinds, which the grammar parses as plain names."""
    from reparamdsl.diagnostics import did_you_mean

    diagnostics = []
    kinds = ("data", "model", "reparam", "objective", "env")
    for item in program.items:
        if not isinstance(item, ast.Decl):
            continue
        if item.kind == "train" and item.component == "train":
            if item.name != "train":
                diagnostics.append(Diagnostic(
                    f"unknown item '{item.name}'", item.name_span,
                    hint=did_you_mean(item.name, ("train",)) or "a block without a name is only allowed as `train { ... }`"))
        elif item.kind not in kinds:
            diagnostics.append(Diagnostic(
                f"unknown declaration kind '{item.kind}'", item.span_of_kind,
                hint=did_you_mean(item.kind, kinds + ("train",)) or f"declarations start with {', '.join(kinds)}"))
    return diagnostics


def parse_value(text: str, origin: str) -> ast.Node:
    """Parse one value written in the language, as in a `key=value` override; `origin` names it in errors."""
    _check_numbers(text, origin)
    try:
        tree = _parser().parse(text, start="value")
    except lark.exceptions.UnexpectedInput as error:
        raise ProgramError([_syntax_diagnostic(error, text, origin)], {origin: text}) from None
    _check_nesting(tree, text, origin)
    builder = _Builder(origin)
    value = builder.transform(tree)
    if builder.problems:
        raise ProgramError(builder.problems, {origin: text})
    return value


# Tokens that make a malformed number when they follow a number with no space: names, keywords, numbers.
WORD_TERMINALS = {"NAME", "NUMBER", "IMPORT", "LET", "ON", "TRUE", "FALSE", "NONE"}
NUMBER_HINT = ("a number takes at most one suffix (k, M, G, B or %), and a unit word goes after a space, "
               "as in 200 steps. Hexadecimal is not supported")
UNDERSCORE_HINT = "an underscore goes between two digits, as in 1_000"


def _check_numbers(source: str, path: str) -> None:
    """Raise `ProgramError` for numbers that the NUMBER terminal would split or accept by mistake.

    The lexer reads `3kk` as the number 3 followed by the name `kk`, which
    later fails at an unrelated token, so a number glued to a name or to
    another number is reported here at the number itself. Underscores that do
    not sit between two digits (`1__0`, `1_`) are rejected as Python does.
    """
    diagnostics = []
    tokens = _lex_until_error(source)
    for index, token in enumerate(tokens):
        if token.type != "NUMBER":
            continue
        if index > 0 and tokens[index - 1].type == "NUMBER" and tokens[index - 1].end_pos == token.start_pos:
            continue

        last = token
        for following in tokens[index + 1:]:
            if following.start_pos != last.end_pos or following.type not in WORD_TERMINALS:
                break
            last = following

        text = source[token.start_pos:last.end_pos]
        span = Span(path, token.line, token.column, last.end_line, last.end_column)
        if last is not token:
            diagnostics.append(Diagnostic(f"invalid number '{text}'", span, hint=_glued_number_hint(text)))
        elif re.search(r"_(?!\d)", text.split()[0]):
            diagnostics.append(Diagnostic(f"invalid number '{text}'", span, hint=UNDERSCORE_HINT))
    if diagnostics:
        raise ProgramError(diagnostics, {path: source})


def _glued_number_hint(text: str) -> str:
    if re.fullmatch(r"[\d_.]+[eE]", text):
        return "an exponent needs digits, as in 1e-3"
    return NUMBER_HINT


def _lex_until_error(source: str) -> list[Token]:
    """Return the tokens of `source` up to its first unexpected character, which the parser reports."""
    tokens = []
    try:
        for token in _parser().lex(source):
            tokens.append(token)
    except lark.exceptions.UnexpectedInput:
        pass
    return tokens


# The AST builder and the checker recurse once per tree level, so a deeper
# tree would exhaust Python's stack (1000 frames by default).
MAX_NESTING = 128


def _check_nesting(tree: lark.Tree, source: str, path: str) -> None:
    """Raise `ProgramError` when brackets, signs or operator chains nest deeper than `MAX_NESTING`."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            meta = node.meta
            span = Span.point(path, meta.line, meta.column) if not meta.empty else Span.point(path, 1, 1)
            raise ProgramError([Diagnostic(
                f"expression nests more than {MAX_NESTING} levels deep", span,
                hint="split it into `let` constants")], {path: source})
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, lark.Tree))


def _describe_expected(names) -> str:
    words = []
    names = set(names)
    if names & VALUE_TERMINALS and len(names & VALUE_TERMINALS) >= 4:
        words.append("a value")
        names -= VALUE_TERMINALS
    for name in sorted(names):
        words.append(TERMINAL_WORDS.get(name, name.lower()))
    words = sorted(set(words), key=lambda w: (w != "a value", w))
    if len(words) <= 1:
        return words[0] if words else "something else"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    if token.type in ("NAME", "NUMBER", "STRING"):
        return f"{token.type.lower()} {token}" if token.type == "STRING" else f"{token.type.lower()} '{token}'"
    return f"'{token}'"


def _syntax_diagnostic(error: lark.exceptions.UnexpectedInput, source: str, path: str) -> Diagnostic:
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        return _unexpected_character(error, source, path)

    assert isinstance(error, (lark.exceptions.UnexpectedToken, lark.exceptions.UnexpectedEOF))
    token = getattr(error, "token", None)
    expected = getattr(error, "accepts", None) or getattr(error, "expected", set())
    if token is None or token.type == "$END":
        line, column = _end_position(source)
        span = Span.point(path, line, column)
        message = f"unexpected end of file: expected {_describe_expected(expected)}"
        hint = "a '{', '(' or '[' is not closed" if {"RBRACE", "RPAR", "RSQB"} & set(expected) else None
        return Diagnostic(message, span, hint)

    end_column = token.end_column if token.end_line == token.line else token.column + 1
    span = Span(path, token.line, token.column, token.line, end_column)
    message = f"unexpected {_describe_token(token)}: expected {_describe_expected(expected)}"
    history = getattr(error, "token_history", None) or ()
    previous = history[-1] if history else None
    return Diagnostic(message, span, _token_hint(token, set(expected), previous))


def _token_hint(token: Token, expected: set[str], previous: Token | None) -> str | None:
    if previous is not None and previous.type == "NUMBER" and re.search(r"\s(steps|step|epochs|epoch|tokens)$", str(previous)):
        unit = str(previous).split()[-1]
        return (f"'{unit}' was read as the unit of {str(previous).split()[0]}; "
                "start the next entry on a new line or put ',' before it")
    if token.type == "EQUAL" and len(expected & VALUE_TERMINALS) >= 4:
        return "write a single '=' followed by the value"
    if token.type == "EQUAL" and "NAME" in expected:
        return "a declaration reads `kind name = component { ... }`"
    if token.type == "NAME" and "EQUAL" in expected:
        return "set a value with `key = value`"
    if token.type == "LBRACE" and "EQUAL" in expected:
        return "name the declaration and its component: `data corpus = text { ... }`"
    if "LET" in expected:
        return "each item is an import, a `let`, a declaration (data, model, reparam, objective, env) or `train { ... }`"
    if token.type in ("NUMBER", "STRING") and "EQUAL" in expected:
        return "a block holds `key = value` entries"
    if token.type == "RBRACE" and expected & VALUE_TERMINALS:
        return "give the entry a value after '='"
    return None


def _unexpected_character(error: lark.exceptions.UnexpectedCharacters, source: str, path: str) -> Diagnostic:
    char = error.char
    span = Span.point(path, error.line, error.column)
    allowed = set(error.allowed or ())
    hints = {
        ":": "use '=' to set a value, not ':'",
        "'": 'strings use double quotes: "..."',
        '"': "a string must be closed with '\"' on the same line",
        ";": "entries need no separator; use a new line or ','",
        "@": "the language has no decorators or embedded Python",
    }
    hint = hints.get(char)
    if char == "." and "NUMBER" not in allowed:
        hint = "a reference reads `name.attribute`, with no spaces around the '.'"
    shown = repr(char) if not char.isprintable() else f"'{char}'"
    message = f"unexpected character {shown}"
    if allowed:
        message += f": expected {_describe_expected(allowed)}"
    return Diagnostic(message, span, hint)


def _end_position(source: str) -> tuple[int, int]:
    lines = source.split("\n")
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    last = lines[-1] if lines else ""
    return len(lines), len(last) + 1


def parse_number(text: str) -> tuple[int | float, str | None]:
    """Split a NUMBER token into its value (suffix applied) and unit."""
    unit = None
    match = re.match(r"^(.*?)[ \t]+(steps|step|epochs|epoch|tokens)$", text)
    if match:
        text, unit = match.group(1), match.group(2)
        unit = {"step": "steps", "epoch": "epochs"}.get(unit, unit)

    multiplier = 1
    if text.endswith("%"):
        text = text[:-1]
        unit = "%" if unit is None else unit
    elif text[-1] in SUFFIXES:
        multiplier = SUFFIXES[text[-1]]
        text = text[:-1]

    digits = text.replace("_", "")
    if re.fullmatch(r"\d+", digits) and len(digits) <= 30:
        return int(digits) * multiplier, unit
    value = float(digits) * multiplier
    if multiplier != 1 and value.is_integer():
        return int(value), unit
    return value, unit


def _span(path: str, meta_or_token) -> Span:
    return Span(path, meta_or_token.line, meta_or_token.column, meta_or_token.end_line, meta_or_token.end_column)


ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}

# Keywords of the grammar. A constant or declaration named by one could never be
# referred to, because the word always parses as the keyword.
RESERVED = frozenset({"import", "let", "on", "true", "false", "none"})


def _unescape(token: str) -> str:
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), "\\" + m.group(1)), token[1:-1])


def _unknown_escapes(token: str) -> list[str]:
    return [match.group(0) for match in re.finditer(r"\\(.)", token[1:-1]) if match.group(1) not in ESCAPES]


@v_args(meta=True)
class _Builder(Transformer):
    """Turn Lark's parse tree into AST nodes."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.problems: list[Diagnostic] = []

    def check_name(self, token, item: str) -> None:
        if str(token) in RESERVED:
            self.problems.append(Diagnostic(
                f"'{token}' is a reserved word and cannot name a {item}", _span(self.path, token),
                hint=f"choose another name, such as '{token}_value'"))

    def span(self, meta) -> Span:
        return _span(self.path, meta)

    def start(self, meta, items):
        span = self.span(meta) if not meta.empty else Span(self.path, 1, 1, 1, 1)
        return ast.Program(span, self.path, tuple(items))

    def value(self, meta, children):
        return children[0]

    def import_stmt(self, meta, children):
        _, path = children
        return ast.Import(self.span(meta), _unescape(path), _span(self.path, path))

    def let_stmt(self, meta, children):
        _, name, value = children
        self.check_name(name, "constant")
        return ast.Let(self.span(meta), str(name), _span(self.path, name), value)

    def decl(self, meta, children):
        kind, name, component = children[0], children[1], children[2]
        self.check_name(name, "declaration")
        args, target, entries = (), None, ()
        for child in children[3:]:
            if isinstance(child, tuple) and child and child[0] == "args":
                args = child[1]
            elif isinstance(child, ast.Ref):
                target = child
            else:
                entries = child
        return ast.Decl(self.span(meta), str(kind), str(name), _span(self.path, name), str(component),
                        _span(self.path, component), args, target, entries, _span(self.path, kind))

    def train_decl(self, meta, children):
        keyword, entries = children
        keyword_span = _span(self.path, keyword)
        return ast.Decl(self.span(meta), "train", str(keyword), keyword_span, "train", keyword_span, (), None,
                        entries, keyword_span)

    def on_clause(self, meta, children):
        names = children[1:]
        span = Span(self.path, names[0].line, names[0].column, names[-1].end_line, names[-1].end_column)
        return ast.Ref(span, tuple(str(n) for n in names))

    def block(self, meta, children):
        return tuple(children)

    def entry(self, meta, children):
        key, value = children
        return ast.Entry(self.span(meta), str(key), _span(self.path, key), value)

    def call_args(self, meta, children):
        args = []
        for child in children:
            if isinstance(child, ast.Arg):
                args.append(child)
            elif child is not None:
                args.append(ast.Arg(child.span, None, None, child))
        return ("args", tuple(args))

    def kwarg(self, meta, children):
        name, value = children
        return ast.Arg(self.span(meta), str(name), _span(self.path, name), value)

    def binop(self, meta, children):
        left, op, right = children
        return ast.BinOp(self.span(meta), str(op), left, right)

    def neg(self, meta, children):
        return ast.Neg(self.span(meta), children[1])

    def number(self, meta, children):
        token = children[0]
        value, unit = parse_number(str(token))
        return ast.Number(self.span(meta), value, unit, str(token))

    def string(self, meta, children):
        token = children[0]
        unknown = _unknown_escapes(str(token))
        if unknown:
            self.problems.append(Diagnostic(
                f"unknown escape '{unknown[0]}' in a string", self.span(meta),
                hint='the escapes are \\n, \\t, \\" and \\\\; write \\\\ for a backslash'))
        return ast.String(self.span(meta), _unescape(str(token)))

    def true(self, meta, children):
        return ast.Bool(self.span(meta), True)

    def false(self, meta, children):
        return ast.Bool(self.span(meta), False)

    def none(self, meta, children):
        return ast.NoneLit(self.span(meta))

    def list(self, meta, children):
        return ast.ListExpr(self.span(meta), tuple(c for c in children if c is not None))

    def ref(self, meta, children):
        return ast.Ref(self.span(meta), tuple(str(c) for c in children))

    def call(self, meta, children):
        name = children[0]
        args = children[1][1]
        entries = children[2] if len(children) > 2 else ()
        return ast.Call(self.span(meta), str(name), _span(self.path, name), args, entries)

    def call_block(self, meta, children):
        name, entries = children
        return ast.Call(self.span(meta), str(name), _span(self.path, name), (), entries)
