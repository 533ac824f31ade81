"""Tests of the `preference` data source: layouts, templates, BOS/EOS, truncation and row errors."""

import gzip
import json
import logging
import os

import pytest

from reparamdsl.components.preference.dataset import DataOptions, _encode, encode_examples, parse_examples
from reparamdsl.components.preference.layouts import Columns, PairExample
from reparamdsl.components.preference.rows import PreferenceDataError
from reparamdsl.components.preference.tokens import TokenizerView, Truncation

SHARED_DEMO = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "preferences",
                           "dpo_en_demo.json")


class CharTokenizer:
    """Characters as ids 3.., with BOS 1, EOS 2 and PAD 0."""

    bos_id, eos_id, pad_id = 1, 2, 0
    vocab_size = 300

    def encode(self, text):
        return [3 + (ord(char) % 290) for char in text]


def write_jsonl(path, rows):
    with open(path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return str(path)


def load(paths, **options):
    options.setdefault("holdout", 0.0)
    options = DataOptions(**options)
    examples, skipped = parse_examples(paths if isinstance(paths, list) else [paths], options)
    return encode_examples(examples, TokenizerView.of(CharTokenizer()), options, skipped)


PROMPT, CHOSEN, REJECTED = "Name a prime.", "Seven.", "Eight."


def layout_rows():
    return {
        "standard": {"prompt": PROMPT, "chosen": CHOSEN, "rejected": REJECTED},
        "conversational": {"prompt": [{"role": "user", "content": PROMPT}],
                           "chosen": [{"role": "assistant", "content": CHOSEN}],
                           "rejected": [{"role": "assistant", "content": REJECTED}]},
        "implicit": {"chosen": [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": CHOSEN}],
                     "rejected": [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": REJECTED}]},
        "sharegpt": {"conversations": [{"from": "human", "value": PROMPT}],
                     "chosen": {"from": "gpt", "value": CHOSEN}, "rejected": {"from": "gpt", "value": REJECTED}},
    }


@pytest.mark.parametrize("template", ["plain", "chatml", "raw"])
def test_layouts_give_same_tokens(tmp_path, template):
    encoded = {}
    for layout, row in layout_rows().items():
        path = write_jsonl(tmp_path / f"{layout}.jsonl", [row])
        encoded[layout] = load(path, template=template).train[0]

    reference = encoded["standard"]
    for layout, pair in encoded.items():
        assert pair == reference, layout
    assert reference.prompt[0] == CharTokenizer.bos_id
    assert reference.chosen[-1] == CharTokenizer.eos_id


def test_explicit_layout_and_renamed_columns(tmp_path):
    path = write_jsonl(tmp_path / "renamed.jsonl", [{"question": PROMPT, "good": CHOSEN, "bad": REJECTED}])
    columns = Columns(prompt="question", chosen="good", rejected="bad")

    pair = load(path, layout="standard", columns=columns).train[0]
    expected = load(write_jsonl(tmp_path / "plain.jsonl", [layout_rows()["standard"]])).train[0]

    assert pair == expected


def test_plain_template_text(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [layout_rows()["standard"]])
    pair = load(path, template="plain").train[0]

    tokenizer = CharTokenizer()
    assert pair.prompt == [1] + tokenizer.encode(f"User: {PROMPT}\n\nAssistant: ")
    assert pair.chosen == tokenizer.encode(CHOSEN) + [2]


def test_bos_and_eos_added_once():
    class AddsSpecials(CharTokenizer):
        def encode(self, text):
            return [1] + super().encode(text) + [2]

    view = TokenizerView.of(AddsSpecials())

    prompt = view.encode_prompt("hi")
    response = view.encode_response("ok")
    assert prompt.count(1) == 1
    assert prompt[0] == 1
    assert 2 not in prompt
    assert response.count(2) == 1
    assert response[-1] == 2
    assert 1 not in response


def test_implicit_string_transcripts(tmp_path):
    shared = "\n\nHuman: Name a prime.\n\nAssistant:"
    path = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": shared + " Seven.", "rejected": shared + " Eight."}])

    pair = load(path).train[0]

    tokenizer = CharTokenizer()
    assert pair.prompt == [1] + tokenizer.encode(shared)
    assert pair.chosen == tokenizer.encode(" Seven.") + [2]


def test_json_list_and_gzip_match_jsonl(tmp_path):
    rows = [layout_rows()["standard"], {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}]
    jsonl = write_jsonl(tmp_path / "rows.jsonl", rows)
    listed = tmp_path / "rows.json"
    listed.write_text(json.dumps(rows, indent=2))
    zipped = tmp_path / "rows.jsonl.gz"
    with gzip.open(zipped, "wt") as handle:
        handle.write("\n".join(json.dumps(row) for row in rows))

    expected = load(jsonl).train
    assert load(str(listed)).train == expected
    assert load(str(zipped)).train == expected


def test_truncated_gzip_names_file(tmp_path):
    whole = tmp_path / "whole.jsonl.gz"
    with gzip.open(whole, "wt") as handle:
        handle.write("\n".join(json.dumps(layout_rows()["standard"]) for _ in range(50)))
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(whole.read_bytes()[:-20])

    with pytest.raises(PreferenceDataError) as error:
        load(str(truncated))

    assert str(error.value).startswith(f"{truncated}: invalid or truncated gzip data (")


def test_corrupted_gzip_names_file(tmp_path):
    whole = tmp_path / "whole.jsonl.gz"
    with gzip.open(whole, "wt") as handle:
        handle.write("\n".join(json.dumps(layout_rows()["standard"]) for _ in range(50)))
    data = bytearray(whole.read_bytes())
    # The deflate stream starts after the 10-byte gzip header, so this overwrites its first blocks.
    data[10:30] = b"\xff" * 20
    corrupted = tmp_path / "corrupted.jsonl.gz"
    corrupted.write_bytes(bytes(data))

    with pytest.raises(PreferenceDataError) as error:
        load(str(corrupted))

    assert str(error.value).startswith(f"{corrupted}: invalid or truncated gzip data (")


def test_non_gzip_with_gz_suffix_names_file(tmp_path):
    path = tmp_path / "plain.jsonl.gz"
    path.write_text(json.dumps(layout_rows()["standard"]) + "\n")

    with pytest.raises(PreferenceDataError) as error:
        load(str(path))

    assert str(error.value).startswith(f"{path}: invalid or truncated gzip data (")


def test_non_utf8_jsonl_names_line(tmp_path):
    good = json.dumps(layout_rows()["standard"]) + "\n"
    path = tmp_path / "latin1.jsonl"
    path.write_bytes((good * 4).encode() + b'{"prompt": "caf\xe9"}\n')

    with pytest.raises(PreferenceDataError) as error:
        load(str(path))

    assert str(error.value).startswith(f"{path}:5: the file is not valid UTF-8")
    assert "0xe9" in str(error.value)


def test_malformed_jsonl_row_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [layout_rows()["standard"], {"prompt": "x", "chosen": "y"},
                                                  layout_rows()["standard"]])

    with pytest.raises(PreferenceDataError) as error:
        load(path)

    assert f"{path}:2:" in str(error.value)
    assert "skip_bad_rows" in str(error.value)


def test_malformed_json_list_row_names_start_line(tmp_path):
    rows = [layout_rows()["standard"], {"prompt": "x", "chosen": 5, "rejected": "z"}]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows, indent=2))
    object_lines = [number for number, line in enumerate(path.read_text().splitlines(), start=1) if line == "  {"]
    start_line = object_lines[1]

    with pytest.raises(PreferenceDataError) as error:
        load(str(path))

    assert f"{path}:{start_line}:" in str(error.value)


def test_invalid_json_line_names_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(layout_rows()["standard"]) + "\n{not json\n")

    with pytest.raises(PreferenceDataError, match=rf"{path}:2: invalid JSON"):
        load(str(path))


