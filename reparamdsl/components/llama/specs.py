"""Component specs of the LLaMA model (torch-free)."""

from __future__ import annotations

from reparamdsl.components.llama.sizes import nearest_divisors, params_estimate, swiglu_hidden
from reparamdsl.semantics.registry import REQUIRED, ComponentSpec, Param
from reparamdsl.semantics.types import Bool, Float, Fraction, Int, Optional


def _kv_heads(params: dict) -> int:
    return params["kv_heads"] if params["kv_heads"] is not None else params["heads"]


def _outputs(params: dict) -> dict:
    if params["width"] % params["heads"] or params["heads"] % _kv_heads(params):
        return {}
    hidden = swiglu_hidden(params["width"], params["mlp_ratio"], params["hidden"], params["multiple_of"])
    estimate = params_estimate(params["vocab"], params["width"], params["depth"], params["heads"],
                               _kv_heads(params), hidden, params["tie_embeddings"])
    return {"params_estimate": estimate, "hidden": hidden, "head_dim": params["width"] // params["heads"]}


def _validate(params: dict, check) -> None:
    width, heads = params["width"], params["heads"]
    kv_heads = _kv_heads(params)

    if width % heads:
        suggestions = " or ".join(str(d) for d in nearest_divisors(width, heads))
        check.error(f"width {width} is not divisible by heads {heads}", param="heads",
                    hint=f"set heads = {suggestions}, or change width to a multiple of {heads}")
        return

    if heads % kv_heads:
        check.error(f"heads {heads} is not divisible by kv_heads {kv_heads}", param="kv_heads",
                    hint="grouped-query attention shares each key/value head among heads / kv_heads query heads; "
                         "pick kv_heads that divides heads")

    head_dim = width // heads
    if head_dim % 2:
        check.error(f"the head dimension width / heads = {width} / {heads} = {head_dim} is odd, "
                    f"but rotary embeddings rotate pairs of dimensions", param="heads",
                    hint="choose width and heads so that width / heads is even")


LLAMA = ComponentSpec(
    kind="model",
    name="llama",
    doc=("LLaMA-style decoder: RMSNorm, rotary position embeddings, grouped-query causal attention "
         "and a SwiGLU MLP; forward(tokens (B, T)) returns logits (B, T, vocab)."),
    params=(
        Param("vocab", Int(min=1), REQUIRED, "number of token ids (usually `corpus.vocab_size`)"),
        Param("width", Int(min=2), REQUIRED, "model dimension"),
        Param("depth", Int(min=1), REQUIRED, "number of transformer blocks"),
        Param("heads", Int(min=1), REQUIRED, "number of query heads"),
        Param("kv_heads", Optional(Int(min=1)), None, "number of key/value heads (grouped-query attention); none = heads"),
        Param("mlp_ratio", Float(min=0.0, min_open=True), 8 / 3,
              "SwiGLU hidden size as a multiple of width, rounded up to `multiple_of`"),
        Param("hidden", Optional(Int(min=1)), None, "SwiGLU hidden size; overrides mlp_ratio when set"),
        Param("multiple_of", Int(min=1), 64, "the SwiGLU hidden size from mlp_ratio is rounded up to this multiple"),
        Param("context", Int(min=1), 2048, "maximum sequence length (size of the rotary cache)"),
        Param("rope_theta", Float(min=1.0), 10000.0, "rotary base: frequencies are rope_theta^(-2i / head_dim)"),
        Param("norm_eps", Float(min=0.0, min_open=True), 1e-5, "epsilon of RMSNorm"),
        Param("tie_embeddings", Bool(), False, "share the output head's weight with the token embedding"),
        Param("dropout", Fraction(max=1.0, max_open=True), 0.0, "dropout on attention weights and residual branches"),
        Param("init_std", Float(min=0.0, min_open=True), 0.02,
              "standard deviation of the normal initialization; the o and down projections use "
              "init_std / sqrt(2 * depth)"),
    ),
    builder="reparamdsl.components.llama.model:build_llama",
    outputs=_outputs,
    validate=_validate,
)


def register(registry) -> None:
    registry.register(LLAMA)
