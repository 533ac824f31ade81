"""Specs of the preference area: objectives, the `preference` data source, Hugging Face models.

Torch-free: `rpc check` imports this module to check programs. Builders live
beside it (`task.py`, `dataset.py`, `hf_model.py`, `hf_tokenizer.py`).
"""

from __future__ import annotations

import json
import os

from reparamdsl.components.checkpoint.specs import run_tokenizer_vocab_size
from reparamdsl.components.text.specs import tokenizer_plan_value
from reparamdsl.components.text.specs import tokenizer_vocab_size as text_tokenizer_vocab_size
from reparamdsl.semantics.registry import ComponentSpec, Param
from reparamdsl.semantics.types import (
    Bool, Component, Enum, Float, Fraction, Glob, Int, Optional, Path, Ref, Str,
)

PAIRED_OBJECTIVES = ("simpo", "dpo", "ipo", "hinge", "robust_dpo", "cpo", "orpo", "rdpo", "sigmoid_norm")
LAYOUTS = ("auto", "standard", "conversational", "implicit", "sharegpt", "unpaired")
TEMPLATES = ("plain", "chatml", "raw")
DEFAULT_GAMMA_BETA_RATIO = 0.5

_POSITIVE = Float(min=0.0, min_open=True)
_NON_NEGATIVE = Float(min=0.0)


def _policy_and_data() -> tuple[Param, ...]:
    return (
        Param("policy", Ref("model"), doc="the causal LM to train; its forward maps tokens (B, T) to logits (B, T, V)"),
        Param("data", Ref("data"), doc="a `preference` data source tokenized with the policy's tokenizer"),
    )


def _beta(default: float, doc: str) -> Param:
    return Param("beta", _POSITIVE, default, doc)


def _label_smoothing() -> Param:
    return Param("label_smoothing", Fraction(max=0.5, max_open=True), 0.0,
                 "probability that a preference label is flipped (conservative loss); 0 turns it off")


def _reference(default: str | None = "copy") -> Param:
    return Param("reference", Optional(Enum(("copy", "precomputed"))), default,
                 "frozen reference: a copy of the starting policy run each step, its log-probs computed "
                 "once before training, or none (reference log-probs taken as 0)")


# ---- static checks ---------------------------------------------------------------------------


def _data_decl(params: dict, check):
    ref = params.get("data")
    if not isinstance(ref, dict) or "ref" not in ref:
        return None
    return check.lookup(ref["ref"])


def _check_paired_data(params: dict, check) -> None:
    decl = _data_decl(params, check)
    if decl is None or decl.component != "preference":
        return
    if decl.params.get("layout") == "unpaired":
        check.error(f"this objective trains on chosen/rejected pairs, but data '{decl.name}' has layout = unpaired",
                    param="data", hint="use objective `kto` for unpaired rows, or a paired layout")


def _check_vocab(params: dict, check) -> None:
    decl = _data_decl(params, check)
    policy = params.get("policy")
    if decl is None or not isinstance(policy, dict) or "ref" not in policy:
        return
    model = check.lookup(policy["ref"])
    data_vocab = decl.outputs.get("vocab_size")
    model_vocab = None if model is None else (model.outputs.get("vocab_size") or model.params.get("vocab"))
    if isinstance(data_vocab, int) and isinstance(model_vocab, int) and data_vocab > model_vocab:
        check.error(f"data '{decl.name}' has {data_vocab} token ids but model '{model.name}' "
                    f"has a vocabulary of {model_vocab}", param="policy",
                    hint=f"set the model's vocabulary to {decl.name}.vocab_size")
    if model is not None and model.component == "checkpoint":
        _check_checkpoint_tokenizer(decl, model, data_vocab, model_vocab, check)


def _check_checkpoint_tokenizer(data, model, data_vocab, model_vocab, check) -> None:
    """A policy loaded from a run must read the token ids it was trained on: same tokenizer, same vocabulary."""
    hint = f"set `tokenizer = {model.name}.tokenizer` in data '{data.name}'"
    if isinstance(data_vocab, int) and isinstance(model_vocab, int) and data_vocab != model_vocab:
        check.error(f"data '{data.name}' has {data_vocab} token ids but the checkpoint of model "
                    f"'{model.name}' was trained with {model_vocab}", param="data", hint=hint)
        return
    trained_with = model.outputs.get("tokenizer")
    tokenizer = tokenizer_plan_value(data.params["tokenizer"])
    if trained_with is not None and tokenizer != trained_with:
        check.error(f"data '{data.name}' uses tokenizer {tokenizer['component']}, which is not the tokenizer "
                    f"model '{model.name}' was trained with ({trained_with['component']}); a bpe tokenizer "
                    "named here trains on the preference files and gives other ids", param="data", hint=hint)


def _validate_paired(params: dict, check) -> None:
    _check_paired_data(params, check)
    _check_vocab(params, check)


