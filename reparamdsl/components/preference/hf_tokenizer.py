"""The `hf` tokenizer: a Hugging Face `tokenizer.json` from a local folder, through the `tokenizers` package."""

from __future__ import annotations

import json
import os


def _special(config: dict, key: str) -> str | None:
    value = config.get(key)
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _load_json(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class HFTokenizer:
    """Encode text without special tokens; BOS, EOS and PAD ids come from the folder's config files."""

    def __init__(self, folder: str):
        from tokenizers import Tokenizer

        path = os.path.join(folder, "tokenizer.json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no tokenizer.json in {folder}; save the tokenizer there "
                                    "(tokenizer.save_pretrained(folder) writes it)")
        self.tokenizer = Tokenizer.from_file(path)
        self.folder = folder

        config = _load_json(os.path.join(folder, "special_tokens_map.json"))
        config.update(_load_json(os.path.join(folder, "tokenizer_config.json")))
        model_config = _load_json(os.path.join(folder, "config.json"))
        self.bos_token_id = self._token_id(_special(config, "bos_token"), model_config.get("bos_token_id"))
        self.eos_token_id = self._token_id(_special(config, "eos_token"), model_config.get("eos_token_id"))
        self.pad_token_id = self._token_id(_special(config, "pad_token"), model_config.get("pad_token_id"))

    def _token_id(self, token: str | None, fallback: object) -> int | None:
        if token is not None:
            token_id = self.tokenizer.token_to_id(token)
            if token_id is not None:
                return token_id
        if isinstance(fallback, list):
            fallback = fallback[0] if fallback else None
        return fallback if isinstance(fallback, int) else None

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)


def build_hf_tokenizer(params: dict, ctx) -> HFTokenizer:
    return HFTokenizer(params["path"])
