"""Tests of file discovery and the held-out split."""

import os

import pytest

from reparamdsl.components.text.sources import (SourceFile, glob_files, read_text, resolve_source, split_holdout,
                                                stdlib_files)
from reparamdsl.diagnostics import ProgramError

EXCLUDED = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


def make_files(count: int) -> list[SourceFile]:
    return [SourceFile(f"/corpus/pkg{i % 7}/module_{i}.py", f"pkg{i % 7}/module_{i}.py") for i in range(count)]


def test_stdlib_finds_library_files_only():
    files = stdlib_files()
    names = {os.path.basename(file.path) for file in files}

    assert len(files) > 500
    assert {"os.py", "functools.py", "argparse.py"} <= names
    for file in files:
        assert file.path.endswith(".py")
        assert not EXCLUDED & set(file.name.split(os.sep)[:-1]), file.path
        assert "site-packages" not in file.path


def test_holdout_disjoint_and_complete():
    files = make_files(200)

    train, held_out = split_holdout(files, 0.1)

    assert len(held_out) == 20
    assert not {f.path for f in train} & {f.path for f in held_out}
    assert sorted(train + held_out, key=lambda f: f.path) == sorted(files, key=lambda f: f.path)


def test_holdout_independent_of_order():
    files = make_files(100)

    first = split_holdout(files, 0.05)
    again = split_holdout(list(reversed(files)), 0.05)

    assert {f.path for f in first[1]} == {f.path for f in again[1]}


def test_holdout_keeps_a_training_file():
    files = make_files(3)

    train, held_out = split_holdout(files, 0.9)
    single_train, single_eval = split_holdout(files[:1], 0.5)

    assert len(train) == 1
    assert len(held_out) == 2
    assert (len(single_train), len(single_eval)) == (1, 0)


def test_holdout_small_fraction_holds_out_one():
    train, held_out = split_holdout(make_files(10), 0.01)

    assert len(held_out) == 1
    assert len(train) == 9


def test_glob_files_recursive_without_duplicates(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for path in ["a/one.txt", "a/b/two.txt", "a/b/skip.md"]:
        (tmp_path / path).write_text("x")

    files = glob_files([str(tmp_path / "a" / "**" / "*.txt"), str(tmp_path / "a" / "one.txt")])

    assert [f.name for f in files] == ["b/two.txt", "one.txt"]


def test_max_files_subset_is_stable(tmp_path):
    for i in range(12):
        (tmp_path / f"f{i}.txt").write_text(str(i))
    pattern = [str(tmp_path / "*.txt")]

    some = resolve_source(pattern, 5)
    more = resolve_source(pattern, 8)

    assert len(some) == 5
    assert {f.path for f in some} <= {f.path for f in more}


def test_read_text_strict_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"first line\nsecond line\ncaf\xe9\n")

    with pytest.raises(ProgramError) as error:
        read_text(str(path), "utf-8", "strict")

    diagnostic = error.value.diagnostics[0]
    assert diagnostic.message.startswith(f"{path}:3: the file is not valid utf-8")
    assert "0xe9" in diagnostic.message
    assert "encoding_errors" in diagnostic.hint


def test_read_text_replace_marks_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9\n")

    text, replaced = read_text(str(path), "utf-8", "replace")

    assert text == "caf\ufffd\n"
    assert replaced