def _validate_simpo(params: dict, check) -> None:
    if params.get("gamma") is not None and params.get("gamma_beta_ratio") is not None:
        check.error("set either gamma or gamma_beta_ratio, not both", param="gamma_beta_ratio",
                    hint="gamma = beta * gamma_beta_ratio; keep the one you mean")
    _validate_paired(params, check)


def _validate_kto(params: dict, check) -> None:
    if params.get("reference") is None:
        check.error("kto needs a reference model for its log-ratios and KL estimate", param="reference",
                    hint='use reference = "copy" or "precomputed"')
    _check_vocab(params, check)


# ---- objectives ------------------------------------------------------------------------------


def _objective(name: str, doc: str, params: tuple[Param, ...], validate=_validate_paired) -> ComponentSpec:
    return ComponentSpec(
        kind="objective", name=name, doc=doc, params=_policy_and_data() + params,
        builder=f"reparamdsl.components.preference.task:build_{name}", validate=validate,
    )


def objective_specs() -> list[ComponentSpec]:
    return [
        _objective("simpo", "SimPO: reference-free, length-normalized reward with a target margin gamma", (
            _beta(2.0, "reward scale: reward = beta * average response log-prob"),
            Param("gamma", Optional(_NON_NEGATIVE), None, "target reward margin; excludes gamma_beta_ratio"),
            Param("gamma_beta_ratio", Optional(_NON_NEGATIVE), None,
                  f"margin as a fraction of beta (gamma = beta * ratio); {DEFAULT_GAMMA_BETA_RATIO} when "
                  "neither is set"),
            _label_smoothing(),
            Param("loss_type", Enum(("sigmoid", "hinge")), "sigmoid",
                  "sigmoid: -log sigmoid(margin); hinge: relu(1 - margin)"),
            Param("sft_weight", _NON_NEGATIVE, 0.0, "weight of the chosen response's average NLL; 0 turns it off"),
        ), _validate_simpo),
        _objective("dpo", "DPO: logistic loss on the policy/reference log-ratio margin", (
            _beta(0.1, "inverse temperature of the implicit reward beta * log(pi / pi_ref)"),
            _label_smoothing(), _reference(),
        )),
        _objective("ipo", "IPO: squared loss pulling the length-averaged log-ratio margin to 1 / (2 beta)", (
            _beta(0.1, "regularization tau; the target margin is 1 / (2 beta)"), _reference(),
        )),
        _objective("hinge", "SLiC hinge: relu(1 - beta * log-ratio margin)", (
            _beta(0.1, "inverse margin: the hinge is met when the log-ratio margin reaches 1 / beta"), _reference(),
        )),
        _objective("robust_dpo", "Robust DPO: unbiased DPO under preference labels flipped with probability epsilon", (
            _beta(0.1, "inverse temperature of the implicit reward"),
            Param("epsilon", Float(min=0.0, max=0.5, max_open=True), 0.1,
                  "label flip rate in [0, 0.5); 0.5 would divide by zero"),
            _reference(),
        )),
        _objective("cpo", "CPO: reference-free logistic loss on summed log-probs plus NLL on chosen", (
            _beta(0.1, "inverse temperature on the summed log-prob margin"),
            _label_smoothing(),
            Param("alpha", _NON_NEGATIVE, 1.0, "weight of the NLL on chosen responses (token mean over the batch)"),
        )),
        _objective("orpo", "ORPO: NLL on chosen minus lambda * log sigmoid(log odds ratio)", (
            _beta(0.1, "lambda, the weight of the odds-ratio term"),
        )),
        _objective("rdpo", "R-DPO: DPO with a penalty on the chosen/rejected length difference", (
            _beta(0.1, "inverse temperature of the implicit reward"),
            Param("alpha", _NON_NEGATIVE, 0.05, "length penalty per token of length difference"),
            _label_smoothing(), _reference(),
        )),
        _objective("kto", "KTO: unpaired desirable/undesirable examples against a batch KL estimate", (
            _beta(0.1, "inverse temperature of the implicit reward"),
            Param("desirable_weight", _POSITIVE, 1.0, "weight of desirable examples' losses"),
            Param("undesirable_weight", _POSITIVE, 1.0, "weight of undesirable examples' losses"),
            _reference(),
        ), _validate_kto),
        _objective("sigmoid_norm", "Length-normalized DPO: logistic loss on average log-prob (or log-ratio) margins", (
            _beta(1.0, "inverse temperature on the average log-prob margin"),
            _label_smoothing(), _reference(None),
        )),
    ]


# ---- data, tokenizer, model ------------------------------------------------------------------


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def hf_vocab_size(folder: str) -> int | None:
    """Read the vocabulary size of a local Hugging Face folder without loading it (None if unknown)."""
    config = _read_json(os.path.join(folder, "config.json")) or {}
    if isinstance(config.get("vocab_size"), int):
        return config["vocab_size"]
    tokenizer = _read_json(os.path.join(folder, "tokenizer.json")) or {}
    vocab = (tokenizer.get("model") or {}).get("vocab")
    if not isinstance(vocab, (dict, list)):
        return None
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))
    ids += [token.get("id", -1) for token in tokenizer.get("added_tokens") or []]
    return max(ids) + 1 if ids else None


