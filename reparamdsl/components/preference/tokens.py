"""Tokenize and truncate prompts and responses; BOS once at the start, EOS once at the end of a response."""

from __future__ import annotations

import attrs


def _first_attr(obj: object, names: tuple[str, ...]) -> object:
    for name in names:
        value = getattr(obj, name, None)
        if callable(value):
            value = value()
        if value is not None:
            return value
    return None


@attrs.frozen
class TokenizerView:
    """A tokenizer as preference data uses it: `encode(text)` without special tokens, plus the special ids."""

    tokenizer: object
    bos_id: int | None
    eos_id: int
    pad_id: int
    vocab_size: int | None

    @classmethod
    def of(cls, tokenizer: object) -> TokenizerView:
        """Wrap any tokenizer that has `encode` and an EOS id (`eos_id`, `eos_token_id` or `eod_id`)."""
        if not callable(getattr(tokenizer, "encode", None)):
            raise TypeError(f"tokenizer {type(tokenizer).__name__} has no encode(text) method")
        eos_id = _first_attr(tokenizer, ("eos_id", "eos_token_id", "eod_id"))
        if eos_id is None:
            raise ValueError(f"tokenizer {type(tokenizer).__name__} defines no EOS token, which preference "
                             "data appends to every response; use a tokenizer with an EOS token")
        # Tokenizers of the text area have no BOS; their end-of-document id, which
        # precedes every document in a text corpus, starts prompts instead.
        bos_id = _first_attr(tokenizer, ("bos_id", "bos_token_id", "eod_id"))
        pad_id = _first_attr(tokenizer, ("pad_id", "pad_token_id"))
        vocab_size = _first_attr(tokenizer, ("vocab_size", "get_vocab_size"))
        return cls(tokenizer, bos_id, int(eos_id), int(eos_id if pad_id is None else pad_id),
                   None if vocab_size is None else int(vocab_size))

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text)
        ids = getattr(ids, "ids", ids)
        return [int(token) for token in ids]

    def encode_prompt(self, text: str) -> list[int]:
        """Token ids of a prompt with exactly one BOS in front (when the tokenizer has one) and no EOS."""
        ids = self.encode(text)
        while ids and ids[-1] == self.eos_id:
            ids.pop()
        if self.bos_id is not None and (not ids or ids[0] != self.bos_id):
            ids.insert(0, self.bos_id)
        return ids

    def encode_response(self, text: str) -> list[int]:
        """Token ids of a response with no BOS and exactly one EOS at the end."""
        ids = self.encode(text)
        while self.bos_id is not None and ids and ids[0] == self.bos_id:
            ids.pop(0)
        if not ids or ids[-1] != self.eos_id:
            ids.append(self.eos_id)
        return ids


@attrs.frozen
class Truncation:
    """Length limits: prompts cut to `max_prompt_length` from the end `mode` names, responses cut at their end."""

    max_length: int
    max_prompt_length: int
    mode: str = "keep_end"

    def prompt(self, ids: list[int], bos_id: int | None) -> list[int]:
        if len(ids) <= self.max_prompt_length:
            return ids
        has_bos = bos_id is not None and ids[0] == bos_id
        body = ids[1:] if has_bos else ids
        keep = self.max_prompt_length - int(has_bos)
        body = body[len(body) - keep:] if self.mode == "keep_end" else body[:keep]
        return ([bos_id] if has_bos else []) + body

    def response(self, prompt: list[int], ids: list[int]) -> list[int]:
        """The response cut to fit after the prompt; empty when nothing fits."""
        room = max(self.max_length - len(prompt), 0)
        return ids[:room]
