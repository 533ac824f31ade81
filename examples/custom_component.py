"""Add a component without touching the compiler: a label-smoothed next-token objective.

A component is a typed signature (torch-free, so `rpc check` stays fast) plus
a builder. This example registers both into a registry of its own and
compiles a program that uses the new objective. A package would instead
expose `register(registry)` under the `reparamdsl.components` entry point
group in its pyproject.toml:

    [project.entry-points."reparamdsl.components"]
    smoothing = "my_package.specs:register"

Run it from the repository root:  python examples/custom_component.py
"""

import sys

import torch
import torch.nn.functional as F

import reparamdsl as rp
from reparamdsl.components.language.next_token import build_next_token
from reparamdsl.semantics import types as T
from reparamdsl.semantics.registry import ComponentSpec, Param, default_registry

SMOOTHED = ComponentSpec(
    kind="objective",
    name="smoothed_next_token",
    doc="Next-token cross-entropy with label smoothing.",
    params=(
        Param("model", T.Ref("model"), doc="the language model"),
        Param("data", T.Ref("data"), doc="the token source"),
        Param("smoothing", T.Fraction(max=0.5, max_open=True), 0.1, "probability mass spread over all tokens"),
    ),
    builder=f"{__name__}:build_smoothed",
)


def build_smoothed(params, ctx):
    task = build_next_token({"model": params["model"], "data": params["data"], "z_loss": 0.0}, ctx)
    smoothing = params["smoothing"]

    def loss(model, batch):
        tokens = batch["tokens"]
        logits = model(tokens[:, :-1]).float()
        value = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), label_smoothing=smoothing)
        return value, {"loss": value}

    task.loss = loss
    return task


PROGRAM = """
data corpus = text { source = "python-stdlib" context = 32 max_files = 20 }
model lm = llama { vocab = corpus.vocab_size width = 32 depth = 1 heads = 2 context = 32 }
objective loss = smoothed_next_token(lm, corpus) { smoothing = 5% }
train { steps = 5 batch = 4 compile = false eval_batches = 2 }
"""


def main() -> None:
    registry = default_registry()
    registry.register(SMOOTHED)

    program = rp.compile_source(PROGRAM, "custom.rp", registry=registry, device="cpu")
    print("smoothing in the plan:", program.plan.get("loss").params["smoothing"])
    metrics = program.run(progress=False)
    print("eval loss:", round(metrics["eval/loss"], 4))

    # The default registry does not contain the new component.
    try:
        rp.check(PROGRAM, "custom.rp")
    except rp.ProgramError as error:
        print("without the plug-in:", error.diagnostics[0].message, file=sys.stderr)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
