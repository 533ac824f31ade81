"""Parse one data row, in any of the supported layouts, into a prompt and its responses.

Layouts (column names are configurable):
- standard: `prompt`, `chosen`, `rejected` strings;
- conversational: the same columns holding lists of `{role, content}`
  messages; `chosen`/`rejected` hold the single assistant reply;
- implicit: only `chosen` and `rejected`, each a whole transcript; the prompt
  is their longest common prefix, cut at a turn boundary;
- sharegpt: `conversations` (a list of `{from, value}`), and `chosen` and
  `rejected` as single `{from, value}` replies;
- unpaired: `prompt`, `completion` and a boolean `label` (for KTO).
"""

from __future__ import annotations

import attrs

from reparamdsl.components.preference.templates import Message

ROLE_NAMES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
              "bot": "assistant", "model": "assistant", "system": "system"}

# Turn marker that ends the shared prefix of string transcripts (Anthropic HH style).
ASSISTANT_MARKER = "Assistant:"


class RowError(ValueError):
    """A row does not fit its layout; the caller adds the file and line."""


@attrs.frozen
class Columns:
    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    conversations: str = "conversations"
    completion: str = "completion"
    label: str = "label"


@attrs.frozen
class PairExample:
    prompt: list[Message] | str
    chosen: str
    rejected: str


@attrs.frozen
class UnpairedExample:
    prompt: list[Message] | str
    completion: str
    desirable: bool


def detect_layout(row: dict, columns: Columns) -> str:
    """Name the layout of one row from the columns it has."""
    if columns.conversations in row:
        return "sharegpt"
    if columns.completion in row and columns.label in row:
        return "unpaired"
    if columns.chosen in row and columns.rejected in row:
        if columns.prompt not in row:
            return "implicit"
        if isinstance(row[columns.prompt], list):
            return "conversational"
        return "standard"
    present = ", ".join(sorted(map(str, row))) or "none"
    raise RowError(f"cannot tell the layout of this row from its columns ({present}); expected "
                   f"'{columns.prompt}'/'{columns.chosen}'/'{columns.rejected}', '{columns.conversations}' "
                   f"or '{columns.prompt}'/'{columns.completion}'/'{columns.label}'")


def parse_row(row: object, layout: str, columns: Columns) -> PairExample | UnpairedExample:
    if not isinstance(row, dict):
        raise RowError(f"expected a JSON object, found {type(row).__name__}")
    if layout == "auto":
        layout = detect_layout(row, columns)
    parser = {"standard": _standard, "conversational": _standard, "implicit": _implicit,
              "sharegpt": _sharegpt, "unpaired": _unpaired}[layout]
    return parser(row, columns)


def _column(row: dict, name: str) -> object:
    if name not in row:
        raise RowError(f"missing column '{name}'")
    return row[name]


def _message(value: object, where: str) -> Message:
    if not isinstance(value, dict):
        raise RowError(f"{where}: expected a message object, found {type(value).__name__}")
    role = value.get("role", value.get("from"))
    content = value.get("content", value.get("value"))
    if not isinstance(role, str) or not isinstance(content, str):
        raise RowError(f"{where}: a message needs string 'role' and 'content' (or 'from' and 'value')")
    if role not in ROLE_NAMES:
        raise RowError(f"{where}: unknown role '{role}'; expected one of {', '.join(sorted(ROLE_NAMES))}")
    return Message(ROLE_NAMES[role], content)


def _messages(value: object, where: str) -> list[Message]:
    if isinstance(value, str):
        return [Message("user", value)]
    if not isinstance(value, list) or not value:
        raise RowError(f"{where}: expected a string or a non-empty list of messages")
    return [_message(item, f"{where}[{index}]") for index, item in enumerate(value)]


def _reply(value: object, where: str) -> str:
    """A response given as a string, one message, or a list of one assistant message."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if len(value) != 1:
            raise RowError(f"{where}: expected a single assistant reply, found {len(value)} messages")
        value = value[0]
    message = _message(value, where)
    if message.role != "assistant":
        raise RowError(f"{where}: the reply has role '{message.role}', expected an assistant reply")
    return message.content


def _standard(row: dict, columns: Columns) -> PairExample:
    prompt = _messages(_column(row, columns.prompt), columns.prompt)
    return PairExample(prompt, _reply(_column(row, columns.chosen), columns.chosen),
                       _reply(_column(row, columns.rejected), columns.rejected))


def _sharegpt(row: dict, columns: Columns) -> PairExample:
    conversation = _column(row, columns.conversations)
    if not isinstance(conversation, list) or not conversation:
        raise RowError(f"{columns.conversations}: expected a non-empty list of messages")
    prompt = [_message(item, f"{columns.conversations}[{i}]") for i, item in enumerate(conversation)]
    return PairExample(prompt, _reply(_column(row, columns.chosen), columns.chosen),
                       _reply(_column(row, columns.rejected), columns.rejected))


def _unpaired(row: dict, columns: Columns) -> UnpairedExample:
    label = _column(row, columns.label)
    if not isinstance(label, bool):
        raise RowError(f"{columns.label}: expected true or false, found {label!r}")
    prompt = _messages(_column(row, columns.prompt), columns.prompt)
    return UnpairedExample(prompt, _reply(_column(row, columns.completion), columns.completion), label)


def _implicit(row: dict, columns: Columns) -> PairExample:
    chosen = _column(row, columns.chosen)
    rejected = _column(row, columns.rejected)
    if isinstance(chosen, str) and isinstance(rejected, str):
        return _implicit_text(chosen, rejected)
    chosen = _messages(chosen, columns.chosen)
    rejected = _messages(rejected, columns.rejected)

    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise RowError("chosen and rejected share no leading turns, so the prompt cannot be inferred")
    replies = []
    for name, transcript in ((columns.chosen, chosen), (columns.rejected, rejected)):
        rest = transcript[shared:]
        if len(rest) != 1 or rest[0].role != "assistant":
            raise RowError(f"{name}: after the shared prompt expected exactly one assistant reply, "
                           f"found {len(rest)} message(s)")
        replies.append(rest[0].content)
    return PairExample(chosen[:shared], replies[0], replies[1])


def _implicit_text(chosen: str, rejected: str) -> PairExample:
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    cut = chosen.rfind(ASSISTANT_MARKER, 0, shared)
    if cut < 0 or cut + len(ASSISTANT_MARKER) > shared:
        raise RowError(f"chosen and rejected share no prefix ending in '{ASSISTANT_MARKER}', "
                       "so the prompt cannot be inferred")
    cut += len(ASSISTANT_MARKER)
    return PairExample(chosen[:cut], chosen[cut:], rejected[cut:])
