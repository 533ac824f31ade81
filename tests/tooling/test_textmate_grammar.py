"""The TextMate grammar in editors/vscode: it covers every keyword and tokenizes every shipped program.

TextMate grammars use Oniguruma regular expressions; the patterns here stay in
the subset that Python's `re` reads the same way, so a small line-by-line
tokenizer with TextMate's rule (the earliest match wins, ties go to the first
pattern) replaces an editor.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from hypothesis import HealthCheck, given, settings

from reparamdsl.semantics.registry import DECLARATION_KINDS
from tests.fuzz.grammar_programs import programs
from tests.fuzz.limits import EXAMPLES

ROOT = pathlib.Path(__file__).resolve().parents[2]
EDITOR = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((EDITOR / "syntaxes" / "rp.tmLanguage.json").read_text(encoding="utf-8"))
SHIPPED = sorted((ROOT / "programs").rglob("*.rp"))


def top_patterns() -> list[dict]:
    patterns = []
    for pattern in GRAMMAR["patterns"]:
        if "include" in pattern:
            patterns.append(GRAMMAR["repository"][pattern["include"].lstrip("#")])
        else:
            patterns.append(pattern)
    return patterns


def tokenize_line(line: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Return (scope, text) tokens and the unmatched non-space regions of one line."""
    patterns = [(p, re.compile(p.get("match") or p["begin"])) for p in top_patterns()]
    tokens, unmatched = [], []
    position = 0
    while position < len(line):
        best = None
        for pattern, regex in patterns:
            match = regex.search(line, position)
            if match and match.end() > match.start() and (best is None or match.start() < best[1].start()):
                best = (pattern, match)
        if best is None:
            unmatched.append(line[position:])
            break
        pattern, match = best
        unmatched.append(line[position:match.start()])
        end = match.end()
        if "begin" in pattern:
            closing = re.compile(pattern["end"])
            inner = [re.compile(p["match"]) for p in pattern.get("patterns", [])]
            cursor = end
            while True:
                escape = next((m for m in (r.match(line, cursor) for r in inner) if m), None)
                if escape:
                    cursor = escape.end()
                    continue
                closed = closing.match(line, cursor)
                if closed:
                    end = closed.end()
                    break
                cursor += 1
        tokens.append((_scope(pattern, match), line[match.start():end]))
        position = end
    return tokens, [text for text in unmatched if text.strip()]


def _scope(pattern: dict, match: re.Match) -> str:
    if "name" in pattern:
        return pattern["name"]
    captured = pattern["captures"]["1"]["name"]
    return captured


def lark_keywords() -> set[str]:
    grammar = (ROOT / "grammars" / "rp.lark").read_text(encoding="utf-8")
    return set(re.findall(r'^[A-Z_]+(?:\.\d+)?:\s*"([a-z]+)"\s*$', grammar, re.MULTILINE))


def test_grammar_files_are_consistent():
    manifest = json.loads((EDITOR / "package.json").read_text(encoding="utf-8"))
    (grammar_entry,) = manifest["contributes"]["grammars"]
    assert grammar_entry["scopeName"] == GRAMMAR["scopeName"]
    assert (EDITOR / grammar_entry["path"]).is_file()
    assert manifest["contributes"]["languages"][0]["extensions"] == [".rp"]
    json.loads((EDITOR / "language-configuration.json").read_text(encoding="utf-8"))


def test_every_keyword_is_highlighted():
    keywords = lark_keywords()
    assert {"import", "let", "on", "true", "false", "none"} <= keywords
    for word in sorted(keywords):
        tokens, unmatched = tokenize_line(f"{word} ")
        assert not unmatched
        scope = tokens[0][0]
        assert scope.startswith(("keyword", "constant.language", "storage")), f"{word}: {scope}"
        assert tokens[0][1].strip() == word


def test_declaration_kinds_are_highlighted():
    for kind in DECLARATION_KINDS:
        line = "train {" if kind == "train" else f"{kind} x = comp {{"
        tokens, unmatched = tokenize_line(line)
        assert not unmatched
        assert tokens[0][0] == "storage.type.declaration.rp", (kind, tokens)


def test_line_scopes_of_typical_entries():
    tokens, unmatched = tokenize_line('    schedule = cosine(warmup = 30 steps, min_ratio = 1e-1)  # note "x"')
    assert not unmatched
    assert ("variable.parameter.rp", "schedule") in tokens
    assert ("entity.name.function.rp", "cosine") in tokens
    assert ("constant.numeric.rp", "30 steps") in tokens
    assert ("constant.numeric.rp", "1e-1") in tokens
    assert tokens[-1] == ("comment.line.number-sign.rp", '# note "x"')

    tokens, _ = tokenize_line('    source = "a \\" # not a comment"')
    assert tokens[-1] == ("string.quoted.double.rp", '"a \\" # not a comment"')


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_program_has_no_unmatched_region(path):
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        _, unmatched = tokenize_line(line)
        assert not unmatched, f"{path.name}:{number}: {unmatched}"


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs())
def test_generated_program_has_no_unmatched_region(text):
    for line in text.split("\n"):
        _, unmatched = tokenize_line(line)
        assert not unmatched, (line, unmatched)
