"""`rpc fmt`: print a program in the one canonical layout, keeping its comments.

The layout:
- four-space indentation; one block entry per line, without commas;
- `key = value`, spaces around binary operators, none after a sign;
- calls, lists and parentheses on one line, unless they contain a comment or
  a block, in which case each element gets its own line and a trailing comma;
- a blank line around declarations, while runs of imports or of `let`
  constants stay together. At most one blank line is kept from the source,
  and none after `{` or before `}`;
- comments stay where they were: on their own line, or two spaces after the
  token they followed; whitespace inside a number's unit (`200   steps`)
  becomes one space.

Only whitespace, commas and trailing-comma placement change, so the AST and
the plan hash are unchanged. Lines are not wrapped at any width.
"""

from __future__ import annotations

import re

from reparamdsl.tooling.tokens import Token, program_tokens

INDENT = "    "
OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB"}
CLOSERS = {"RPAR", "RSQB"}
OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH"}
# After these tokens a `-` is a sign, not a subtraction.
SIGN_CONTEXT = {None, "EQUAL", "LPAR", "LSQB", "COMMA", "PLUS", "MINUS", "STAR", "SLASH", "LBRACE"}


def format_source(source: str, path: str = "<string>") -> str:
    """Return `source` in canonical layout; raises `ProgramError` when it does not parse.

    A leading byte-order mark is dropped, as `rpc check` ignores it, so the
    canonical layout has none.
    """
    tokens = program_tokens(source.removeprefix("\ufeff"), path)
    return _Printer(tokens).run()