def test_skip_bad_rows_counts_and_logs(tmp_path, caplog):
    path = tmp_path / "mixed.jsonl"
    good = json.dumps(layout_rows()["standard"])
    path.write_text("\n".join([good, "{oops", json.dumps({"prompt": "x"}), good]) + "\n")

    with caplog.at_level(logging.WARNING):
        data = load(str(path), skip_bad_rows=True)

    assert data.skipped_rows == 2
    assert len(data.train) == 2
    assert "skipped 2 malformed row(s)" in caplog.text


def test_truncation_keeps_a_response_token(tmp_path):
    path = write_jsonl(tmp_path / "long.jsonl", [
        {"prompt": "p" * 40, "chosen": "yes", "rejected": "no"},
        {"prompt": "short", "chosen": "yes", "rejected": "no"},
    ])

    data = load(path, template="raw", max_length=12, max_prompt_length=11)

    assert len(data.train) == 2
    for pair in data.train:
        assert len(pair.prompt) <= 11
        assert len(pair.chosen) >= 1
        assert len(pair.prompt) + len(pair.chosen) <= 12
        assert len(pair.rejected) >= 1
        assert len(pair.prompt) + len(pair.rejected) <= 12


def test_truncation_modes_keep_bos_and_the_named_end(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "abcdefghij", "chosen": "yes", "rejected": "no"}])
    tokenizer = CharTokenizer()

    end = load(path, template="raw", max_length=20, max_prompt_length=4).train[0]
    start = load(path, template="raw", max_length=20, max_prompt_length=4, truncation_mode="keep_start").train[0]

    assert end.prompt == [1] + tokenizer.encode("hij")
    assert start.prompt == [1] + tokenizer.encode("abc")


