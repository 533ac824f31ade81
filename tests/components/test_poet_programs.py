"""The shipped POET programs: poet_lm.rp trains through `rpc run`, and the LLaMA-60M program has the published sizes."""

import json
import os

import pytest
import torch
from click.testing import CliRunner

import reparamdsl
from reparamdsl.cli.main import main
from reparamdsl.components.poet.hook import POETHook
from reparamdsl.components.poet.layer import POETLinear, singular_values
from reparamdsl.runtime.checkpoint import latest_checkpoint, read_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LM_POET = os.path.join(ROOT, "programs", "poet_lm.rp")
POET_60M = os.path.join(ROOT, "programs", "poet_llama_60m.rp")

STEPS, MERGE_EVERY = 8, 3
TINY = {"width": "32", "lm.depth": "1", "corpus.max_files": "8", "corpus.context": "32", "train.batch": "4",
        "train.steps": str(STEPS), "train.log_every": "1", "train.eval_every": "0", "train.eval_batches": "1",
        "train.schedule.warmup": "1", "train.compile": "false", "poet_lm.merge_every": str(MERGE_EVERY)}
FP32_ROUNDING = 1e-4


def poet_layers(model):
    return {name: module for name, module in model.named_modules() if isinstance(module, POETLinear)}


@pytest.fixture
def orthogonality_before_merges(monkeypatch):
    """Record, at every merge, the largest ‖BᵀB − I‖₂ of the factors about to be folded into W0."""
    recorded = []
    merge = POETHook.merge

    def recording_merge(self, step, optimizer_state):
        recorded.append(max(layer.orthogonality_error() for layer in self.layers.values()))
        merge(self, step, optimizer_state)

    monkeypatch.setattr(POETHook, "merge", recording_merge)
    return recorded


@pytest.mark.parametrize("orthogonal", ["cayley", "cayley_neumann(terms = 4)"])
def test_poet_lm_run_merges_and_spectrum(tmp_path, orthogonal, orthogonality_before_merges):
    overrides = {**TINY, "poet_lm.orthogonal": orthogonal}
    out = tmp_path / "run"
    args = ["run", LM_POET, *(f"{k}={v}" for k, v in overrides.items()), "--out", str(out), "--device", "cpu",
            "--no-progress"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    merges = {record["step"]: record["poet/merges"] for record in records if "poet/merges" in record}
    assert merges == {step: float(step // MERGE_EVERY) for step in range(1, STEPS + 1)}
    assert len(orthogonality_before_merges) == STEPS // MERGE_EVERY

    # The same overrides and seed rebuild the model as it was before training.
    program = reparamdsl.compile_file(LM_POET, overrides=overrides, device="cpu")
    layers = poet_layers(program.model)
    initial = {name: layer.weight0.clone() for name, layer in layers.items()}
    tensors = read_checkpoint(latest_checkpoint(str(out / "checkpoints"))).tensors
    state = {key.removeprefix("model/"): value for key, value in tensors.items() if key.startswith("model/")}
    program.model.load_state_dict(state)
    assert len(layers) == 7

    # σ(R W P) ≤ ‖R‖₂ ‖P‖₂ σ(W) with ‖F‖₂² ≤ 1 + ‖FᵀF − I‖₂, so each round of factors moves σ by at most that error.
    final_error = max(layer.orthogonality_error() for layer in layers.values())
    bound = 1.0
    for error in [*orthogonality_before_merges, final_error]:
        bound *= 1.0 + error
    tolerance = bound - 1.0 + FP32_ROUNDING
    for name, layer in layers.items():
        with torch.no_grad():
            weight = layer.effective_weight()
        reference = singular_values(initial[name])
        drift = ((singular_values(weight) - reference).abs() / reference).max().item()
        assert drift <= tolerance, (name, drift, tolerance)
        assert (weight - initial[name]).abs().max().item() > 1e-3, f"{name} did not train"


def test_poet_60m_dry_run_counts():
    result = CliRunner().invoke(main, ["run", POET_60M, "corpus.max_files=8", "--dry-run", "--device", "cpu"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output

    vocab, width, depth, hidden = 32000, 512, 8, 1280
    plain_linear = depth * (4 * width * width + 3 * width * hidden)
    embeddings_and_norms = 2 * vocab * width + depth * 2 * width + width
    block = 256
    poet = depth * (4 * (width + width) + 3 * (width + hidden)) * (block - 1) // 2
    assert plain_linear + embeddings_and_norms == 56_893_952
    assert round(poet / 1e6, 2) == 9.66                                   # the POET paper's table, b = 256
    assert f"# parameters: {embeddings_and_norms + poet:,} trainable, 0 frozen" in result.output


@pytest.mark.parametrize("library, expected", [("llama_60m.rp", 56_893_952), ("llama_130m.rp", 134_105_856)])
def test_llama_library_sizes(library, expected):
    plans = reparamdsl.check(f'import "{os.path.join(ROOT, "programs", "models", library)}"',
                             path=os.path.join(ROOT, "programs", "x.rp"))
    lm = next(decl for decl in plans[0].declarations if decl.name == "lm")
    assert lm.outputs["params_estimate"] == expected
