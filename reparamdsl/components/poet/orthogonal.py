"""Orthogonal parameterizations: maps from a batch of skew-symmetric Q to orthogonal R.

Every map takes a skew-symmetric Q of shape (k, b, b) and returns R of the
same shape, so one call builds the factors of all k blocks. The maps are plain
tensor functions, so they run inside the compiled training step and autograd
differentiates through them. They always compute in float32 (or float64 when
Q is float64) with autocast disabled, because bf16 Cayley maps drift far from
orthogonal.

`terms = k` of the Cayley–Neumann map means a polynomial of degree k in Q:

- form "taylor":  R = I + 2Q + 2Q^2 + ... + 2Q^k  (the Cayley map's series cut after Q^k)
- form "product": R = (I + Q)(I + Q + ... + Q^(k-1)) = I + 2Q + ... + 2Q^(k-1) + Q^k
"""

from __future__ import annotations

import torch

FORMS = ("taylor", "product")

# On the CPU build of torch 2.13 with two threads, batched LU hung on 150-row
# blocks and failed with MKL DLASWP errors on 256-row blocks, while one block at
# a time worked. So CPU blocks above this size are solved one at a time.
CPU_BATCHED_SOLVE_MAX = 127


def skew_from_upper(params: torch.Tensor, index: torch.Tensor, blocks: int, size: int) -> torch.Tensor:
    """Scatter raw parameters into strictly-upper-triangular entries and return Q = U - Uᵀ, shape (blocks, size, size).

    `index` holds, for each raw parameter, its flat position in a (blocks, size, size) tensor.
    """
    flat = params.new_zeros(blocks * size * size).index_put((index,), params)
    upper = flat.view(blocks, size, size)
    return upper - upper.transpose(-1, -2)


def _compute_dtype(q: torch.Tensor) -> torch.dtype:
    return torch.float64 if q.dtype == torch.float64 else torch.float32


class OrthogonalMap:
    """Base of the parameterizations; `__call__(q)` maps skew-symmetric (k, b, b) to orthogonal (k, b, b)."""

    name = "orthogonal"
    exact = True

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        dtype = _compute_dtype(q)
        with torch.autocast(device_type=q.device.type, enabled=False):
            return self.compute(q.to(dtype))

    def compute(self, q: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def orthogonality_bound(self, norm: float) -> float:
        """Return an upper bound of ‖RᵀR − I‖₂ for any skew Q with ‖Q‖₂ ≤ `norm` in exact arithmetic."""
        return 0.0

    def __repr__(self) -> str:
        return self.name


class Cayley(OrthogonalMap):
    """Exact Cayley map R = (I + Q)(I − Q)⁻¹, computed as the solution of (I − Q) R = I + Q."""

    name = "cayley"

    def compute(self, q):
        eye = torch.eye(q.shape[-1], dtype=q.dtype, device=q.device)
        lhs = eye - q
        rhs = eye + q
        # (I + Q) and (I − Q)⁻¹ commute, so solving from the left gives the same R.
        if q.device.type == "cpu" and q.shape[-1] > CPU_BATCHED_SOLVE_MAX:
            return torch.stack([torch.linalg.solve(lhs[i], rhs[i]) for i in range(q.shape[0])])
        return torch.linalg.solve(lhs, rhs)


class CayleyNeumann(OrthogonalMap):
    """Cayley map with the inverse replaced by a truncated series; a polynomial of degree `terms` in Q."""

    name = "cayley_neumann"
    exact = False

    def __init__(self, terms: int, form: str = "taylor"):
        if terms < 1:
            raise ValueError(f"cayley_neumann terms must be at least 1, got {terms}")
        if form not in FORMS:
            raise ValueError(f"cayley_neumann form '{form}' is invalid: expected one of {', '.join(FORMS)}")
        self.terms = terms
        self.form = form

    def coefficients(self) -> list[float]:
        """Return the coefficients c_0..c_k of R = Σ c_j Q^j."""
        coefficients = [1.0] + [2.0] * self.terms
        if self.form == "product":
            coefficients[-1] = 1.0
        return coefficients

    def compute(self, q):
        # Horner's rule: k − 1 matrix products for a degree-k polynomial.
        coefficients = self.coefficients()
        eye = torch.eye(q.shape[-1], dtype=q.dtype, device=q.device)
        result = coefficients[-1] * q
        for coefficient in reversed(coefficients[1:-1]):
            result = q @ (coefficient * eye + result)
        return eye + result

    def polynomial_on_circle(self, theta: float) -> complex:
        """Return p(iθ): the eigenvalue of R for the eigenvalue iθ of Q."""
        z = 1j * theta
        return sum(c * z**j for j, c in enumerate(self.coefficients()))

    def orthogonality_bound(self, norm: float, samples: int = 2001) -> float:
        # R is a polynomial in the normal matrix Q, so ‖RᵀR − I‖₂ = max over eigenvalues iθ of ||p(iθ)|² − 1|.
        worst = 0.0
        for i in range(samples):
            theta = norm * i / (samples - 1)
            worst = max(worst, abs(abs(self.polynomial_on_circle(theta)) ** 2 - 1.0))
        return worst

    def __repr__(self):
        return f"cayley_neumann(terms = {self.terms}, form = {self.form})"


class MatrixExponential(OrthogonalMap):
    """R = exp(Q) through `torch.linalg.matrix_exp`; a reference, slower than the Cayley maps."""

    name = "exp"

    def compute(self, q):
        return torch.linalg.matrix_exp(q)


def build_cayley(params: dict, ctx) -> OrthogonalMap:
    return Cayley()


def build_cayley_neumann(params: dict, ctx) -> OrthogonalMap:
    return CayleyNeumann(int(params["terms"]), params["form"])


def build_exp(params: dict, ctx) -> OrthogonalMap:
    return MatrixExponential()


def bound_table(norms=(0.05, 0.1, 0.2, 0.3, 0.5), terms=(2, 3, 4, 5, 6)) -> list[tuple]:
    """Return rows (form, terms, bound at each norm) of the CNP orthogonality bound, for the docs."""
    rows = []
    for form in FORMS:
        for k in terms:
            cnp = CayleyNeumann(k, form)
            rows.append((form, k, [cnp.orthogonality_bound(norm) for norm in norms]))
    return rows

