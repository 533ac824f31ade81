"""Component specs of POET (torch-free): the `poet` reparameterization and the orthogonal maps."""

from reparamdsl.semantics.registry import ComponentSpec, Param
from reparamdsl.semantics.types import Component, Either, Enum, Float, Fraction, Int, List, Optional, Ref, Steps, Str

INIT_SCHEMES = ("normalized_gaussian", "uniform_spectrum", "xavier", "standard", "loaded")
CNP_FORMS = ("taylor", "product")

DEFAULT_ORTHOGONAL = {
    "kind": "orthogonal",
    "component": "cayley_neumann",
    "params": {"terms": 4, "form": "taylor"},
}


def _validate_poet(params: dict, check) -> None:
    if params.get("block") is not None and params.get("subset") is not None:
        check.error("set either block (block-stochastic) or subset (fully stochastic), not both",
                    param="subset", hint="remove one of the two; with neither, block = 256")


POET = ComponentSpec(
    kind="reparam",
    name="poet",
    doc="Train each selected linear layer as R·W0·P: W0 fixed, R and P learned orthogonal matrices, "
        "so every weight keeps the singular values of W0.",
    params=(
        Param("target", Ref("model"), doc="the model whose linear layers are reparameterized (written `on MODEL`)"),
        Param("select", Either((Enum(("linear", "attention", "mlp")), List(Str(), min_len=1, single=True))),
              "linear",
              "layers to reparameterize: linear (every nn.Linear), attention, mlp, or glob patterns over module names"),
        Param("exclude", List(Str(), single=True), ["head"],
              "glob patterns of module names to leave as plain layers; the output head by default"),
        Param("orthogonal", Component("orthogonal"), DEFAULT_ORTHOGONAL,
              "map from skew-symmetric Q to orthogonal R: cayley, cayley_neumann(terms, form) or exp"),
        Param("block", Optional(Int(min=2)), None,
              "block-stochastic block size b: ½(m+n)(b−1) parameters per layer; 256 when neither block nor subset is set"),
        Param("subset", Optional(Either((Int(min=2), Fraction(min_open=True)))), None,
              "fully stochastic subset size b (a count, or a fraction of each width): b(b−1) parameters per layer"),
        Param("merge_every", Steps(min=0), 200,
              "optimizer steps between merges of R and P into W0 (0 never merges)"),
        Param("init", Enum(INIT_SCHEMES), "normalized_gaussian",
              "initialization of W0; `loaded` row-normalizes the existing weight for fine-tuning"),
        Param("lr_scale", Float(min=0.0, min_open=True), 1.0,
              "learning-rate multiplier of the POET parameters (they never get weight decay)"),
        Param("clip_ramp", Steps(min=0), 0,
              "steps over which the gradient-clip threshold ramps back to full after each merge (0 is off)"),
        Param("clip_ramp_start", Fraction(min_open=True), 0.1,
              "share of the clip threshold right after a merge, when clip_ramp is set"),
        Param("forward", Enum(("auto", "input", "weight")), "auto",
              "input rotates activations, weight builds R·W0·P; auto picks the cheaper per layer and shape"),
        Param("drift_every", Steps(min=0), 0,
              "steps between measurements of poet/sv_drift, an SVD of every layer; 0 measures at every log step"),
    ),
    builder="reparamdsl.components.poet.build:build",
    validate=_validate_poet,
    accepts_target=True,
)

CAYLEY = ComponentSpec(
    kind="orthogonal",
    name="cayley",
    doc="Exact Cayley map R = (I + Q)(I − Q)⁻¹, solved in float32.",
    params=(),
    builder="reparamdsl.components.poet.orthogonal:build_cayley",
)

CAYLEY_NEUMANN = ComponentSpec(
    kind="orthogonal",
    name="cayley_neumann",
    doc="Cayley map with a truncated series: a polynomial of degree `terms` in Q (see docs/poet.md).",
    params=(
        Param("terms", Int(min=1, max=32), 4, "degree k of the polynomial in Q"),
        Param("form", Enum(CNP_FORMS), "taylor",
              "taylor: I + 2Q + ... + 2Q^k; product: (I + Q)(I + Q + ... + Q^(k−1))"),
    ),
    builder="reparamdsl.components.poet.orthogonal:build_cayley_neumann",
)

EXP = ComponentSpec(
    kind="orthogonal",
    name="exp",
    doc="Matrix exponential R = exp(Q), a slower reference.",
    params=(),
    builder="reparamdsl.components.poet.orthogonal:build_exp",
)


def register(registry) -> None:
    registry.register_all([POET, CAYLEY, CAYLEY_NEUMANN, EXP])