class _Printer:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.code = [index for index, token in enumerate(tokens) if token.type != "COMMENT"]
        self.multiline = _multiline_groups(tokens)
        self.lines: list[str] = []
        self.current: str = ""
        self.depth = 0
        # One entry per open bracket: ("block", None) or ("group", multiline).
        self.stack: list[tuple[str, bool | None]] = []
        self.previous: Token | None = None
        self.previous_item: Token | None = None
        self.last_code: Token | None = None
        self.last_minus_is_sign = False
        self.last_comment_standalone = False
        self.commented_line = -1

    def run(self) -> str:
        for index, token in enumerate(self.tokens):
            if token.type == "COMMENT":
                self.comment(index, token)
            else:
                self.code_token(index, token)
                if token.type == "MINUS":
                    self.last_minus_is_sign = (self.last_code.type if self.last_code else None) in SIGN_CONTEXT
                self.last_code = token
            self.previous = token
        self.flush()
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return "\n".join(self.lines) + "\n" if self.lines else ""

    # Lines

    def flush(self) -> None:
        if self.current.strip():
            self.lines.append(self.current.rstrip())
        self.current = ""

    def newline(self, blank: bool = False) -> None:
        self.flush()
        if blank and self.lines and self.lines[-1] and not self.lines[-1].endswith("{"):
            self.lines.append("")
        self.current = INDENT * self.depth

    def at_line_start(self) -> bool:
        return not self.current.strip()

    def write(self, text: str, space: bool) -> None:
        if space and not self.at_line_start() and not self.current.endswith(" "):
            self.current += " "
        self.current += text

    def gap_before(self, token: Token) -> bool:
        """Return whether the source has a blank line between the previous token and `token`."""
        return self.previous is not None and token.line - self.previous.end_line > 1

    # Comments

    def comment(self, index: int, token: Token) -> None:
        text = token.value.rstrip()
        trailing = self.previous is not None and self.previous.end_line == token.line
        self.last_comment_standalone = not trailing
        if trailing and not self.at_line_start():
            self.current += "  " + text
            self.newline()
            self.commented_line = len(self.lines) - 1
            return
        # A comment after a dropped comma trails the line before, unless that line has a comment already.
        if trailing and self.lines and self.commented_line != len(self.lines) - 1:
            self.lines[-1] += "  " + text
            self.commented_line = len(self.lines) - 1
            return

        blank = self.gap_before(token)
        following = self.next_code(index)
        if following is not None and following.item_start and not self.stack:
            blank = blank or self.item_needs_blank(following)
        if self.stack and following is not None and following.type == "RBRACE" and self.stack[-1][0] == "block":
            blank = False
        self.newline(blank)
        self.current += text
        self.newline()
        self.commented_line = len(self.lines) - 1

    def next_code(self, index: int) -> Token | None:
        for token in self.tokens[index + 1:]:
            if token.type != "COMMENT":
                return token
        return None

    # Code

    def code_token(self, index: int, token: Token) -> None:
        kind = token.type
        if token.item_start and not self.stack:
            self.start_item(token)
            return
        if kind == "LBRACE":
            self.open_block(index, token)
            return
        if kind == "RBRACE":
            self.close_block()
            return
        if self.stack and self.stack[-1][0] == "block" and self.is_entry_key(index):
            self.newline(self.gap_before(token) and self.previous.type != "LBRACE")
            self.write(token.value, space=False)
            return
        if kind in OPENERS:
            self.open_group(index, token)
            return
        if kind in CLOSERS:
            self.close_group(token)
            return
        if kind == "COMMA":
            self.comma(index)
            return
        self.write(_text(token), space=self.space_before(token))

    def start_item(self, token: Token) -> None:
        blank = self.gap_before(token) or (self.previous_item is not None and self.item_needs_blank(token))
        if self.previous is not None and self.previous.type == "COMMENT" and self.last_comment_standalone:
            blank = self.gap_before(token)
        if self.previous is None:
            self.current = ""
        else:
            self.newline(blank)
        self.write(token.value, space=False)
        self.previous_item = token

    def item_needs_blank(self, token: Token) -> bool:
        """Declarations get a blank line around them; runs of imports or of `let`s stay together."""
        previous = self.previous_item
        if previous is None:
            return False
        grouped = {"IMPORT", "LET"}
        return not (token.type in grouped and previous.type == token.type)

    def is_entry_key(self, index: int) -> bool:
        token = self.tokens[index]
        if token.type != "NAME":
            return False
        following = self.next_code(index)
        return following is not None and following.type == "EQUAL"

    def space_before(self, token: Token) -> bool:
        previous = self.last_code
        if previous is None:
            return False
        if token.type == "DOT" or previous.type == "DOT":
            return False
        if previous.type in OPENERS:
            return False
        if previous.type == "MINUS" and self.last_minus_is_sign:
            return False
        return True

    # Brackets

    def open_block(self, index: int, token: Token) -> None:
        self.write("{", space=True)
        self.stack.append(("block", None))
        self.depth += 1
        self.newline()

    def close_block(self) -> None:
        self.stack.pop()
        self.depth -= 1
        empty = self.last_code is not None and self.last_code.type == "LBRACE" and self.previous is self.last_code
        if empty and self.at_line_start() and self.lines and self.lines[-1].endswith("{"):
            self.current = self.lines.pop() + "}"
            return
        self.newline()
        self.current += "}"

    def open_group(self, index: int, token: Token) -> None:
        previous = self.last_code
        call = token.type == "LPAR" and previous is not None and previous.type == "NAME"
        self.write(token.value, space=not call and self.space_before(token))
        multiline = self.multiline.get(index, False)
        self.stack.append(("group", multiline))
        if multiline:
            self.depth += 1
            self.newline()

    def close_group(self, token: Token) -> None:
        _, multiline = self.stack.pop()
        if multiline:
            previous = self.last_code
            if previous is not None and previous.type not in OPENERS and previous.type != "COMMA":
                self.append_comma()
            self.depth -= 1
            self.newline()
            self.current += token.value
            return
        self.current = self.current.rstrip() if not self.at_line_start() else self.current
        self.current += token.value

    def comma(self, index: int) -> None:
        following = self.next_code(index)
        if not self.stack or self.stack[-1][0] == "block":
            return
        multiline = self.stack[-1][1]
        if multiline:
            self.append_comma()
            if following is not None and following.type not in CLOSERS:
                self.newline()
            return
        if following is not None and following.type in CLOSERS:
            return
        self.append_comma()

    def append_comma(self) -> None:
        # After a comment the comma starts its own line, at the current indentation.
        self.current = (self.current if self.at_line_start() else self.current.rstrip()) + ","


def _text(token: Token) -> str:
    if token.type == "NUMBER":
        return re.sub(r"[ \t]+", " ", token.value)
    return token.value


def _multiline_groups(tokens: list[Token]) -> dict[int, bool]:
    """Map the index of each `(` or `[` to whether its group contains a comment or a block.

    Parentheses around an expression (a `(` not after a name) are never
    multiline groups, because `(expr,)` would not parse.
    """
    result: dict[int, bool] = {}
    open_groups: list[int] = []
    previous: Token | None = None
    for index, token in enumerate(tokens):
        if token.type in OPENERS:
            open_groups.append(index)
            grouping = token.type == "LPAR" and (previous is None or previous.type != "NAME")
            result[index] = None if grouping else False
        elif token.type in CLOSERS and open_groups:
            open_groups.pop()
        elif token.type in ("COMMENT", "LBRACE"):
            for opener in open_groups:
                if result[opener] is not None:
                    result[opener] = True
        if token.type != "COMMENT":
            previous = token
    return {index: bool(multiline) for index, multiline in result.items()}
