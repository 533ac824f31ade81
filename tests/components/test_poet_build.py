"""Building `reparam poet`: selectors, errors, initializations and the hook it registers."""

import hashlib
import subprocess
import sys

import pytest
import torch
from torch import nn

from reparamdsl.components.poet import specs
from reparamdsl.components.poet.build import build
from reparamdsl.components.poet.hook import POETHook
from reparamdsl.components.poet.layer import POETLinear
from reparamdsl.diagnostics import ProgramError
from reparamdsl.semantics.registry import Registry


class FakeContext:
    """The parts of BuildContext a reparameterization builder uses."""

    def __init__(self, built: dict, seed: int = 0):
        self.device = torch.device("cpu")
        self.seed = seed
        self.built = built
        self.hooks = []
        self.train = {}
        self.registry = Registry()
        specs.register(self.registry)

    def get(self, ref):
        return self.built[ref["ref"] if isinstance(ref, dict) else ref]

    def build(self, value):
        return self.registry.get(value["kind"], value["component"]).load_builder()(value["params"], self)

    def generator(self, tag, device="cpu"):
        digest = hashlib.sha256(f"{self.seed}:{tag}".encode()).digest()
        return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") >> 1)


class TinyLlama(nn.Module):
    """Module names follow the llama component: layers.{i}.attn.{q,k,v,o}, layers.{i}.mlp.{gate,up,down}, head."""

    def __init__(self, width=16, hidden=24, depth=2, vocab=11):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.layers = nn.ModuleList()
        for _ in range(depth):
            block = nn.Module()
            block.attn = nn.ModuleDict({name: nn.Linear(width, width, bias=False) for name in "qkvo"})
            block.mlp = nn.ModuleDict({"gate": nn.Linear(width, hidden, bias=False),
                                       "up": nn.Linear(width, hidden, bias=False),
                                       "down": nn.Linear(hidden, width, bias=False)})
            block.norm = nn.LayerNorm(width)
            self.layers.append(block)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.layers:
            a = block.norm(x)
            attn = block.attn["o"](block.attn["q"](a) * torch.sigmoid(block.attn["k"](a)) + block.attn["v"](a))
            x = x + attn
            x = x + block.mlp["down"](nn.functional.silu(block.mlp["gate"](x)) * block.mlp["up"](x))
        return self.head(x)


def poet_params(**overrides):
    params = {spec_param.name: spec_param.default for spec_param in specs.POET.params if not spec_param.required}
    params["target"] = {"ref": "lm"}
    params.update(overrides)
    return params


def build_poet(model=None, **overrides):
    model = model or TinyLlama()
    ctx = FakeContext({"lm": model})
    hook = build(poet_params(**overrides), ctx)
    return model, hook, ctx


def poet_layer_names(model):
    return sorted(name for name, module in model.named_modules() if isinstance(module, POETLinear))


def test_build_replaces_all_linear_but_head():
    model, hook, ctx = build_poet(block=8)
    assert ctx.hooks == [hook]
    assert isinstance(hook, POETHook)
    assert len(poet_layer_names(model)) == 14
    assert isinstance(model.head, nn.Linear)
    assert model(torch.zeros(2, 3, dtype=torch.long)).shape == (2, 3, 11)


def test_select_attention_and_mlp():
    model, _, _ = build_poet(select="attention", block=8)
    assert poet_layer_names(model) == sorted(f"layers.{i}.attn.{n}" for i in range(2) for n in "qkvo")
    model, _, _ = build_poet(select="mlp", block=8)
    assert poet_layer_names(model) == sorted(f"layers.{i}.mlp.{n}" for i in range(2) for n in ("gate", "up", "down"))


