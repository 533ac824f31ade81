"""The `run_tokenizer` tokenizer: the tokenizer a finished run's model was trained with.

A BPE tokenizer is trained on its data source, and the tokenizer cache is keyed
by that source's files. Naming `bpe(vocab = N)` in a preference data source
would therefore train a second, different tokenizer on the preference files.
`run_tokenizer` rebuilds the run's tokenizer on the run's own training files,
which loads the cached file when the run was trained on this machine.
"""

from __future__ import annotations

import logging

from reparamdsl.components.checkpoint.specs import (
    RunFolderProblem, find_declaration, pretraining_data, read_run_plan, single_trained_model,
)
from reparamdsl.components.text.cache import files_fingerprint
from reparamdsl.components.text.specs import tokenizer_plan_value

logger = logging.getLogger(__name__)


class RunTokenizer:
    """A tokenizer recipe whose `prepare` ignores the data that names it and returns the run's tokenizer."""

    def __init__(self, tokenizer: object):
        self.tokenizer = tokenizer

    def prepare(self, corpus_key: object, texts) -> object:
        return self.tokenizer


def prepare_for_text(recipe, params: dict) -> object:
    """Prepare `recipe` exactly as the `text` data source does, so the cache key matches the run's.

    NOTE: this repeats the file split and cache key of `text/corpus.py:build_text`;
    a change there must be mirrored here, or BPE tokenizers are trained again.
    """
    from reparamdsl.components.text.sources import resolve_source, split_holdout
    from reparamdsl.components.text.tokens import DecodeCounter, iter_texts

    encoding, errors = params["encoding"], params["encoding_errors"]
    files = resolve_source(params["source"], params["max_files"])
    train_files, _ = split_holdout(files, params["holdout"])
    corpus_key = {"train": files_fingerprint(f.path for f in train_files), "encoding": encoding, "errors": errors}
    counter = DecodeCounter()
    return recipe.prepare(corpus_key, lambda: (t for t in iter_texts(train_files, encoding, errors, counter) if t))


def prepare_for_preference(recipe, params: dict) -> object:
    """Prepare `recipe` as the `preference` data source does, on the same rows and with the same cache key."""
    import glob

    from reparamdsl.components.preference.dataset import options_from_params, parse_examples, prepare_tokenizer

    paths = sorted(glob.glob(params["path"], recursive=True))
    options = options_from_params(params)
    examples, _ = parse_examples(paths, options)
    return prepare_tokenizer(recipe, paths, examples, options)


PREPARERS = {"text": prepare_for_text, "preference": prepare_for_preference}


def run_tokenizer(run: str, model: str | None, ctx) -> object:
    """Build and prepare the tokenizer of the data `model` was trained on in the run folder `run`."""
    plan = read_run_plan(run)
    model = model or single_trained_model(plan)
    data = pretraining_data(plan, model)
    recipe = ctx.build(tokenizer_plan_value(data["params"]["tokenizer"]))
    if not callable(getattr(recipe, "prepare", None)):
        return recipe

    prepare = PREPARERS.get(data["component"])
    if prepare is None:
        raise RunFolderProblem(f"cannot rebuild the tokenizer of data '{data['name']}' "
                               f"(component {data['component']}): only text and preference data are supported")
    logger.info("rebuilding the tokenizer of data '%s' from the run in %s", data["name"], run)
    return prepare(recipe, data["params"])


def build_run_tokenizer(params: dict, ctx) -> RunTokenizer:
    try:
        return RunTokenizer(run_tokenizer(params["run"], params["model"], ctx))
    except RunFolderProblem as problem:
        raise ValueError(problem.message) from None


__all__ = ["RunTokenizer", "build_run_tokenizer", "find_declaration", "run_tokenizer"]
