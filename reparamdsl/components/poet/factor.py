"""One orthogonal factor of a POET layer: R (output side) or P (input side).

A factor of width d acts on d coordinates as Πᵀ · blockdiag(B_1, ..., B_k) · Π,
where Π is a random permutation and each B_t is orthogonal:

- block-stochastic (`block = b`): the k = ⌈d/b⌉ blocks cover all d coordinates;
  the last block has d − (k − 1)·b rows when b does not divide d;
- fully stochastic (`subset = b`): one b×b block acts on the first b permuted
  coordinates (a random index subset) and the identity on the rest.

Blocks are computed together as a (k, b, b) batch. A ragged last block is
padded to b rows with zero Q entries, so the padding maps to the identity and
only real coordinates carry trainable parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from reparamdsl.components.poet.orthogonal import OrthogonalMap, skew_from_upper


def _upper_index(block_sizes: list[int], size: int) -> torch.Tensor:
    """Return flat positions in a (k, size, size) tensor of the strictly-upper entries of each block's real part."""
    positions = []
    for t, real in enumerate(block_sizes):
        rows, cols = torch.triu_indices(real, real, offset=1)
        positions.append(t * size * size + rows * size + cols)
    return torch.cat(positions) if positions else torch.zeros(0, dtype=torch.long)


class OrthogonalFactor(nn.Module):
    """Trainable skew-symmetric parameters, their permutation and the map that makes them orthogonal."""

    def __init__(self, dim: int, orthogonal: OrthogonalMap, generator: torch.Generator,
                 block: int | None = None, subset: int | None = None):
        super().__init__()
        if (block is None) == (subset is None):
            raise ValueError("an orthogonal factor needs exactly one of block or subset")

        self.dim = dim
        self.orthogonal = orthogonal
        self.stochastic = "block" if block is not None else "subset"
        self.size = min(block if block is not None else subset, dim)
        if self.size < 1:
            raise ValueError(f"block or subset size must be at least 1, got {self.size}")

        if self.stochastic == "block":
            self.blocks = math.ceil(dim / self.size)
            self.covered = dim
            block_sizes = [self.size] * (self.blocks - 1) + [dim - (self.blocks - 1) * self.size]
        else:
            self.blocks = 1
            self.covered = self.size
            block_sizes = [self.size]
        self.block_sizes = block_sizes

        index = _upper_index(block_sizes, self.size)
        self.params = nn.Parameter(torch.zeros(index.numel()))
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("perm", torch.zeros(dim, dtype=torch.long))
        self.register_buffer("inv_perm", torch.zeros(dim, dtype=torch.long))
        self.resample(generator)

    @torch.no_grad()
    def resample(self, generator: torch.Generator) -> None:
        """Draw a new permutation (the block assignment or the index subset) in place."""
        perm = torch.randperm(self.dim, generator=generator).to(self.perm.device)
        self.perm.copy_(perm)
        self.inv_perm.copy_(torch.argsort(perm))

    @torch.no_grad()
    def reset(self) -> None:
        """Set Q to zero in place, which makes the factor the identity."""
        self.params.zero_()

    def skew(self) -> torch.Tensor:
        """Return Q as a (blocks, size, size) batch of skew-symmetric matrices."""
        return skew_from_upper(self.params, self.index, self.blocks, self.size)

    def block_factors(self) -> torch.Tensor:
        """Return the orthogonal blocks B_t, shape (blocks, size, size), in float32 or float64."""
        return self.orthogonal(self.skew())

    def apply(self, x: torch.Tensor, factors: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        """Return F·v (or Fᵀ·v) for every row v of x, shape (..., dim), where F is this factor."""
        blocks = factors.transpose(-1, -2) if transpose else factors
        blocks = blocks.to(x.dtype)
        selected = self.perm if self.covered == self.dim else self.perm[: self.covered]

        gathered = x.index_select(-1, selected)
        padding = self.blocks * self.size - self.covered
        if padding:
            gathered = nn.functional.pad(gathered, (0, padding))
        gathered = gathered.unflatten(-1, (self.blocks, self.size))            # (..., k, b)
        rotated = torch.einsum("kij,...kj->...ki", blocks, gathered).flatten(-2)  # (..., k·b)
        if padding:
            rotated = rotated[..., : self.covered]

        if self.covered == self.dim:
            return rotated.index_select(-1, self.inv_perm)
        return x.index_copy(-1, selected, rotated)

    def matrix(self) -> torch.Tensor:
        """Return the dense d×d factor F (for metrics and tests; the forward never builds it)."""
        factors = self.block_factors()
        eye = torch.eye(self.dim, dtype=factors.dtype, device=factors.device)
        return self.apply(eye, factors).transpose(0, 1)

    def flops_per_vector(self) -> int:
        """Return the multiply-adds times two of applying the factor to one vector."""
        return 2 * self.blocks * self.size * self.size

    @torch.no_grad()
    def orthogonality_error(self) -> float:
        """Return max over blocks of ‖BᵀB − I‖₂, measured in float64 on the blocks the forward uses."""
        factors = self.block_factors().double()
        eye = torch.eye(self.size, dtype=factors.dtype, device=factors.device)
        gram = factors.transpose(-1, -2) @ factors - eye
        return torch.linalg.matrix_norm(gram, ord=2).max().item()

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, {self.stochastic}={self.size}, blocks={self.blocks}, "
                f"params={self.params.numel()}, orthogonal={self.orthogonal!r}")