def test_select_patterns_with_exclude():
    model, _, _ = build_poet(select=["layers.*.attn.q", "layers.1.*"], exclude=["*.down"], block=8)
    expected = ["layers.0.attn.q"] + sorted(f"layers.1.{s}" for s in
                                            ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up"))
    assert poet_layer_names(model) == sorted(expected)


def test_exclude_empty_includes_head():
    model, _, _ = build_poet(exclude=[], block=8)
    assert isinstance(model.head, POETLinear)


def test_unmatched_pattern_lists_modules():
    with pytest.raises(ProgramError) as caught:
        build_poet(select=["layers.*.attention.q"])
    diagnostic = caught.value.diagnostics[0]
    assert "layers.*.attention.q" in diagnostic.message
    assert "layers.0.attn.q" in diagnostic.hint
    assert "head" in diagnostic.hint


def test_exclusion_of_everything_is_error():
    with pytest.raises(ProgramError) as caught:
        build_poet(select="attention", exclude=["layers.*"])
    assert "leaves no linear module" in caught.value.diagnostics[0].message
    assert "layers.1.mlp.down" in caught.value.diagnostics[0].hint


def test_trainable_count_formula():
    _, hook, _ = build_poet(block=8)
    # 8 attention layers 16×16, 6 MLP layers 24×16 or 16×24; ½(m+n)(b−1) with b = 8.
    expected = 8 * (16 + 16) * 7 // 2 + 6 * (24 + 16) * 7 // 2
    assert hook.counts["poet"] == expected


def test_subset_fraction_and_count():
    model, hook, _ = build_poet(subset=0.5)
    q = model.layers[0].attn["q"]
    assert q.r.size == 8
    assert q.p.size == 8
    up = model.layers[0].mlp["up"]
    assert up.r.size == 12
    assert up.p.size == 8
    _, hook, _ = build_poet(subset=6)
    assert hook.counts["poet"] == 14 * 6 * 5


def test_block_and_subset_together_is_error():
    with pytest.raises(ValueError, match="either block or subset"):
        build_poet(block=8, subset=4)


def test_default_block_when_neither_set():
    model, _, _ = build_poet()
    q = model.layers[0].attn["q"]
    assert q.r.stochastic == "block"
    assert q.r.size == 16   # min(256, width)


def test_init_normalized_gaussian_rows_unit_norm():
    model, _, _ = build_poet(block=8, init="normalized_gaussian")
    weight0 = model.layers[0].mlp["up"].weight0
    assert torch.allclose(weight0.norm(dim=1), torch.ones(24), atol=1e-6)


def test_init_uniform_spectrum():
    model, _, _ = build_poet(block=8, init="uniform_spectrum")
    for layer in (model.layers[0].mlp["up"], model.layers[0].mlp["down"], model.layers[1].attn["q"]):
        assert torch.allclose(torch.linalg.svdvals(layer.weight0), torch.ones(16), atol=1e-5)


def test_init_standard_and_loaded_use_existing_weight():
    original = TinyLlama()
    existing = original.layers[0].attn["v"].weight.detach().clone()
    model, _, _ = build_poet(model=original, block=8, init="standard")
    assert torch.equal(model.layers[0].attn["v"].weight0, existing)

    original = TinyLlama()
    existing = original.layers[0].attn["v"].weight.detach().clone()
    model, _, _ = build_poet(model=original, block=8, init="loaded")
    assert torch.allclose(model.layers[0].attn["v"].weight0, existing / existing.norm(dim=1, keepdim=True))


def test_init_xavier_scale():
    model, _, _ = build_poet(model=TinyLlama(width=64, hidden=96, depth=1), block=8, init="xavier")
    weight0 = model.layers[0].mlp["up"].weight0
    assert weight0.std().item() == pytest.approx((2 / (64 + 96)) ** 0.5, rel=0.1)


def test_build_is_deterministic_for_seed():
    first, _, _ = build_poet(block=8)
    second, _, _ = build_poet(block=8)
    assert torch.equal(first.layers[1].mlp["down"].weight0, second.layers[1].mlp["down"].weight0)
    assert torch.equal(first.layers[1].mlp["down"].r.perm, second.layers[1].mlp["down"].r.perm)


def test_orthogonal_default_is_taylor_cnp():
    model, _, _ = build_poet(block=8)
    orthogonal = model.layers[0].attn["q"].r.orthogonal
    assert (orthogonal.name, orthogonal.terms, orthogonal.form) == ("cayley_neumann", 4, "taylor")


def test_specs_are_torch_free_and_registered():
    code = "import sys, reparamdsl.components.poet.specs; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

    registry = Registry()
    specs.register(registry)
    assert registry.get("reparam", "poet").accepts_target
    assert registry.get("reparam", "poet").params[0].name == "target"
    assert registry.names("orthogonal") == ["cayley", "cayley_neumann", "exp"]