def test_response_cut_to_nothing_is_dropped(caplog):
    # The static check keeps max_prompt_length < max_length; a hand-made limit without that
    # margin leaves no room for the first row's response, which must be dropped, not emptied.
    examples = [PairExample("abcdefgh", "yes", "no"), PairExample("ab", "yes", "no")]
    options = DataOptions(template="raw", holdout=0.0)
    tokenizer = TokenizerView.of(CharTokenizer())

    assert _encode(examples[0], tokenizer, options, Truncation(max_length=9, max_prompt_length=9)) is None
    kept = _encode(examples[1], tokenizer, options, Truncation(max_length=9, max_prompt_length=9))
    assert kept.chosen and kept.rejected

    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="max_prompt_length 9"):
        encode_examples(examples, tokenizer, DataOptions(template="raw", max_length=9, max_prompt_length=9))


def test_dropped_pairs_are_counted_and_logged(caplog, monkeypatch):
    examples = [PairExample("abcdefgh", "yes", "no"), PairExample("ab", "yes", "no")]
    tokenizer = TokenizerView.of(CharTokenizer())
    monkeypatch.setattr(DataOptions, "truncation", property(lambda self: Truncation(9, 9)))

    with caplog.at_level(logging.WARNING):
        data = encode_examples(examples, tokenizer, DataOptions(template="raw", holdout=0.0))

    assert data.dropped_truncated == 1
    assert len(data.train) == 1
    assert "dropped 1 example(s)" in caplog.text


def test_unpaired_rows(tmp_path):
    path = write_jsonl(tmp_path / "kto.jsonl", [
        {"prompt": PROMPT, "completion": CHOSEN, "label": True},
        {"prompt": PROMPT, "completion": REJECTED, "label": False},
    ])

    data = load(path)

    assert not data.paired
    assert [example.desirable for example in data.train] == [True, False]


def test_unpaired_label_must_be_bool(tmp_path):
    path = write_jsonl(tmp_path / "kto.jsonl", [{"prompt": PROMPT, "completion": CHOSEN, "label": "yes"}])

    with pytest.raises(PreferenceDataError, match=r"kto.jsonl:1: label: expected true or false"):
        load(path)


def test_holdout_split_is_fixed(tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(40)]
    path = write_jsonl(tmp_path / "many.jsonl", rows)

    first = load(path, holdout=0.1)
    second = load(path, holdout=0.1)

    assert len(first.holdout) == 4
    assert first.holdout == second.holdout
    assert not set(map(str, first.holdout)) & set(map(str, first.train))


@pytest.mark.skipif(not os.path.exists(SHARED_DEMO), reason="shared preference demo set not present")
def test_sharegpt_demo_set_parses():
    data = load(os.path.abspath(SHARED_DEMO), max_length=256, max_prompt_length=128, holdout=0.05)

    assert data.skipped_rows == 0
    assert len(data.train) + len(data.holdout) + data.dropped_truncated == 300
    assert all(len(pair.prompt) <= 128 for pair in data.train)
    assert all(len(pair.prompt) + len(pair.chosen) <= 256 for pair in data.train)


def test_identical_pairs_are_kept_and_logged(caplog):
    examples = [PairExample("p", "same", "same"), PairExample("p", "yes", "no")]
    tokenizer = TokenizerView.of(CharTokenizer())

    with caplog.at_level(logging.WARNING):
        data = encode_examples(examples, tokenizer, DataOptions(template="raw", holdout=0.0), source="pairs.jsonl")

    assert len(data.train) == 2
    assert "1 pair(s) in pairs.jsonl have the same chosen and rejected tokens" in caplog.text
