"""The examples under examples/ run to completion and print what they promise."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name):
    return subprocess.run([sys.executable, os.path.join(ROOT, "examples", name)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_custom_component_example():
    result = run_example("custom_component.py")

    assert result.returncode == 0, result.stderr
    assert "smoothing in the plan: 0.05" in result.stdout
    assert "unknown objective component 'smoothed_next_token'" in result.stderr


def test_embed_compiler_example():
    result = run_example("embed_compiler.py")

    assert result.returncode == 0, result.stderr
    assert "model width: 48" in result.stdout
    assert result.stdout.count("manual step loss:") == 2
    assert "metric records written:" in result.stdout
