"""The orthogonal maps of POET against independent references (eigendecomposition, matrix series)."""

import pytest
import torch

from reparamdsl.components.poet.orthogonal import (
    Cayley,
    CayleyNeumann,
    MatrixExponential,
    bound_table,
    skew_from_upper,
)


def random_skew(blocks: int, size: int, norm: float, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """Return skew-symmetric matrices whose spectral norms are exactly `norm`."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(blocks, size, size, generator=generator, dtype=torch.float64)
    q = a - a.transpose(-1, -2)
    q = q / torch.linalg.matrix_norm(q, ord=2)[:, None, None] * norm
    return q.to(dtype)


def spectral_reference(q: torch.Tensor, function) -> torch.Tensor:
    """Apply a scalar function f(iθ) to skew Q through the eigendecomposition of the Hermitian −iQ."""
    hermitian = -1j * q.to(torch.complex128)
    eigenvalues, vectors = torch.linalg.eigh(hermitian)              # Q = V diag(iλ) Vᴴ
    mapped = function(1j * eigenvalues.to(torch.complex128))
    result = vectors @ torch.diag_embed(mapped) @ vectors.conj().transpose(-1, -2)
    return result.real


def orthogonality_error(r: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(r.shape[-1], dtype=r.dtype)
    return torch.linalg.matrix_norm(r.transpose(-1, -2) @ r - eye, ord=2)


MAPS = [Cayley(), CayleyNeumann(4, "taylor"), CayleyNeumann(4, "product"), CayleyNeumann(3, "product"),
        MatrixExponential()]


@pytest.mark.parametrize("orthogonal", MAPS, ids=repr)
def test_zero_skew_gives_identity_exactly(orthogonal):
    q = torch.zeros(3, 5, 5)
    assert torch.equal(orthogonal(q), torch.eye(5).expand(3, 5, 5))


def test_cayley_matches_eigen_reference():
    q = random_skew(4, 12, norm=0.8)
    expected = spectral_reference(q, lambda z: (1 + z) / (1 - z))
    assert torch.allclose(Cayley()(q), expected, atol=1e-12)
    assert torch.allclose(Cayley()(q.float()).double(), expected, atol=2e-6)


def test_cayley_is_not_its_transpose():
    q = random_skew(2, 8, norm=0.5)
    transposed = spectral_reference(q, lambda z: (1 - z) / (1 + z))
    assert (Cayley()(q) - transposed).abs().max() > 0.1


def test_exp_matches_eigen_reference():
    q = random_skew(3, 10, norm=1.5)
    expected = spectral_reference(q, torch.exp)
    assert torch.allclose(MatrixExponential()(q), expected, atol=1e-12)


@pytest.mark.parametrize("form", ["taylor", "product"])
@pytest.mark.parametrize("terms", [1, 2, 4, 5])
def test_cayley_neumann_matches_its_polynomial(form, terms):
    q = random_skew(2, 6, norm=0.4)
    eye = torch.eye(6, dtype=q.dtype)
    if form == "taylor":
        expected = eye + 2 * sum(torch.linalg.matrix_power(q, j) for j in range(1, terms + 1))
    else:
        neumann = sum(torch.linalg.matrix_power(q, j) for j in range(terms))
        expected = (eye + q) @ neumann
    assert torch.allclose(CayleyNeumann(terms, form)(q), expected, atol=1e-13)


@pytest.mark.parametrize("form, quoted", [("product", 1.6e-2), ("taylor", 2.7e-3)])
def test_cayley_neumann_error_at_norm_0_3(form, quoted):
    q = random_skew(3, 16, norm=0.3)
    cnp = CayleyNeumann(4, form)
    errors = orthogonality_error(cnp(q))
    bound = cnp.orthogonality_bound(0.3)

    assert errors.max() <= bound * (1 + 1e-9)
    assert errors.min() >= bound * (1 - 1e-6)   # ±0.3i is an eigenvalue of every Q, where the bound is attained
    assert bound == pytest.approx(quoted, rel=0.05)


def test_cayley_neumann_bound_holds_below_norm():
    for form, terms, bounds in bound_table(norms=(0.1, 0.3, 0.5), terms=(2, 3, 4, 6)):
        cnp = CayleyNeumann(terms, form)
        for norm, bound in zip((0.1, 0.3, 0.5), bounds):
            q = random_skew(4, 10, norm=norm, seed=terms)
            assert orthogonality_error(cnp(q)).max() <= bound * (1 + 1e-9) + 1e-14, (form, terms, norm)


@pytest.mark.parametrize("form", ["taylor", "product"])
def test_cayley_neumann_converges_to_cayley(form):
    q = random_skew(2, 8, norm=0.05)
    exact = Cayley()(q)
    transposed = exact.transpose(-1, -2)
    for terms in (2, 4, 6):
        approx = CayleyNeumann(terms, form)(q)
        assert (approx - exact).abs().max() < 4 * 0.05 ** terms
        assert (approx - transposed).abs().max() > 0.01


def test_taylor_form_is_closer_to_cayley_than_product():
    q = random_skew(2, 8, norm=0.2)
    exact = Cayley()(q)
    # In spectral norm the Taylor remainder is about 2ρ⁵ and the product remainder about ρ⁴.
    taylor = torch.linalg.matrix_norm(CayleyNeumann(4, "taylor")(q) - exact, ord=2).max()
    product = torch.linalg.matrix_norm(CayleyNeumann(4, "product")(q) - exact, ord=2).max()
    assert taylor < product / 2


@pytest.mark.parametrize("orthogonal", MAPS, ids=repr)
def test_gradcheck_float64(orthogonal):
    size = 5
    index = torch.triu_indices(size, size, offset=1)
    flat_index = index[0] * size + index[1]
    flat_index = torch.cat([flat_index, flat_index + size * size])
    params = (0.3 * torch.randn(flat_index.numel(), dtype=torch.float64)).requires_grad_()

    def function(raw):
        return orthogonal(skew_from_upper(raw, flat_index, 2, size))

    assert torch.autograd.gradcheck(function, (params,))


def test_skew_from_upper_places_parameters():
    index = torch.tensor([1, 2, 5])     # (0, 1), (0, 2), (1, 2) of a 3×3 block
    q = skew_from_upper(torch.tensor([1.0, 2.0, 3.0]), index, 1, 3)
    expected = torch.tensor([[[0.0, 1.0, 2.0], [-1.0, 0.0, 3.0], [-2.0, -3.0, 0.0]]])
    assert torch.equal(q, expected)


@pytest.mark.timeout(120)
def test_cayley_large_blocks_with_threads():
    # Batched LU of 150+ row matrices fails on torch 2.13 CPU with several threads; this catches a wrong solve.
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        q = random_skew(3, 160, norm=0.7, dtype=torch.float32)
        r = Cayley()(q).double()
    finally:
        torch.set_num_threads(previous)
    q64 = q.double()
    eye = torch.eye(160, dtype=torch.float64)
    residual = (eye - q64) @ r - (eye + q64)
    assert residual.abs().max() < 1e-4
    assert orthogonality_error(r).max() < 1e-4


def test_autocast_keeps_float32():
    q = random_skew(2, 8, norm=0.3, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = CayleyNeumann(4)(q)
    assert r.dtype == torch.float32
    assert torch.allclose(r, CayleyNeumann(4)(q))
