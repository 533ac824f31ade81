"""Component specs of the language-modeling objective (torch-free)."""

from __future__ import annotations

from reparamdsl.semantics.registry import REQUIRED, ComponentSpec, Param
from reparamdsl.semantics.types import Float, Ref


def _ref_name(value) -> str:
    return value["ref"] if isinstance(value, dict) else value


def _validate(params: dict, check) -> None:
    model = check.lookup(_ref_name(params["model"]))
    data = check.lookup(_ref_name(params["data"]))
    if model is None or data is None:
        return

    vocab = model.params.get("vocab")
    data_vocab = data.outputs.get("vocab_size")
    if isinstance(vocab, int) and isinstance(data_vocab, int) and vocab < data_vocab:
        check.error(f"model '{model.name}' has vocab {vocab}, fewer than the {data_vocab} token ids "
                    f"of data '{data.name}'", param="model",
                    hint=f"set `vocab = {data.name}.vocab_size` in model '{model.name}'")

    model_context = model.params.get("context")
    data_context = data.outputs.get("context", data.params.get("context"))
    if isinstance(model_context, int) and isinstance(data_context, int) and data_context > model_context:
        check.error(f"data '{data.name}' has context {data_context}, longer than the context {model_context} "
                    f"of model '{model.name}'", param="data",
                    hint=f"set `context = {data.name}.context` in model '{model.name}', "
                         f"or lower the context of '{data.name}'")


NEXT_TOKEN = ComponentSpec(
    kind="objective",
    name="next_token",
    doc=("Next-token prediction: mean cross-entropy of the model's logits against the following token, "
         "computed in fp32; evaluation reports loss (nats/token) and perplexity."),
    params=(
        Param("model", Ref("model"), REQUIRED, "the language model: forward(tokens (B, T)) returns logits (B, T, vocab)"),
        Param("data", Ref("data"), REQUIRED, "the token source, such as a `text` declaration"),
        Param("z_loss", Float(min=0.0), 0.0, "weight of mean(logsumexp(logits)^2), which keeps logits from drifting"),
    ),
    builder="reparamdsl.components.language.next_token:build_next_token",
    validate=_validate,
)


def register(registry) -> None:
    registry.register(NEXT_TOKEN)
