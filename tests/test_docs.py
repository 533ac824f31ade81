"""The language reference lists every registered component with its current parameters."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_language_reference_is_current():
    spec = importlib.util.spec_from_file_location("gen_reference", os.path.join(ROOT, "docs", "gen_reference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    with open(module.PATH, encoding="utf-8") as handle:
        current = handle.read()

    assert module.render() == current, "docs/language.md is out of date: run python docs/gen_reference.py"
