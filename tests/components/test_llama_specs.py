"""Tests of the static checks and outputs of the llama spec."""

from reparamdsl.components.llama.specs import LLAMA
from reparamdsl.semantics.registry import REQUIRED


class RecordingCheck:
    def __init__(self):
        self.errors = []

    def error(self, message, param=None, hint=None):
        self.errors.append((message, param, hint))

    def lookup(self, name):
        return None


def llama_params(**overrides) -> dict:
    params = {p.name: p.default for p in LLAMA.params if p.default is not REQUIRED}
    params.update({"vocab": 257, "width": 64, "depth": 2, "heads": 4})
    params.update(overrides)
    return params


def validate(**overrides) -> list:
    check = RecordingCheck()
    LLAMA.validate(llama_params(**overrides), check)
    return check.errors


def test_valid_shape_has_no_errors():
    assert validate() == []
    assert validate(kv_heads=2) == []


def test_width_not_divisible_by_heads():
    (message, param, hint), = validate(width=250, heads=4)

    assert "width 250" in message
    assert "heads 4" in message
    assert param == "heads"
    assert "heads = 5" in hint


def test_heads_not_divisible_by_kv_heads():
    (message, param, _), = validate(heads=4, kv_heads=3)

    assert "heads 4 is not divisible by kv_heads 3" in message
    assert param == "kv_heads"


def test_odd_head_dimension():
    (message, _, _), = validate(width=36, heads=4)

    assert "9 is odd" in message


def test_outputs_params_estimate():
    outputs = LLAMA.outputs(llama_params(tie_embeddings=True))

    # embed 257*64 + 2 blocks * (4*64*64 attention + 3*64*192 mlp + 2*64 norms) + final norm 64
    assert outputs["params_estimate"] == 257 * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 192 + 128) + 64
    assert outputs["hidden"] == 192