def tokenizer_vocab_size(tokenizer: dict | str) -> int | None:
    """Vocabulary size of a tokenizer plan value where it is known statically (None otherwise)."""
    tokenizer = tokenizer_plan_value(tokenizer)
    if tokenizer["component"] == "hf":
        return hf_vocab_size(tokenizer["params"]["path"])
    if tokenizer["component"] == "run_tokenizer":
        return run_tokenizer_vocab_size(tokenizer["params"])
    return text_tokenizer_vocab_size(tokenizer)


def _data_outputs(params: dict) -> dict:
    return {"vocab_size": tokenizer_vocab_size(params["tokenizer"])}


def _validate_data(params: dict, check) -> None:
    max_prompt = params.get("max_prompt_length")
    if max_prompt is not None and max_prompt >= params["max_length"]:
        check.error(f"max_prompt_length {max_prompt} leaves no room for a response within "
                    f"max_length {params['max_length']}", param="max_prompt_length",
                    hint="make max_prompt_length smaller than max_length")


def data_spec() -> ComponentSpec:
    column = "name of the column holding"
    return ComponentSpec(
        kind="data", name="preference",
        doc="preference pairs (or unpaired labelled completions) from JSON/JSONL files, optionally gzipped",
        params=(
            Param("path", Glob(), doc="a .json, .jsonl, .json.gz or .jsonl.gz file, or a glob of several"),
            Param("tokenizer", Component("tokenizer"), "bytes",
                  "the policy's tokenizer: bytes, bpe(vocab = N) trained on this data, or hf(path = ...)"),
            Param("layout", Enum(LAYOUTS), "auto",
                  "row layout; auto detects it per row from the columns present"),
            Param("template", Enum(TEMPLATES), "plain",
                  "chat template that renders messages to text: plain (User:/Assistant:), chatml, or raw (contents only)"),
            Param("prompt_column", Str(), "prompt", f"{column} the prompt"),
            Param("chosen_column", Str(), "chosen", f"{column} the preferred response"),
            Param("rejected_column", Str(), "rejected", f"{column} the dispreferred response"),
            Param("conversations_column", Str(), "conversations", f"{column} a ShareGPT conversation"),
            Param("completion_column", Str(), "completion", f"{column} an unpaired completion"),
            Param("label_column", Str(), "label", f"{column} an unpaired completion's desirability (bool)"),
            Param("max_length", Int(min=2), 512, "maximum tokens of prompt + response"),
            Param("max_prompt_length", Optional(Int(min=1)), None,
                  "maximum prompt tokens; none means max_length // 2"),
            Param("truncation_mode", Enum(("keep_end", "keep_start")), "keep_end",
                  "which end of a too-long prompt to keep"),
            Param("holdout", Fraction(), 0.05, "fraction of rows held out for evaluation"),
            Param("skip_bad_rows", Bool(), False, "skip malformed rows (and log their count) instead of failing"),
            Param("pad_multiple", Int(min=1), 64,
                  "pad each batch's length to a multiple of this, so compiled steps see few shapes"),
            Param("max_rows", Optional(Int(min=1)), None, "read at most this many valid rows"),
        ),
        builder="reparamdsl.components.preference.dataset:build_preference",
        outputs=_data_outputs, validate=_validate_data,
    )


def tokenizer_spec() -> ComponentSpec:
    return ComponentSpec(
        kind="tokenizer", name="hf",
        doc="a Hugging Face tokenizer from a local folder (tokenizer.json and tokenizer_config.json)",
        params=(Param("path", Path(directory=True), doc="folder with tokenizer.json"),),
        builder="reparamdsl.components.preference.hf_tokenizer:build_hf_tokenizer",
    )


def _model_outputs(params: dict) -> dict:
    return {"vocab_size": hf_vocab_size(params["path"])}


def model_spec() -> ComponentSpec:
    return ComponentSpec(
        kind="model", name="hf_causal_lm",
        doc="a Hugging Face causal LM loaded from a local folder (needs the optional `transformers` package)",
        params=(
            Param("path", Path(directory=True), doc="folder with config.json and safetensors weights"),
            Param("dtype", Enum(("fp32", "bf16", "fp16")), "fp32", "dtype of the loaded weights"),
            Param("attention", Enum(("sdpa", "eager")), "sdpa", "attention implementation"),
        ),
        builder="reparamdsl.components.preference.hf_model:build_hf_causal_lm",
        outputs=_model_outputs,
    )


def register(registry) -> None:
    registry.register_all(objective_specs())
    registry.register(data_spec())
    registry.register(tokenizer_spec())
    registry.register(model_spec())
