"""The `hf_causal_lm` model: a Hugging Face causal LM from a local folder, as forward(tokens) -> logits.

`transformers` is an optional dependency, imported only when such a model is built.
"""

from __future__ import annotations

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def import_transformers():
    try:
        import transformers
    except ImportError as error:
        raise ImportError("model hf_causal_lm needs the optional `transformers` package; "
                          "install it with `pip install transformers`") from error
    return transformers


class HFCausalLM(torch.nn.Module):
    """Wrap a Hugging Face causal LM so that forward(tokens (B, T), attention_mask=None) returns logits (B, T, V).

    With an attention mask, positions count real tokens only, so a left-padded
    row gets the same positions as the same row padded on the right.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.hf = model

    @property
    def config(self):
        return self.hf.config

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            return self.hf(input_ids=tokens, use_cache=False).logits
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return self.hf(input_ids=tokens, attention_mask=attention_mask, position_ids=position_ids,
                       use_cache=False).logits


def load_hf_causal_lm(path: str, dtype: str = "fp32", attention: str = "sdpa") -> HFCausalLM:
    transformers = import_transformers()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path, dtype=DTYPES[dtype], attn_implementation=attention, local_files_only=True)
    model.config.use_cache = False
    model.train()
    return HFCausalLM(model)


def build_hf_causal_lm(params: dict, ctx) -> HFCausalLM:
    model = load_hf_causal_lm(params["path"], params["dtype"], params["attention"])
    return model.to(ctx.device)
