"""Component specs of the text area: tokenizers and the `text` data source (torch-free)."""

from __future__ import annotations

import codecs

from reparamdsl.semantics.registry import REQUIRED, ComponentSpec, Param
from reparamdsl.semantics.types import Component, Either, Enum, Fraction, Glob, Int, List, Optional, Str

BYTE_VOCAB_SIZE = 257
STDLIB_SOURCE = "python-stdlib"


def tokenizer_plan_value(value) -> dict:
    """Return the plan value of a tokenizer parameter; a bare name such as "bytes" means no arguments."""
    if isinstance(value, str):
        return {"kind": "tokenizer", "component": value, "params": {}}
    return value


def tokenizer_vocab_size(value) -> int | None:
    """Return the number of ids of a tokenizer plan value, or None for a tokenizer this area does not define."""
    value = tokenizer_plan_value(value)
    if value["component"] == "bytes":
        return BYTE_VOCAB_SIZE
    if value["component"] == "bpe":
        return value["params"].get("vocab", 4096)
    return None


BYTES = ComponentSpec(
    kind="tokenizer",
    name="bytes",
    doc="UTF-8 bytes as ids 0-255 plus id 256 for end of document: 257 ids, no training.",
    params=(),
    builder="reparamdsl.components.text.tokenizer:build_bytes",
    outputs=lambda params: {"vocab_size": BYTE_VOCAB_SIZE},
)

BPE = ComponentSpec(
    kind="tokenizer",
    name="bpe",
    doc=("Byte-level BPE trained on the training split with the `tokenizers` library and cached on disk; "
         "it has exactly `vocab` ids, padded with unused ids when the corpus yields fewer merges."),
    params=(
        Param("vocab", Int(min=BYTE_VOCAB_SIZE, max=1 << 20), 4096,
              "number of ids, including the 256 byte symbols and the end-of-document id"),
        Param("min_frequency", Int(min=1), 2, "minimum count of a pair for it to become a merge"),
    ),
    builder="reparamdsl.components.text.tokenizer:build_bpe",
    outputs=lambda params: {"vocab_size": params["vocab"]},
)


def _text_outputs(params: dict) -> dict:
    outputs = {"context": params["context"]}
    vocab_size = tokenizer_vocab_size(params["tokenizer"])
    if vocab_size is not None:
        outputs["vocab_size"] = vocab_size
    return outputs


def _validate_text(params: dict, check) -> None:
    try:
        codecs.lookup(params["encoding"])
    except LookupError:
        check.error(f"unknown text encoding '{params['encoding']}'", param="encoding",
                    hint='use a Python codec name such as "utf-8" or "latin-1"')


TEXT = ComponentSpec(
    kind="data",
    name="text",
    doc=("Text files tokenized into one token stream per split; files are split into training and held-out "
         "sets by a fixed hash of their paths, independent of the seed."),
    params=(
        Param("source", Either((Enum((STDLIB_SOURCE,)), List(Glob(), min_len=1, single=True))), REQUIRED,
              '"python-stdlib" (the standard library\'s .py files without site-packages and tests) '
              "or paths/globs relative to the program"),
        Param("tokenizer", Component("tokenizer"), "bytes", "tokenizer component: bytes or bpe(vocab = N)"),
        Param("context", Int(min=1), REQUIRED, "tokens per training sequence (each window holds context + 1 tokens)"),
        Param("holdout", Fraction(max=1.0, max_open=True), 0.02, "fraction of files held out for evaluation"),
        Param("max_files", Optional(Int(min=1)), None, "use only this many files (a fixed, seed-independent subset)"),
        Param("encoding", Str(), "utf-8", "text encoding of the files"),
        Param("encoding_errors", Enum(("replace", "ignore", "strict")), "replace",
              "what to do with bytes that are invalid in the encoding; such files are counted in the log"),
    ),
    builder="reparamdsl.components.text.corpus:build_text",
    outputs=_text_outputs,
    validate=_validate_text,
)


def register(registry) -> None:
    registry.register_all([BYTES, BPE, TEXT])
