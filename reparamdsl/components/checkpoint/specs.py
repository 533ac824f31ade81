"""Specs of the checkpoint area: a model loaded from a finished run, and that run's tokenizer.

Torch-free: the checks read the run folder's `plan.json` with `json` only.
Builders live beside this module (`model.py`, `tokenizer.py`).

A run folder written by `rpc run` contains `plan.json` and
`checkpoints/{step-NNNNNNNN,final}/tensors.safetensors`, where the trained
model's state dict is stored under `model/<key>`.
"""

from __future__ import annotations

import json
import os

from reparamdsl.semantics.registry import REQUIRED, ComponentSpec, Param
from reparamdsl.semantics.types import Bool, Enum, Optional, Path, Str

PLAN_FILE = "plan.json"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_CHOICES = ("final", "latest")


class RunFolderProblem(Exception):
    """A run folder lacks what a declaration names; the message names the missing item and its path."""

    def __init__(self, message: str, hint: str | None = None, param: str = "run"):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.param = param


def read_run_plan(run: str) -> dict:
    """Read and minimally check `run/plan.json`; raises `RunFolderProblem` naming the file."""
    path = os.path.join(run, PLAN_FILE)
    if not os.path.isfile(path):
        raise RunFolderProblem(f"{run} is not a run folder: {path} is missing",
                               hint="point `run` at a folder written by `rpc run` (it holds plan.json)")
    try:
        with open(path, encoding="utf-8") as handle:
            plan = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise RunFolderProblem(f"cannot read the run plan {path}: {error}") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("declarations"), list):
        raise RunFolderProblem(f"the run plan {path} has no list of declarations")
    return plan


def find_declaration(plan: dict, name: str) -> dict | None:
    for decl in plan["declarations"]:
        if isinstance(decl, dict) and decl.get("name") == name:
            return decl
    return None


def model_names(plan: dict) -> list[str]:
    return [decl["name"] for decl in plan["declarations"] if isinstance(decl, dict) and decl.get("kind") == "model"]


def trained_models(plan: dict) -> tuple[dict, list[str]]:
    """Return the run's objective declaration and the models it trains (its parameters that name a model)."""
    objectives = [d for d in plan["declarations"] if isinstance(d, dict) and d.get("kind") == "objective"]
    if not objectives:
        raise RunFolderProblem("the run has no objective, so its checkpoints hold no trained model")
    names = model_names(plan)
    objective = objectives[0]
    trained = [value["ref"] for value in objective.get("params", {}).values()
               if isinstance(value, dict) and value.get("ref") in names]
    return objective, trained


def single_trained_model(plan: dict) -> str:
    objective, trained = trained_models(plan)
    if not trained:
        raise RunFolderProblem(f"the run's objective '{objective.get('name')}' trains no model declaration")
    return trained[0]


def trained_objective(plan: dict, model: str) -> dict:
    """Return the run's objective declaration; it must train `model`, whose weights the checkpoint holds."""
    objective, trained = trained_models(plan)
    if model not in trained:
        raise RunFolderProblem(
            f"the run's objective '{objective.get('name')}' trains model {', '.join(trained) or '(none)'}, "
            f"not '{model}'; its checkpoints store only the trained model's weights",
            hint=f'set model = "{trained[0]}"' if trained else None, param="model")
    return objective


def model_declaration(run: str, model: str) -> tuple[dict, dict]:
    """Return (plan, model declaration) of `model` in the run; raises `RunFolderProblem`."""
    plan = read_run_plan(run)
    decl = find_declaration(plan, model)
    if decl is None or decl.get("kind") != "model":
        names = model_names(plan)
        raise RunFolderProblem(f"the run in {run} has no model declaration '{model}'",
                               hint=f"models of that run: {', '.join(names) or 'none'}", param="model")
    trained_objective(plan, model)
    return plan, decl


def checkpoint_folder(run: str, which: str) -> str | None:
    """Return the checkpoint folder that `checkpoint = which` selects, or None when there is none.

    `final` is `checkpoints/final`; `latest` follows `checkpoints/latest`, or,
    without a usable pointer, takes `final` and then the highest step folder.
    The choice matches `reparamdsl.runtime.checkpoint.latest_checkpoint`.
    """
    root = os.path.join(run, CHECKPOINTS_DIR)
    if which == "final":
        folder = os.path.join(root, "final")
        return folder if os.path.isfile(os.path.join(folder, "state.json")) else None

    pointer = os.path.join(root, "latest")
    if os.path.isfile(pointer):
        with open(pointer, encoding="utf-8") as handle:
            folder = os.path.join(root, handle.read().strip())
        if os.path.isfile(os.path.join(folder, "state.json")):
            return folder
    if not os.path.isdir(root):
        return None
    candidates = sorted(d for d in os.listdir(root) if d.startswith("step-")) + ["final"]
    complete = [os.path.join(root, d) for d in candidates if os.path.isfile(os.path.join(root, d, "state.json"))]
    return complete[-1] if complete else None


def pretraining_data(plan: dict, model: str) -> dict:
    """Return the data declaration the run trained `model` on: the first data its objective names."""
    objective = trained_objective(plan, model)
    for value in objective.get("params", {}).values():
        if isinstance(value, dict) and "ref" in value:
            data = find_declaration(plan, value["ref"])
            if data is not None and data.get("kind") == "data":
                return data
    raise RunFolderProblem(f"the run's objective '{objective.get('name')}' names no data declaration")


