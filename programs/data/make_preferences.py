"""Write `preferences_small.jsonl`: preference pairs built from Python standard-library docstrings.

Each row asks what a standard-library function does. The chosen response is
the first sentence of that function's docstring. The rejected response is a
corrupted copy of it, picked by a hash of the function's name so the output is
the same on every run of the same Python version:

- shuffled: the same words in a shuffled order;
- truncated: the first 40% of the words, cut mid-sentence;
- swapped: the first sentence of another function's docstring.

A model that reads English and the function names can tell the two apart, so
held-out preference accuracy above 50% is a real signal. Run it with
`python programs/data/make_preferences.py [--rows N] [--out PATH]`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import os
import random
import re

MODULES = (
    "os", "os.path", "shutil", "json", "re", "string", "textwrap", "collections", "itertools", "functools",
    "math", "statistics", "random", "datetime", "calendar", "heapq", "bisect", "copy", "glob", "fnmatch",
    "base64", "binascii", "hashlib", "zlib", "gzip", "csv", "difflib", "html", "urllib.parse", "operator",
    "inspect", "tempfile", "time", "uuid", "secrets", "pathlib", "fractions", "decimal", "struct", "codecs",
)
CORRUPTIONS = ("shuffled", "truncated", "swapped")
MIN_WORDS = 5
MAX_WORDS = 40


def first_sentence(docstring: str) -> str | None:
    """Return the docstring's first sentence as one line, or None if it is too short or a signature line."""
    paragraph = " ".join(docstring.strip().split("\n\n")[0].split())
    match = re.match(r"(.+?[.!?])(\s|$)", paragraph)
    sentence = match.group(1) if match else paragraph
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or "(" in words[0] or "->" in sentence:
        return None
    return sentence


def collect_functions() -> list[tuple[str, str]]:
    """Return sorted (qualified name, first sentence) pairs of public standard-library functions."""
    found = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if name.startswith("_") or not (inspect.isfunction(value) or inspect.isbuiltin(value)):
                continue
            sentence = first_sentence(inspect.getdoc(value) or "")
            if sentence is not None:
                found.setdefault(sentence, f"{module_name}.{name}")
    return sorted((name, sentence) for sentence, name in found.items())


def stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def corrupt(name: str, sentence: str, others: list[str]) -> tuple[str, str]:
    """Return (corruption kind, rejected text) for one function, chosen deterministically from its name."""
    rng = random.Random(stable_int(name))
    kind = CORRUPTIONS[stable_int("kind:" + name) % len(CORRUPTIONS)]
    words = sentence.split()
    if kind == "shuffled":
        shuffled = words[:]
        while shuffled == words:
            rng.shuffle(shuffled)
        return kind, " ".join(shuffled)
    if kind == "truncated":
        return kind, " ".join(words[:max(2, int(len(words) * 0.4))])
    other = sentence
    while other == sentence:
        other = rng.choice(others)
    return kind, other


def make_rows(limit: int) -> list[dict]:
    functions = collect_functions()
    sentences = [sentence for _, sentence in functions]
    rows = []
    for name, sentence in functions:
        kind, rejected = corrupt(name, sentence, sentences)
        rows.append({"prompt": f"What does the Python function {name} do?", "chosen": sentence,
                     "rejected": rejected, "corruption": kind})
    random.Random(0).shuffle(rows)
    return rows[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400, help="maximum number of rows to write")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "preferences_small.jsonl"), help="output JSONL file")
    args = parser.parse_args()
    rows = make_rows(args.rows)
    with open(args.out, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = {kind: sum(row["corruption"] == kind for row in rows) for kind in CORRUPTIONS}
    print(f"wrote {len(rows)} rows to {args.out}: {counts}")


if __name__ == "__main__":
    main()
