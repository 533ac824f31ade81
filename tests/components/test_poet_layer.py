"""POET factors and the POETLinear layer: structure, counts, forward paths and preserved spectra."""

import pytest
import torch
from torch import nn

from reparamdsl.components.poet.factor import OrthogonalFactor
from reparamdsl.components.poet.layer import POETLinear
from reparamdsl.components.poet.orthogonal import Cayley, CayleyNeumann, MatrixExponential
from reparamdsl.components.poet.selector import select_linear_modules


def make_layer(out_features=12, in_features=10, orthogonal=None, bias=False, forward="auto", seed=0, scale=0.2,
               **size):
    generator = torch.Generator().manual_seed(seed)
    orthogonal = orthogonal or Cayley()
    size = size or {"block": 4}
    weight0 = torch.randn(out_features, in_features, generator=generator)
    bias_param = nn.Parameter(torch.randn(out_features, generator=generator)) if bias else None
    r = OrthogonalFactor(out_features, orthogonal, generator, **size)
    p = OrthogonalFactor(in_features, orthogonal, generator, **size)
    with torch.no_grad():
        r.params.copy_(scale * torch.randn(r.params.shape, generator=generator))
        p.params.copy_(scale * torch.randn(p.params.shape, generator=generator))
    return POETLinear(weight0, bias_param, r, p, forward)


def sgd_steps(layer, steps=5, lr=0.1, seed=1):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, layer.in_features, generator=generator)
        target = torch.randn(8, layer.out_features, generator=generator)
        loss = (layer(x) - target).pow(2).mean()
        loss.backward()
        with torch.no_grad():
            for param in (layer.r.params, layer.p.params):
                param -= lr * param.grad
                param.grad = None


# Factor structure and parameter counts

@pytest.mark.parametrize("dim, block", [(16, 4), (12, 12), (20, 8), (96, 64), (7, 3)])
def test_block_factor_parameter_count(dim, block):
    factor = OrthogonalFactor(dim, Cayley(), torch.Generator().manual_seed(0), block=block)
    full, last = divmod(dim, block)
    expected = full * block * (block - 1) // 2 + last * (last - 1) // 2
    assert factor.params.numel() == expected
    if dim % block == 0:
        assert factor.params.numel() == dim * (block - 1) // 2


@pytest.mark.parametrize("dim, subset", [(16, 4), (10, 10), (9, 20)])
def test_subset_factor_parameter_count(dim, subset):
    factor = OrthogonalFactor(dim, Cayley(), torch.Generator().manual_seed(0), subset=subset)
    b = min(dim, subset)
    assert factor.params.numel() == b * (b - 1) // 2


def test_width_96_block_64_covers_every_coordinate():
    factor = OrthogonalFactor(96, Cayley(), torch.Generator().manual_seed(0), block=64)
    assert factor.blocks == 2
    assert factor.block_sizes == [64, 32]
    with torch.no_grad():
        factor.params.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))

    dense = factor.matrix()
    moved = (dense - torch.eye(96)).abs().sum(dim=1) > 1e-4
    assert bool(moved.all()), f"coordinates left as identity: {torch.nonzero(~moved).flatten().tolist()}"
    assert torch.allclose(dense.T @ dense, torch.eye(96), atol=1e-5)


def test_subset_factor_moves_only_subset():
    factor = OrthogonalFactor(20, Cayley(), torch.Generator().manual_seed(0), subset=6)
    with torch.no_grad():
        factor.params.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    dense = factor.matrix()
    moved = torch.nonzero((dense - torch.eye(20)).abs().sum(dim=1) > 1e-6).flatten()
    assert sorted(moved.tolist()) == sorted(factor.perm[:6].tolist())


def test_factor_matches_permuted_block_diagonal():
    factor = OrthogonalFactor(10, Cayley(), torch.Generator().manual_seed(0), block=4)
    with torch.no_grad():
        factor.params.normal_(0, 0.3, generator=torch.Generator().manual_seed(2))
    blocks = factor.block_factors()
    block_diagonal = torch.block_diag(blocks[0], blocks[1], blocks[2][:2, :2])
    permutation = torch.eye(10)[factor.perm]            # (Π v)_i = v[perm[i]]
    assert torch.allclose(factor.matrix(), permutation.T @ block_diagonal @ permutation, atol=1e-6)


def llama_like(width, hidden, depth, vocab):
    """A module tree named like the llama component, on the meta device (no memory)."""
    with torch.device("meta"):
        model = nn.Module()
        model.embed = nn.Embedding(vocab, width)
        model.layers = nn.ModuleList()
        for _ in range(depth):
            block = nn.Module()
            block.attn = nn.Module()
            for name in "qkvo":
                setattr(block.attn, name, nn.Linear(width, width, bias=False))
            block.mlp = nn.Module()
            block.mlp.gate = nn.Linear(width, hidden, bias=False)
            block.mlp.up = nn.Linear(width, hidden, bias=False)
            block.mlp.down = nn.Linear(hidden, width, bias=False)
            model.layers.append(block)
        model.head = nn.Linear(width, vocab, bias=False)
    return model


