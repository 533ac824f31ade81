"""The full token stream of a program, comments included, for tools that rewrite or inspect source text.

The compiler's parser drops comments. Tools get them from a second Lark
parser built from the same grammar, which collects COMMENT tokens through a
lexer callback and keeps every anonymous token (`=`, `{`, `,`) in the tree.
"""

from __future__ import annotations

import functools
import threading
from importlib import resources

import attrs
import lark

from reparamdsl.syntax.parser import parse_program


@attrs.frozen
class Token:
    """One token: Lark terminal name (`NAME`, `EQUAL`, `COMMENT`...), text and 1-based position."""

    type: str
    value: str
    line: int
    column: int
    end_line: int
    end_column: int
    item_start: bool = False


@functools.cache
def _token_parser() -> lark.Lark:
    grammar = resources.files("reparamdsl.syntax").joinpath("rp.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                     keep_all_tokens=True, start="start", maybe_placeholders=False,
                     lexer_callbacks={"COMMENT": _collect_comment})


# Lark calls lexer callbacks without context, so comments of the parse in
# progress are collected here; `program_tokens` resets it under a lock.
_comments: list[lark.Token] = []


def _collect_comment(token: lark.Token) -> lark.Token:
    _comments.append(token)
    return token


_lock = threading.Lock()


def program_tokens(source: str, path: str = "<string>") -> list[Token]:
    """Return every token of a program in source order, comments included.

    Raises `ProgramError` (from the compiler's parser) when the program has a syntax error.
    """
    parse_program(source, path)

    with _lock:
        _comments.clear()
        tree = _token_parser().parse(source)
        comments = list(_comments)
        _comments.clear()

    item_starts = {_first_position(item) for item in tree.children if isinstance(item, lark.Tree)}
    item_starts |= {(item.line, item.column) for item in tree.children if isinstance(item, lark.Token)}
    tokens = [_convert(token, item_starts) for token in _leaves(tree)]
    tokens += [_convert(comment, set()) for comment in comments]
    tokens.sort(key=lambda token: (token.line, token.column))
    return tokens


def _convert(token: lark.Token, item_starts: set[tuple[int, int]]) -> Token:
    return Token(token.type, str(token), token.line, token.column, token.end_line, token.end_column,
                 (token.line, token.column) in item_starts)


def _first_position(tree: lark.Tree) -> tuple[int, int]:
    return tree.meta.line, tree.meta.column


def _leaves(tree: lark.Tree) -> list[lark.Token]:
    """Tokens of `tree` in order, walked without recursion (programs may nest deeply)."""
    leaves = []
    stack: list = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, lark.Token):
            leaves.append(node)
        else:
            stack.extend(reversed(node.children))
    return leaves
