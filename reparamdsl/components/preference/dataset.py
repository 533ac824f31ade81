"""The `preference` data source: read rows, parse their layout, render, tokenize, truncate and split."""

from __future__ import annotations

import glob
import logging
import random
from collections.abc import Iterator

import attrs

from reparamdsl.components.preference.layouts import Columns, PairExample, RowError, UnpairedExample, parse_row
from reparamdsl.components.preference.rows import PreferenceDataError, read_rows
from reparamdsl.components.preference.templates import render_prompt, render_response
from reparamdsl.components.preference.tokens import TokenizerView, Truncation
from reparamdsl.components.text.cache import files_fingerprint
from reparamdsl.components.text.specs import tokenizer_plan_value

logger = logging.getLogger(__name__)

# Fixed seed of the train/holdout split, so every run of a program holds out the same rows.
SPLIT_SEED = 20240523


@attrs.frozen
class EncodedPair:
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]


@attrs.frozen
class EncodedCompletion:
    prompt: list[int]
    completion: list[int]
    desirable: bool


@attrs.define
class PreferenceData:
    """Tokenized examples split into train and holdout, plus the tokenizer that made them."""

    tokenizer: TokenizerView
    train: list
    holdout: list
    max_length: int
    pad_multiple: int
    dropped_truncated: int = 0
    skipped_rows: int = 0

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_id

    @property
    def vocab_size(self) -> int | None:
        return self.tokenizer.vocab_size

    @property
    def paired(self) -> bool:
        return all(isinstance(example, EncodedPair) for example in self.train + self.holdout)


@attrs.frozen
class DataOptions:
    layout: str = "auto"
    template: str = "plain"
    columns: Columns = Columns()
    max_length: int = 512
    max_prompt_length: int | None = None
    truncation_mode: str = "keep_end"
    holdout: float = 0.05
    skip_bad_rows: bool = False
    pad_multiple: int = 64
    max_rows: int | None = None

    @property
    def truncation(self) -> Truncation:
        max_prompt = self.max_prompt_length if self.max_prompt_length is not None else self.max_length // 2
        if max_prompt >= self.max_length:
            raise ValueError(f"max_prompt_length {max_prompt} must be smaller than max_length {self.max_length}")
        return Truncation(self.max_length, max_prompt, self.truncation_mode)


def _encode(example, tokenizer: TokenizerView, options: DataOptions, truncation: Truncation):
    """Tokenize one example; None when a response truncates to nothing."""
    prompt = tokenizer.encode_prompt(render_prompt(example.prompt, options.template))
    prompt = truncation.prompt(prompt, tokenizer.bos_id)

    def response(text: str) -> list[int]:
        return truncation.response(prompt, tokenizer.encode_response(render_response(text, options.template)))

    if isinstance(example, PairExample):
        chosen, rejected = response(example.chosen), response(example.rejected)
        return EncodedPair(prompt, chosen, rejected) if chosen and rejected else None
    completion = response(example.completion)
    return EncodedCompletion(prompt, completion, example.desirable) if completion else None


def parse_examples(paths: list[str], options: DataOptions) -> tuple[list, int]:
    """Read and parse every row of `paths`; return the examples and the count of skipped rows.

    A malformed row raises `PreferenceDataError` naming its file and line,
    unless `options.skip_bad_rows` is set.
    """
    examples, skipped = [], 0
    for path in paths:
        for row in read_rows(path):
            if options.max_rows is not None and len(examples) >= options.max_rows:
                break
            try:
                if isinstance(row.value, PreferenceDataError):
                    raise row.value
                try:
                    examples.append(parse_row(row.value, options.layout, options.columns))
                except RowError as error:
                    raise PreferenceDataError(f"{row.where()}: {error}") from error
            except PreferenceDataError as error:
                if not options.skip_bad_rows:
                    raise PreferenceDataError(f"{error}; fix the row or set skip_bad_rows = true") from error
                skipped += 1
                logger.debug("skipping malformed row: %s", error)
    if skipped:
        logger.warning("skipped %d malformed row(s) in %s", skipped, ", ".join(paths))
    return examples, skipped