@pytest.mark.parametrize("config, block, expected_millions", [
    ((512, 1280, 8), 64, 2.39), ((512, 1280, 8), 128, 4.81), ((512, 1280, 8), 256, 9.66),
    ((768, 2048, 12), 64, 5.52), ((768, 2048, 12), 128, 11.12), ((768, 2048, 12), 256, 22.33),
])
def test_llama_trainable_counts_match_paper(config, block, expected_millions):
    width, hidden, depth = config
    model = llama_like(width, hidden, depth, vocab=32000)
    chosen = select_linear_modules(model, "linear", ["head"])
    generator = torch.Generator().manual_seed(0)

    per_shape = {}
    for shape in {tuple(linear.weight.shape) for _, linear in chosen}:
        out_features, in_features = shape
        r = OrthogonalFactor(out_features, Cayley(), generator, block=block)
        p = OrthogonalFactor(in_features, Cayley(), generator, block=block)
        per_shape[shape] = r.params.numel() + p.params.numel()
        assert per_shape[shape] == (out_features + in_features) * (block - 1) // 2
    total = sum(per_shape[tuple(linear.weight.shape)] for _, linear in chosen)

    assert len(chosen) == 7 * depth
    assert round(total / 1e6, 2) == expected_millions


# Layer forward

@pytest.mark.parametrize("orthogonal", [Cayley(), CayleyNeumann(4), MatrixExponential()], ids=repr)
def test_zero_q_equals_plain_linear(orthogonal):
    layer = make_layer(orthogonal=orthogonal, bias=True, scale=0.0)
    x = torch.randn(5, 10)
    assert torch.equal(layer.effective_weight(), layer.weight0)
    assert torch.allclose(layer(x), nn.functional.linear(x, layer.weight0, layer.bias), atol=1e-6)


@pytest.mark.parametrize("size", [{"block": 4}, {"block": 3}, {"subset": 5}])
def test_effective_weight_is_r_w0_p(size):
    layer = make_layer(**size)
    expected = layer.r.matrix() @ layer.weight0 @ layer.p.matrix()
    assert torch.allclose(layer.effective_weight(), expected, atol=1e-5)


@pytest.mark.parametrize("size", [{"block": 4}, {"block": 3}, {"subset": 5}])
def test_forward_paths_agree(size):
    weight_centric = make_layer(bias=True, forward="weight", **size)
    input_centric = make_layer(bias=True, forward="input", **size)
    x = torch.randn(3, 7, 10, generator=torch.Generator().manual_seed(3))

    y_weight = weight_centric(x)
    y_input = input_centric(x)
    assert torch.allclose(y_weight, y_input, atol=1e-5)
    assert torch.allclose(y_weight, x @ weight_centric.effective_weight().T + weight_centric.bias, atol=1e-5)

    y_weight.square().sum().backward()
    y_input.square().sum().backward()
    for side in ("r", "p"):
        expected = getattr(weight_centric, side).params.grad
        actual = getattr(input_centric, side).params.grad
        assert torch.allclose(actual, expected, atol=1e-5 * expected.abs().max().item()), side


def test_auto_forward_follows_flop_rule():
    layer = make_layer(out_features=64, in_features=32, block=8)
    # Block factors: input-centric pays tokens·2(m+n)b, weight-centric 4mnb; crossover at 2mn/(m+n) ≈ 42.7 tokens.
    assert layer.uses_input_centric(42)
    assert not layer.uses_input_centric(43)


@pytest.mark.parametrize("forward", ["input", "weight"])
@pytest.mark.parametrize("orthogonal", [Cayley(), CayleyNeumann(4), MatrixExponential()], ids=repr)
def test_gradcheck_layer_float64(orthogonal, forward):
    layer = make_layer(out_features=6, in_features=5, orthogonal=orthogonal, forward=forward, block=3).double()
    x = torch.randn(2, 5, dtype=torch.float64)

    def function(r_params, p_params):
        return torch.func.functional_call(layer, {"r.params": r_params, "p.params": p_params}, (x,))

    inputs = (layer.r.params.detach().clone().requires_grad_(), layer.p.params.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(function, inputs)


# Preserved spectrum

@pytest.mark.parametrize("orthogonal", [Cayley(), MatrixExponential()], ids=repr)
def test_exact_maps_keep_singular_values(orthogonal):
    layer = make_layer(orthogonal=orthogonal, scale=0.5)
    sgd_steps(layer)
    assert layer.singular_value_drift() < 1e-5
    assert layer.orthogonality_error() < 1e-5


def test_cayley_neumann_keeps_singular_values_within_bound():
    cnp = CayleyNeumann(4, "product")
    layer = make_layer(orthogonal=cnp, scale=0.02)
    sgd_steps(layer, steps=3, lr=0.01)

    norms = [torch.linalg.matrix_norm(f.skew().double(), ord=2).max().item() for f in (layer.r, layer.p)]
    bound = cnp.orthogonality_bound(max(norms))
    # σ(R W0 P) ∈ σ(W0)·[√(1 − e_R)√(1 − e_P), √(1 + e_R)√(1 + e_P)] for orthogonality errors e_R, e_P ≤ bound.
    assert layer.singular_value_drift() <= bound + 1e-5
    assert layer.singular_value_drift() > 1e-7      # truncation leaves a measurable drift


def test_autocast_bf16_trains_with_float32_factors():
    layer = make_layer(out_features=16, in_features=16, orthogonal=CayleyNeumann(4), block=8, forward="input")
    x = torch.randn(4, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        factors = layer.r.block_factors()
        y = layer(x)
    assert factors.dtype == torch.float32
    y.float().square().mean().backward()
    assert torch.isfinite(layer.r.params.grad).all()
    assert layer.r.params.grad.abs().sum() > 0
    reference = nn.functional.linear(x, layer.effective_weight())
    assert torch.allclose(y.float(), reference, atol=0.1, rtol=0.05)
