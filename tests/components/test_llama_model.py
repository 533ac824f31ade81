"""Tests of the LLaMA model against independent formulas and invariants."""

import math

import pytest
import torch

from reparamdsl.components.llama.layers import RMSNorm, Rotary, apply_rotary
from reparamdsl.components.llama.model import LlamaModel, init_weights
from reparamdsl.components.llama.sizes import params_estimate, swiglu_hidden


def tiny_model(**overrides) -> LlamaModel:
    sizes = {"vocab": 50, "width": 32, "depth": 2, "heads": 4, "context": 16}
    sizes.update(overrides)
    torch.manual_seed(0)
    model = LlamaModel(**sizes)
    init_weights(model, 0.1)
    return model.eval()


def test_rmsnorm_matches_formula():
    torch.manual_seed(0)
    norm = RMSNorm(8, eps=1e-5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(3, 5, 8, dtype=torch.float64)

    rms = x.pow(2).sum(-1, keepdim=True).div(8).add(1e-5).sqrt()
    expected = x / rms * norm.weight.double()

    torch.testing.assert_close(norm.double()(x), expected)


def test_rotary_matches_complex_multiplication():
    head_dim, length, theta = 8, 6, 500.0
    rotary = Rotary(head_dim, context=10, theta=theta)
    x = torch.randn(2, 3, length, head_dim, dtype=torch.float64)

    rotated = apply_rotary(x, *rotary(length))

    half = head_dim // 2
    z = torch.complex(x[..., :half], x[..., half:])
    angles = torch.tensor([[p * theta ** (-2 * i / head_dim) for i in range(half)] for p in range(length)],
                          dtype=torch.float64)
    expected = z * torch.polar(torch.ones_like(angles), angles)
    torch.testing.assert_close(rotated, torch.cat((expected.real, expected.imag), dim=-1), rtol=1e-6, atol=1e-6)


def test_rotary_keeps_norm_and_relative_dot():
    rotary = Rotary(8, context=20, theta=10000.0)
    cos, sin = rotary(20)
    q, k = torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)

    def at(vector, position):
        return apply_rotary(vector.view(1, 1, 1, 8), cos[position:position + 1], sin[position:position + 1]).flatten()

    assert at(q, 7).norm().item() == pytest.approx(q.norm().item())
    assert at(q, 3).dot(at(k, 1)).item() == pytest.approx(at(q, 12).dot(at(k, 10)).item(), rel=1e-4)


def test_future_token_leaves_earlier_logits():
    model = tiny_model()
    tokens = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[:, 8] = (tokens[:, 8] + 1) % 50

    with torch.no_grad():
        before, after = model(tokens), model(changed)

    torch.testing.assert_close(before[:, :8], after[:, :8])
    assert not torch.allclose(before[:, 8:], after[:, 8:])


def test_gqa_equals_mha_with_repeated_kv():
    gqa = tiny_model(heads=4, kv_heads=2)
    mha = tiny_model(heads=4)
    head_dim = 8

    state = gqa.state_dict()
    for name, weight in list(state.items()):
        if name.endswith(("attn.k.weight", "attn.v.weight")):
            per_head = weight.view(2, head_dim, 32)
            state[name] = per_head.repeat_interleave(2, dim=0).reshape(4 * head_dim, 32)
    mha.load_state_dict(state)
    tokens = torch.randint(0, 50, (2, 10))

    with torch.no_grad():
        torch.testing.assert_close(gqa(tokens), mha(tokens))


def test_module_names_follow_convention():
    names = {name for name, _ in tiny_model(depth=1).named_modules()}

    expected = {"embed", "norm", "head", "layers.0.attn_norm", "layers.0.mlp_norm"}
    expected |= {f"layers.0.attn.{p}" for p in "qkvo"} | {f"layers.0.mlp.{p}" for p in ("gate", "up", "down")}
    assert expected <= names


@pytest.mark.parametrize("tie", [False, True])
def test_params_estimate_counts_parameters(tie):
    model = tiny_model(kv_heads=2, tie_embeddings=tie)
    hidden = swiglu_hidden(32, 8 / 3, None, 64)

    counted = sum(p.numel() for p in model.parameters())

    assert counted == params_estimate(50, 32, 2, 4, 2, hidden, tie)
    assert (model.head.weight is model.embed.weight) == tie


def test_swiglu_hidden_rounds_up():
    assert swiglu_hidden(256, 8 / 3, None, 64) == 704
    assert swiglu_hidden(4096, 8 / 3, None, 256) == 11008
    assert swiglu_hidden(256, 8 / 3, 100, 64) == 100


def test_residual_projections_use_smaller_init():
    model = LlamaModel(vocab=50, width=64, depth=8, heads=4, hidden=256)
    init_weights(model, 0.02, torch.Generator().manual_seed(0))

    q_std = torch.cat([layer.attn.q.weight.flatten() for layer in model.layers]).std().item()
    o_std = torch.cat([layer.attn.o.weight.flatten() for layer in model.layers]).std().item()

    assert q_std == pytest.approx(0.02, rel=0.05)
    assert o_std == pytest.approx(0.02 / math.sqrt(16), rel=0.05)


def test_sequence_longer_than_context_raises():
    with pytest.raises(ValueError, match="exceeds the model's context 16"):
        tiny_model()(torch.zeros(1, 17, dtype=torch.long))


def test_rotary_tables_not_saved():
    assert not any("rotary" in name for name in tiny_model().state_dict())


def test_forward_compiles_without_graph_breaks():
    model = tiny_model(kv_heads=2)
    tokens = torch.randint(0, 50, (2, 8))

    explanation = torch._dynamo.explain(model)(tokens)

    assert explanation.graph_break_count == 0
    assert explanation.graph_count == 1