def pretraining_tokenizer(plan: dict, model: str) -> dict | None:
    """Return the tokenizer plan value of the data the run trained `model` on (None if it has none)."""
    tokenizer = pretraining_data(plan, model).get("params", {}).get("tokenizer")
    if isinstance(tokenizer, str):
        return {"kind": "tokenizer", "component": tokenizer, "params": {}}
    return tokenizer if isinstance(tokenizer, dict) else None


def model_vocab_size(decl: dict) -> int | None:
    vocab = decl.get("outputs", {}).get("vocab_size", decl.get("params", {}).get("vocab"))
    return vocab if isinstance(vocab, int) and not isinstance(vocab, bool) else None


# ---- the `checkpoint` model ------------------------------------------------------------------


def _tokenizer_output(run: str, tokenizer: dict | None) -> dict | None:
    """Return the tokenizer for the preference data: the run's own when it needs no training, else `run_tokenizer`."""
    if tokenizer is None:
        return None
    if tokenizer.get("component") in ("bytes", "hf"):
        return tokenizer
    return {"kind": "tokenizer", "component": "run_tokenizer", "params": {"run": run, "model": None}}


def _checkpoint_outputs(params: dict) -> dict:
    try:
        plan, decl = model_declaration(params["run"], params["model"])
        tokenizer = pretraining_tokenizer(plan, params["model"])
    except RunFolderProblem:
        return {}
    outputs = {key: value for key, value in decl.get("outputs", {}).items() if key != "tokenizer"}
    outputs["vocab_size"] = model_vocab_size(decl)
    outputs["component"] = decl.get("component")
    if isinstance(decl.get("params", {}).get("context"), int):
        outputs["context"] = decl["params"]["context"]
    tokenizer_value = _tokenizer_output(params["run"], tokenizer)
    if tokenizer_value is not None:
        outputs["tokenizer"] = tokenizer_value
    return outputs


def _validate_checkpoint(params: dict, check) -> None:
    try:
        model_declaration(params["run"], params["model"])
    except RunFolderProblem as problem:
        check.error(problem.message, param=problem.param, hint=problem.hint)
        return
    if checkpoint_folder(params["run"], params["checkpoint"]) is None:
        where = os.path.join(params["run"], CHECKPOINTS_DIR)
        hint = ('use checkpoint = "latest" for a run that has not finished'
                if params["checkpoint"] == "final" else "train the run until it writes a checkpoint")
        check.error(f"no complete {params['checkpoint']} checkpoint in {where}", param="checkpoint", hint=hint)


CHECKPOINT = ComponentSpec(
    kind="model",
    name="checkpoint",
    doc=("a model declaration of a finished reparamdsl run, rebuilt from the run's plan.json and loaded with "
         "the weights of its final or latest checkpoint"),
    params=(
        Param("run", Path(directory=True), REQUIRED, "the run folder written by `rpc run` (it contains plan.json)"),
        Param("model", Str(), REQUIRED, "name of the model declaration in that run"),
        Param("checkpoint", Enum(CHECKPOINT_CHOICES), "final",
              "final: the checkpoint written at the end; latest: the newest complete one"),
        Param("trainable", Bool(), True, "train the loaded weights; false freezes every parameter"),
        Param("merge_reparams", Bool(), True,
              "fold the run's reparameterizations of the model (POET) into plain weights after loading; "
              "false keeps the reparameterized modules"),
    ),
    builder="reparamdsl.components.checkpoint.model:build_checkpoint",
    outputs=_checkpoint_outputs,
    validate=_validate_checkpoint,
)


# ---- the run's tokenizer ---------------------------------------------------------------------


def run_tokenizer_vocab_size(params: dict) -> int | None:
    """Vocabulary size of a `run_tokenizer` plan value, from the run's plan (None when unknown)."""
    from reparamdsl.components.text.specs import tokenizer_vocab_size

    try:
        plan = read_run_plan(params["run"])
        model = params.get("model") or single_trained_model(plan)
        tokenizer = pretraining_tokenizer(plan, model)
    except RunFolderProblem:
        return None
    return None if tokenizer is None else tokenizer_vocab_size(tokenizer)


def _validate_run_tokenizer(params: dict, check) -> None:
    try:
        plan = read_run_plan(params["run"])
        model = params.get("model") or single_trained_model(plan)
        tokenizer = pretraining_tokenizer(plan, model)
    except RunFolderProblem as problem:
        check.error(problem.message, param="run", hint=problem.hint)
        return
    if tokenizer is None:
        check.error(f"the run in {params['run']} trained its model on no data declaration with a tokenizer",
                    param="run")


RUN_TOKENIZER = ComponentSpec(
    kind="tokenizer",
    name="run_tokenizer",
    doc=("the tokenizer of the data a reparamdsl run trained its model on; a BPE tokenizer is loaded from "
         "the cache (or trained again) on that run's training files, not on the data that names it"),
    params=(
        Param("run", Path(directory=True), REQUIRED, "the run folder written by `rpc run`"),
        Param("model", Optional(Str()), None,
              "the trained model whose data's tokenizer to use; none takes the model the run's objective trains"),
    ),
    builder="reparamdsl.components.checkpoint.tokenizer:build_run_tokenizer",
    outputs=lambda params: {"vocab_size": run_tokenizer_vocab_size(params)},
    validate=_validate_run_tokenizer,
)


def register(registry) -> None:
    registry.register(CHECKPOINT)
    registry.register(RUN_TOKENIZER)
