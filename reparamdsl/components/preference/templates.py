"""Chat templates: render a prompt's messages and a response to the text that gets tokenized.

- `plain`: `System: ...`, `User: ...`, `Assistant: ...` turns separated by a
  blank line; the prompt ends with `Assistant: `.
- `chatml`: `<|im_start|>role\\n...<|im_end|>\\n` turns; the prompt ends with
  `<|im_start|>assistant\\n` and a response ends with `<|im_end|>`.
- `raw`: message contents joined by a blank line; responses unchanged.

A prompt given as a plain string that is already a rendered transcript
(the implicit-prompt layout with string transcripts) is used verbatim.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Message:
    role: str
    content: str


PLAIN_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}


def render_prompt(prompt: list[Message] | str, template: str) -> str:
    if isinstance(prompt, str):
        return prompt
    if template == "plain":
        turns = "".join(f"{PLAIN_ROLES.get(m.role, m.role.title())}: {m.content}\n\n" for m in prompt)
        return turns + "Assistant: "
    if template == "chatml":
        turns = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in prompt)
        return turns + "<|im_start|>assistant\n"
    return "\n\n".join(m.content for m in prompt)


def render_response(response: str, template: str) -> str:
    if template == "chatml":
        return response + "<|im_end|>"
    return response