def rendered_texts(examples: list, template: str) -> Iterator[str]:
    """Yield every prompt and response as rendered text, for tokenizers that train on the data (BPE)."""
    for example in examples:
        yield render_prompt(example.prompt, template)
        responses = (example.chosen, example.rejected) if isinstance(example, PairExample) else (example.completion,)
        for response in responses:
            yield render_response(response, template)


def encode_examples(examples: list, tokenizer: TokenizerView, options: DataOptions,
                    skipped: int = 0, source: str = "") -> PreferenceData:
    """Tokenize, truncate and split parsed examples; examples whose response truncates to nothing are dropped."""
    truncation = options.truncation
    encoded, dropped = [], 0
    for example in examples:
        item = _encode(example, tokenizer, options, truncation)
        if item is None:
            dropped += 1
        else:
            encoded.append(item)

    if dropped:
        logger.warning("dropped %d example(s) whose response would be empty after truncation to "
                       "max_length %d", dropped, options.max_length)
    identical = sum(1 for item in encoded if isinstance(item, EncodedPair) and item.chosen == item.rejected)
    if identical:
        # Kept, since they are valid rows, but their margin is 0 whatever the model does.
        logger.warning("%d pair(s) in %s have the same chosen and rejected tokens and carry no preference",
                       identical, source or "the data")
    if not encoded:
        raise PreferenceDataError(f"no usable examples in {source or 'the data'} "
                                  f"({skipped} malformed, {dropped} truncated to nothing)")

    train, holdout = split_holdout(encoded, options.holdout)
    logger.info("preference data: %d train and %d holdout examples", len(train), len(holdout))
    return PreferenceData(tokenizer, train, holdout, options.max_length, options.pad_multiple,
                          dropped_truncated=dropped, skipped_rows=skipped)


def split_holdout(examples: list, fraction: float) -> tuple[list, list]:
    """Hold out `fraction` of the examples (at least one when the fraction is positive and two or more exist)."""
    count = round(len(examples) * fraction)
    if fraction > 0 and len(examples) >= 2:
        count = min(max(count, 1), len(examples) - 1)
    order = list(range(len(examples)))
    random.Random(SPLIT_SEED).shuffle(order)
    held_out = set(order[:count])
    train = [example for index, example in enumerate(examples) if index not in held_out]
    holdout = [example for index, example in enumerate(examples) if index in held_out]
    return train, holdout


def options_from_params(params: dict) -> DataOptions:
    columns = Columns(params["prompt_column"], params["chosen_column"], params["rejected_column"],
                      params["conversations_column"], params["completion_column"], params["label_column"])
    return DataOptions(params["layout"], params["template"], columns, params["max_length"],
                       params["max_prompt_length"], params["truncation_mode"], params["holdout"],
                       params["skip_bad_rows"], params["pad_multiple"], params["max_rows"])


def prepare_tokenizer(tokenizer: object, paths: list[str], examples: list, options: DataOptions) -> object:
    """Return a ready tokenizer; text-area tokenizers (`bytes`, `bpe`) get `prepare`d on the rendered data."""
    if not callable(getattr(tokenizer, "prepare", None)):
        return tokenizer
    corpus_key = {"preference": files_fingerprint(paths), "layout": options.layout,
                  "template": options.template, "columns": attrs.asdict(options.columns),
                  "max_rows": options.max_rows}
    return tokenizer.prepare(corpus_key, lambda: rendered_texts(examples, options.template))


def build_preference(params: dict, ctx) -> PreferenceData:
    paths = sorted(glob.glob(params["path"], recursive=True))
    if not paths:
        raise PreferenceDataError(f"no file matches {params['path']}")
    options = options_from_params(params)
    examples, skipped = parse_examples(paths, options)

    tokenizer = ctx.build(tokenizer_plan_value(params["tokenizer"]))
    tokenizer = TokenizerView.of(prepare_tokenizer(tokenizer, paths, examples, options))
    return encode_examples(examples, tokenizer, options, skipped, ", ".join(paths))
