"""The POET linear layer: y = x (R W0 P)ᵀ + bias, with W0 fixed and R, P orthogonal."""

from __future__ import annotations

import torch
from torch import nn

from reparamdsl.components.poet.factor import OrthogonalFactor

FORWARD_MODES = ("auto", "input", "weight")


def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """Return the singular values of `matrix`, computed in float64, sorted descending.

    On CPU the SVD runs on one thread: with torch 2.13's CPU build on a loaded
    2-core machine, a 1280×512 float64 SVD took 5.2 s on two threads and 0.34 s
    on one, which made building LLaMA-60M take minutes.
    """
    if matrix.device.type != "cpu":
        return torch.linalg.svdvals(matrix.double())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.svdvals(matrix.double())
    finally:
        torch.set_num_threads(threads)


class POETLinear(nn.Module):
    """A linear layer trained as R · W0 · P.

    `weight0` (m×n) is a buffer, so it is not an optimizer parameter and only a merge
    changes it. `r` (m×m, output side) and `p` (n×n, input side) hold the
    trainable parameters. The bias, if any, stays an ordinary trainable
    parameter. `reference_singular_values` are those of the initial W0, the
    spectrum POET preserves.
    """

    def __init__(self, weight0: torch.Tensor, bias: nn.Parameter | None,
                 r: OrthogonalFactor, p: OrthogonalFactor, forward_mode: str = "auto"):
        super().__init__()
        if forward_mode not in FORWARD_MODES:
            raise ValueError(f"forward mode '{forward_mode}' is invalid: expected one of {', '.join(FORWARD_MODES)}")
        out_features, in_features = weight0.shape
        if r.dim != out_features or p.dim != in_features:
            raise ValueError(f"factor widths ({r.dim}, {p.dim}) do not match the weight shape {tuple(weight0.shape)}")

        self.in_features = in_features
        self.out_features = out_features
        self.forward_mode = forward_mode
        self.register_buffer("weight0", weight0.detach().float().clone())
        self.bias = bias
        self.r = r
        self.p = p
        with torch.no_grad():
            spectrum = singular_values(self.weight0).float()
        self.register_buffer("reference_singular_values", spectrum)

    def effective_weight(self) -> torch.Tensor:
        """Return R · W0 · P (m×n) in float32, differentiable in the factors' parameters."""
        with torch.autocast(device_type=self.weight0.device.type, enabled=False):
            r_blocks = self.r.block_factors()
            p_blocks = self.p.block_factors()
            weight0 = self.weight0.to(r_blocks.dtype)
            rotated_rows = self.r.apply(weight0.transpose(0, 1), r_blocks).transpose(0, 1)   # R·W0
            return self.p.apply(rotated_rows, p_blocks, transpose=True)                     # (R·W0)·P

    def uses_input_centric(self, tokens: int) -> bool:
        """Return whether rotating the activations is cheaper than building R·W0·P for `tokens` rows.

        Input-centric adds tokens·(c_R + c_P) flops; weight-centric adds
        n·c_R + m·c_P, where c_F is the cost of applying a factor to one vector.
        The shared x·W0ᵀ product costs the same either way, and backward scales both sides alike.
        """
        if self.forward_mode != "auto":
            return self.forward_mode == "input"
        cost_r = self.r.flops_per_vector()
        cost_p = self.p.flops_per_vector()
        return tokens * (cost_r + cost_p) < self.in_features * cost_r + self.out_features * cost_p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.numel() // self.in_features
        if self.uses_input_centric(tokens):
            return self.forward_input_centric(x)
        return self.forward_weight_centric(x)

    def forward_weight_centric(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.effective_weight().to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return nn.functional.linear(x, weight, bias)

    def forward_input_centric(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=self.weight0.device.type, enabled=False):
            r_blocks = self.r.block_factors()
            p_blocks = self.p.block_factors()
        hidden = self.p.apply(x, p_blocks)                                  # P·x
        hidden = nn.functional.linear(hidden, self.weight0.to(hidden.dtype))  # W0·P·x
        output = self.r.apply(hidden, r_blocks)                             # R·W0·P·x
        if self.bias is not None:
            output = output + self.bias.to(output.dtype)
        return output

    @torch.no_grad()
    def merge(self) -> None:
        """Fold R and P into W0 in float32, in place; the caller then resamples and resets the factors."""
        self.weight0.copy_(self.effective_weight())

    def trainable_parameters(self) -> int:
        return self.r.params.numel() + self.p.params.numel()

    @torch.no_grad()
    def orthogonality_error(self) -> float:
        return max(self.r.orthogonality_error(), self.p.orthogonality_error())

    @torch.no_grad()
    def singular_value_drift(self) -> float:
        """Return max_i |σ_i(R·W0·P) − σ_i⁰| / σ_i⁰ against the initial spectrum σ⁰ (both sorted descending).

        Denominators are floored at 1e-6·σ_max⁰ so a numerically zero singular value cannot blow it up.
        """
        current = singular_values(self.effective_weight())
        reference = self.reference_singular_values.double()
        floor = reference.max().clamp_min(torch.finfo(torch.float64).tiny) * 1e-6
        return ((current - reference).abs() / reference.clamp_min(floor)).max().item()

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, forward={self.forward_mode}")
